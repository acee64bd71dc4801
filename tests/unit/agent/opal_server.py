"""An Opal-shaped DataSHIELD server for tests: sessions, asynchronous commands and a few dsBase functions.

It answers the DataSHIELD REST calls that both the agent's ``datashield`` executor and OBiBa's Python
client (``datashield-opal``) make, with the paths, status codes, media types and JSON documents of Opal
5.x (``opal-core-ws``: ``DatashieldSessionsResourceImpl``, ``DataShieldSessionResourceImpl``,
``AbstractRSessionResource``, ``DataShieldSymbolResourceImpl``, ``DataShieldEnvironmentResource``; DTOs
from ``OpalR.proto`` and ``DataShield.proto``). Everything is under ``/ws``:

=======  ===============================================================  ==============================
method   path                                                             answer
=======  ===============================================================  ==============================
GET      /system/subject-profile/_current                                 200 subject profile
GET      /datashield/profiles                                             200 [DataShieldProfileDto]
GET      /datashield/env/{aggregate,assign}/methods?profile=              200 [DataShieldMethodDto]
POST     /datashield/sessions?profile=&wait=                              201 RSessionDto (+ Location)
GET      /datashield/session/{id}                                         200 RSessionDto
DELETE   /datashield/session/{id}                                         200
GET      /datashield/session/{id}/symbols                                 200 [name]
PUT      /datashield/session/{id}/symbol/{name}/table/{project.table}     201 command id (text/plain)
PUT      /datashield/session/{id}/symbol/{name}?async=true (x-rscript body) 201 command id (text/plain)
POST     /datashield/session/{id}/aggregate?async=true (x-rscript body)   200 command id (text/plain)
GET      /datashield/session/{id}/commands                                200 [RCommandDto]
GET      /datashield/session/{id}/command/{rid}?wait=                     200 RCommandDto
DELETE   /datashield/session/{id}/command/{rid}                           200
GET      /datashield/session/{id}/command/{rid}/result                    200 JSON, or 204 (none/unfinished)
=======  ===============================================================  ==============================

A call to a function that is not an aggregate method of the session's profile is refused as Opal's
restricted parser does: 400 ``{"code": 400, "status": "DataShieldParseError", "arguments": [...]}``.
Commands run one at a time per session, as in an R session; their results are what dsBase's functions
compute on the test's tables (``meanDS``, ``lengthDS``, ``classDS``, ``numNaDS``), serialised as Opal does
(``jsonlite::toJSON(x, auto_unbox = TRUE)``), and dsBase's disclosure checks fail the command with dsBase's
message. Every response carries ``X-Opal-Version``; every request must carry the token in ``X-Opal-Auth``.
"""

from __future__ import annotations

import json
import math
import queue
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

DSBASE_VERSION = "6.3.4"
NFILTER_TAB = 3  # dsBase's default nfilter.tab
NFILTER_CONCENTRATION = 0.9
NFILTER_GLM = 0.33  # dsBase's default nfilter.glm


class CommandFailure(Exception):
    """A dsBase function stopped; the message is R's."""


def _now() -> str:
    # Opal's DateTimeType text form, e.g. 2026-01-31T10:15:30.123+0000
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


# --------------------------------------------------------------------------- dsBase, in miniature
def _values(column: Any) -> list[Any]:
    if not isinstance(column, list):
        raise CommandFailure("Error : argument is not a vector")
    return column


def mean_ds(xvect: Any) -> dict[str, Any]:
    values = _values(xvect)
    valid = [value for value in values if value is not None]
    if valid and len(valid) < NFILTER_TAB:
        raise CommandFailure("Error : FAILED: Nvalid less than nfilter.tab")
    total = sum(valid)
    if total and any(value / total > NFILTER_CONCENTRATION for value in valid):
        raise CommandFailure("Error : FAILED: One value accounts for more than nfilter.conc of the mean")
    return {
        "EstimatedMean": sum(valid) / len(valid) if valid else "NA",
        "Nmissing": len(values) - len(valid),
        "Nvalid": len(valid),
        "Ntotal": len(values),
        "ValidityMessage": "VALID ANALYSIS",
    }


def length_ds(x: Any, *, session: Session) -> int:
    return len(_values(session.evaluate_text(x)))


