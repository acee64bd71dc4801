"""The inputs an approved workflow declares, and the check of what a request gives them.

A declaration is a list of plain dicts, kept on ``ApprovedWorkflow.inputs``::

    {"name": "reference_year", "type": "int", "required": False, "default": 2025,
     "allowed": [], "description": "Age is computed as reference_year minus year of birth"}

``type`` is one of :data:`TYPES` (the CWL names). ``allowed`` lists the only values accepted (a CWL
``enum``), empty for any. A declaration is read from the CWL ``inputs`` of the workflow's crate when it is
registered (:func:`from_crate`), or given by the officer who registers it (:func:`parse`). The TRE's own
dataset input (``dataset``, which the agent binds itself) is never a request's to set, so it is left out.

:func:`check` is the one check of a request's values, used by the request builder's form, the API and
intake alike. It raises ``ValidationError`` whose messages name the input and say what is wrong.
"""

import io
import json
import zipfile
from pathlib import PurePosixPath

import yaml
from django.core.exceptions import ValidationError

TYPES = {
    "string": "text",
    "int": "whole number",
    "float": "number",
    "boolean": "true or false",
    "File": "file",
}
# What a value must be, in a sentence ("min_age must be a whole number").
_MUST = {"string": "text", "int": "a whole number", "float": "a number", "boolean": "true or false"}
# CWL types that mean one of ours.
_CWL_TYPES = {"string": "string", "int": "int", "long": "int", "float": "float", "double": "float"}
_CWL_TYPES |= {"boolean": "boolean", "File": "File"}
# Inputs the TRE's agent binds itself (agent.executors.cwl: the dataset input).
TRE_PROVIDED = {"dataset"}
# As the agent reads them (agent.executors.cwl): only true and false.
_TRUE, _FALSE = {"true"}, {"false"}
_MAX_CWL_BYTES = 1024 * 1024


def _declared(name, kind, *, required=True, default=None, allowed=(), description=""):
    return {
        "name": name,
        "type": kind,
        "required": bool(required),
        "default": default,
        "allowed": list(allowed),
        "description": description,
    }


# --- reading CWL --------------------------------------------------------------------------------------


def _cwl_type(value):
    """(our type, optional, allowed values) of a CWL type expression; None for types we cannot offer."""
    optional = False
    if isinstance(value, list):
        optional = "null" in value
        rest = [v for v in value if v != "null"]
        if len(rest) != 1:
            return None
        value = rest[0]
    if isinstance(value, str) and value.endswith("?"):
        optional, value = True, value[:-1]
    if isinstance(value, dict) and value.get("type") == "enum":
        symbols = [str(s).rsplit("#", 1)[-1].rsplit("/", 1)[-1] for s in value.get("symbols") or []]
        return "string", optional, symbols
    if isinstance(value, str) and value in _CWL_TYPES:
        return _CWL_TYPES[value], optional, []
    return None


def from_cwl(text):
    """The declaration read from a CWL document's ``inputs``; ``ValueError`` if it has none to read."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the CWL file is not YAML ({exc.__class__.__name__})") from None
    if not isinstance(document, dict) or "inputs" not in document:
        raise ValueError("the CWL file declares no inputs")
    raw = document["inputs"]
    if isinstance(raw, dict):
        items = [(name, spec) for name, spec in raw.items()]
    elif isinstance(raw, list):
        items = [(str(spec.get("id", "")).lstrip("#"), spec) for spec in raw if isinstance(spec, dict)]
    else:
        raise ValueError("the CWL inputs are neither a map nor a list")
    declared = []
    for name, spec in items:
        name = str(name).rsplit("/", 1)[-1]
        if not name or name in TRE_PROVIDED:
            continue
        spec = spec if isinstance(spec, dict) else {"type": spec}
        kind = _cwl_type(spec.get("type"))
        if kind is None:
            raise ValueError(f"input {name!r} has a type the request builder cannot offer")
        kind, optional, allowed = kind
        default = spec.get("default")
        if isinstance(default, dict):  # a File default: the workflow brings its own
            default = None
            optional = True
        description = " ".join(str(spec.get(k) or "") for k in ("label", "doc")).strip()
        declared.append(
            _declared(
                name,
                kind,
                required=not optional and default is None,
                default=default,
                allowed=allowed,
                description=description,
            )
        )
    return declared


def from_crate(file):
    """The declaration read from a Workflow RO-Crate ZIP whose main entity is a CWL file; None if it
    is not CWL or declares nothing readable (then the officer can give the inputs)."""
    try:
        data = file.read() if hasattr(file, "read") else open(file, "rb").read()  # noqa: SIM115
        if hasattr(file, "seek"):
            file.seek(0)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            metadata_name = min(
                (n for n in names if PurePosixPath(n).name == "ro-crate-metadata.json"), key=len, default=None
            )
            main = None
            if metadata_name:
                metadata = json.loads(archive.read(metadata_name))
                graph = {e.get("@id"): e for e in metadata.get("@graph", []) if isinstance(e, dict)}
                entity = (graph.get("./") or {}).get("mainEntity") or {}
                main = entity.get("@id") if isinstance(entity, dict) else None
                if main:
                    main = str(PurePosixPath(metadata_name).parent / main).removeprefix("./")
            if not main or not main.endswith(".cwl") or main not in names:
                return None
            info = archive.getinfo(main)
            if info.file_size > _MAX_CWL_BYTES:
                return None
            return from_cwl(archive.read(main).decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, AttributeError):
        return None


# --- a declaration given by hand ----------------------------------------------------------------------


def parse(text):
    """A declaration given as JSON (a list of inputs); ``ValidationError`` saying what is wrong."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"The inputs are not valid JSON: {exc}.") from None
    if not isinstance(raw, list):
        raise ValidationError("Give the inputs as a JSON list, one object per input.")
    declared, seen = [], set()
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise ValidationError(f"Input {number} needs a name.")
        name = item["name"].strip()
        if name in seen:
            raise ValidationError(f"Input {name!r} is declared twice.")
        seen.add(name)
        kind = item.get("type", "string")
        if kind not in TYPES:
            raise ValidationError(
                f"Input {name!r}: the type must be one of {', '.join(TYPES)}, not {kind!r}."
            )
        allowed = item.get("allowed") or []
        if not isinstance(allowed, list):
            raise ValidationError(f"Input {name!r}: 'allowed' must be a list of values.")
        entry = _declared(
            name,
            kind,
            required=item.get("required", item.get("default") is None),
            default=item.get("default"),
            allowed=allowed,
            description=str(item.get("description") or ""),
        )
        if entry["default"] is not None and kind != "File":
            entry["default"] = _convert(entry, entry["default"])
        declared.append(entry)
    return declared


