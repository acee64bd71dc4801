"""Settings of the processes the fault tests start: web server, django-q2 clusters, helper commands.

The test overlay (fixed key, fast hashing, local mail) with real background work: tasks go to the
Redis broker named by REDIS_URL unless Q_SYNC=1 (the seeding commands). Leases, claim polling and the
redo of lost disclosure checks are shortened through FAULTS_* variables so that faults play out in
seconds. The `tests.faults` app records every task execution in the database (see apps.py).
"""

import os

from django.core.exceptions import ImproperlyConfigured

from tests.settings import *  # noqa: F403

if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
    raise ImproperlyConfigured("The fault tests run on PostgreSQL: set DATABASE_URL.")

INSTALLED_APPS = [*INSTALLED_APPS, "tests.faults.apps.FaultsConfig"]  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
Q_CLUSTER = {**Q_CLUSTER, "sync": os.environ.get("Q_SYNC") == "1"}  # noqa: F405

PORTAL_AGENT_LEASE_SECONDS = int(os.environ.get("FAULTS_LEASE_SECONDS", "120"))
PORTAL_AGENT_CLAIM_POLL_SECONDS = 0.1
PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS = 1
PORTAL_OUTPUT_CHECK_RETRY_SECONDS = int(os.environ.get("FAULTS_OUTPUT_CHECK_RETRY_SECONDS", "720"))
