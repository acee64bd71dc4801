"""``datashield``: run approved DataSHIELD aggregate calls on the TRE's Opal server.

The request carries no R code, only these parameters (each a ``PropertyValue`` or a staged JSON file):

=================  ========================================================================================
``profile``        the DataSHIELD profile to open the session with, e.g. ``"default"``
``assignments``    a JSON object mapping a symbol to an Opal table, e.g. ``{"D": "CNSIM.CNSIM1"}``
``assign``         optional: a JSON object of assign calls, run in order, each making a new symbol on the
                   server, e.g. ``{"HDL": "asNumericDS('D$LAB_HDL')"}`` (same grammar and approval as calls)
``calls``          a JSON list of aggregate calls, e.g. ``["meanDS(D$LAB_HDL)", "lengthDS('D$LAB_HDL')"]``
=================  ========================================================================================

Before anything is sent to Opal the job is refused (a ``FAILED`` result whose reason the agent wrote) when:

* the profile is not the one the TRE approved for the workflow in the portal (``job.service["profile"]``);
* a call is not one plain function call (see :func:`parse_call`): an identifier, then ``(``, then
  arguments that are symbols (``D`` or ``D$AGE``, naming an assigned symbol), quoted strings of plain
  characters, numbers, ``TRUE``/``FALSE``/``NULL``/``NA`` or ``name=value`` pairs. No nested calls, operators,
  ``;``, backticks, namespaces or assignments;
* a call's function is not among the functions the TRE approved (``job.service["functions"]``); an
  assign call's symbol must be new, and it may read only tables and symbols made before it;
* a table is not one the route allows (``tables`` in ``[workflows.options]``, when given).

The agent then asks Opal for the profile's aggregate methods (``GET /ws/datashield/env/aggregate/methods``)
and, with assign calls, its assign methods (``GET .../env/assign/methods``), and refuses, still before
opening a session, any call whose function the server does not allow of that kind. Only then does it open
a session (``POST /ws/datashield/sessions``), assign each table
(``PUT .../symbol/{symbol}/table/{project.table}``), run each assign call
(``PUT .../symbol/{symbol}?async=true`` with an ``application/x-rscript`` body), send each call as an ``application/x-rscript`` body
(``POST .../aggregate?async=true``), poll each command (``GET .../command/{id}``) and fetch its result
(``GET .../command/{id}/result``). The session is deleted (``DELETE /ws/datashield/session/{id}``) in every
case: success, refusal by Opal, failure, timeout and cancellation. The token is read from the file named in
``[datashield]`` and sent only in the ``X-Opal-Auth`` header.

A command that Opal reports ``FAILED`` (typically a DataSHIELD disclosure check such as "FAILED: Nvalid
less than nfilter.tab") is an answer, not a fault: it is recorded for its call and the other calls still
run. A call that Opal refuses outright, a failed assignment or assign call, a timeout or a lost server fail
the job.

Regressions: a quoted argument holding ``~`` is a model formula and must follow :func:`parse_formula`
(a response, ``~``, variables joined by ``+``, ``a:b``/``a*b`` interactions, ``1``/``0``/``-1``; no
functions, powers or dots), so ``glmDS2('SBP~AGE+SEX', 'binomial', '0,0,0', NULL, NULL, 'D')`` passes and
``'SBP~log(AGE)'`` is refused. ``glmDS2`` answers hold only X'WX, the score vector, the deviance and counts
at the coefficients the portal sent; the portal pools them across TREs (``reviews.pooling``; see
``docs/executors/datashield.md``).

Outputs: ``call-NN-<function>.json`` per call (the call, its status, the result and its validity message,
or Opal's error message), plus ``summary.json`` and ``summary.csv``. The Opal version (``X-Opal-Version``)
is the engine version; the server-side packages behind the profile's methods are recorded in
``summary.json`` and in the result's ``details``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from agent.config import AgentConfig, ConfigError, DataShieldSettings, Table, WorkflowRoute
from agent.executors.base import (
    Engine,
    ExecutionResult,
    ExecutionStatus,
    OutputError,
    OutputFile,
    clear_outputs,
    write_output,
)
from agent.jobs import Job

__all__ = [
    "Call",
    "CallError",
    "DataShieldExecutor",
    "DataShieldOptions",
    "parse_call",
    "parse_formula",
]

OPAL_URL = "https://www.obiba.org/pages/products/opal/"
PARAMETERS = ("profile", "assignments", "calls")
MAX_CALL_CHARS = 2000
MAX_ARGUMENTS = 20
MAX_STRING_CHARS = 500
MAX_ERROR_CHARS = 2000
_COMMAND_DONE = frozenset({"COMPLETED", "FAILED"})
# Consecutive failed polls tolerated before the job is failed (Opal may be restarting a node).
_MAX_POLL_ERRORS = 3

_IDENTIFIER = r"[A-Za-z][A-Za-z0-9._]*"
_TOKEN_RE = re.compile(
    rf"""(?P<space>[ \t]+)
      | (?P<name>{_IDENTIFIER}(?:\${_IDENTIFIER})?)
      | (?P<string>'[^'\\]*'|"[^"\\]*")
      | (?P<number>-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?L?)
      | (?P<punct>[(),=])""",
    re.VERBOSE,
)
# What a quoted argument may hold: dsBase passes variable names ('D$AGE'), lists of them and levels.
_STRING_CONTENT_RE = re.compile(r"^[A-Za-z0-9_.$, -]*$")
_FORMULA_VARIABLE = rf"{_IDENTIFIER}(?:\${_IDENTIFIER})?"
_FORMULA_TERM = rf"(?:{_FORMULA_VARIABLE}(?:[:*]{_FORMULA_VARIABLE}){{0,3}}|[01])"
_FORMULA_RE = re.compile(rf"^{_FORMULA_VARIABLE}~{_FORMULA_TERM}(?:\+{_FORMULA_TERM}){{0,49}}(?:-1)?$")
_LITERALS = frozenset({"TRUE", "FALSE", "NULL", "NA"})
_RESERVED = frozenset(
    {"if", "else", "repeat", "while", "function", "for", "in", "next", "break", "Inf", "NaN"}
    | {"NA_integer_", "NA_real_", "NA_character_", "NA_complex_"}
    | _LITERALS
)
_SYMBOL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_TABLE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}\.[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_OPAL_STATUS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")


# --------------------------------------------------------------------------- the call grammar
class CallError(ValueError):
    """A call is not one plain function call with simple arguments; the message says why."""


@dataclass(frozen=True)
class Call:
    """A parsed call: ``function`` and the canonical ``text`` sent to Opal; ``symbols`` it reads."""

    function: str
    text: str
    symbols: frozenset[str]


def parse_call(source: str) -> Call:
    """Parse one call with the strict grammar of the module docstring; raise :class:`CallError`.

    The text sent to Opal is rebuilt from the parsed tokens (:attr:`Call.text`), so spacing or quoting
    tricks in the request never reach the server.
    """
    if not isinstance(source, str):
        raise CallError("a call must be a string")
    if len(source) > MAX_CALL_CHARS:
        raise CallError(f"a call is at most {MAX_CALL_CHARS} characters")
    tokens = _tokenize(source)
    position = 0

    def take(kind: str | None = None, text: str | None = None) -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise CallError("the call ends too early")
        token = tokens[position]
        if (kind is not None and token[0] != kind) or (text is not None and token[1] != text):
            expected = repr(text) if text is not None else f"a {kind}"
            raise CallError(f"expected {expected}, found {token[1]!r}")
        position += 1
        return token

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    _, function = take("name")
    if "$" in function or function in _RESERVED:
        raise CallError(f"{function!r} cannot be called")
    take("punct", "(")
    arguments: list[str] = []
    symbols: set[str] = set()
    if peek() != ("punct", ")"):
        while True:
            name = None
            following = tokens[position + 1] if position + 1 < len(tokens) else None
            if peek() is not None and peek()[0] == "name" and following == ("punct", "="):
                name = take("name")[1]
                if "$" in name or name in _RESERVED:
                    raise CallError(f"{name!r} is not an argument name")
                take("punct", "=")
            token = take()
            value = _value(token, peek(), symbols)
            arguments.append(f"{name}={value}" if name else value)
            if len(arguments) > MAX_ARGUMENTS:
                raise CallError(f"a call takes at most {MAX_ARGUMENTS} arguments")
            if peek() == ("punct", ","):
                take()
                continue
            break
    take("punct", ")")
    if position != len(tokens):
        raise CallError(f"unexpected {tokens[position][1]!r} after the call")
    return Call(function, f"{function}({', '.join(arguments)})", frozenset(symbols))


def parse_formula(source: str) -> str:
    """Check a regression formula given as a quoted argument and return its canonical text.

    The grammar is the plain part of R's model formulae that ``glmDS1``/``glmDS2`` take: a response, ``~``,
    then terms joined by ``+``; a term is a variable (``AGE`` or ``D$AGE``), an interaction of variables
    (``AGE:SEX``, ``AGE*SEX``) or the intercept markers ``1``/``0``; ``-1`` may end the formula. No
    function calls, transformations (``I()``, ``log()``), powers, offsets or dots, so nothing in a formula
    is evaluated as R code beyond naming variables. Spaces are removed.
    """
    if len(source) > MAX_STRING_CHARS:
        raise CallError(f"a formula is at most {MAX_STRING_CHARS} characters")
    compact = re.sub(r"[ \t]+", "", source)
    if not _FORMULA_RE.match(compact):
        raise CallError(
            f"the formula {source!r} is not 'response ~ term + term ...' with plain variable names "
            "(terms may be a:b or a*b interactions, 1, 0, and a final -1)"
        )
    return compact


def _tokenize(source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if match is None:
            if source[position] in "'\"":
                raise CallError(f"the string at position {position + 1} is not closed, or holds a backslash")
            raise CallError(f"{source[position]!r} is not allowed in a call (position {position + 1})")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()
    return tokens


def _value(token: tuple[str, str], following: tuple[str, str] | None, symbols: set[str]) -> str:
    kind, text = token
    if kind == "name":
        if following == ("punct", "("):
            raise CallError(f"nested calls are not allowed ({text}(...))")
        if text in _LITERALS:
            return text
        base = text.split("$", 1)[0]
        if base in _RESERVED:
            raise CallError(f"{text!r} is not an argument")
        symbols.add(base)
        return text
    if kind == "string":
        content = text[1:-1]
        if "~" in content:
            return f"'{parse_formula(content)}'"
        if len(content) > MAX_STRING_CHARS or not _STRING_CONTENT_RE.match(content):
            raise CallError(
                f"the string {text} may hold only letters, digits, spaces and . _ $ , - "
                f"(at most {MAX_STRING_CHARS} characters)"
            )
        return f"'{content}'"
    if kind == "number":
        return text
    raise CallError(f"expected an argument, found {text!r}")


# --------------------------------------------------------------------------- the request
@dataclass(frozen=True)
class _Analysis:
    profile: str
    assignments: dict[str, str]
    calls: tuple[Call, ...]
    #: Assign calls, in order: (new symbol, call), each made server-side (``PUT .../symbol/<S>``).
    derived: tuple[tuple[str, Call], ...] = ()


class _Refused(Exception):
    """The job is refused before anything runs; the message is the reason."""


def _json_parameter(job: Job, name: str) -> Any:
    value = job.parameters.get(name)
    if value is None:
        raise _Refused(f"the request has no {name!r} parameter")
    try:
        if isinstance(value, Path):
            return json.loads(value.read_text(encoding="utf-8"))
        if isinstance(value, str):
            return json.loads(value)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise _Refused(f"parameter {name!r} is not readable JSON") from None
    raise _Refused(f"parameter {name!r} must be JSON text or a JSON file")


def _read_analysis(job: Job, options: DataShieldOptions) -> _Analysis:
    """The request's analysis, checked against the portal's approval and the route (see module docstring)."""
    approved_profile = job.service.get("profile")
    approved_functions = job.service.get("functions")
    if (
        not isinstance(approved_profile, str)
        or not approved_profile
        or not isinstance(approved_functions, Sequence)
        or isinstance(approved_functions, str)
        or not all(isinstance(name, str) for name in approved_functions)
    ):
        raise _Refused("the portal sent no approved DataSHIELD profile and functions for this workflow")
    profile = job.parameters.get("profile")
    if not isinstance(profile, str) or not profile:
        raise _Refused("the request names no DataSHIELD profile (parameter 'profile')")
    if profile != approved_profile:
        raise _Refused(
            f"the request asks for DataSHIELD profile {profile!r}, but the TRE approved {approved_profile!r}"
        )

    assignments = _json_parameter(job, "assignments")
    if not isinstance(assignments, Mapping) or not assignments:
        raise _Refused('parameter \'assignments\' must be a JSON object such as {"D": "project.table"}')
    if len(assignments) > options.max_assignments:
        raise _Refused(f"at most {options.max_assignments} tables may be assigned")
    for symbol, table in assignments.items():
        if not _SYMBOL_RE.match(symbol) or symbol in _RESERVED:
            raise _Refused(f"{symbol!r} is not a usable symbol name (a letter, then letters, digits or _)")
        if not isinstance(table, str) or not _TABLE_RE.match(table):
            raise _Refused(f"symbol {symbol!r}: {table!r} is not an Opal table name (project.table)")
        if options.tables is not None and table not in options.tables:
            raise _Refused(f"table {table!r} is not one this TRE allows the workflow to use")

    known = set(assignments)
    derived: list[tuple[str, Call]] = []
    raw_assign = _json_parameter(job, "assign") if "assign" in job.parameters else {}
    if not isinstance(raw_assign, Mapping):
        raise _Refused(
            "parameter 'assign' must be a JSON object such as {\"HDL\": \"asNumericDS('D$LAB_HDL')\"}"
        )
    if len(raw_assign) > options.max_calls:
        raise _Refused(f"at most {options.max_calls} assign calls may be made")
    approved = set(approved_functions)
    for index, (symbol, source) in enumerate(raw_assign.items(), start=1):
        if not _SYMBOL_RE.match(symbol) or symbol in _RESERVED or symbol in known:
            raise _Refused(f"assign call {index}: {symbol!r} is not a new usable symbol name")
        try:
            call = parse_call(source)
        except CallError as exc:
            raise _Refused(f"assign call {index} is not a plain DataSHIELD call: {exc}") from None
        if call.function not in approved:
            raise _Refused(
                f"assign call {index}: function {call.function!r} is not among the DataSHIELD functions "
                "the TRE approved"
            )
        unknown = sorted(call.symbols - known)
        if unknown:
            raise _Refused(
                f"assign call {index} refers to {', '.join(unknown)}, which nothing before it creates"
            )
        derived.append((symbol, call))
        known.add(symbol)

    raw_calls = _json_parameter(job, "calls")
    if not isinstance(raw_calls, list) or not raw_calls:
        raise _Refused("parameter 'calls' must be a non-empty JSON list of calls")
    if len(raw_calls) > options.max_calls:
        raise _Refused(f"at most {options.max_calls} calls may be made")
    calls = []
    for index, source in enumerate(raw_calls, start=1):
        try:
            call = parse_call(source)
        except CallError as exc:
            raise _Refused(f"call {index} is not a plain DataSHIELD call: {exc}") from None
        if call.function not in approved:
            raise _Refused(
                f"call {index}: function {call.function!r} is not among the DataSHIELD functions "
                "the TRE approved"
            )
        unknown = sorted(call.symbols - known)
        if unknown:
            raise _Refused(f"call {index} refers to {', '.join(unknown)}, which no assignment creates")
        calls.append(call)
    return _Analysis(profile, dict(assignments), tuple(calls), tuple(derived))


# --------------------------------------------------------------------------- Opal over HTTP
class _OpalError(Exception):
    """Opal did not answer as expected. ``status`` is the HTTP status (None: no answer at all)."""

    def __init__(self, status: int | None, opal_status: str = "", message: str = "", kind: str = "") -> None:
        super().__init__(f"HTTP {status}" if status is not None else kind)
        self.status = status
        self.opal_status = opal_status
        self.message = message
        self.kind = kind

    def describe(self) -> str:
        """Status codes and Opal's error class only: Opal's messages may quote internal names or data."""
        if self.status is None:
            return self.kind
        return f"HTTP {self.status}" + (f" {self.opal_status}" if self.opal_status else "")


class _Opal:
    """The few DataSHIELD REST calls the executor makes. Every request carries the token in ``X-Opal-Auth``
    and nowhere else; the log records method, path and status, never headers."""

    def __init__(self, settings: DataShieldSettings, token: str, log: io.TextIOBase) -> None:
        self.base = f"{settings.url}/ws"
        self.timeout = settings.request_timeout_seconds
        self.session = requests.Session()
        self.session.verify = settings.verify
        self.session.headers.update({"X-Opal-Auth": token, "Accept": "application/json"})
        self.log = log
        self.version: str | None = None

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: str | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> requests.Response:
        headers = {"Content-Type": "application/x-rscript"} if body is not None else None
        try:
            response = self.session.request(
                method,
                self.base + path,
                params=params,
                data=body.encode() if body is not None else None,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            self.log.write(f"{method} {path} -> {type(exc).__name__}\n")
            raise _OpalError(None, kind=type(exc).__name__) from None
        self.version = response.headers.get("X-Opal-Version") or self.version
        self.log.write(f"{method} {path} {dict(params or {})} -> {response.status_code}\n")
        if response.status_code not in expect:
            opal_status, message = _error_of(response)
            if message:
                self.log.write(f"  opal error {opal_status}: {message}\n")
            raise _OpalError(response.status_code, opal_status, message)
        return response

    def aggregate_methods(self, profile: str) -> list[Mapping[str, Any]]:
        response = self.request("GET", "/datashield/env/aggregate/methods", params={"profile": profile})
        methods = _json_of(response)
        if not isinstance(methods, list) or not all(isinstance(item, Mapping) for item in methods):
            raise _OpalError(response.status_code, message="the methods list is not a JSON list of objects")
        return methods

    def open_session(self, profile: str) -> str:
        response = self.request(
            "POST", "/datashield/sessions", params={"profile": profile, "wait": "false"}, expect=(201,)
        )
        session = _json_of(response)
        if not isinstance(session, Mapping) or not isinstance(session.get("id"), str) or not session["id"]:
            raise _OpalError(response.status_code, message="the new session has no id")
        return session["id"]

    def session_state(self, session_id: str) -> str:
        """The R session's state in upper case; Opal versions without session states are ``RUNNING``."""
        session = _json_of(self.request("GET", f"/datashield/session/{_segment(session_id)}"))
        state = session.get("state") if isinstance(session, Mapping) else None
        return str(state).upper() if state else "RUNNING"

    def assign_table(self, session_id: str, symbol: str, table: str) -> str:
        response = self.request(
            "PUT",
            f"/datashield/session/{_segment(session_id)}/symbol/{_segment(symbol)}/table/{_segment(table)}",
            params={"missings": "false", "async": "true"},
            expect=(200, 201),
        )
        return _command_id(response)

    def assign_methods(self, profile: str) -> list[Mapping[str, Any]]:
        response = self.request("GET", "/datashield/env/assign/methods", params={"profile": profile})
        methods = _json_of(response)
        if not isinstance(methods, list) or not all(isinstance(item, Mapping) for item in methods):
            raise _OpalError(response.status_code, message="the methods list is not a JSON list of objects")
        return methods

    def assign_call(self, session_id: str, symbol: str, script: str) -> str:
        response = self.request(
            "PUT",
            f"/datashield/session/{_segment(session_id)}/symbol/{_segment(symbol)}",
            params={"async": "true"},
            body=script,
            expect=(200, 201),
        )
        return _command_id(response)

    def aggregate(self, session_id: str, script: str) -> str:
        response = self.request(
            "POST",
            f"/datashield/session/{_segment(session_id)}/aggregate",
            params={"async": "true"},
            body=script,
        )
        return _command_id(response)

    def command(self, session_id: str, command_id: str) -> Mapping[str, Any]:
        response = self.request(
            "GET",
            f"/datashield/session/{_segment(session_id)}/command/{_segment(command_id)}",
            params={"wait": "false"},
        )
        command = _json_of(response)
        if not isinstance(command, Mapping):
            raise _OpalError(response.status_code, message="the command is not a JSON object")
        return command

    def result(self, session_id: str, command_id: str) -> bytes:
        response = self.request(
            "GET",
            # Opal's defaults: the command is removed once its result is read, and the call does not block.
            f"/datashield/session/{_segment(session_id)}/command/{_segment(command_id)}/result",
            expect=(200, 204),
        )
        return response.content

    def delete_session(self, session_id: str) -> None:
        self.request("DELETE", f"/datashield/session/{_segment(session_id)}", expect=(200, 204, 404))


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _OpalError(response.status_code, message="the answer is not JSON") from None


