#!/usr/bin/env python3
"""5s-oracle: offline verdicts on Five Safes RO-Crates (profile 0.4), the community validator.

Runs roc-validator 0.13.0 (PyPI `roc-validator`, pinned in requirements-dev.txt) with the SHACL data
of its unreleased `five-safes-crate` profile (in tests/data/oracles/five-safes-crate-0.4, Apache-2.0,
see tests/data/NOTICE) plus our own re-implementation of that profile's Python check (the RO-Crate
`@context` version rule). Everything is offline: every HTTP request the validator makes is answered
from tests/data/oracles/contexts or refused. This file is the project's own (it was shared/bin/5s-oracle).

Usage: python tests/oracle_runner.py [--severity required|recommended] [--json] PATH...
  PATH: crate directory | ro-crate-metadata.json | BagIt directory (uses data/) | .zip
Exit: 0 all crates pass, 1 some crate fails, 2 tool error (including any skipped
check or unresolvable remote context: an offline run must never look clean
while nothing was checked).
"""

import argparse
import atexit
import json
import re
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent
ORACLES = HERE / "data" / "oracles"  # extra_profiles_path: holds five-safes-crate-0.4/
CONTEXTS = ORACLES / "contexts"  # index.json maps context URL -> local file
PROFILE = "five-safes-crate"  # prof:hasToken in profile.ttl
# Issues whose check belongs to this profile id are ours; the rest are inherited ro-crate-1.x.
PROFILE_REPORTED = "five-safes-crate-0.4"
EXPECTED_VALIDATOR = "0.13.0"
# Same pattern and matching (re.match on string items) as upstream must/15_metadata_file.py.
CONTEXT_RE = re.compile(r"https://w3id\.org/ro/crate/1\.[2-9](-DRAFT)?/context")
ZIP_MAX_BYTES, ZIP_MAX_MEMBERS = 2 << 30, 100_000


class ToolError(Exception):
    """Anything that prevents a trustworthy verdict (exit status 2)."""


# --------------------------------------------------------------------------- imports
try:
    import requests
    import rocrate_validator
    from rocrate_validator import models, services
    from rocrate_validator.utils import log as rv_log
    from rocrate_validator.utils.http import HttpRequester
except ImportError as e:  # pragma: no cover - depends on the environment
    print(
        f"5s-oracle: cannot import rocrate_validator ({e}).\n"
        f"Install it in this Python ({sys.executable}):\n"
        f"    {sys.executable} -m pip install roc-validator=={EXPECTED_VALIDATOR}",
        file=sys.stderr,
    )
    sys.exit(2)


# --------------------------------------------------------------------------- offline HTTP
class LocalOnlyAdapter(requests.adapters.BaseAdapter):
    """requests transport that serves known JSON-LD contexts from disk and
    answers everything else with 504, which roc-validator's offline mode
    treats as a cache miss. Nothing ever reaches the network."""

    def __init__(self, empty_unknown=False):
        super().__init__()
        self.index = json.loads((CONTEXTS / "index.json").read_text())
        self.empty_unknown = empty_unknown
        self.unresolved = []  # GETs (JSON-LD documents) we could not serve, reset per crate
        self.refused = []  # other requests, e.g. the base profile's HEAD availability probes

    def _lookup(self, url):
        url = url.split("#")[0]
        for cand in (url, url.rstrip("/"), re.sub(r"^http:", "https:", url).rstrip("/")):
            if cand in self.index:
                return (CONTEXTS / self.index[cand]).read_bytes()
        return None

    def send(self, request, **kwargs):
        resp = requests.Response()
        resp.request, resp.url = request, request.url
        body = self._lookup(request.url) if request.method == "GET" else None
        if body is None:
            (self.unresolved if request.method == "GET" else self.refused).append(request.url)
            if self.empty_unknown and request.method == "GET":
                body = b'{"@context": {}}'  # opt-in: unknown context treated as empty
        if body is None:
            resp.status_code, resp.reason, body = 504, "Offline (5s-oracle)", b""
        else:
            resp.status_code, resp.reason = 200, "OK"
            resp.headers["Content-Type"] = "application/ld+json"
        resp._content = b"" if request.method == "HEAD" else body
        return resp

    def close(self):
        pass


# --------------------------------------------------------------------------- inputs
def find_root(path: Path) -> Path:
    """Directory holding ro-crate-metadata.json for a crate dir, bag dir, or a
    directory with one top-level child (an unzipped bag)."""
    if (path / "ro-crate-metadata.json").is_file():
        return path
    if (path / "data" / "ro-crate-metadata.json").is_file():  # BagIt layout (bagit.txt not required)
        return path / "data"
    children = [c for c in path.iterdir() if not c.name.startswith(("__MACOSX", "."))]
    if len(children) == 1 and children[0].is_dir():
        return find_root(children[0])
    raise ToolError(f"{path}: no ro-crate-metadata.json (nor BagIt data/ro-crate-metadata.json) found")


