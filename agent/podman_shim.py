"""The ``podman`` that cwltool sees: it lets through only what a TRE signs off, then runs the real podman.

cwltool (``--podman``) calls ``podman inspect IMAGE`` to find an image and ``podman run ...`` to run a
step. The CWL executor puts a two-line ``podman`` script first on cwltool's ``PATH`` that runs this file
with a policy file written for the job (JSON, see :func:`load_policy`). Then:

* ``inspect`` looks at images only (``podman image inspect``); ``version``, ``info``, cwltool's memory
  report (``stats --format {{.MemPerc}} ID``) and its clean-up (``kill ID``, of this job's containers
  only) pass; every other
  subcommand (``pull``, ``load``, ``build``, ``import``, ``login``, ``exec``, ...) is refused, so nothing
  is ever fetched from anywhere and nothing is built;
* ``run`` takes only the options cwltool itself writes (an allow list); the image must resolve in the
  TRE's local store to an approved digest and runs by its full image id, so a re-tagged image cannot
  slip in between the check and the run; bind mounts must come from the job's directory or the TRE's
  datasets, and only the job's directory may be writable;
* the TRE's settings are added to every ``run``: no network, read-only root filesystem, no capabilities,
  no new privileges, ``--pull=never``, a memory and process limit, and the ``--runtime`` and ``--ulimit``
  flags some hosts need (runc on cgroup v1 hybrids, explicit ulimits where podman's defaults fail).

A refusal exits 125 (podman's own "the command could not run") and writes one plain sentence to the
policy's ``refusal_file`` for the agent to report. This file imports only the standard library: it runs
with ``python -I``, outside the agent's package.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess  # runs only the configured podman binary, never a shell
import sys
from pathlib import Path
from typing import Any

REFUSED = 125
# Options cwltool writes (cwltool/docker.py create_runtime, add_*_volume); anything else is refused.
_FLAGS = {"-i", "--rm", "--read-only=true", "--log-driver=none", "--net=none", "--userns=keep-id"}
_VALUED = ("--mount=", "--workdir=", "--user=", "--cidfile=", "--env=", "--memory=", "--cpus=")
_DROPPED = {"--net=none", "--userns=keep-id", "--read-only=true"}  # the shim adds its own versions


class Refusal(Exception):
    """The command breaks the TRE's container policy; the message is safe to show the researcher."""