def class_ds(x: Any, *, session: Session) -> str:
    values = [value for value in _values(session.evaluate_text(x)) if value is not None]
    if all(isinstance(value, int) for value in values):
        return "integer"
    if all(isinstance(value, int | float) for value in values):
        return "numeric"
    return "character"


def num_na_ds(xvect: Any) -> int:
    return sum(1 for value in _values(xvect) if value is None)


def var_ds(xvect: Any) -> dict[str, Any]:
    """dsBase's varDS: the sum and sum of squares a pooled variance needs (``ds.var(type="combine")``)."""
    values = _values(xvect)
    valid = [value for value in values if value is not None]
    if valid and len(valid) < NFILTER_TAB:
        raise CommandFailure("Error : FAILED: Nvalid less than nfilter.tab")
    return {
        "Sum": sum(valid),
        "SumOfSquares": sum(value * value for value in valid),
        "Nmissing": len(values) - len(valid),
        "Nvalid": len(valid),
        "Ntotal": len(values),
        "ValidityMessage": "VALID ANALYSIS",
    }


def _formula_columns(formula: str, data: Mapping[str, list[Any]]) -> tuple[str, list[str], bool]:
    response, _, rhs = formula.replace(" ", "").partition("~")
    intercept = True
    terms = []
    for term in rhs.replace("-1", "+0").split("+"):
        if term in ("0", "1"):
            intercept = intercept and term == "1"
            continue
        terms.append(term)

    def column(name: str) -> str:
        name = name.split("$", 1)[-1]
        if name not in data:
            raise CommandFailure(f"Error in eval(predvars, data, env) : object '{name}' not found")
        return name

    return column(response), [":".join(column(v) for v in term.split(":")) for term in terms], intercept


def glm_ds2(
    formula: Any,
    family: Any,
    beta_vect: Any,
    offset: Any = None,
    weights: Any = None,
    data_name: Any = None,
    *,
    session: Session,
) -> dict[str, Any]:
    """dsBase's glmDS2: X'WX, the score and the deviance at ``beta.vect`` (no coefficients leave the TRE).

    Complete cases only; the disclosure checks are dsBase's: a saturated model (more parameters than
    nfilter.glm times the valid rows) and a binary response with a level under nfilter.tab are refused.
    """
    if not isinstance(data_name, str) or data_name not in session.symbols:
        raise CommandFailure(f"Error : object '{data_name}' not found")
    data = session.symbols[data_name]
    response, terms, intercept = _formula_columns(str(formula), data)
    beta = [float(value) for value in str(beta_vect).split(",")]
    names = sorted({name for term in terms for name in term.split(":")} | {response})
    rows = []
    for index in range(len(data[response])):
        if all(data[name][index] is not None for name in names):
            x = [1.0] if intercept else []
            for term in terms:
                value = 1.0
                for name in term.split(":"):
                    value *= float(data[name][index])
                x.append(value)
            rows.append((x, float(data[response][index])))
    p = len(beta)
    if rows and len(rows[0][0]) != p:
        raise CommandFailure(f"Error : beta.vect has {p} values for {len(rows[0][0])} parameters")
    if p > NFILTER_GLM * len(rows):
        raise CommandFailure(
            "Error : FAILED: Model has too many parameters, there is a possible risk of disclosure"
        )
    if family == "binomial":
        ones = sum(1 for _, y in rows if y == 1)
        if min(ones, len(rows) - ones) < NFILTER_TAB:
            raise CommandFailure(
                "Error : FAILED: y vector is binary with one category less than filter threshold"
            )
    info = [[0.0] * p for _ in range(p)]
    score = [0.0] * p
    deviance = 0.0
    for x, y in rows:
        eta = sum(a * b for a, b in zip(x, beta, strict=True))
        if family == "gaussian":
            mu, mu_eta, variance = eta, 1.0, 1.0
            deviance += (y - mu) ** 2
        elif family == "binomial":
            mu = 1 / (1 + math.exp(-eta))
            mu_eta = variance = mu * (1 - mu)
            deviance += -2 * (y * math.log(mu) + (1 - y) * math.log(1 - mu))
        elif family == "poisson":
            mu = mu_eta = variance = math.exp(eta)
            deviance += 2 * ((y * math.log(y / mu) if y > 0 else 0.0) - (y - mu))
        else:
            raise CommandFailure(f"Error : family '{family}' is not supported")
        weight = mu_eta * mu_eta / variance
        for i in range(p):
            score[i] += x[i] * weight * (y - mu) / mu_eta
            for j in range(p):
                info[i][j] += x[i] * weight * x[j]
    return {
        "family": family,
        "info.matrix": info,
        "score.vect": [[value] for value in score],  # an R p x 1 matrix, as jsonlite writes it
        "numsubs": len(rows),
        "dev": deviance,
        "Nvalid": len(rows),
        "Nmissing": len(data[response]) - len(rows),
        "Ntotal": len(data[response]),
        "disclosure.risk": 0,
        "errorMessage2": "No errors",
    }


