"""`/healthz`: whether this web process can reach what it needs, for load balancers and containers.

It answers 200 with each check "ok", or 503 naming the checks that failed (never why: the reason goes
to the log, which is not public). No sign-in, not cached, nothing written to the audit trail.
"""

import logging
import uuid
from pathlib import Path

from django.core.cache import cache
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache():
    key, value = f"healthz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return what was stored")
    finally:
        cache.delete(key)


def _storage():
    # Listing the top level reaches the bucket (or directory) without reading or writing a file.
    if isinstance(default_storage, FileSystemStorage):
        Path(default_storage.location).mkdir(parents=True, exist_ok=True)
    default_storage.listdir("")


CHECKS = {"database": _database, "cache": _cache, "storage": _storage}


@never_cache
@require_safe
def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:  # any failure makes the process unhealthy; the log says why
            log.exception("health check %s failed", name)
            results[name] = "failing"
        else:
            results[name] = "ok"
    healthy = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if healthy else "failing", **results}, status=200 if healthy else 503)
