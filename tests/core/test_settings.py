import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    test_only = ("PYTEST_VERSION", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in test_only}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "DJANGO_SECRET_KEY": "x" * 20 + "production-like-secret-key-with-enough-entropy-9f8e7d",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/amends",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "DJANGO_ALLOWED_HOSTS": "amends.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_COOKIES": "true",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_PRELOAD": "true",
}


def test_check_deploy_passes_with_production_environment():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_secret_key_stops_start_up_with_its_name():
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": ""}
    result = _manage("check", env=env)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_bad_value_names_the_variable():
    result = _manage("check", env={**PRODUCTION, "DJANGO_HSTS_SECONDS": "a year"})
    assert result.returncode != 0 and "a year" in result.stderr


def test_secret_can_come_from_a_file(tmp_path):
    secret = tmp_path / "key"
    secret.write_text(PRODUCTION["DJANGO_SECRET_KEY"] + "\n")
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": "", "DJANGO_SECRET_KEY_FILE": str(secret)}
    assert _manage("check", env=env).returncode == 0


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_script(client, marketer):
    client.force_login(marketer)
    response = client.get(reverse("incidents:incident-list"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split(";")[1]
    assert response["X-Frame-Options"] == "DENY"


def test_templates_hold_no_inline_script():
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for chunk in text.split("<script")[1:]:
            assert "src=" in chunk.split(">")[0], f"inline script in {template}"


def test_the_beat_schedule_is_loaded_from_one_place():
    from django.conf import settings

    from core.schedule import BEAT_SCHEDULE

    assert settings.CELERY_BEAT_SCHEDULE is BEAT_SCHEDULE
    assert "incidents-check-step-targets" in BEAT_SCHEDULE
