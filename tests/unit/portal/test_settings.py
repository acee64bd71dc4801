"""Settings come from the environment; production settings pass Django's deploy checks."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _clean_env():
    """The environment without portal settings, and without reading a developer's .env file."""
    prefixes = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "AWS_", "PORTAL_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, "PORTAL_ENV_FILE": ""}


def _python(code, tmp_path, **env):
    """Run Python code with the portal's settings (debug, data in tmp_path) in a process of its own."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            **_clean_env(),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "1",
            "PORTAL_DATA_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def _manage(*args, env):
    clean = _clean_env()
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_issues(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "example.org",
            "PORTAL_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_missing_secret_key_outside_debug_is_a_helpful_error(tmp_path):
    result = _manage("check", env={"DJANGO_DEBUG": "0", "PORTAL_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(secrets.token_urlsafe(50))
    result = _manage(
        "check",
        env={
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY_FILE": str(key_file),
            "DJANGO_ALLOWED_HOSTS": "x",
            "PORTAL_DATA_DIR": str(tmp_path),
        },
    )
    assert result.returncode == 0, result.stderr


def test_bad_boolean_is_refused(tmp_path):
    result = _manage("check", env={"DJANGO_DEBUG": "maybe", "PORTAL_DATA_DIR": str(tmp_path)})
    assert "DJANGO_DEBUG must be a boolean" in result.stderr


@pytest.mark.parametrize(
    ("env", "engine", "broker"),
    [
        ({}, "django.db.backends.sqlite3", "orm"),
        (
            {"DATABASE_URL": "postgres://u@db.example/portal", "REDIS_URL": "redis://cache.example:6379/0"},
            "django.db.backends.postgresql",
            "redis",
        ),
    ],
)
def test_database_and_broker_follow_the_environment(tmp_path, env, engine, broker):
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print('redis' if 'redis' in s.Q_CLUSTER else 'orm');"
        "print(s.STORAGES['default']['BACKEND'])"
    )
    result = _python(f"import django;django.setup();{code}", tmp_path, **env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:2] == [engine, broker]
    assert lines[2] == "django.core.files.storage.FileSystemStorage"


def test_s3_storage_when_a_bucket_is_configured(tmp_path):
    clean = _clean_env()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django;django.setup();from django.conf import settings as s;print(s.STORAGES['default']['BACKEND'])",
        ],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "1",
            "PORTAL_DATA_DIR": str(tmp_path),
            "AWS_STORAGE_BUCKET_NAME": "portal-files",
            "AWS_S3_ENDPOINT_URL": "https://s3.example",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "storages.backends.s3.S3Storage", result.stderr


def test_agent_dispatch_settings_follow_the_environment(tmp_path):
    script = (
        "import django;django.setup();from crates import dispatch;"
        "print(dispatch.lease_seconds(), dispatch.max_claim_wait(), dispatch.max_attempts(),"
        " dispatch.quiet_after().total_seconds())"
    )
    env = {
        **_clean_env(),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "1",
        "PORTAL_DATA_DIR": str(tmp_path),
    }
    run = dict(cwd=ROOT, capture_output=True, text=True, timeout=60)
    default = subprocess.run([sys.executable, "-c", script], env=env, **run)
    assert default.stdout.split() == ["120", "25.0", "3", "300.0"], default.stderr
    tuned = {
        "PORTAL_AGENT_LEASE_SECONDS": "30",
        "PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS": "2.5",
        "PORTAL_AGENT_MAX_ATTEMPTS": "5",
        "PORTAL_AGENT_QUIET_SECONDS": "60",
    }
    changed = subprocess.run([sys.executable, "-c", script], env={**env, **tuned}, **run)
    assert changed.stdout.split() == ["30", "2.5", "5", "60.0"], changed.stderr
    bad = subprocess.run(
        [sys.executable, "-c", script], env={**env, "PORTAL_AGENT_CLAIM_POLL_SECONDS": "soon"}, **run
    )
    assert bad.returncode != 0 and "PORTAL_AGENT_CLAIM_POLL_SECONDS must be a number" in bad.stderr


def _read_settings(tmp_path, expression, **env):
    script = f"import django;django.setup();from django.conf import settings as s;print({expression})"
    return _python(script, tmp_path, **env)


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({}, "django.core.cache.backends.locmem.LocMemCache"),
        ({"REDIS_URL": "redis://127.0.0.1:6379/3"}, "django.core.cache.backends.redis.RedisCache"),
        (
            {"DJANGO_CACHE_URL": "redis://cache.internal:6379/1"},
            "django.core.cache.backends.redis.RedisCache",
        ),
        (
            {"REDIS_URL": "redis://127.0.0.1:6379/3", "DJANGO_CACHE_URL": "locmem://"},
            "django.core.cache.backends.locmem.LocMemCache",
        ),
    ],
)
def test_the_cache_is_shared_through_redis_when_configured(tmp_path, env, backend):
    result = _read_settings(
        tmp_path, "s.CACHES['default']['BACKEND'], s.CACHES['default'].get('LOCATION')", **env
    )
    assert result.stdout.split()[0] == backend, result.stderr
    if "redis" in backend:
        assert result.stdout.split()[1] == env.get("DJANGO_CACHE_URL", env.get("REDIS_URL"))


def test_an_unknown_cache_url_is_a_helpful_error(tmp_path):
    result = _read_settings(tmp_path, "s.CACHES", DJANGO_CACHE_URL="memcached://x")
    assert result.returncode != 0 and "DJANGO_CACHE_URL must be a redis:// or locmem:// URL" in result.stderr


def test_proxies_and_key_fallbacks_follow_the_environment(tmp_path):
    old = tmp_path / "old-key"
    old.write_text("previous-key-" + "p" * 40 + "\n")
    result = _read_settings(
        tmp_path,
        "s.PORTAL_TRUSTED_PROXIES, s.ALLAUTH_TRUSTED_PROXY_COUNT, s.SECRET_KEY_FALLBACKS",
        PORTAL_TRUSTED_PROXIES="1",
        DJANGO_SECRET_KEY_FALLBACKS_FILE=str(old),
    )
    assert result.stdout.strip() == f"1 1 ['previous-key-{'p' * 40}']", result.stderr


def test_sqlite_transactions_that_read_then_write_wait_for_each_other(tmp_path):
    """Two processes' transactions (web server and worker) read, then write the same SQLite file:
    the second waits for the first instead of failing with "database is locked"."""
    script = """
import threading, time
import django
django.setup()
from django.db import connection, connections, transaction
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE counter (n INTEGER)")
    cursor.execute("INSERT INTO counter VALUES (0)")
connections.close_all()
barrier, errors = threading.Barrier(2), []
def work():
    try:
        barrier.wait()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT n FROM counter")
            n = cursor.fetchone()[0]
            time.sleep(0.3)
            cursor.execute("UPDATE counter SET n = %s", [n + 1])
    except Exception as error:
        errors.append(repr(error))
    finally:
        connections.close_all()
threads = [threading.Thread(target=work) for _ in range(2)]
for thread in threads: thread.start()
for thread in threads: thread.join()
with connection.cursor() as cursor:
    cursor.execute("SELECT n FROM counter")
    print(cursor.fetchone()[0], errors)
"""
    result = _python(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2 []"
