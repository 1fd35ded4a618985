import os
import re
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


# --- The production shape as docker-compose.yml and .env.example describe it (issue 12) --

_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def _compose() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _sep, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _compose_environment() -> dict[str, str]:
    """What web, worker and beat get: .env (from .env.example) through env_file, overridden
    by the `environment:` block with ${VAR:-default} resolved against .env."""
    dotenv = _env_example()
    block = _compose().split("environment: &env\n", 1)[1]
    env = dict(dotenv)
    for line in block.splitlines():
        if not line.startswith("    ") or ":" not in line:
            break
        name, _sep, value = line.strip().partition(": ")

        def resolve(m: re.Match) -> str:
            if m.group(1) in dotenv:
                return dotenv[m.group(1)]
            assert m.group(2) == "-", f"{m.group(1)} must be set in .env.example"
            return m.group(3)

        env[name] = _VAR.sub(resolve, value)
    return env


def test_check_deploy_passes_with_the_documented_compose_environment():
    env = _compose_environment()
    assert env["DJANGO_SECURE_SSL_REDIRECT"] == "true" and env["DJANGO_BEHIND_PROXY"] == "true"
    assert env["AMENDS_BASE_URL"].startswith("https://")
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_hardening_is_on_even_without_a_dotenv():
    block = _compose().split("environment: &env\n", 1)[1]
    for name, default in (("DJANGO_SECURE_SSL_REDIRECT", "true"),
                          ("DJANGO_SECURE_COOKIES", "true"), ("DJANGO_BEHIND_PROXY", "true"),
                          ("DJANGO_HSTS_SECONDS", "31536000")):
        assert f"{name}: ${{{name}:-{default}}}" in block


def test_compose_passes_dotenv_to_every_app_container_and_checks_their_health():
    text = _compose()
    assert "env_file:\n    - path: .env" in text.split("services:")[0]  # the x-app anchor
    services = text.split("services:", 1)[1]
    for name in ("web", "worker", "beat"):
        block = services.split(f"\n  {name}:\n", 1)[1].split("\n  \n", 1)[0]
        block = re.split(r"\n  \w", block, maxsplit=1)[0]
        assert "<<: *app" in block and "healthcheck:" in block, name
    assert "/healthz" in services and "inspect ping" in services


def _setting(name: str, env: dict[str, str]) -> str:
    result = _manage("shell", "-c", f"from django.conf import settings; "
                     f"print(repr(settings.{name}))", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_x_forwarded_proto_is_trusted_only_when_a_proxy_is_declared():
    assert _setting("SECURE_PROXY_SSL_HEADER", PRODUCTION) == "None"
    assert _setting("SECURE_PROXY_SSL_HEADER", {**PRODUCTION, "DJANGO_BEHIND_PROXY": "true"}) \
        == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.django_db
def test_healthz_answers_plain_http_on_any_host(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["amends.example.com"]
    response = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    assert response.status_code == 200 and response.content == b"ok\n"
    # Every other path still gets the redirect.
    assert client.get("/accounts/login/", HTTP_HOST="amends.example.com").status_code == 301
