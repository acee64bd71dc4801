"""What a TRE approves about a federated analytics service when it approves a workflow that calls one.

A workflow run by the ``datashield`` or ``bitfount`` executor does not carry its whole analysis: the
request's crate names a parameterised call, and the TRE's agent runs it against the TRE's own service.
So the TRE's approval of such a workflow also fixes what the call may use (Safe Settings):

``datashield``
    ``{"profile": "<Opal DataSHIELD profile>", "functions": ["meanDS", "tableDS", ...]}``: the profile
    the agent opens sessions with and the aggregate (and assign) functions a request may call. The agent refuses any
    other function before anything runs, and also checks the server's own list for the profile.
``bitfount``
    ``{"pods": ["<owner>/<pod>", ...], "task": {"algorithm": "...", "protocol": "..."},
    "project_id": "..."}``: the pods a request may address and the one algorithm and protocol it may run.
``cwl`` (optional)
    ``{"containers": ["sha256:<64 hex>", ...]}``: the container images, by digest, a CWL workflow with a
    ``DockerRequirement`` may run. The agent runs an image only when its digest is both here and in the
    TRE's own ``agent.toml``; a CWL approval without digests runs no container.

These settings travel to the agent with each job (``workflow.settings`` in the agent API) and appear in
the Safe Settings evidence of every review.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

#: The executors whose approvals carry service settings.
SERVICE_EXECUTORS = ("datashield", "bitfount")

_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# An R function name as DataSHIELD registers it (no namespace operator: `dsBase::meanDS` is refused).
_R_FUNCTION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._]{0,99}$")
_POD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def needs_settings(executor: str) -> bool:
    return executor in SERVICE_EXECUTORS


def _names(value: Any, pattern: re.Pattern, what: str, field: str) -> list[str]:
    if isinstance(value, str):
        value = value.replace(",", "\n").splitlines()
    if not isinstance(value, list | tuple):
        raise ValidationError({field: f"List the {what}."})
    names, bad = [], []
    for item in value:
        item = str(item).strip()
        if not item:
            continue
        (names if pattern.match(item) else bad).append(item)
    if bad:
        raise ValidationError({field: f"Not valid {what}: {', '.join(sorted(bad))}."})
    if not names:
        raise ValidationError({field: f"Name at least one of the {what}."})
    return sorted(set(names))


def clean(executor: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The normalised settings for ``executor``; raises ValidationError (keyed by field) when incomplete.

    Executors without a service take no settings and get ``{}``.
    """
    data = dict(data or {})
    if executor == "datashield":
        profile = str(data.get("profile") or "").strip()
        if not _PROFILE_RE.match(profile):
            raise ValidationError(
                {"profile": "Name the DataSHIELD profile (letters, digits, '.', '_', '-')."}
            )
        functions = _names(data.get("functions"), _R_FUNCTION_RE, "DataSHIELD functions", "functions")
        return {"profile": profile, "functions": functions}
    if executor == "bitfount":
        pods = _names(data.get("pods"), _POD_RE, "pod identifiers (owner/pod)", "pods")
        task = data.get("task") or {}
        if not isinstance(task, Mapping):
            raise ValidationError({"algorithm": "The approved task must name an algorithm and a protocol."})
        algorithm = str(task.get("algorithm") or "").strip()
        protocol = str(task.get("protocol") or "").strip()
        if not _DOTTED_RE.match(algorithm):
            raise ValidationError(
                {"algorithm": "Name the approved Bitfount algorithm, e.g. bitfount.SqlQuery."}
            )
        if not _DOTTED_RE.match(protocol):
            raise ValidationError(
                {"protocol": "Name the approved Bitfount protocol, e.g. bitfount.ResultsOnly."}
            )
        cleaned = {"pods": pods, "task": {"algorithm": algorithm, "protocol": protocol}}
        project_id = str(data.get("project_id") or "").strip()
        if project_id:
            if not _PROJECT_RE.match(project_id):
                raise ValidationError(
                    {"project_id": "A Bitfount project id has letters, digits, '_' and '-'."}
                )
            cleaned["project_id"] = project_id
        return cleaned
    if executor == "cwl":
        containers = data.get("containers")
        if not containers or (isinstance(containers, str) and not containers.strip()):
            return {}
        return {
            "containers": _names(
                containers, _DIGEST_RE, "container image digests (sha256: and 64 hex digits)", "containers"
            )
        }
    return {}


def from_form(executor: str, post: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as typed into the decision form (``service_*`` fields), before :func:`clean`."""
    if executor == "datashield":
        return {"profile": post.get("service_profile", ""), "functions": post.get("service_functions", "")}
    if executor == "bitfount":
        return {
            "pods": post.get("service_pods", ""),
            "task": {
                "algorithm": post.get("service_algorithm", ""),
                "protocol": post.get("service_protocol", ""),
            },
            "project_id": post.get("service_project_id", ""),
        }
    if executor == "cwl":
        return {"containers": post.get("service_containers", "")}
    return {}


def describe(executor: str, settings: Mapping[str, Any] | None) -> str:
    """One plain sentence saying which service, profile or pods a job will use."""
    settings = settings or {}
    if executor == "datashield":
        functions = ", ".join(settings.get("functions") or []) or "none"
        return (
            f"DataSHIELD profile {settings.get('profile') or '(not set)'}; approved functions: {functions}."
        )
    if executor == "bitfount":
        pods = ", ".join(settings.get("pods") or []) or "none"
        task = settings.get("task") or {}
        text = (
            f"Bitfount pods: {pods}; algorithm {task.get('algorithm') or '(not set)'} "
            f"with protocol {task.get('protocol') or '(not set)'}"
        )
        if settings.get("project_id"):
            text += f" in Bitfount project {settings['project_id']}"
        return text + "."
    if executor == "cwl" and settings.get("containers"):
        return "Container images it may run (by digest): " + ", ".join(settings["containers"]) + "."
    return ""
