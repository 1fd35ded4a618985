"""One settings module, driven by the environment.

With nothing set, Amends runs embedded: SQLite under var/, a filesystem Celery broker and
the sandbox ESP. Production sets DATABASE_URL, REDIS_URL and DJANGO_SECRET_KEY. Every
variable is parsed strictly: a bad value stops start-up with the variable's name.
Secrets may also come from a file named by `<NAME>_FILE` (Docker/Kubernetes secrets).
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AMENDS_VAR_DIR", BASE_DIR / "var"))

# pytest >= 8.2 exports PYTEST_VERSION; the suite always runs on PostgreSQL and Redis.
TESTING = "PYTEST_VERSION" in os.environ

env = environ.Env()


def secret(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the file NAME_FILE points at."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
    return env.str(name, default=default)


DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING or env.bool("AMENDS_EMBEDDED", default=False)):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set (or DJANGO_SECRET_KEY_FILE).")
    SECRET_KEY = "embedded-insecure-key-only-for-local-demo-and-tests-0123456789"

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "anymail",
    "core",
    "accounts",
    "audiences",
    "messaging",
    "deliverability",
    "incidents",
]

MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.language.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
                "incidents.context_processors.signoff_inbox",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
if TESTING:
    _default_db = "postgres://postgres@127.0.0.1:5432/amends"
else:
    _default_db = f"sqlite:///{VAR_DIR / 'amends.sqlite3'}"
DATABASES = {"default": env.db_url("DATABASE_URL", default=_default_db)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded run has a web server and a worker writing the same file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery --------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15" if TESTING else "")

if REDIS_URL:
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
        # Test sessions share one Redis: each gets its own prefix (tests clear only theirs).
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX",
                              default=f"amends-test-{os.getpid()}" if TESTING else "amends"),
    }}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    # On disk, not in memory: the web server and the worker are separate processes and
    # share what they put here (an import's progress, debounce flags).
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}
    # Embedded mode: a serverless broker that a solo-pool worker reads from disk.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # The exchange table lives beside the queue, not in the working directory.
        "control_folder": str(_broker_dir / "control"),
    }
    if CELERY_BROKER_URL == "filesystem://":
        for _sub in ("queue", "processed", "control"):
            (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)

CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Each test session gets its own queue, so parallel runs on one Redis never share work.
CELERY_TASK_DEFAULT_QUEUE = env.str(
    "CELERY_TASK_DEFAULT_QUEUE", default=f"amends-test-{os.getpid()}" if TESTING else "amends")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic work, defined in one place (core.schedule).
from core.schedule import BEAT_SCHEDULE  # noqa: E402

CELERY_BEAT_SCHEDULE = BEAT_SCHEDULE

# --- Auth ------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "accounts.throttle.ThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "incidents:incident-list"
LOGOUT_REDIRECT_URL = "accounts:login"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
# Lock the (username, client IP) pair, never a username everywhere: a locked person still
# signs in from another address, and a success clears only its own pair (accounts/throttle).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "accounts.throttle.client_ip"
# One address failing for this many different usernames within the cool-off is locked.
AMENDS_LOGIN_IP_USERNAME_LIMIT = env.int("AMENDS_LOGIN_IP_USERNAME_LIMIT", default=10)
# Behind a reverse proxy: the META key of its client-address header (e.g.
# HTTP_X_FORWARDED_FOR) and how many trusted proxies append to it. Unset: REMOTE_ADDR only.
AMENDS_CLIENT_IP_HEADER = env.str("AMENDS_CLIENT_IP_HEADER", default="")
AMENDS_TRUSTED_PROXY_COUNT = env.int("AMENDS_TRUSTED_PROXY_COUNT", default=1)
if AMENDS_TRUSTED_PROXY_COUNT < 1:
    raise ImproperlyConfigured("AMENDS_TRUSTED_PROXY_COUNT must be at least 1.")
if AMENDS_LOGIN_IP_USERNAME_LIMIT < 2:
    raise ImproperlyConfigured("AMENDS_LOGIN_IP_USERNAME_LIMIT must be at least 2.")
AXES_VERBOSE = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Internationalisation --------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("ar", _("Arabic")),
    ("he", _("Hebrew")),
    ("pl", _("Polish")),
    ("id", _("Indonesian")),
    ("nl", _("Dutch")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_TZ = True
# One date-time format everywhere (localised per language; the time zone named).
FORMAT_MODULE_PATH = ["core.formats"]

# --- Static ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not (DEBUG or TESTING)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
# Embedded and test runs serve static files straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

# --- Audience imports (audiences/imports/, docs/audiences.md) ---------------------------
# Uploads larger than MAX_BYTES are refused before anything is stored; files wait under
# MEDIA_ROOT/imports/ for the worker and are deleted once imported, or KEEP_HOURS after a
# preview that nobody imported.
AMENDS_IMPORTS = {
    "MAX_BYTES": env.int("AMENDS_IMPORT_MAX_BYTES", default=200 * 1024 * 1024),
    "KEEP_HOURS": env.float("AMENDS_IMPORT_KEEP_HOURS", default=24.0),
}
if AMENDS_IMPORTS["MAX_BYTES"] < 1:
    raise ImproperlyConfigured("AMENDS_IMPORT_MAX_BYTES must be a positive number of bytes.")

# --- Mail ------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
                        if os.environ.get("EMAIL_HOST") else
                        "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "mail"
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = secret("EMAIL_HOST_PASSWORD", default="") or ""
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Amends <amends@localhost>")
AMENDS_BASE_URL = env.str("AMENDS_BASE_URL", default="http://127.0.0.1:8000")
# Every apology carries List-Unsubscribe (the page under AMENDS_BASE_URL; one-click, RFC
# 8058, only when that is https) and, when this names a mailbox, a mailto beside it.
AMENDS_UNSUBSCRIBE_MAILTO = env.str("AMENDS_UNSUBSCRIBE_MAILTO", default="")
# Who is asked to sign for a role when an incident first needs it (a username each). Unset:
# every active user in that role is asked (and becomes a stakeholder of the incident).
AMENDS_DEFAULT_SIGNERS = {
    role: username for role, username in (
        ("legal", env.str("AMENDS_DEFAULT_SIGNER_LEGAL", default="")),
        ("security", env.str("AMENDS_DEFAULT_SIGNER_SECURITY", default="")),
    ) if username
}

# --- ESP adapter (messaging.esp) -------------------------------------------------------
# Retries with backoff on 429/5xx for every ESP call; the sandbox ESP is the default.
AMENDS_ESP = {
    "PROVIDER": env.str("AMENDS_ESP_PROVIDER", default="sandbox"),
    "MAX_ATTEMPTS": env.int("AMENDS_ESP_MAX_ATTEMPTS", default=5),
    "BACKOFF_BASE": env.float("AMENDS_ESP_BACKOFF_BASE", default=0.5),
    "BACKOFF_MAX": env.float("AMENDS_ESP_BACKOFF_MAX", default=30.0),
    "SANDBOX_LATENCY": env.float("AMENDS_SANDBOX_LATENCY", default=0.0),
    "SANDBOX_FAILURE_RATE": env.float("AMENDS_SANDBOX_FAILURE_RATE", default=0.0),
    "SANDBOX_SEED": env.int("AMENDS_SANDBOX_SEED", default=None),
    # The sandbox's sent-message store in Redis: its own prefix per test session (a
    # reconciliation must never read another run's ids) and keys that expire.
    "SANDBOX_REDIS_PREFIX": env.str(
        "AMENDS_SANDBOX_REDIS_PREFIX",
        default=f"amends-test-{os.getpid()}:sandbox" if TESTING else "amends:sandbox"),
    "SANDBOX_TTL": env.int("AMENDS_SANDBOX_TTL", default=3600 if TESTING else 7 * 86400),
}
if AMENDS_ESP["SANDBOX_TTL"] < 60:
    raise ImproperlyConfigured("AMENDS_SANDBOX_TTL must be at least 60 (seconds).")
if AMENDS_ESP["MAX_ATTEMPTS"] < 1:
    raise ImproperlyConfigured("AMENDS_ESP_MAX_ATTEMPTS must be at least 1.")
if not 0.0 <= AMENDS_ESP["SANDBOX_FAILURE_RATE"] <= 1.0:
    raise ImproperlyConfigured("AMENDS_SANDBOX_FAILURE_RATE must be between 0 and 1.")
# Per-account credentials (issue 4, pause): AMENDS_ESP_ACCOUNTS as JSON keyed by the
# EspAccount's label, or AMENDS_ESP_ACCOUNT_<LABEL>_API_KEY / _SERVER_TOKEN / _BASE_URL.
# The sandbox needs none. See messaging/esp/accounts.py.
from messaging.esp.accounts import esp_accounts_from_env  # noqa: E402

AMENDS_ESP_ACCOUNTS = esp_accounts_from_env(os.environ)

# --- Broadcast sending (issue 4, send; messaging/broadcasts.py) -----------------------------
# A broadcast (the apology) goes through the incident's ESP account, with that account's
# credentials (AMENDS_ESP_ACCOUNTS above), like a campaign stop. CLAIM_GRACE: seconds after
# which a claim no live worker holds is in doubt (default: 2 on PostgreSQL, where a worker
# holds its claim's lock until it settles; 60 elsewhere). SETTLE: seconds an ESP needs
# before its message search is trusted to say "never received".
AMENDS_SEND = {
    "CLAIM_GRACE": env.float("AMENDS_SEND_CLAIM_GRACE", default=None),
    "SETTLE": env.float("AMENDS_SEND_SETTLE", default=30.0),
}
for _name in ("AMENDS_SEND_PROVIDER", "AMENDS_SEND_ESP_OPTIONS", "AMENDS_SEND_ESP_OPTIONS_FILE"):
    if os.environ.get(_name):
        raise ImproperlyConfigured(
            f"{_name} is no longer read: the apology sends through the incident's ESP "
            f"account. Put the credentials in AMENDS_ESP_ACCOUNTS (or "
            f"AMENDS_ESP_ACCOUNT_<LABEL>_SERVER_TOKEN / _API_KEY / _BASE_URL).")

# --- Security --------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
# X-Forwarded-Proto says "this came in over https" only when a proxy we run sets it; a
# client talking to gunicorn directly could send it too. Trust it only when told.
DJANGO_BEHIND_PROXY = env.bool("DJANGO_BEHIND_PROXY", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if DJANGO_BEHIND_PROXY else None
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}, "axes": {"level": "WARNING"}},
}

# --- Deliverability webhooks (django-anymail) ------------------------------------------
# Every webhook demands HTTP basic auth with ANYMAIL_WEBHOOK_SECRET ("user:password"; a
# comma-separated list allows rotation). Without it, production webhooks refuse all posts.
# ESP signatures are checked on top where the ESP signs: Mailgun (HMAC), Mandrill (HMAC
# over URL + params), SendGrid (ECDSA, "Signed Event Webhook"). SES via SNS relies on the
# basic auth in the subscription URL; anymail confirms SNS subscriptions itself (boto3)
# only when that secret is set. The sandbox ESP takes basic auth or an HMAC header.
_webhook_secret = secret("ANYMAIL_WEBHOOK_SECRET", default="") or ""
if not _webhook_secret and (DEBUG or TESTING or env.bool("AMENDS_EMBEDDED", default=False)):
    _webhook_secret = "amends:embedded-webhook-secret"
ANYMAIL: dict = {
    "WEBHOOK_SECRET": [s.strip() for s in _webhook_secret.split(",") if s.strip()],
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": env.bool(
        "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS", default=True),
    "SPARKPOST_TRACK_INITIAL_OPEN_AS_OPENED": True,
}
for _name in ("MAILGUN_WEBHOOK_SIGNING_KEY", "MANDRILL_WEBHOOK_KEY", "MANDRILL_WEBHOOK_URL",
              "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY", "POSTAL_WEBHOOK_KEY",
              "MAILERSEND_WEBHOOK_SIGNING_SECRET", "RESEND_SIGNING_SECRET",
              "UNISENDER_GO_API_KEY", "SANDBOX_WEBHOOK_SIGNING_KEY"):
    _value = secret(_name, default="")
    if _value:
        ANYMAIL[_name] = _value
# Deliverability monitoring: how long after an incident's declaration rates are watched.
DELIVERABILITY_MONITORING_DAYS = env.int("DELIVERABILITY_MONITORING_DAYS", default=14)
DELIVERABILITY_THRESHOLD_PRESET = env.str("DELIVERABILITY_THRESHOLD_PRESET",
                                          default="mailbox_providers")
# Mailgun signatures older or newer than this many seconds are refused (replay protection;
# a token is also good for one body only, remembered in the cache for twice this long).
MAILGUN_WEBHOOK_TOLERANCE_SECONDS = env.int("MAILGUN_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Amazon SNS: a message's SigningCertURL (and a SubscribeURL) must match this pattern. The
# default allows only HTTPS on an SNS host, sns.<region>.amazonaws.com(.cn); tests point it
# at a loopback server. Certificates are cached (AMAZON_SNS_CERT_CACHE_SECONDS).
AMAZON_SNS_CERT_URL_PATTERN = env.str(
    "AMAZON_SNS_CERT_URL_PATTERN",
    default=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[^?#]*\.pem$")
AMAZON_SNS_CERT_CACHE_SECONDS = env.int("AMAZON_SNS_CERT_CACHE_SECONDS", default=86400)
# Raw webhook payloads are deleted this many days after receipt, once their normalised
# events exist (deliverability.tasks.prune_raw_delivery_events, daily).
DELIVERABILITY_RAW_RETENTION_DAYS = env.int("DELIVERABILITY_RAW_RETENTION_DAYS", default=90)

# --- Post-mortem PDF (incidents.learn) ----------------------------------------------------
# Incidents with at most this many timeline events render in the request; bigger ones in a
# Celery task with a progress bar and a download link.
POSTMORTEM_PDF_INLINE_MAX_EVENTS = env.int("POSTMORTEM_PDF_INLINE_MAX_EVENTS", default=200)
if POSTMORTEM_PDF_INLINE_MAX_EVENTS < 0:
    raise ImproperlyConfigured("POSTMORTEM_PDF_INLINE_MAX_EVENTS must be 0 or more.")
