"""Settings of the in-process benchmarks (list pages, pipeline): production settings, with four changes.

- Public pages are not cached, so their rendering is what is timed.
- Static files are served from the finders, so pages render without a ``collectstatic`` step.
- The test client's host name is allowed.
- Passwords are hashed with MD5: the benchmarks create users, they never sign in with a password.

Background tasks stay on the django-q2 ORM broker: enqueueing is timed as the portal pays it, and the
pipeline benchmark then runs each task itself, as a worker would.
"""

import warnings

from portal.settings import *  # noqa: F403

PORTAL_PUBLIC_CACHE_SECONDS = 0
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# WhiteNoise warns that the collectstatic folder is missing, which the finders make irrelevant here.
warnings.filterwarnings("ignore", message="No directory at")
