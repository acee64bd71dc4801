"""Run the community validator (roc-validator) with its ``provenance-run-crate`` profile, offline.

Like ``tests/oracle_runner.py``, every HTTP request of the validator is answered from the JSON-LD
contexts in ``tests/data/oracles/contexts`` or refused, so nothing reaches the network; a skipped check
or an unresolved context is an error, never a pass.
"""

import json
import subprocess
import sys
from pathlib import Path

from tests.reference_data import ORACLES

_SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
import requests
from rocrate_validator import models, services
from rocrate_validator.utils.http import HttpRequester

contexts = Path(sys.argv[1])
index = json.loads((contexts / "index.json").read_text())
unresolved = []

class Local(requests.adapters.BaseAdapter):
    def send(self, request, **kwargs):
        response = requests.Response()
        response.request, response.url = request, request.url
        url = request.url.split("#")[0].rstrip("/")
        name = index.get(url) or index.get(url + "/")
        if request.method == "GET" and name:
            response.status_code, response._content = 200, (contexts / name).read_bytes()
            response.headers["Content-Type"] = "application/ld+json"
        else:
            if request.method == "GET":
                unresolved.append(request.url)
            response.status_code, response._content = 504, b""
        return response
    def close(self):
        pass

with tempfile.TemporaryDirectory() as cache:
    settings = services.ValidationSettings(
        rocrate_uri=sys.argv[2], profile_identifier="provenance-run-crate",
        requirement_severity=sys.argv[3].upper(), skip_availability_check=True, offline=True,
        cache_path=Path(cache) / "http",
    )
    validator = models.Validator(settings)
    validator.prepare()
    session = requests.Session()
    session.mount("http://", Local())
    session.mount("https://", Local())
    HttpRequester().session = session
    result = validator.validate(rocrate_uri=sys.argv[2])
issues = [
    {"severity": str(i.severity), "check": i.check.name, "profile": i.check.requirement.profile.identifier,
     "message": i.message}
    for i in result.get_issues(models.Severity[sys.argv[3].upper()])
]
print(json.dumps({"issues": issues, "executed": len(result.executed_checks),
                  "skipped": len(result.skipped_checks), "unresolved": unresolved}))
"""


def validate_provenance(crate_dir: Path, severity: str = "recommended") -> list[dict]:
    """The validator's issues for ``crate_dir`` at ``severity``; raises if it could not judge."""
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(ORACLES / "contexts"), str(crate_dir), severity],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"roc-validator failed: {completed.stderr[-3000:]}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith('{"issues"')]
    if not lines:
        raise RuntimeError(
            f"roc-validator said nothing: {completed.stdout[-2000:]} {completed.stderr[-2000:]}"
        )
    report = json.loads(lines[-1])
    if report["skipped"] or report["unresolved"] or not report["executed"]:
        raise RuntimeError(f"roc-validator could not judge the crate: {report}")
    return report["issues"]