def _command_id(response: requests.Response) -> str:
    command_id = response.text.strip()
    if not command_id or len(command_id) > 200 or any(ch.isspace() for ch in command_id):
        raise _OpalError(response.status_code, message="Opal returned no command id")
    return command_id


def _error_of(response: requests.Response) -> tuple[str, str]:
    """Opal's error class (``status`` of its ClientErrorDto, when it looks like one) and message."""
    try:
        error = response.json()
    except ValueError:
        return "", response.text[:MAX_ERROR_CHARS]
    if not isinstance(error, Mapping):
        return "", str(error)[:MAX_ERROR_CHARS]
    status = error.get("status")
    arguments = error.get("arguments")
    message = "; ".join(map(str, arguments)) if isinstance(arguments, list) else ""
    opal_status = status if isinstance(status, str) and _OPAL_STATUS_RE.match(status) else ""
    return opal_status, message[:MAX_ERROR_CHARS]


def _packages(methods: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{package: version}`` of the R functions behind the methods (RFunctionDataShieldMethodDto)."""
    packages: dict[str, str] = {}
    for method in methods:
        detail = method.get("DataShield.RFunctionDataShieldMethodDto.method")
        if isinstance(detail, Mapping) and isinstance(detail.get("rPackage"), str):
            packages[detail["rPackage"]] = str(detail.get("version") or "unknown")
    return dict(sorted(packages.items()))


def _validity_message(result: Any) -> str | None:
    """A DataSHIELD result's own validity message (``ValidityMessage``, ``validity.message``, ...)."""
    if not isinstance(result, Mapping):
        return None
    for key, value in result.items():
        if "validity" not in str(key).lower():
            continue
        # jsonlite writes a one-element character vector as a string (auto_unbox), a longer one as a list.
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str):
            return value
    return None


