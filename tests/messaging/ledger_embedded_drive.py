"""Drives the delivery ledger on the embedded default (SQLite), where the snapshot's chunks
are JSON text and a claim writes its rows through the ORM: a claim smaller than a chunk,
rows given back, a cancel with people still in the snapshot. Run by
tests/messaging/test_ledger_embedded.py in a process of its own, with bin/demo's
environment; prints what it saw as one JSON line. No worker: the claims are made here.

Not a test module itself (pytest collects test_*.py only)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from accounts.roles import Role  # noqa: E402
from accounts.services import user_create_with_role  # noqa: E402
from tests.messaging.ledger_walk import ledger_walk  # noqa: E402


def main() -> dict:
    maya = user_create_with_role(username="maya", password="amends-demo-pass",
                                 role=Role.MARKETING, first_name="Maya")
    return {"database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            **ledger_walk(maya)}


if __name__ == "__main__":
    print(json.dumps(main()))