#: Server-side aggregate functions: name -> (implementation, whether it takes the session).
FUNCTIONS: dict[str, tuple[Callable[..., Any], bool]] = {
    "glmDS2": (glm_ds2, True),
    "varDS": (var_ds, False),
    "meanDS": (mean_ds, False),
    "lengthDS": (length_ds, True),
    "classDS": (class_ds, True),
    "numNaDS": (num_na_ds, False),
}


def as_numeric_ds(x_name: Any, *, session: Session) -> list[Any]:
    """dsBase's asNumericDS: the named variable as numbers (an assign function)."""
    values = _values(session.evaluate_text(x_name))
    try:
        return [None if value is None else float(value) for value in values]
    except (TypeError, ValueError):
        raise CommandFailure("Error in asNumericDS() : the variable cannot be made numeric") from None


#: Server-side assign functions (their result becomes the symbol's value).
ASSIGN_FUNCTIONS: dict[str, tuple[Callable[..., Any], bool]] = {"asNumericDS": (as_numeric_ds, True)}

_CALL_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9._]*)\s*\((.*)\)\s*;?\s*$", re.S)
_ARGUMENT_RE = re.compile(
    r"""\s*(?:([A-Za-z][A-Za-z0-9._]*)\s*=(?!=)\s*)?("[^"]*"|'[^']*'|[^,]+?)\s*(?:,|$)""", re.S
)


def _split_call(script: str) -> tuple[str, list[tuple[str | None, str]]]:
    """The function name and raw arguments of a one-call script (the parser's job in Opal)."""
    match = _CALL_RE.match(script)
    if match is None:
        raise ValueError(f'Encountered "{script[:20]}" at line 1. Was expecting a function call')
    function, rest = match.groups()
    arguments = []
    position = 0
    rest = rest.strip()
    while position < len(rest):
        argument = _ARGUMENT_RE.match(rest, position)
        if argument is None or argument.end() == position:
            raise ValueError(f'Encountered "{rest[position : position + 10]}" at line 1')
        arguments.append((argument.group(1), argument.group(2).strip()))
        position = argument.end()
    return function, arguments


# --------------------------------------------------------------------------- sessions and commands
@dataclass
class Command:
    id: str
    script: str
    with_result: bool
    run: Callable[[], Any]
    delay: float = 0.0
    status: str = "PENDING"
    created: str = field(default_factory=_now)
    started: str | None = None
    ended: str | None = None
    error: str | None = None
    result: Any = None
    done: threading.Event = field(default_factory=threading.Event)

    def dto(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": self.id,
            "script": self.script,
            "status": self.status,
            "createDate": self.created,
            "withResult": self.with_result,
        }
        if self.started is not None:
            document["startDate"] = self.started
        if self.ended is not None:
            document["endDate"] = self.ended
        if self.error is not None:
            document["error"] = self.error
        return document


