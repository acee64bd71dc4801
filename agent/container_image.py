"""Build a small container image inside the TRE from the host's own programs, without any registry.

``python -m agent.container_image build NAME PROGRAM...`` copies each program (found on ``PATH``) with the
shared libraries ``ldd`` names into an empty root file system, imports it into podman's local store with
``podman import`` and prints the image's digests, which the TRE then approves (``[accept]
container_digests`` in ``agent.toml`` and the workflow's Safe Settings in the portal). Nothing is pulled:
this is how the tests and the demo get an image on a machine with no internet access.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess  # runs ldd and the configured podman with fixed argv
import tarfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BuiltImage", "build_image", "ensure_image"]

_LIBRARY_RE = re.compile(r"(/\S+)")


class BuiltImage(dict):
    """``{"name", "id", "digests"}`` of an imported image; ``digests`` holds every ``sha256:...`` naming it."""


def _libraries(program: Path) -> list[Path]:
    result = subprocess.run(  # ldd with a resolved path
        ["ldd", str(program)], capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        return []  # a static binary
    return [Path(match) for line in result.stdout.splitlines() if (match := _first_path(line))]


def _first_path(line: str) -> str | None:
    found = _LIBRARY_RE.findall(line.split("=>")[-1])
    return found[0] if found else None


def _add(tar: tarfile.TarFile, source: Path, target: str) -> None:
    info = tar.gettarinfo(str(source.resolve()), arcname=target)
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    with source.resolve().open("rb") as fh:
        tar.addfile(info, fh)


def _directory(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def rootfs_tar(programs: Sequence[str]) -> bytes:
    """A tar of a root file system holding ``programs`` (in ``/bin``) and their shared libraries."""
    buffer = io.BytesIO()
    added: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("bin", 0o755), ("tmp", 0o1777), ("etc", 0o755), ("lib", 0o755), ("lib64", 0o755)):
            _directory(tar, name, mode)
        for program in programs:
            found = shutil.which(program)
            if found is None:
                raise FileNotFoundError(f"no program {program!r} on PATH")
            _add(tar, Path(found), f"bin/{Path(program).name}")
            for library in _libraries(Path(found)):
                target = str(library).lstrip("/")
                parent = str(Path(target).parent)
                for index in range(1, len(Path(parent).parts) + 1):
                    directory = str(Path(*Path(parent).parts[:index]))
                    if directory not in added and directory not in ("lib", "lib64"):
                        _directory(tar, directory)
                        added.add(directory)
                if target not in added:
                    _add(tar, library, target)
                    added.add(target)
        passwd = b"root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/tmp:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


def inspect_image(name: str, *, podman: str = "podman") -> BuiltImage:
    """The id and digests of ``name`` in the local store."""
    result = subprocess.run(  # fixed argv
        [podman, "image", "inspect", "--", name], capture_output=True, text=True, check=True, timeout=60
    )
    info = json.loads(result.stdout)[0]
    digests = {f"sha256:{info['Id']}"}
    if info.get("Digest"):
        digests.add(info["Digest"])
    digests.update(str(item).rpartition("@")[2] for item in info.get("RepoDigests") or [])
    return BuiltImage(name=name, id=info["Id"], digests=sorted(digests))


def build_image(name: str, programs: Sequence[str], *, podman: str = "podman") -> BuiltImage:
    """Import a root file system holding ``programs`` as image ``name``; return its id and digests."""
    subprocess.run(  # fixed argv, the tar on stdin
        [podman, "import", "--message", "five-safes agent image", "-", name],
        input=rootfs_tar(programs),
        capture_output=True,
        check=True,
        timeout=300,
    )
    return inspect_image(name, podman=podman)


def ensure_image(name: str, programs: Sequence[str], *, podman: str = "podman") -> BuiltImage:
    """``name`` as it is in the local store, built with :func:`build_image` only if it is missing.

    Rebuilding would give the tag a new image id (``podman import`` records the time), silently moving it
    away from the digest a TRE approved, so an existing image is always kept.
    """
    try:
        return inspect_image(name, podman=podman)
    except subprocess.CalledProcessError:
        return build_image(name, programs, podman=podman)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.container_image", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="import an image made of host programs into podman's store")
    build.add_argument("name", help="the image name, e.g. localhost/five-safes/sqlite-counts:1")
    build.add_argument("programs", nargs="+", help="programs on PATH to put in /bin")
    build.add_argument("--podman", default="podman")
    build.add_argument("--rebuild", action="store_true", help="replace an existing image of that name")
    args = parser.parse_args(argv)
    make = build_image if args.rebuild else ensure_image
    print(json.dumps(make(args.name, args.programs, podman=args.podman), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
