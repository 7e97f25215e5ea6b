"""Trialdesk settings: one module, driven by the environment.

Safe local defaults (SQLite, eager Celery, DEBUG on) unless the environment says
otherwise. ``DJANGO_ENV=production`` switches every deployment setting on and refuses
to start without a real ``SECRET_KEY`` and ``ALLOWED_HOSTS``. Nothing here exists only
in production: the same names are read in every environment.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; absent on a fresh clone

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
_DEV_KEY = "dev-only-insecure-key-never-use-in-production-0123456789"
SECRET_KEY = env.str("SECRET_KEY", default="" if PRODUCTION else _DEV_KEY)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY == _DEV_KEY):
    raise ImproperlyConfigured("SECRET_KEY must be set to 50+ random characters when DJANGO_ENV=production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DJANGO_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served by us: the docs page works offline
    "simple_history",
    "axes",
    "core",
    "trial",
    "patients",
    "dosing",
    "safety",
    "cleaning",
    "analysis",
    "exchange",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Content-Security-Policy everywhere; no-store on signed-in pages, the API and exports.
    "core.middleware.SecurityHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.SessionTimeoutMiddleware",
    # A write to a frozen or locked casebook is refused before its view runs (issue 12).
    "patients.lock_gate.LockGateMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # SQLite's "database is locked" past the busy timeout in a page's view: 503 "busy, try again".
    "core.middleware.DatabaseBusyMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by the backend into a response.
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
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.session_timeout",
            ],
        },
    },
]

# SQLite unless DATABASE_URL names another database (PostgreSQL in CI and production).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False  # writes open their own transaction in services
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60 if PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", default="test_trialdesk")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded default (`make demo`) serves several requests at once. WAL lets reads
    # run beside the one writer; a write transaction takes the write lock when it starts
    # (BEGIN IMMEDIATE), so two never deadlock upgrading a read lock; and a writer waits
    # up to `timeout` seconds for its turn instead of failing at once with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_SECONDS", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # AxesStandaloneBackend first: it refuses a locked-out username or address before
    # the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sessions live in the database, so a Redis outage logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_IDLE_TIMEOUT = timedelta(minutes=env.int("SESSION_IDLE_MINUTES", default=30))
SESSION_IDLE_WARNING = timedelta(minutes=env.int("SESSION_WARNING_MINUTES", default=5))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env.int("SESSION_ABSOLUTE_HOURS", default=12))
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Lockout after repeated failed logins, counted per username and per address separately.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Wrong signature passwords count with failed sign-ins (axes, above) and also on their own,
# since a sign-in resets axes' count: this many within this window lock the account too
# (core.signatures.signature_failures; the count restarts after a lockout).
SIGNATURE_FAILURE_LIMIT = env.int("SIGNATURE_FAILURE_LIMIT", default=5)
SIGNATURE_FAILURE_WINDOW = timedelta(hours=env.int("SIGNATURE_FAILURE_HOURS", default=12))
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env.int("PROXY_COUNT", default=0)
# Every failed password (sign-in or e-signature re-entry, core.signatures) is kept in
# axes' failure log, append-only like the audit trail (core.audit_guard): never pruned.
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_ACCESS_FAILURE_LOG_PER_USER_LIMIT = 10**12

API_TOKEN_LIFETIME = timedelta(days=env.int("API_TOKEN_DAYS", default=90))

LANGUAGE_CODE = "en-gb"
FORMAT_MODULE_PATH = ["config.formats"]  # ISO dates everywhere (config/formats/en/formats.py)
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True  # every stored time is UTC; audit times are shown in UTC

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Built CDISC packages (exchange.models.CdiscPackage): private files, served only through the
# scoped download views (never a public URL). The web and worker processes must share it.
CDISC_PACKAGE_ROOT = env.path("CDISC_PACKAGE_ROOT", default=BASE_DIR / "var" / "cdisc-packages")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every API view: signed in, and writes only for roles that write (never a sponsor).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "trial.permissions.WritesNeedAWritingRole",
        "trial.permissions.CasebookNotLocked",
    ],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",  # decimal patterns DRF accepts (core.schema)
    "DEFAULT_FILTER_BACKENDS": ["core.filters.FilterBackend"],  # id filters: bounded integers, no lookup
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "core.api.LimitOffsetPagination",
    # JSON nested deeper than 32 levels is a 400 (core.parsers), not a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# A request body larger than this is refused: 413 in the API's error format (core.api),
# Django's 400 page on forms. 10 MB holds a trial bundle of ~2,000 patients (the seed
# trial's 19 take 80 KB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
SPECTACULAR_SETTINGS = {
    "TITLE": "Trialdesk API",
    "DESCRIPTION": "Phase 1 dose-escalation trials: the contract is docs/api.md in the Trialdesk repository.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # A text field that refuses "" says minLength 1 (core.schema adds "a non-space character").
    "ENFORCE_NON_BLANK_FIELDS": True,
    # Two models call their state "status" with different choices: name each set.
    "ENUM_NAME_OVERRIDES": {
        "SimulationRunStatusEnum": "analysis.models.SimulationRun.Status",
        "CdiscPackageStatusEnum": "exchange.models.CdiscPackage.Status",
    },
    # Every operation documents 400/401/403/404 (and 409/413/423/503 where they occur) with the error schema.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.schema.document_errors"],
}

# Celery: a real broker when REDIS_URL is set; otherwise tasks run in-process (eager).
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True  # a task lost with its worker is redelivered
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="trialdesk")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With the broker down a data entry must not wait: the request is already in the outbox
# (TrialComputation.request_seq, committed with the data) and the relay sends it once
# the broker is back. One immediate retry covers a pooled connection that went stale
# when Redis restarted; no multi-second back-off in front of a clinician's save.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# A message taken by a worker that then died is handed out again after this many
# seconds. Tasks are idempotent, so a redelivery of a slow but live task only costs time.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
    # How often a worker sweeps for messages whose holder died (seconds x every Nth poll).
    "unacked_restore_interval": env.int("CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_RESTORE_THROTTLE", default=10),
}
CELERY_TIMEZONE = "UTC"

# The trial-level results are computed in the analysis app, above the apps whose data they
# read; the outbox in trial.services (below them all: patients, dosing, safety and cleaning
# request recomputations there) reaches that code only by these names, so trial imports no
# analysis module (pyproject.toml's layers contract). config sits above every app.
TRIAL_COMPUTATION_RUN = "analysis.services.computation_run"  # recompute one result if stale
TRIAL_RECOMPUTE_TASK = "analysis.tasks.trial_recompute"  # the same, as a Celery task

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The container healthcheck asks over plain HTTP inside the network: never redirected.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Off only for a plain-HTTP trial run of docker compose on localhost (docker-compose.yml).
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Reasons for change can be long sentences; keep them whole.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# Periodic safety net (celery beat): results whose recomputation message was lost.
CELERY_BEAT_SCHEDULE = {
    "relay-stale-trial-computations": {
        "task": "analysis.tasks.trial_relay_stale",
        "schedule": env.int("RELAY_STALE_SECONDS", default=60),
    },
    # Planning simulations whose task was lost (broker down at commit, worker died).
    "relay-stuck-simulations": {
        "task": "analysis.tasks.simulation_relay",
        "schedule": env.int("RELAY_STALE_SECONDS", default=60),
    },
    # Automatic data queries (issue 12): rules that cannot block entry, checked hourly;
    # the sweep raises each finding once and closes the queries whose data were fixed.
    "sweep-automatic-queries": {
        "task": "cleaning.tasks.cleaning_query_sweep",
        "schedule": env.int("QUERY_SWEEP_SECONDS", default=3600),
    },
}

# The admin's "revert to this version" would save without a reason for change; edits go
# through forms that ask for one.
SIMPLE_HISTORY_REVERT_DISABLED = True
