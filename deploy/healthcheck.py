# ruff: noqa: INP001 (a script run by the container runtime, not a module)
"""Container health checks for the portal image.

``python deploy/healthcheck.py web``
    GET the sign-in page from the gunicorn in this container, as the proxy would send it (an allowed
    host, X-Forwarded-Proto: https), and expect 200. It starts in milliseconds: no Django import.
``python deploy/healthcheck.py worker``
    Expect a django-q2 cluster of this host to have reported itself to the Redis broker in the last
    few seconds (clusters refresh their status continually; it expires after 3 seconds).

Exit status 0 healthy, 1 unhealthy, as Docker's HEALTHCHECK expects.
"""

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

USER_AGENT = "five-safes-healthcheck"  # deploy/gunicorn.conf.py keeps these out of the access log


def _env(name, default=""):
    """NAME, or the file named by NAME_FILE, as portal/settings.py reads them."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get(name) or default


def _host():
    """A host name the portal accepts: the first of DJANGO_ALLOWED_HOSTS that is not a pattern."""
    for host in _env("DJANGO_ALLOWED_HOSTS", "localhost").split(","):
        host = host.strip().lstrip(".")
        if host and host != "*":
            return host
    return "localhost"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def check_web():
    port = os.environ.get("HEALTHCHECK_PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": _host(), "X-Forwarded-Proto": "https", "User-Agent": USER_AGENT},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"unhealthy: {exc}")
        return 1
    if status != 200:
        print(f"unhealthy: /healthz answered {status}")
        return 1
    return 0


def check_worker():
    import socket

    import django

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, beside deploy/
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.conf import settings
    from django_q.status import Stat

    if "redis" not in settings.Q_CLUSTER:
        print("unknown: the ORM broker keeps no cluster status; set REDIS_URL")
        return 0
    host = socket.gethostname()
    mine = [stat for stat in Stat.get_all() if stat.host == host]
    if not mine:
        print(f"unhealthy: no django-q2 cluster of {host} has reported to the broker")
        return 1
    return 0


def main(argv):
    checks = {"web": check_web, "worker": check_worker}
    if len(argv) != 2 or argv[1] not in checks:
        print(f"usage: {argv[0]} {'|'.join(checks)}", file=sys.stderr)
        return 2
    return checks[argv[1]]()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