class Session:
    """One DataSHIELD R session: its symbols and a worker that runs its commands in order."""

    def __init__(self, server: OpalServer, profile: str, user: str) -> None:
        self.server = server
        self.id = uuid.uuid4().hex
        self.profile = profile
        self.user = user
        self.created = _now()
        self.accessed = self.created
        self.state = "PENDING"
        self.events = [f"PENDING;{self.created};Creating R server session"]
        self.symbols: dict[str, Any] = {}
        self.commands: dict[str, Command] = {}
        self.closed = threading.Event()
        self.busy = False
        self._queue: queue.Queue[Command | None] = queue.Queue()
        threading.Thread(target=self._work, daemon=True).start()

    def start(self, delay: float) -> None:
        def ready() -> None:
            if not self.closed.wait(delay):
                self.state = "RUNNING"
                self.events.append(f"RUNNING;{_now()};R server session is running")

        if delay <= 0:
            ready()
        else:
            threading.Thread(target=ready, daemon=True).start()

    def dto(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "creationDate": self.created,
            "lastAccessDate": self.accessed,
            "status": "BUSY" if self.busy else "WAITING",
            "currentExecutionTimeMillis": 0,
            "totalExecutionTimeMillis": 0,
            "link": f"/datashield/session/{self.id}",
            "context": "DataSHIELD",
            "profile": self.profile,
            "cluster": "default",
            "server": "default~rock-1",
            "state": self.state,
            "events": list(self.events),
        }

    def submit(self, command: Command) -> None:
        self.commands[command.id] = command
        self._queue.put(command)

    def close(self) -> None:
        self.closed.set()
        self._queue.put(None)

    def _work(self) -> None:
        while (command := self._queue.get()) is not None:
            if self.closed.is_set():
                return
            self.busy = True
            command.status = "IN_PROGRESS"
            command.started = _now()
            if command.delay and self.closed.wait(command.delay):
                return  # the session was deleted while the command ran
            try:
                command.result = command.run()
                command.status = "COMPLETED"
            except CommandFailure as exc:
                command.status = "FAILED"
                command.error = f"Error while evaluating '{command.script}' -> {exc}\n"
            command.ended = _now()
            self.busy = False
            command.done.set()

    # R evaluation of the few argument forms dsBase calls use
    def evaluate(self, text: str) -> Any:
        if text[:1] in "'\"":
            return text[1:-1]
        if text in ("TRUE", "FALSE"):
            return text == "TRUE"
        if text in ("NULL", "NA"):
            return None
        if re.fullmatch(r"-?[0-9.]+(?:[eE][+-]?[0-9]+)?L?", text):
            return float(text.rstrip("L"))
        name, _, column = text.partition("$")
        if name not in self.symbols:
            raise CommandFailure(f"Error : object '{name}' not found")
        table = self.symbols[name]
        if not column:
            return table
        return table.get(column)

    def evaluate_text(self, text: Any) -> Any:
        # dsBase's *DS functions given a name as a string evaluate it: eval(parse(text=x))
        if not isinstance(text, str):
            raise CommandFailure("Error : the argument must be a character string")
        return self.evaluate(text)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class OpalServer:
    """Run with ``with OpalServer(token=..., tables=...) as opal: ... opal.url``.

    ``profiles`` maps a DataSHIELD profile to its aggregate method names. ``refuse_at_parse`` names
    functions the profile lists but the parser refuses (as when a profile is edited mid-job);
    ``command_seconds`` delays a function's commands (a large value: a command that never finishes);
    ``session_start_seconds`` keeps new sessions PENDING for a while.
    """

    def __init__(
        self,
        *,
        token: str,
        tables: Mapping[str, Mapping[str, list[Any]]],
        profiles: Mapping[str, list[str]] | None = None,
        version: str = "5.1.4",
        user: str = "dsuser",
    ) -> None:
        self.token = token
        self.tables = {
            name: {key: list(values) for key, values in table.items()} for name, table in tables.items()
        }
        self.profiles = dict(profiles or {"default": sorted(FUNCTIONS)})
        self.assign_profiles = {profile: sorted(ASSIGN_FUNCTIONS) for profile in self.profiles}
        self.version = version
        self.user = user
        self.refuse_at_parse: set[str] = set()
        self.command_seconds: dict[str, float] = {}
        self.session_start_seconds = 0.0
        self.sessions: dict[str, Session] = {}
        self.deleted_sessions: list[str] = []
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> OpalServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for session in list(self.sessions.values()):
            session.close()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ documents
    def methods(self, profile: str, kind: str) -> list[dict[str, Any]] | None:
        if profile not in self.profiles:
            return None
        names = self.profiles[profile] if kind == "aggregate" else self.assign_profiles.get(profile, [])
        return [
            {
                "name": name,
                "DataShield.RFunctionDataShieldMethodDto.method": {
                    "func": f"dsBase::{name}",
                    "rPackage": "dsBase",
                    "version": DSBASE_VERSION,
                },
            }
            for name in names
        ]

    def profile_dtos(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "cluster": "default", "enabled": True, "restrictedAccess": False, "rParser": "v2"}
            for name in self.profiles
        ]

    def open_session(self, profile: str, *, wait: bool) -> Session:
        session = Session(self, profile, self.user)
        with self.lock:
            self.sessions[session.id] = session
        session.start(0 if wait else self.session_start_seconds)
        return session

    def assign(self, session: Session, symbol: str, table_name: str) -> Command:
        table = self.tables[table_name]

        def run() -> None:
            session.symbols[symbol] = table

        command = Command(uuid.uuid4().hex, f"{symbol} <- opal[{table_name}]", False, run)
        session.submit(command)
        return command

    def assign_call(self, session: Session, symbol: str, script: str) -> Command:
        function, arguments = _split_call(script)
        if function not in self.assign_profiles.get(session.profile, []):
            raise LookupError(f"No such DataSHIELD 'ASSIGN' method with name: {function}")

        def run() -> None:
            callable_, wants_session = ASSIGN_FUNCTIONS[function]
            positional = [session.evaluate(value) for name, value in arguments if name is None]
            named = {"session": session} if wants_session else {}
            session.symbols[symbol] = callable_(*positional, **named)

        command = Command(uuid.uuid4().hex, f"{symbol} <- {script}", False, run)
        session.submit(command)
        return command

    def aggregate(self, session: Session, script: str) -> Command:
        function, arguments = _split_call(script)
        if function not in self.profiles[session.profile] or function in self.refuse_at_parse:
            raise LookupError(f"No such DataSHIELD 'AGGREGATE' method with name: {function}")

        def run() -> Any:
            implementation = FUNCTIONS.get(function)
            if implementation is None:
                raise CommandFailure(f'Error : could not find function "{function}"')
            callable_, wants_session = implementation
            positional = [session.evaluate(value) for name, value in arguments if name is None]
            named = {name.replace(".", "_"): session.evaluate(value) for name, value in arguments if name}
            if wants_session:
                named["session"] = session
            try:
                return callable_(*positional, **named)
            except TypeError:
                raise CommandFailure(f"Error in {function}() : unused or missing argument") from None

        command = Command(uuid.uuid4().hex, script, True, run, delay=self.command_seconds.get(function, 0.0))
        session.submit(command)
        return command

    # ------------------------------------------------------------------ HTTP
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def reply(
                self, status: int, document: Any = None, *, text: str | None = None, **headers: str
            ) -> None:
                if text is not None:
                    body, media_type = text.encode(), "text/plain"
                elif document is not None:
                    body, media_type = json.dumps(document).encode(), "application/json"
                else:
                    body, media_type = b"", None
                self.send_response(status)
                self.send_header("X-Opal-Version", server.version)
                if media_type:
                    self.send_header("Content-Type", media_type)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def error(self, status: int, kind: str, *arguments: str) -> None:
                self.reply(status, {"code": status, "status": kind, "arguments": list(arguments)})

            def handle_any(self, method: str) -> None:
                parsed = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                query = parse_qs(parsed.query)
                server.requests.append(
                    RecordedRequest(
                        method, parsed.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                if self.headers.get("X-Opal-Auth") != server.token:
                    self.reply(401)
                    return
                if not parsed.path.startswith("/ws/"):
                    self.error(404, "NotFound")
                    return
                parts = [unquote(part) for part in parsed.path[len("/ws/") :].split("/")]
                param = {key: values[0] for key, values in query.items()}
                try:
                    self.route(method, parts, param, body)
                except CommandFailure as exc:  # pragma: no cover - a bug in the stand-in
                    self.error(500, "RServerRuntimeError", str(exc))

            def route(self, method: str, parts: list[str], param: dict[str, str], body: bytes) -> None:
                match method, parts:
                    case "GET", ["system", "subject-profile", "_current"]:
                        self.reply(
                            200,
                            {"principal": server.user, "realm": "opal-token-realm", "groups": ["datashield"]},
                        )
                    case "GET", ["datashield", "profiles"]:
                        self.reply(200, server.profile_dtos())
                    case "GET", ["datashield", "env", ("aggregate" | "assign") as kind, "methods"]:
                        methods = server.methods(param.get("profile", "default"), kind)
                        if methods is None:
                            self.error(404, "NoSuchDataShieldProfile", param.get("profile", ""))
                        else:
                            self.reply(200, methods)
                    case "POST", ["datashield", "sessions"]:
                        profile = param.get("profile") or "default"
                        if profile not in server.profiles:
                            self.error(
                                400, "IllegalArgument", f"DataSHIELD profile does not exist: {profile}"
                            )
                            return
                        session = server.open_session(profile, wait=param.get("wait", "true") == "true")
                        self.reply(
                            201, session.dto(), Location=f"{server.url}/ws/datashield/session/{session.id}"
                        )
                    case "GET", ["datashield", "sessions"]:
                        self.reply(200, [session.dto() for session in server.sessions.values()])
                    case _, ["datashield", "session", session_id, *rest]:
                        session = server.sessions.get(session_id)
                        if session is None:
                            self.error(404, "NoSuchRSession", session_id)
                            return
                        session.accessed = _now()
                        self.session_route(method, session, rest, param, body)
                    case _:
                        self.error(404, "NotFound")

            def session_route(
                self, method: str, session: Session, rest: list[str], param: dict[str, str], body: bytes
            ) -> None:
                match method, rest:
                    case "GET", []:
                        self.reply(200, session.dto())
                    case "DELETE", []:
                        with server.lock:
                            server.sessions.pop(session.id, None)
                            server.deleted_sessions.append(session.id)
                        session.close()
                        self.reply(200)
                    case "GET", ["symbols"]:
                        self.reply(200, sorted(session.symbols))
                    case "PUT", ["symbol", symbol, "table", table_name]:
                        if table_name not in server.tables:
                            project, _, table = table_name.partition(".")
                            self.error(404, "NoSuchValueTable", project, table)
                            return
                        command = server.assign(session, symbol, table_name)
                        location = f"{server.url}{self.path.split('?')[0]}"
                        if param.get("async", "false") == "true":
                            self.reply(201, text=command.id, Location=location)
                        else:
                            command.done.wait(30)
                            self.reply(201, Location=location)
                    case "PUT", ["symbol", symbol]:
                        try:
                            command = server.assign_call(session, symbol, body.decode())
                        except (LookupError, ValueError) as exc:
                            self.error(400, "DataShieldParseError", str(exc).strip("'\""))
                            return
                        location = f"{server.url}{self.path.split('?')[0]}"
                        if param.get("async", "false") == "true":
                            self.reply(201, text=command.id, Location=location)
                        else:
                            command.done.wait(30)
                            self.reply(201, Location=location)
                    case "DELETE", ["symbol", symbol]:
                        session.symbols.pop(symbol, None)
                        self.reply(200)
                    case "POST", ["aggregate"]:
                        try:
                            command = server.aggregate(session, body.decode())
                        except (LookupError, ValueError) as exc:
                            self.error(400, "DataShieldParseError", str(exc).strip("'\""))
                            return
                        if param.get("async", "false") == "true":
                            self.reply(200, text=command.id)
                        else:
                            command.done.wait(30)
                            if command.status == "FAILED":
                                self.error(500, "RServerRuntimeError", command.error or "")
                            else:
                                self.reply(200, command.result)
                    case "GET", ["commands"]:
                        self.reply(200, [command.dto() for command in session.commands.values()])
                    case (("GET" | "DELETE"), ["command", command_id, *tail]):
                        command = session.commands.get(command_id)
                        if command is None:
                            self.error(404, "NoSuchRCommand", command_id)
                        elif method == "DELETE" and not tail:
                            session.commands.pop(command_id, None)
                            self.reply(200)
                        elif method == "GET" and not tail:
                            if param.get("wait", "false") == "true":
                                command.done.wait(30)
                            self.reply(200, command.dto())
                        elif method == "GET" and tail == ["result"]:
                            self.command_result(session, command, param)
                        else:
                            self.error(404, "NotFound")
                    case _:
                        self.error(404, "NotFound")

            def command_result(self, session: Session, command: Command, param: dict[str, str]) -> None:
                if not command.done.is_set():
                    if param.get("wait", "false") != "true":
                        self.reply(204)
                        return
                    command.done.wait(30)
                if param.get("rm", "true") == "true":
                    session.commands.pop(command.id, None)
                if command.with_result and command.status == "COMPLETED":
                    self.reply(200, _jsonable(command.result))
                else:
                    self.reply(204)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.handle_any("GET")

            def do_POST(self) -> None:  # noqa: N802
                self.handle_any("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self.handle_any("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self.handle_any("DELETE")

        return Handler


def _jsonable(value: Any) -> Any:
    """What jsonlite writes for R's non-finite numbers (as strings), so the body is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


# --------------------------------------------------------------------------- shapes of Opal's documents
def json_shape(value: Any) -> Any:
    """The shape of a JSON document: objects keep their keys, arrays the shape of their first item, and
    scalars become their JSON type. Shapes carry no values, so a capture from a real Opal discloses no data."""
    if isinstance(value, Mapping):
        return {key: json_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return "string"


def capture_documents(
    url: str,
    token: str,
    *,
    profile: str,
    table: str,
    variable: str,
    verify: bool | str = True,
    timeout: float = 120,
) -> dict[str, Any]:
    """The Opal documents behind each file of ``opal_shapes/``, fetched from the Opal at ``url`` with
    plain HTTP (the same calls against the stand-in and against a real server); ``"opal_version"`` too."""
    import requests  # the agent's dependency; imported here so the stand-in itself needs none

    http = requests.Session()
    http.headers.update({"X-Opal-Auth": token, "Accept": "application/json"})
    http.verify = verify
    version: list[str] = []

    def call(method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        response = http.request(method, f"{url}/ws{path}", timeout=timeout, **kwargs)
        assert response.status_code in expect, f"{method} {path}: HTTP {response.status_code}"
        version.append(response.headers.get("X-Opal-Version", ""))
        return response

    profiles = call("GET", "/datashield/profiles").json()
    methods = call("GET", "/datashield/env/aggregate/methods", params={"profile": profile}).json()
    method = next(item for item in methods if "DataShield.RFunctionDataShieldMethodDto.method" in item)
    session_id = call(
        "POST", "/datashield/sessions", (201,), params={"profile": profile, "wait": "true"}
    ).json()["id"]
    base = f"/datashield/session/{session_id}"
    try:
        session = call("GET", base).json()
        command_id = call(
            "PUT", f"{base}/symbol/D/table/{table}", (200, 201), params={"missings": "false", "async": "true"}
        ).text
        assigned = call("GET", f"{base}/command/{command_id}", params={"wait": "true"}).json()
        assert assigned["status"] == "COMPLETED", f"assigning {table} failed: {assigned}"

        def aggregate(script: str) -> tuple[dict[str, Any], Any]:
            command_id = call(
                "POST",
                f"{base}/aggregate",
                params={"async": "true"},
                data=script.encode(),
                headers={"Content-Type": "application/x-rscript"},
            ).text
            command = call("GET", f"{base}/command/{command_id}", params={"wait": "true"}).json()
            result = None
            if command["status"] == "COMPLETED":
                result = call("GET", f"{base}/command/{command_id}/result").json()
            return command, result

        command_completed, result_mean = aggregate(f"meanDS(D${variable})")
        assert command_completed["status"] == "COMPLETED", f"meanDS(D${variable}) failed: {command_completed}"
        _, result_length = aggregate(f"lengthDS('D${variable}')")
        command_failed, _ = aggregate("lengthDS('noSuchSymbolInThisSession')")
        refused = call(
            "POST",
            f"{base}/aggregate",
            (400,),
            params={"async": "true"},
            data=b"noSuchFunctionDS()",
            headers={"Content-Type": "application/x-rscript"},
        ).json()
    finally:
        http.delete(f"{url}/ws{base}", timeout=timeout)
    return {
        "opal_version": next((item for item in reversed(version) if item), None),
        "session": session,
        "profile": profiles[0],
        "method": method,
        "command_completed": command_completed,
        "command_failed": command_failed,
        "error_refused_call": refused,
        "result_meanDS": result_mean,
        "result_lengthDS": result_length,
    }
