"""pytest-django's live server shared with the test thread, for tests that drive the portal over HTTP
(real agent processes, a browser) while reading the database themselves."""

import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections


class _Serialised:
    """Serves one request at a time: with in-memory SQLite every thread shares one connection."""

    def __init__(self, app, lock):
        self.app, self.lock = app, lock

    def __call__(self, environ, start_response):
        with self.lock:
            return _Closing(self.app(environ, start_response), self.lock)


class _Closing:
    def __init__(self, response, lock):
        self.response, self.lock = response, lock

    def __iter__(self):
        return iter(self.response)

    def close(self):
        with self.lock:
            close = getattr(self.response, "close", None)
            if close:
                close()


@dataclass
class Portal:
    url: str
    lock: object

    def db(self):
        """Hold while the test touches the database, so it never interleaves with a request."""
        return self.lock

    def wait_for(self, predicate, what, timeout=90, log=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db():
                value = predicate()
            if value:
                return value
            time.sleep(0.2)
        tail = "\n".join(log.read_text().splitlines()[-30:]) if log and log.exists() else ""
        raise AssertionError(f"timed out waiting for {what}; the log ends:\n{tail}")


def _finish_requests():
    """Wait for the server's request threads: each closes its database connection when it ends."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and "process_request_thread" in thread.name:
            thread.join(timeout=10)


@contextmanager
def shared_live_server(live_server, *, join_requests=False):
    """The live server as a Portal. On in-memory SQLite the database lives in one connection: every
    request thread must use the test's, one at a time (the test's own queries included), or SQLite
    reports its tables locked. With `join_requests`, request threads are waited for at the end."""
    httpd = live_server.thread.httpd
    app, override = httpd.get_app(), httpd.connections_override
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        try:
            yield Portal(live_server.url, nullcontext())
        finally:
            if join_requests:
                _finish_requests()
        return
    lock = threading.RLock()
    httpd.connections_override = {connection.alias: connection}
    httpd.set_app(_Serialised(app, lock))
    connection.inc_thread_sharing()
    try:
        yield Portal(live_server.url, lock)
    finally:
        if join_requests:
            _finish_requests()
        connection.dec_thread_sharing()
        httpd.set_app(app)
        httpd.connections_override = override
