"""Stands in for WfExS-backend's command line (``WfExS-backend.py``) in tests, and for nothing else.

It honours the contract the ``wfexs`` executor relies on, as read from WfExS-backend's
``wfexs_backend/__main__.py``: the global ``-L/--local-config`` and ``--version``; the commands ``init``,
``stage -W <file> --save-workdir-id <file>``, ``offline-execute -J <id>`` and ``export-crate -J <id>``;
staged working directories under the local configuration's ``workDir``, with ``outputs/`` inside. It
validates the local configuration and the staging file against WfExS's own JSON Schemas
(``tests/data/wfexs/``), as WfExS does, and exits non-zero when they do not validate.

It does not run a workflow engine. ``offline-execute`` writes, for every ``File`` input, its line count
to ``outputs/line-counts.csv``. The ``stub_behaviour`` value parameter makes it misbehave on purpose:
``fail`` (exit 3), ``sleep`` (never finish), ``symlink`` (an output that is a link to an input), ``many``
(too many output files), ``no-outputs``, ``no-dot`` (``export-crate`` fails, as WfExS does without
Graphviz).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlparse

import jsonschema
from ruamel.yaml import YAML

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "wfexs"
VERSION = "1.0.4+stub"


def load(path: Path):
    with path.open(encoding="utf-8") as handle:
        return YAML(typ="safe", pure=True).load(handle)


def validate(document, schema_name: str, what: str) -> None:
    schema = json.loads((SCHEMAS / schema_name).read_text())
    check = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [error.message for error in check.iter_errors(document)]
    if errors:
        print(f"ERROR: {what} does not validate: {errors}", file=sys.stderr)
        sys.exit(1)


def file_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        print(f"ERROR: this stand-in fetches file: URIs only, not {uri}", file=sys.stderr)
        sys.exit(1)
    return Path(unquote(parsed.path))


def main() -> int:
    parser = argparse.ArgumentParser(prog="WfExS-backend.py")
    parser.add_argument("-L", "--local-config", dest="local_config", required=True)
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s version {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init")
    stage = commands.add_parser("stage")
    stage.add_argument("-W", "--workflow-config", dest="stage_file", required=True)
    stage.add_argument("--save-workdir-id", dest="workdir_id_file")
    for name in ("offline-execute", "export-crate"):
        commands.add_parser(name).add_argument("-J", "--staged-job-dir", dest="workdir", required=True)
    args = parser.parse_args()

    config = load(Path(args.local_config))
    validate(config, "config.json", "the local configuration")
    work_dir = Path(config["workDir"])
    keys = [Path(config["crypt4gh"][name]) for name in ("key", "pub")]
    log = Path(args.local_config).parent / "calls.log"
    with log.open("a") as handle:
        handle.write(" ".join(sys.argv[1:]) + "\n")

    if args.command == "init":
        for key in keys:
            key.write_text("-----BEGIN CRYPT4GH KEY (stand-in)-----\n")
        return 0
    if not all(key.exists() for key in keys):
        print("ERROR: the crypt4gh keys are missing; run init", file=sys.stderr)
        return 1

    if args.command == "stage":
        document = load(Path(args.stage_file))
        validate(document, "stage-definition.json", "the staging file")
        workflow = file_path(document["workflow_id"])
        if not workflow.is_file():
            print("ERROR: the workflow cannot be fetched", file=sys.stderr)
            return 1
        instance = str(uuid.uuid4())
        root = work_dir / instance
        (root / "inputs").mkdir(parents=True)
        (root / "meta").mkdir()
        inputs = {}
        for name, value in document.get("params", {}).items():
            if isinstance(value, dict) and value.get("c-l-a-s-s") == "File":
                source = file_path(value["url"])
                target = root / "inputs" / source.name
                target.write_bytes(source.read_bytes())
                inputs[name] = str(target)
            else:
                inputs[name] = value
        (root / "meta" / "stage.json").write_text(json.dumps({"inputs": inputs, "workflow": str(workflow)}))
        if args.workdir_id_file:
            Path(args.workdir_id_file).write_text(instance + "\n")
        print(f"Instance {instance} (nickname '{document.get('nickname')}') staged")
        return 0

    root = work_dir / args.workdir
    meta = json.loads((root / "meta" / "stage.json").read_text())
    behaviour = meta["inputs"].get("stub_behaviour", "")
    if args.command == "offline-execute":
        outputs = root / "outputs" / str(uuid.uuid4())  # one folder per execution, as WfExS does
        outputs.mkdir(parents=True)
        if behaviour == "fail":
            print("Traceback: the workflow failed on row 17 of the data", file=sys.stderr)
            return 3
        if behaviour == "sleep":
            time.sleep(3600)
        if behaviour == "symlink":
            os.symlink(
                next(v for v in meta["inputs"].values() if str(v).startswith(str(root))), outputs / "leak.csv"
            )
            return 0
        if behaviour == "many":
            for index in range(300):
                (outputs / f"part-{index}.txt").write_text("x")
            return 0
        if behaviour == "no-outputs":
            return 0
        lines = ["input,lines"]
        for name, value in sorted(meta["inputs"].items()):
            if isinstance(value, str) and value.startswith(str(root)):
                lines.append(f"{name},{len(Path(value).read_text().splitlines())}")
        (outputs / "line-counts.csv").write_text("\n".join(lines) + "\n")
        return 0

    # export-crate: WfExS writes a Workflow Run Crate of the execution (it may hold inputs)
    if behaviour == "no-dot":
        print("FileNotFoundError: [Errno 2] No such file or directory: 'dot'", file=sys.stderr)
        return 1
    (root / "outputs" / "execution.ro-crate.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    return 0


if __name__ == "__main__":
    sys.exit(main())