def load_policy(path: str) -> dict[str, Any]:
    """The job's policy: ``podman`` (absolute path), ``runtime`` (or null), ``ulimits`` (list),
    ``memory_bytes``, ``pids_limit``, ``approved`` (digests), ``readable`` and ``writable`` (directories),
    ``refusal_file``."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _global_args(policy: dict[str, Any]) -> list[str]:
    argv = [policy["podman"]]
    if policy.get("runtime"):
        argv.append(f"--runtime={policy['runtime']}")
    return argv


def image_identity(policy: dict[str, Any], image: str) -> tuple[str, set[str]]:
    """(full image id, every digest naming it) of ``image`` in the local store; Refusal if absent."""
    result = subprocess.run(  # fixed argv, no shell
        [*_global_args(policy), "image", "inspect", "--", image],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise Refusal(f"the container image {image!r} is not in this TRE's local image store")
    try:
        info = json.loads(result.stdout)[0]
    except (ValueError, IndexError, KeyError, TypeError):
        raise Refusal(f"the container image {image!r} could not be inspected") from None
    image_id = str(info["Id"])
    digests = {f"sha256:{image_id}" if ":" not in image_id else image_id}
    if info.get("Digest"):
        digests.add(str(info["Digest"]))
    for repo_digest in info.get("RepoDigests") or []:
        digests.add(str(repo_digest).rpartition("@")[2])
    return image_id, digests


def _inside(path: str, roots: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(
        real == root or real.startswith(root.rstrip("/") + "/") for root in map(os.path.realpath, roots)
    )


def _check_mount(value: str, policy: dict[str, Any]) -> None:
    fields = dict(item.partition("=")[::2] for item in value.split(","))
    if fields.get("type") != "bind" or "source" not in fields:
        raise Refusal("a workflow step asked for a kind of mount this TRE does not allow")
    source = fields["source"]
    writable = "readonly" not in fields and fields.get("ro") != "true"
    if writable and not _inside(source, policy["writable"]):
        raise Refusal("a workflow step asked to write outside its job's folders")
    if not _inside(source, [*policy["writable"], *policy["readable"]]):
        raise Refusal("a workflow step asked to read a file the TRE did not give the job")


def run_argv(args: list[str], policy: dict[str, Any]) -> list[str]:
    """The real podman command for ``podman run ARGS``; raises Refusal when the policy forbids it."""
    options: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):
        option = args[index]
        if option in _FLAGS:
            if option not in _DROPPED:
                options.append(option)
        elif option.startswith(_VALUED):
            if option.startswith("--mount="):
                _check_mount(option[len("--mount=") :], policy)
            options.append(option)
        else:
            raise Refusal(
                f"a workflow step asked for a container option this TRE does not allow ({option.split('=')[0]})"
            )
        index += 1
    if index >= len(args):
        raise Refusal("a workflow step named no container image")
    image, command = args[index], args[index + 1 :]
    image_id, digests = image_identity(policy, image)
    if not digests & set(policy["approved"]):
        raise Refusal(f"the container image {image!r} ({sorted(digests)[0]}) is not approved at this TRE")
    memory = int(policy["memory_bytes"])
    return [
        *_global_args(policy),
        "run",
        "--pull=never",
        "--network=none",
        "--read-only=true",
        "--cap-drop=all",
        "--security-opt=no-new-privileges",
        f"--memory={memory}",
        f"--memory-swap={memory}",
        f"--pids-limit={int(policy['pids_limit'])}",
        *(f"--ulimit={ulimit}" for ulimit in policy.get("ulimits", [])),
        *([f"--label={policy['label']}"] if policy.get("label") else []),
        *options,
        image_id,
        *command,
    ]


def _job_containers(policy: dict[str, Any]) -> list[str]:
    """The full ids of the containers carrying the job's label."""
    if not policy.get("label"):
        return []
    listed = subprocess.run(  # fixed argv
        [*_global_args(policy), "ps", "--all", "--quiet", "--no-trunc", f"--filter=label={policy['label']}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return listed.stdout.split()


def remove_containers(policy: dict[str, Any]) -> list[str]:
    """Force-remove every container carrying the job's label; returns their ids.

    A timeout or cancellation kills cwltool and podman, but the container lives on under conmon, which
    left their process tree; this ends it.
    """
    ids = _job_containers(policy)
    if ids:
        subprocess.run(  # fixed argv, ids from podman itself
            [*_global_args(policy), "rm", "--force", "--time=0", *ids],
            capture_output=True,
            timeout=120,
            check=False,
        )
    return ids


def command_argv(args: list[str], policy: dict[str, Any]) -> list[str]:
    """The real podman command for ``podman ARGS``; raises Refusal for anything cwltool should not do."""
    if not args:
        raise Refusal("no podman subcommand")
    subcommand, rest = args[0], args[1:]
    if subcommand == "run":
        return run_argv(rest, policy)
    if subcommand == "inspect" and len(rest) == 1 and not rest[0].startswith("-"):
        return [*_global_args(policy), "image", "inspect", "--", rest[0]]
    if subcommand == "stats" and len(rest) == 3 and rest[:2] == ["--format", "{{.MemPerc}}"]:
        # cwltool's memory report for the container it started (by the id podman wrote to its cidfile).
        if rest[2].isalnum():
            return [*_global_args(policy), "stats", "--no-stream", "--format", "{{.MemPerc}}", rest[2]]
    if subcommand == "kill" and len(rest) == 1 and rest[0].strip().isalnum():
        # cwltool's clean-up when it is stopped: only a container of this job.
        if rest[0].strip() in _job_containers(policy):
            return [*_global_args(policy), "kill", rest[0].strip()]
    if subcommand in ("version", "info") and not rest:
        return [*_global_args(policy), subcommand]
    raise Refusal(
        f"the container command {subcommand!r} is not allowed at this TRE (images are never fetched or built)"
    )


def main(argv: list[str]) -> int:
    policy = load_policy(argv[0])
    try:
        real = command_argv(argv[1:], policy)
    except Refusal as refusal:
        print(f"five-safes-agent: refused: {refusal}", file=sys.stderr)
        refusal_file = policy.get("refusal_file")
        if refusal_file:
            with open(refusal_file, "a", encoding="utf-8") as fh:
                fh.write(f"{refusal}\n")
        return REFUSED
    os.execv(real[0], real)  # noqa: S606 - the configured podman, argv checked above
    return REFUSED  # pragma: no cover - execv does not return


def write_launcher(directory: Path, policy: dict[str, Any]) -> Path:
    """Write ``directory/podman`` (and its policy file) that runs this shim; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    policy_path = directory / "container-policy.json"
    policy_path.write_text(json.dumps(policy, indent=2), encoding="utf-8")
    launcher = directory / "podman"
    launcher.write_text(
        "#!/bin/sh\n"
        f'exec {shlex.join([sys.executable, "-I", str(Path(__file__).resolve()), str(policy_path)])} "$@"\n',
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    return directory


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
