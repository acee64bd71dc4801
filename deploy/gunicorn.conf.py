# ruff: noqa: INP001 (a configuration file that gunicorn execs, not a module)
"""gunicorn settings for the portal's web container: ``gunicorn -c deploy/gunicorn.conf.py``.

Every value can be changed from the environment (``GUNICORN_*``) without rebuilding the image. The
portal serves long-polling agent claims and multi-gigabyte streamed uploads and downloads, so it
runs threaded workers: a request waiting on the network holds a thread, never a whole process.
"""

import os

from gunicorn.glogging import Logger

# The User-Agent of deploy/healthcheck.py; its requests are kept out of the access log.
HEALTHCHECK_USER_AGENT = "five-safes-healthcheck"


def _int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


wsgi_app = "portal.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")

# gthread: the arbiter's timeout only notices a worker whose main loop is stuck, not a long request,
# so a 2 GiB upload or a 25-second claim never gets its worker killed. Each agent waiting on a claim
# holds one thread: keep workers x threads above the number of agents plus concurrent users.
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", 3)
threads = _int("GUNICORN_THREADS", 8)
timeout = _int("GUNICORN_TIMEOUT", 60)
# Time for in-flight requests (long polls, uploads) to finish on a restart or shutdown; keep the
# container's stop_grace_period above it.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 90)
# Behind the proxy, idle upstream connections are kept longer than Caddy's keep-alive (2 minutes)
# would ask for, so the proxy never reuses a connection gunicorn is closing.
keepalive = _int("GUNICORN_KEEPALIVE", 150)
# Recycle workers now and then, staggered, so a slow leak never takes the service down.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# The heartbeat file lives in memory, not on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (tmpfs, as gunicorn advises)

# Only the reverse proxy may say a request came over HTTPS. The proxy overwrites X-Forwarded-Proto
# and X-Forwarded-For on every request, and this container publishes no port; list the proxy's
# address(es) or network instead of "*" when gunicorn is reachable by anything else.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs go to the container's stdout/stderr; the client is the first X-Forwarded-For hop.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

# No runtime control socket: the container is managed by its orchestrator, not by gunicornc.
control_socket_disable = True


class PortalLogger(Logger):
    """gunicorn's logger, without an access-log line for every container health check."""

    def access(self, resp, req, environ, request_time):
        if environ.get("HTTP_USER_AGENT") == HEALTHCHECK_USER_AGENT:
            return
        super().access(resp, req, environ, request_time)


logger_class = PortalLogger