def safe_extract(zpath: Path, dest: Path) -> None:
    """Extract a zip refusing absolute/`..` paths, symlinks and zip bombs."""
    with zipfile.ZipFile(zpath) as zf:
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS or sum(i.file_size for i in infos) > ZIP_MAX_BYTES:
            raise ToolError(f"{zpath}: zip too large to inspect")
        for info in infos:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename):
                raise ToolError(f"{zpath}: unsafe member path {info.filename!r}")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ToolError(f"{zpath}: symlink member {info.filename!r}")
            target = dest.joinpath(*name.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def resolve_input(arg: str, tmp: Path) -> Path:
    """Return the crate root directory (may live under tmp) for one PATH argument."""
    p = Path(arg)
    if p.is_dir():
        return find_root(p)
    if p.is_file() and p.suffix.lower() == ".zip":
        dest = Path(tempfile.mkdtemp(dir=tmp, prefix="zip-"))
        safe_extract(p, dest)
        return find_root(dest)
    if p.is_file() and p.suffix.lower() == ".json":
        if p.name == "ro-crate-metadata.json":
            return p.parent
        dest = Path(tempfile.mkdtemp(dir=tmp, prefix="json-"))  # validator wants the canonical name
        shutil.copyfile(p, dest / "ro-crate-metadata.json")
        return dest
    raise ToolError(f"{arg}: not a crate directory, BagIt directory, metadata .json or .zip")


# --------------------------------------------------------------------------- checks
def context_issue(root: Path):
    """Our re-implementation of five-safes-crate must/15_metadata_file.py.
    Unlike upstream (which passes on any exception) an unreadable or missing
    @context fails, since it certainly does not name RO-Crate >= 1.2."""
    try:
        ctx = json.loads((root / "ro-crate-metadata.json").read_text(encoding="utf-8")).get("@context")
    except (OSError, ValueError, AttributeError) as e:
        raise ToolError(f"{root}/ro-crate-metadata.json: not a JSON object ({e})") from e
    items = ctx if isinstance(ctx, list) else [ctx]
    if any(isinstance(i, str) and CONTEXT_RE.match(i) for i in items):
        return None
    return {
        "severity": "REQUIRED",
        "check": "5s-oracle:context-version",
        "name": "RO-Crate context version",
        "message": "The RO-Crate metadata file MUST include the RO-Crate context "
        "version 1.2 (or later minor version) in `@context`",
        "entity": "ro-crate-metadata.json",
        "property": "@context",
        "value": json.dumps(ctx)[:200],
    }


def issue_dict(i):
    check = i.check
    return {
        "severity": i.severity.name,
        "check": i.identifier,
        "name": check.name,
        "requirement": check.requirement.name,
        "message": i.message,
        "entity": i.violatingEntity,
        "property": i.violatingProperty,
        "value": None if i.violatingPropertyValue is None else str(i.violatingPropertyValue),
    }


def make_validator(severity, cache_dir):
    """One prepared Validator reused for all crates (profile loading is the slow part)."""
    settings = services.ValidationSettings(
        rocrate_uri=str(ORACLES),  # placeholder, each validate() passes its own
        profile_identifier=PROFILE,
        extra_profiles_path=ORACLES,
        requirement_severity=severity,
        validate_profile_checks=False,  # PR #167 reuses check names; 0.13.0 rejects them otherwise
        skip_availability_check=True,
        offline=True,  # 504 from our adapter => offline cache miss, never a fetch
        cache_path=cache_dir / "http-cache",  # keep the user's persistent cache untouched
    )
    validator = models.Validator(settings)
    validator.prepare()
    return validator


def check_crate(validator, adapter, arg, tmp, severity):
    t0 = time.monotonic()
    out = {"path": arg}
    try:
        root = resolve_input(arg, tmp)
        out["crate_root"] = str(root)
        ctx = context_issue(root)
        adapter.unresolved.clear()
        adapter.refused.clear()
        res = validator.validate(rocrate_uri=str(root))
        fs, base = ([ctx] if ctx else []), []
        for i in res.get_issues(severity):
            (fs if i.check.requirement.profile.identifier == PROFILE_REPORTED else base).append(issue_dict(i))
        skipped = [d.to_dict() for d in res.skipped_check_details]
        out.update(
            issues=fs,
            base_issues=base,
            executed_checks=len(res.executed_checks),
            skipped_checks=len(res.skipped_checks),
            skipped_check_details=skipped,
            unresolved_urls=sorted(set(adapter.unresolved)),
            refused_offline=sorted(set(adapter.refused)),
        )
        if out["skipped_checks"]:
            raise ToolError(
                f"{out['skipped_checks']} check(s) were SKIPPED, verdict untrustworthy: "
                + "; ".join(
                    f"{d['profile']} {d['identifier']} {d['name']}: {d['message'][:150]}" for d in skipped
                )
            )
        if adapter.unresolved and not adapter.empty_unknown:
            raise ToolError(
                "remote resources not available offline (add them to "
                f"{CONTEXTS}/index.json or use --empty-unknown-contexts): "
                + ", ".join(out["unresolved_urls"])
            )
        if not res.executed_checks:
            raise ToolError("no checks were executed")
        out["verdict"] = "FAIL" if fs else "PASS"
    except ToolError as e:
        out.update(verdict="ERROR", error=str(e))
    except Exception as e:  # validator crash: report, never a silent pass
        out.update(verdict="ERROR", error=f"{type(e).__name__}: {e}")
    out["seconds"] = round(time.monotonic() - t0, 2)
    return out


def print_text(r):
    extra = f"  [{r.get('executed_checks', 0)} checks, {r['seconds']}s]"
    print(f"{r['verdict']}  {r['path']}{extra}")
    if r["verdict"] == "ERROR":
        print(f"    ERROR: {r['error']}")
    for i in r.get("issues", []):
        where = (
            f" [entity {i['entity']}" + (f", {i['property']}" if i.get("property") else "") + "]"
            if i.get("entity")
            else ""
        )
        print(f"    {i['severity']:<11} {i['check']}  {i['name']}: {i['message']}{where}")
    if r.get("base_issues"):
        print(f"    (+{len(r['base_issues'])} inherited ro-crate issue(s) ignored; see --json base_issues)")
    if r.get("unresolved_urls"):
        print(f"    note: served as empty context: {', '.join(r['unresolved_urls'])}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="5s-oracle", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--severity",
        choices=["required", "recommended"],
        default="required",
        help="lowest severity that makes a crate FAIL (default: required)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    ap.add_argument(
        "--empty-unknown-contexts",
        action="store_true",
        help="treat remote @context URLs not shipped in oracles/contexts as empty "
        "(terms they define are dropped) instead of a tool error",
    )
    ap.add_argument("paths", nargs="+", metavar="PATH")
    a = ap.parse_args(argv)
    # roc-validator prints its captured log to stdout at exit; we send it to stderr instead.
    atexit.unregister(rv_log.__print_logs_on_exit__)

    if rocrate_validator.__version__ != EXPECTED_VALIDATOR:
        print(
            f"5s-oracle: warning: roc-validator {rocrate_validator.__version__} installed, "
            f"oracle calibrated on {EXPECTED_VALIDATOR}",
            file=sys.stderr,
        )
    severity = getattr(models.Severity, a.severity.upper())
    tmp = Path(tempfile.mkdtemp(prefix="5s-oracle-"))
    try:
        t0 = time.monotonic()
        adapter = LocalOnlyAdapter(empty_unknown=a.empty_unknown_contexts)
        try:
            validator = make_validator(severity, tmp)
        except Exception as e:
            print(f"5s-oracle: cannot load profile from {ORACLES}: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
        # The single monkeypatch: route the validator's (singleton) HTTP session through our adapter.
        session = requests.Session()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        HttpRequester().session = session
        results = [check_crate(validator, adapter, p, tmp, severity) for p in a.paths]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    verdicts = {r["verdict"] for r in results}
    code = 2 if "ERROR" in verdicts else 1 if "FAIL" in verdicts else 0
    if a.json:
        json.dump(
            {
                "tool": "5s-oracle",
                "roc_validator": rocrate_validator.__version__,
                "profile": PROFILE,
                "severity": a.severity.upper(),
                "exit_code": code,
                "seconds": round(time.monotonic() - t0, 2),
                "crates": results,
            },
            sys.stdout,
            indent=2,
            default=str,
        )
        print()
    else:
        for r in results:
            print_text(r)
        print(
            f"# {len(results)} crate(s): "
            + ", ".join(f"{v}={sum(r['verdict'] == v for r in results)}" for v in ("PASS", "FAIL", "ERROR"))
        )
    validator_log = rv_log.__log_stream__.getvalue().strip()
    if validator_log:
        print("5s-oracle: roc-validator log:\n" + validator_log, file=sys.stderr)
    for r in results:
        if r["verdict"] == "ERROR":
            print(f"5s-oracle: ERROR {r['path']}: {r['error']}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
