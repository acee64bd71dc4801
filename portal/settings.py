"""Settings for the Five Safes Portal: one file, read from the environment.

With nothing set the portal runs embedded: SQLite, a local media directory and the
django-q2 ORM broker. Production sets DATABASE_URL (PostgreSQL), REDIS_URL (django-q2
broker), S3 storage and a secret key. Every secret may instead be given as NAME_FILE,
the path of a file holding it (Docker/Kubernetes secrets).
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _load_dotenv(path):
    """Read KEY=VALUE lines from a local .env file without overriding the real environment."""
    if not path.is_file():
        return
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


# PORTAL_ENV_FILE names another file; an empty value reads none (the tests do this).
_env_file = os.environ.get("PORTAL_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file:
    _load_dotenv(Path(_env_file))


def env_str(name, default=None):
    """A string from NAME, or from the file named by NAME_FILE (for secrets)."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name, default=False):
    value = env_str(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name, default):
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from exc


def env_float(name, default):
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from exc


def env_list(name, default=()):
    value = env_str(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (or DJANGO_SECRET_KEY_FILE) to 50 or more random "
            "characters, for example the output of\n"
            "    python -c 'import secrets; print(secrets.token_urlsafe(50))'\n"
            "or set DJANGO_DEBUG=1 for local development (scripts/demo writes a .env for you)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-DJANGO_DEBUG-on-" + "x" * 16

# Old keys still accepted for signatures (sessions, signed links) while a new key rolls out.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Reverse proxies in front of the portal: with N, the visitor's address is the Nth from the right of
# X-Forwarded-For (login and public-question rate limits count per visitor, not per proxy).
PORTAL_TRUSTED_PROXIES = env_int("PORTAL_TRUSTED_PROXIES", 0)
ALLAUTH_TRUSTED_PROXY_COUNT = PORTAL_TRUSTED_PROXIES

# The public base URL, used in e-mails, crates and PDFs.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://127.0.0.1:8000")
# The federation named as `provider` of the portal's SoftwareApplication in crates.
FEDERATION_NAME = env_str("PORTAL_FEDERATION_NAME", "Five Safes Federation")
FEDERATION_URL = env_str("PORTAL_FEDERATION_URL", PORTAL_BASE_URL)

INSTALLED_APPS = [
    "portal.admin_config.PortalAdminConfig",  # django.contrib.admin behind the portal sign-in
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "guardian",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "django_q",
    "portal",
    "crates",
    "reviews",
    "transparency",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.grants.ActorMiddleware",  # grants made while serving a request name its person
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.PlainNotFoundMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.RequireMFAMiddleware",
    "portal.errors.RefusalMiddleware",  # an uncaught refusal on a page: its message, never a server error
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.portal",
            ],
        },
    },
]

# Database: SQLite when DATABASE_URL is unset.
DATA_DIR = Path(env_str("PORTAL_DATA_DIR", str(BASE_DIR / "var")))
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server and the django-q2 workers share the file. Transactions take the write
    # lock when they begin (BEGIN IMMEDIATE), waiting up to `timeout` for it: a transaction that read
    # first and then wrote would otherwise fail at once ("database is locked") whenever another
    # process wrote in between.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "home"

# django-allauth: e-mail login, verified addresses, rate limits, MFA.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}
ACCOUNT_SIGNUP_ENABLED = env_bool("PORTAL_SIGNUP_ENABLED", True)
ACCOUNT_ADAPTER = "portal.accounts.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Five Safes Portal")
# Roles that must have a second factor before they can use the portal.
PORTAL_MFA_REQUIRED_ROLES = ["governance_officer", "output_checker", "auditor", "federation_admin"]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("nhsuk", BASE_DIR / "node_modules" / "nhsuk-frontend" / "dist" / "nhsuk"),
]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("DJANGO_MEDIA_ROOT", str(DATA_DIR / "media")))

