"""Credentials and options of ESP accounts, read from the environment — never from the DB.

An `EspAccount` row names the provider and a label; what the adapter needs to talk to that
account (API key, server token, base URL) comes from settings.AMENDS_ESP_ACCOUNTS, which
settings.py builds with `esp_accounts_from_env` out of either

- AMENDS_ESP_ACCOUNTS (or the file AMENDS_ESP_ACCOUNTS_FILE names): a JSON object
  `{"<label>": {"api_key": "...", "base_url": "..."}}`, or
- one variable per option: AMENDS_ESP_ACCOUNT_<LABEL>_API_KEY, _SERVER_TOKEN, _BASE_URL,
  _SECRET_KEY / _ACCESS_KEY (Mailjet, Amazon SES), _DOMAIN (Mailgun), _REGION (SES)
  (each may also be given as <name>_FILE). <LABEL> is the account's label in capitals
  with every run of other characters as "_": "Mailchimp EU" → MAILCHIMP_EU.

The per-option names carry ACCOUNT_ so they cannot be mistaken for the adapter-wide
AMENDS_ESP_* settings (AMENDS_ESP_MAX_ATTEMPTS...). Pure Python: settings.py imports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

PREFIX = "AMENDS_ESP_ACCOUNT_"
# Option names an account may set through single variables, longest first for matching.
ENV_OPTIONS = ("SERVER_TOKEN", "SECRET_KEY", "ACCESS_KEY", "API_KEY", "BASE_URL", "DOMAIN",
               "REGION")


def account_key(label: str) -> str:
    """The form a label takes in variable names and in settings: "Mailchimp EU" → MAILCHIMP_EU."""
    return re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")


def _read(environ: Mapping[str, str], name: str) -> str | None:
    path = environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return environ.get(name)


def esp_accounts_from_env(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{account key: adapter options}; a malformed value stops start-up with its name."""
    accounts: dict[str, dict[str, Any]] = {}
    raw = _read(environ, "AMENDS_ESP_ACCOUNTS")
    if raw:
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"AMENDS_ESP_ACCOUNTS is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ImproperlyConfigured(
                'AMENDS_ESP_ACCOUNTS must be a JSON object: {"<label>": {"api_key": ...}}.')
        for label, options in parsed.items():
            if not isinstance(options, dict):
                raise ImproperlyConfigured(
                    f"AMENDS_ESP_ACCOUNTS[{label!r}] must be an object of adapter options.")
            accounts.setdefault(account_key(label), {}).update(options)
    for name in sorted(environ):
        base = name[:-len("_FILE")] if name.endswith("_FILE") else name
        if not base.startswith(PREFIX):
            continue
        rest = base[len(PREFIX):]
        option = next((o for o in ENV_OPTIONS if rest.endswith(f"_{o}")), None)
        label = rest[:-len(option) - 1] if option else ""
        if not option or not label:
            raise ImproperlyConfigured(
                f"{name}: expected {PREFIX}<LABEL>_<OPTION> with OPTION one of "
                f"{', '.join(ENV_OPTIONS)}.")
        accounts.setdefault(label, {})[option.lower()] = _read(environ, base)
    for key, options in accounts.items():
        url = options.get("base_url")
        if url is not None and not str(url).startswith(("http://", "https://")):
            raise ImproperlyConfigured(
                f"ESP account {key}: base_url must start with http:// or https://, got {url!r}.")
    return accounts
