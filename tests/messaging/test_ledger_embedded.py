"""The delivery ledger's snapshot on the embedded default (SQLite), in a process of its own
with bin/demo's environment: the same walk and the same story as on PostgreSQL
(test_broadcasts.py::test_the_snapshot_is_claimed_in_pieces_and_cancelled_whole)."""

import json
import subprocess
import sys

from tests.core.test_embedded import ROOT, embedded_env  # noqa: F401 (a fixture)
from tests.messaging.ledger_walk import EXPECTED


def test_the_snapshot_walk_on_sqlite(embedded_env):  # noqa: F811
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                             cwd=ROOT, env=embedded_env, capture_output=True, text=True,
                             timeout=180)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    drive = subprocess.run([sys.executable, "tests/messaging/ledger_embedded_drive.py"],
                           cwd=ROOT, env=embedded_env, capture_output=True, text=True,
                           timeout=120)
    assert drive.returncode == 0, (drive.stdout + drive.stderr)[-4000:]
    seen = json.loads(drive.stdout.strip().splitlines()[-1])
    assert seen.pop("database") == "sqlite3"
    assert seen == EXPECTED