# --------------------------------------------------------------------------- the executor
class _Abandon(Exception):
    """The job ends now: ``status``/``reason`` say how."""

    def __init__(self, status: ExecutionStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class DataShieldOptions:
    """``[workflows.options]`` of a ``datashield`` route.

    ``tables``: the Opal tables (``project.table``) the workflow may assign; ``None`` leaves it to the
    token's permissions in Opal. ``max_calls`` and ``max_assignments`` bound one request.
    """

    tables: frozenset[str] | None = None
    max_calls: int = 50
    max_assignments: int = 10


@dataclass
class _CallOutcome:
    index: int
    call: Call
    status: str = "not run"
    result: Any = None
    error: str | None = None
    output: str | None = None


class DataShieldExecutor:
    """Runs a job's DataSHIELD calls on the TRE's Opal; see the module docstring."""

    name: ClassVar[str] = "datashield"
    SUMMARY_JSON = "summary.json"
    SUMMARY_CSV = "summary.csv"

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        if config.datashield is None:
            raise ConfigError("the datashield executor needs a [datashield] section")
        self.config = config
        self.settings: DataShieldSettings = config.datashield
        self.route = route
        self.options: DataShieldOptions = route.options

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> DataShieldOptions:
        if config.datashield is None:
            raise ConfigError(f"{options.where}: the datashield executor needs a [datashield] section")
        tables = None
        if "tables" in options.data:
            tables = options.string_list("tables")
            for table in tables:
                if not _TABLE_RE.match(table):
                    raise ConfigError(
                        f"{options.where} tables: {table!r} is not an Opal table name (project.table)"
                    )
            tables = frozenset(tables)
        return DataShieldOptions(
            tables=tables,
            max_calls=options.integer("max_calls", default=50, minimum=1),
            max_assignments=options.integer("max_assignments", default=10, minimum=1),
        )

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        deadline = time.monotonic() + self.route.limits.timeout_seconds
        clear_outputs(job.directory.outputs)
        log_path = job.directory.logs / "datashield.log"
        state_file = job.directory.state / "datashield-session.json"
        outputs: tuple[OutputFile, ...] = ()
        details: dict[str, Any] = {}
        opal_version = None
        with log_path.open("a", encoding="utf-8") as log:
            try:
                analysis = _read_analysis(job, self.options)
                details["profile"] = analysis.profile
                token = self._token()
                opal = _Opal(self.settings, token, log)
                try:
                    self._forget_stale_session(opal, state_file)
                    outcomes, packages = self._run_calls(opal, analysis, state_file, deadline, cancel, log)
                finally:
                    opal_version = opal.version
                    opal.close()
                details.update(opal_version=opal_version, packages=packages)
                details["calls"] = [{"call": o.call.text, "status": o.status} for o in outcomes]
                outputs = self._write_outputs(job, analysis, outcomes, opal_version, packages)
                status, reason = ExecutionStatus.COMPLETED, None
            except _Refused as exc:
                log.write(f"refused: {exc}\n")
                status, reason = ExecutionStatus.FAILED, f"refused: {exc}"
            except _Abandon as exc:
                log.write(f"ended: {exc.reason}\n")
                status, reason = exc.status, exc.reason
            except OutputError as exc:
                status, reason = ExecutionStatus.FAILED, f"output refused: {exc}"
        if status is not ExecutionStatus.COMPLETED:
            clear_outputs(job.directory.outputs)
            outputs = ()
        return ExecutionResult(
            status=status,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            engine=Engine("OBiBa Opal DataSHIELD", opal_version or "unknown", OPAL_URL),
            outputs=outputs,
            reason=reason,
            logs=(log_path,),
            network="the TRE's Opal server only",
            details=details,
        )

    def _token(self) -> str:
        try:
            token = self.settings.token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise _Abandon(ExecutionStatus.FAILED, "the agent cannot read its Opal token file") from None
        if not token:
            raise _Abandon(ExecutionStatus.FAILED, "the agent's Opal token file is empty")
        return token

    def _forget_stale_session(self, opal: _Opal, state_file: Path) -> None:
        """Delete the session a previous, interrupted run of this job left open (its id is in ``state/``)."""
        if not state_file.exists():
            return
        try:
            session_id = json.loads(state_file.read_text())["session_id"]
            opal.delete_session(session_id)
        except (ValueError, KeyError, TypeError, OSError, _OpalError):
            pass
        state_file.unlink(missing_ok=True)

    def _run_calls(
        self,
        opal: _Opal,
        analysis: _Analysis,
        state_file: Path,
        deadline: float,
        cancel: threading.Event | None,
        log: io.TextIOBase,
    ) -> tuple[list[_CallOutcome], dict[str, str]]:
        clock = _Clock(deadline, cancel, self.settings.poll_seconds, self.route.limits.timeout_seconds)
        try:
            methods = opal.aggregate_methods(analysis.profile)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED,
                f"Opal did not list the aggregate methods of profile {analysis.profile!r} ({exc.describe()})",
            ) from None
        allowed = {str(method.get("name")) for method in methods}
        for index, call in enumerate(analysis.calls, start=1):
            if call.function not in allowed:
                raise _Refused(
                    f"call {index}: function {call.function!r} is not an aggregate method of DataSHIELD "
                    f"profile {analysis.profile!r} on the TRE's Opal"
                )
        packages = _packages(methods)
        if analysis.derived:
            try:
                assign_methods = opal.assign_methods(analysis.profile)
            except _OpalError as exc:
                raise _Abandon(
                    ExecutionStatus.FAILED,
                    f"Opal did not list the assign methods of profile {analysis.profile!r} ({exc.describe()})",
                ) from None
            assignable = {str(method.get("name")) for method in assign_methods}
            for index, (_, call) in enumerate(analysis.derived, start=1):
                if call.function not in assignable:
                    raise _Refused(
                        f"assign call {index}: function {call.function!r} is not an assign method of "
                        f"DataSHIELD profile {analysis.profile!r} on the TRE's Opal"
                    )
            packages.update(_packages(assign_methods))
        clock.check()
        try:
            session_id = opal.open_session(analysis.profile)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED, f"Opal did not open a DataSHIELD session ({exc.describe()})"
            ) from None
        try:
            state_file.write_text(json.dumps({"session_id": session_id}))
            self._wait_for_session(opal, session_id, clock)
            for symbol, table in analysis.assignments.items():
                self._assign(opal, session_id, symbol, table, clock)
            for index, (symbol, call) in enumerate(analysis.derived, start=1):
                self._assign_call(opal, session_id, index, symbol, call, clock)
            outcomes = [
                self._aggregate(opal, session_id, index, call, clock, log)
                for index, call in enumerate(analysis.calls, start=1)
            ]
        finally:
            # Always: the R session holds the assigned data until it is deleted.
            try:
                opal.delete_session(session_id)
                state_file.unlink(missing_ok=True)
            except _OpalError as exc:
                log.write(f"could not delete session {session_id}: {exc.describe()}\n")
        return outcomes, packages

    def _wait_for_session(self, opal: _Opal, session_id: str, clock: _Clock) -> None:
        while True:
            clock.check()
            try:
                state = opal.session_state(session_id)
            except _OpalError as exc:
                raise _Abandon(
                    ExecutionStatus.FAILED, f"lost the DataSHIELD session on Opal ({exc.describe()})"
                ) from None
            if state == "RUNNING":
                return
            if state in {"FAILED", "TERMINATED"}:
                raise _Abandon(ExecutionStatus.FAILED, f"Opal could not start the R session (state {state})")
            clock.pause()

    def _assign(self, opal: _Opal, session_id: str, symbol: str, table: str, clock: _Clock) -> None:
        clock.check()
        try:
            command_id = opal.assign_table(session_id, symbol, table)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED,
                f"Opal refused to assign table {table!r} to {symbol} ({exc.describe()})",
            ) from None
        command = self._wait_for_command(opal, session_id, command_id, clock)
        if command.get("status") != "COMPLETED":
            raise _Abandon(ExecutionStatus.FAILED, f"assigning table {table!r} to {symbol} failed on Opal")

    def _assign_call(
        self, opal: _Opal, session_id: str, index: int, symbol: str, call: Call, clock: _Clock
    ) -> None:
        clock.check()
        try:
            command_id = opal.assign_call(session_id, symbol, call.text)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED,
                f"Opal refused assign call {index} ({call.function}): {exc.describe()}",
            ) from None
        command = self._wait_for_command(opal, session_id, command_id, clock)
        if command.get("status") != "COMPLETED":
            raise _Abandon(
                ExecutionStatus.FAILED, f"assign call {index} ({call.function}) to {symbol} failed on Opal"
            )

    def _aggregate(
        self, opal: _Opal, session_id: str, index: int, call: Call, clock: _Clock, log: io.TextIOBase
    ) -> _CallOutcome:
        outcome = _CallOutcome(index, call)
        clock.check()
        try:
            command_id = opal.aggregate(session_id, call.text)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED, f"Opal refused call {index} ({call.function}): {exc.describe()}"
            ) from None
        command = self._wait_for_command(opal, session_id, command_id, clock)
        if command.get("status") == "FAILED":
            error = command.get("error")
            outcome.status = "failed"
            outcome.error = str(error)[:MAX_ERROR_CHARS] if error else "Opal reported the command as failed"
            log.write(f"call {index} failed: {outcome.error}\n")
            return outcome
        try:
            content = opal.result(session_id, command_id)
        except _OpalError as exc:
            raise _Abandon(
                ExecutionStatus.FAILED, f"Opal did not return the result of call {index} ({exc.describe()})"
            ) from None
        limit = self.route.limits.max_output_file_bytes
        if len(content) > limit:
            raise _Abandon(
                ExecutionStatus.FAILED,
                f"the result of call {index} is {len(content)} bytes, over the limit of {limit}",
            )
        try:
            outcome.result = json.loads(content) if content.strip() else None
        except ValueError:
            raise _Abandon(ExecutionStatus.FAILED, f"the result of call {index} is not JSON") from None
        outcome.status = "completed"
        return outcome

    def _wait_for_command(
        self, opal: _Opal, session_id: str, command_id: str, clock: _Clock
    ) -> Mapping[str, Any]:
        errors = 0
        while True:
            clock.check()
            try:
                command = opal.command(session_id, command_id)
                errors = 0
            except _OpalError as exc:
                errors += 1
                if errors >= _MAX_POLL_ERRORS:
                    raise _Abandon(
                        ExecutionStatus.FAILED,
                        f"lost contact with Opal while a command ran ({exc.describe()})",
                    ) from None
                command = {}
            if command.get("status") in _COMMAND_DONE:
                return command
            clock.pause()

    def _write_outputs(
        self,
        job: Job,
        analysis: _Analysis,
        outcomes: list[_CallOutcome],
        opal_version: str | None,
        packages: Mapping[str, str],
    ) -> tuple[OutputFile, ...]:
        limit = self.route.limits.max_output_file_bytes
        written = []
        for outcome in outcomes:
            outcome.output = f"call-{outcome.index:02d}-{outcome.call.function}.json"
            document: dict[str, Any] = {
                "index": outcome.index,
                "call": outcome.call.text,
                "function": outcome.call.function,
                "status": outcome.status,
            }
            if outcome.status == "completed":
                document["result"] = outcome.result
                document["validity_message"] = _validity_message(outcome.result)
            else:
                document["error"] = outcome.error
            written.append(
                write_output(
                    job.directory.outputs,
                    outcome.output,
                    (json.dumps(document, indent=2) + "\n").encode(),
                    max_bytes=limit,
                    description=f"DataSHIELD call {outcome.index}: {outcome.call.text}",
                )
            )
        rows = [
            {
                "index": outcome.index,
                "call": outcome.call.text,
                "function": outcome.call.function,
                "status": outcome.status,
                "validity_message": _validity_message(outcome.result)
                if outcome.status == "completed"
                else None,
                "output": outcome.output,
            }
            for outcome in outcomes
        ]
        summary = {
            "profile": analysis.profile,
            "opal_version": opal_version,
            "packages": dict(packages),
            "assignments": analysis.assignments,
            "calls": rows,
        }
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        written.append(
            write_output(
                job.directory.outputs,
                self.SUMMARY_JSON,
                (json.dumps(summary, indent=2) + "\n").encode(),
                max_bytes=limit,
                description="DataSHIELD calls, their status, the Opal version and the packages used",
            )
        )
        written.append(
            write_output(
                job.directory.outputs,
                self.SUMMARY_CSV,
                table.getvalue().encode(),
                max_bytes=limit,
                description="DataSHIELD calls and their status, one row per call",
            )
        )
        return tuple(written)


class _Clock:
    """The job's wall-clock deadline and cancellation, checked between and during Opal calls."""

    def __init__(
        self, deadline: float, cancel: threading.Event | None, poll_seconds: float, timeout_seconds: int
    ) -> None:
        self.deadline = deadline
        self.cancel = cancel
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise _Abandon(ExecutionStatus.CANCELLED, "cancelled")
        if time.monotonic() >= self.deadline:
            raise _Abandon(
                ExecutionStatus.FAILED, f"timeout: wall-clock limit of {self.timeout_seconds} s reached"
            )

    def pause(self) -> None:
        wait = max(0.0, min(self.poll_seconds, self.deadline - time.monotonic()))
        if self.cancel is not None:
            self.cancel.wait(wait)
        else:
            time.sleep(wait)