# Storage: local files unless an S3-compatible bucket is configured.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "access_key": env_str("AWS_ACCESS_KEY_ID"),
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
# Published audit digests live outside the database (a bucket of their own, or a local folder), so whoever
# can rewrite the database cannot rewrite the digests that vouch for it too (docs/security.md, finding 11).
PORTAL_AUDIT_DIGEST_BUCKET = env_str("PORTAL_AUDIT_DIGEST_BUCKET")
if PORTAL_AUDIT_DIGEST_BUCKET:
    _digest_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": PORTAL_AUDIT_DIGEST_BUCKET,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL"),
            "region_name": env_str("AWS_S3_REGION_NAME"),
            "access_key": env_str("AWS_ACCESS_KEY_ID"),
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY"),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }
else:
    _digest_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": Path(env_str("PORTAL_AUDIT_DIGEST_DIR", str(DATA_DIR / "audit-digests")))},
    }
STORAGES = {
    "default": _default_storage,
    "audit_digests": _digest_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: large files stream to disk, never whole into memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# ... and are hashed (SHA-256) as they arrive, so crate intake does not read them again to hash them.
FILE_UPLOAD_HANDLERS = [
    "crates.uploads.HashingMemoryFileUploadHandler",
    "crates.uploads.HashingTemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
PORTAL_EVIDENCE_MAX_BYTES = env_int("PORTAL_EVIDENCE_MAX_BYTES", 10 * 1024 * 1024)
# Crate intake limits (see crates.fivesafes.safezip.Limits).
PORTAL_CRATE_LIMITS = {
    "max_compressed_bytes": env_int("PORTAL_CRATE_MAX_BYTES", 2 * 1024**3),
    "max_uncompressed_bytes": env_int("PORTAL_CRATE_MAX_UNCOMPRESSED_BYTES", 8 * 1024**3),
    "max_files": env_int("PORTAL_CRATE_MAX_FILES", 20_000),
    "max_ratio": env_int("PORTAL_CRATE_MAX_RATIO", 100),
    "max_metadata_bytes": env_int("PORTAL_CRATE_MAX_METADATA_BYTES", 10 * 1024**2),
}
PORTAL_BUILDER_MAX_INPUT_BYTES = env_int("PORTAL_BUILDER_MAX_INPUT_BYTES", 20 * 1024**2)
PORTAL_WORKFLOW_MAX_BYTES = env_int("PORTAL_WORKFLOW_MAX_BYTES", 200 * 1024 * 1024)
# Dispatch to TRE agents (crates.dispatch; docs/agent-api.md).
PORTAL_AGENT_LEASE_SECONDS = env_int("PORTAL_AGENT_LEASE_SECONDS", 120)
PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS = env_float("PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS", 25.0)
PORTAL_AGENT_CLAIM_POLL_SECONDS = env_float("PORTAL_AGENT_CLAIM_POLL_SECONDS", 0.25)
PORTAL_AGENT_MAX_ATTEMPTS = env_int("PORTAL_AGENT_MAX_ATTEMPTS", 3)
PORTAL_AGENT_RESULTS_MAX_BYTES = env_int(
    "PORTAL_AGENT_RESULTS_MAX_BYTES", PORTAL_CRATE_LIMITS["max_compressed_bytes"]
)
PORTAL_AGENT_QUIET_SECONDS = env_int("PORTAL_AGENT_QUIET_SECONDS", 300)
PORTAL_AGENT_STUCK_SECONDS = env_int("PORTAL_AGENT_STUCK_SECONDS", 3600)
PORTAL_EVIDENCE_CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}

# E-mail: console in development, SMTP when EMAIL_HOST is set.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Five Safes Portal <portal@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Background work: django-q2, ORM broker unless REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "portal"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": env_int("Q_TIMEOUT", 600),
    "retry": env_int("Q_RETRY", 720),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 3),
    "queue_limit": 50,
    "save_limit": 1000,
    "catch_up": False,
    "sync": env_bool("Q_SYNC", False),
    "label": "Background tasks",
}
# The Redis broker keeps no receipt of a task a worker took: work a killed worker held is found again
# by sweeps (outbox rows still pending after this long; longer than the task timeout).
PORTAL_OUTPUT_CHECK_RETRY_SECONDS = env_int("PORTAL_OUTPUT_CHECK_RETRY_SECONDS", Q_CLUSTER["retry"])
PORTAL_EMAIL_RETRY_SECONDS = env_int("PORTAL_EMAIL_RETRY_SECONDS", Q_CLUSTER["retry"])
# Webhooks: each POST waits at most TIMEOUT seconds; failures retry after BASE, 2*BASE, 4*BASE... seconds
# (capped at MAX) up to MAX_ATTEMPTS tries; an endpoint failing DISABLE_AFTER times in a row is switched off.
# Private, loopback and reserved addresses are refused unless ALLOW_PRIVATE (tests, closed networks).
PORTAL_WEBHOOK_TIMEOUT_SECONDS = env_int("PORTAL_WEBHOOK_TIMEOUT_SECONDS", 5)
PORTAL_WEBHOOK_RETRY_BASE_SECONDS = env_int("PORTAL_WEBHOOK_RETRY_BASE_SECONDS", 30)
PORTAL_WEBHOOK_RETRY_MAX_SECONDS = env_int("PORTAL_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600)
PORTAL_WEBHOOK_MAX_ATTEMPTS = env_int("PORTAL_WEBHOOK_MAX_ATTEMPTS", 8)
PORTAL_WEBHOOK_DISABLE_AFTER = env_int("PORTAL_WEBHOOK_DISABLE_AFTER", 20)
PORTAL_WEBHOOK_ALLOW_PRIVATE = env_bool("PORTAL_WEBHOOK_ALLOW_PRIVATE", False)
PORTAL_VALIDATION_RETRY_SECONDS = env_int("PORTAL_VALIDATION_RETRY_SECONDS", Q_CLUSTER["retry"])
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1

# Cache: shared by every process once Redis is configured (login and question rate limits, the public
# pages' cache and its invalidation); per process otherwise. DJANGO_CACHE_URL chooses another Redis.
CACHE_URL = env_str("DJANGO_CACHE_URL", REDIS_URL or "locmem://")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "portal",
        }
    }
