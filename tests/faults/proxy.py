"""A TCP proxy between agents and the portal that freezes one HTTP exchange at a chosen point.

Agents talk to the portal through it. A `Freeze` rule names a request (method and path) and where to
stop it: part-way through its body (the portal is left reading an upload that never ends), or once
the portal has answered with a given status (the answer never reaches the agent). Either way the
exchange stays frozen until one side dies: when the agent is killed the portal sees the connection
close; when the portal is killed the agent sees it close, exactly as over a real network.

It parses just enough HTTP/1.1 to find request boundaries (agents send a Content-Length with every
body and never pipeline), so any answer that follows a complete request is that request's answer.
"""

import re
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Freeze:
    """Freeze the first request matching `method` and `path` (a regex): after `body_fraction` of its
    body, or (with `status`) once the portal's answer starts with that status code."""

    method: str
    path: str
    body_fraction: float | None = None
    status: int | None = None
    fired: threading.Event = field(default_factory=threading.Event)

    def matches(self, method, path):
        return not self.fired.is_set() and method == self.method and re.fullmatch(self.path, path)


class FaultProxy:
    def __init__(self, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.rules = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = []  # (method, path) of every request seen, in order
        self._closing = False
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    def freeze(self, method, path, *, body_fraction=None, status=None):
        rule = Freeze(method, path, body_fraction=body_fraction, status=status)
        with self._lock:
            self.rules.append(rule)
        return rule

    def close(self):
        self._closing = True
        self._listener.close()

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()  # the portal is down: the agent sees its connection refused
            return
        server.settimeout(None)
        exchange = _Exchange(self, client, server)
        threading.Thread(target=exchange.answers, daemon=True).start()
        exchange.requests()

    def _rule_for(self, method, path):
        with self._lock:
            self.requests.append((method, path))
            return next((rule for rule in self.rules if rule.matches(method, path)), None)


class _Exchange:
    """One agent connection and its portal connection, pumped both ways."""

    def __init__(self, proxy, client, server):
        self.proxy, self.client, self.server = proxy, client, server
        self.frozen = False  # nothing more goes to the portal
        self.answer_rule = None  # a rule waiting for the answer to the request just sent
        self.answer_frozen = False  # nothing more goes to the agent

    def requests(self):
        buffer = b""
        try:
            while True:
                head_end = buffer.find(b"\r\n\r\n")
                while head_end < 0:
                    data = self._read(self.client)
                    if not data:
                        return
                    buffer += data
                    head_end = buffer.find(b"\r\n\r\n")
                head, buffer = buffer[: head_end + 4], buffer[head_end + 4 :]
                method, path, length = _parse_head(head)
                rule = self.proxy._rule_for(method, path)
                if rule is not None and rule.status is not None:
                    self.answer_rule = rule
                body_limit = None
                if rule is not None and rule.body_fraction is not None:
                    body_limit = int(length * rule.body_fraction)
                self._send(self.server, head)
                sent = 0
                while sent < length:
                    if not buffer:
                        buffer = self._read(self.client)
                        if not buffer:
                            return
                    take = buffer[: length - sent]
                    buffer = buffer[len(take) :]
                    if body_limit is not None and sent + len(take) >= body_limit:
                        self._send(self.server, take[: body_limit - sent])
                        self.frozen = True
                        rule.fired.set()
                        self._drain(self.client)
                        return
                    self._send(self.server, take)
                    sent += len(take)
        finally:
            # The agent went away (or the portal did): let the other side see the connection end.
            _shutdown(self.server)
            _shutdown(self.client)

    def answers(self):
        try:
            while True:
                data = self._read(self.server)
                if not data:
                    return
                rule, self.answer_rule = self.answer_rule, None
                if rule is not None and data.startswith(f"HTTP/1.1 {rule.status} ".encode()):
                    self.answer_frozen = True
                    rule.fired.set()
                if self.answer_frozen:
                    continue
                self._send(self.client, data)
        finally:
            _shutdown(self.client)
            _shutdown(self.server)

    def _drain(self, sock):
        """Read and drop whatever the agent still sends, until it closes the connection."""
        while self._read(sock):
            pass

    @staticmethod
    def _read(sock):
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    @staticmethod
    def _send(sock, data):
        if data:
            try:
                sock.sendall(data)
            except OSError:
                pass


def _parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        elif name.strip().lower() == "transfer-encoding":
            raise ValueError("the fault proxy handles only requests with a Content-Length")
    return method, path.split("?", 1)[0], length


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
