"""Test overlay on portal.settings: a fixed key, fast hashing, tasks run inline."""

import os

os.environ["PORTAL_ENV_FILE"] = ""  # a developer's .env must not change what the tests see

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-" + "t" * 40)
os.environ.setdefault("ACCOUNT_EMAIL_VERIFICATION", "optional")
os.environ.setdefault("PORTAL_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ACCOUNT_RATE_LIMITS = False
# Serve static files from the finders, as in development, without a collectstatic step.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# The test client speaks plain HTTP; HTTPS redirects are covered by the deploy-check test.
SECURE_SSL_REDIRECT = False
# Each test process keeps its own cache, whatever REDIS_URL or DJANGO_CACHE_URL the shell has.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