# --- checking a request's values ----------------------------------------------------------------------


def _convert(entry, value):
    """``value`` as the declared type, or ``ValidationError`` naming the input."""
    name, kind = entry["name"], entry["type"]
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.strip()
    try:
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            converted = int(text) if isinstance(value, str) else int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError
            converted = float(text) if isinstance(value, str) else float(value)
        elif kind == "boolean":
            if isinstance(value, bool):
                converted = value
            elif text.lower() in _TRUE:
                converted = True
            elif text.lower() in _FALSE:
                converted = False
            else:
                raise ValueError
        else:
            converted = value if isinstance(value, str) else text
    except (ValueError, TypeError):
        raise ValidationError({name: f"{name} must be {_MUST[kind]}; {text[:60]!r} is not."}) from None
    allowed = entry.get("allowed") or []
    if allowed and converted not in allowed and str(converted) not in [str(a) for a in allowed]:
        raise ValidationError(
            {name: f"{name} must be one of {', '.join(map(str, allowed))}, not {text[:60]!r}."}
        )
    return converted


def check(declared, values, files=(), *, workflow_name="The workflow"):
    """Check a request's values against a declaration; return them converted to their types.

    ``values`` maps input names to values (strings from forms and crates, JSON values from the API);
    ``files`` names the inputs given as files. Inputs not given take their default. Raises
    ``ValidationError`` (a dict by input name) for missing, unknown or ill-typed inputs.
    """
    by_name = {entry["name"]: entry for entry in declared}
    errors = {}
    files = set(files)
    for name in sorted((set(values) | files) - set(by_name)):
        offered = ", ".join(sorted(by_name)) or "no inputs"
        errors[name] = f"{workflow_name} has no input called {name!r}; it takes {offered}."
    cleaned = {}
    for name, entry in by_name.items():
        given_file = name in files
        given = name in values and not (isinstance(values[name], str) and not values[name].strip())
        if entry["type"] == "File":
            if given:
                errors[name] = f"{name} is a file: attach it rather than typing a value."
            elif entry["required"] and not given_file:
                errors[name] = f"{name} is required: attach the file."
            continue
        if given_file:
            errors[name] = f"{name} is {_MUST[entry['type']]}, not a file."
            continue
        if not given:
            if entry["required"] and entry.get("default") is None:
                errors[name] = f"{name} is required ({TYPES[entry['type']]})."
            continue
        try:
            cleaned[name] = _convert(entry, values[name])
        except ValidationError as exc:
            errors.update({k: " ".join(v) for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return cleaned


def describe(entry):
    """One line for people: 'reference_year (whole number, optional, default 2025): ...'."""
    parts = [TYPES.get(entry.get("type"), entry.get("type", ""))]
    parts.append("required" if entry.get("required") else "optional")
    if entry.get("default") is not None:
        parts.append(f"default {entry['default']}")
    if entry.get("allowed"):
        parts.append("one of " + ", ".join(map(str, entry["allowed"])))
    text = f"{entry['name']} ({', '.join(parts)})"
    return f"{text}: {entry['description']}" if entry.get("description") else text