elif CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"DJANGO_CACHE_URL must be a redis:// or locmem:// URL, not {CACHE_URL!r}")

# REST API: deny by default; each view opts in to its authentication and permissions.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    # Deny by default: a view that names no scope for a method lets nobody in (portal.api.permissions).
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.RequiredScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    # Every API error as application/problem+json (RFC 9457), domain refusals included (portal/errors.py).
    "EXCEPTION_HANDLER": "portal.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Five Safes Portal API",
    "DESCRIPTION": "Researcher, governance and TRE-agent API of the Five Safes Portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.errors.problem_json_for_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ApprovalStatusEnum": "portal.models.Decision",
        "ProjectStatusEnum": "portal.models.Project.Status",
        "MembershipStatusEnum": "portal.models.Membership.Status",
        "JobStatusEnum": "crates.models.Job.Status",
        "VersionStatusEnum": "crates.models.RequestVersion.Status",
        "OutputStatusEnum": "reviews.models.OutputFile.Status",
        "OutputVerdictEnum": "reviews.models.OutputFile.Verdict",
        "DecisionOutcomeEnum": "reviews.models.Outcome",
        "ReviewStepEnum": "reviews.models.Step",
    },
}
# The licence under which released outputs are published (an SPDX URL and its name).
PORTAL_OUTPUT_LICENSE = env_str("PORTAL_OUTPUT_LICENSE", "https://spdx.org/licenses/CC-BY-4.0")
PORTAL_OUTPUT_LICENSE_NAME = env_str("PORTAL_OUTPUT_LICENSE_NAME", "Creative Commons Attribution 4.0")
PORTAL_TOKEN_DEFAULT_DAYS = env_int("PORTAL_TOKEN_DEFAULT_DAYS", 90)
PORTAL_TOKEN_MAX_DAYS = env_int("PORTAL_TOKEN_MAX_DAYS", 365)
# Tokens with a privileged scope (review, check, audit, admin) expire within this many days.
PORTAL_PRIVILEGED_TOKEN_MAX_DAYS = min(env_int("PORTAL_PRIVILEGED_TOKEN_MAX_DAYS", 30), 30)

# Content security policy: no inline script anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Security headers; the HTTPS ones switch on outside debug.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60)
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}

GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False
ANONYMOUS_USER_NAME = None
