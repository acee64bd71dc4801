"""`fivesafes`: the portal from a shell. The portal address and token come from --url/--token or the
FIVESAFES_URL and FIVESAFES_TOKEN environment variables."""

from __future__ import annotations

import argparse
import json
import os
import sys

from fivesafes_client.client import FINISHED, NEEDS_YOU, APIError, Client, Request, TimedOut


def _print_request(request: Request, as_json: bool) -> None:
    if as_json:
        print(json.dumps(request.raw, indent=2))
        return
    print(f"Request {request.id}: {request.title} ({request.project}) - {request.status}")
    for job in request.jobs:
        extra = f" ({job.suspended_reason})" if job.suspended_reason else ""
        print(f"  job {job.id} at {job.tre}: {job.status}{extra}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fivesafes", description="The Five Safes Portal from the command line."
    )
    parser.add_argument("--url", default=os.environ.get("FIVESAFES_URL"), help="the portal (FIVESAFES_URL)")
    parser.add_argument(
        "--token", default=os.environ.get("FIVESAFES_TOKEN"), help="a personal token (FIVESAFES_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print what the portal answered, as JSON")
    commands = parser.add_subparsers(dest="command", required=True)

    submit = commands.add_parser("submit", help="submit a crate ZIP as a new request")
    submit.add_argument("crate")
    submit.add_argument("--project", required=True)
    submit.add_argument(
        "--tre", action="append", required=True, dest="tres", help="a TRE's slug (repeat for more)"
    )
    submit.add_argument("--title", required=True)
    submit.add_argument("--description", default="")

    build = commands.add_parser("build", help="have the portal build a request from an approved workflow")
    build.add_argument("--project", required=True)
    build.add_argument("--tre", action="append", required=True, dest="tres")
    build.add_argument("--title", required=True)
    build.add_argument("--workflow", type=int, required=True, help="the approved workflow's id")
    build.add_argument("--dataset", action="append", default=[], dest="datasets")
    build.add_argument(
        "--input", action="append", default=[], dest="inputs", help="NAME=VALUE (VALUE may be JSON)"
    )
    build.add_argument("--description", default="")

    status = commands.add_parser("status", help="show a request and its jobs (all requests without an id)")
    status.add_argument("request", type=int, nargs="?")

    wait = commands.add_parser("wait", help="wait until every job of a request has finished or needs you")
    wait.add_argument("request", type=int)
    wait.add_argument("--until", action="append", help="a job state to wait for (repeatable)")
    wait.add_argument("--timeout", type=float, default=3600)
    wait.add_argument("--interval", type=float, default=10)

    download = commands.add_parser("download", help="download a request's released outputs")
    download.add_argument("request", type=int)
    download.add_argument("--to", default=".", help="folder to save into (one sub-folder per TRE)")

    combine = commands.add_parser("combine", help="combine a released table across the request's TREs")
    combine.add_argument("request", type=int)
    combine.add_argument(
        "name", nargs="?", help="the table to combine (without it: list what can be combined)"
    )
    return parser


def _inputs(pairs: list[str]) -> dict:
    inputs = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"fivesafes: --input {pair!r} is not NAME=VALUE")
        try:
            inputs[name] = json.loads(value)
        except ValueError:
            inputs[name] = value
    return inputs


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.url or not args.token:
        print(
            "fivesafes: give the portal address and a token (--url/--token or FIVESAFES_URL/FIVESAFES_TOKEN)",
            file=sys.stderr,
        )
        return 2
    try:
        with Client(args.url, args.token) as client:
            return _run(client, args)
    except APIError as error:
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        print(f"fivesafes: the portal refused (HTTP {error.status}): {detail}", file=sys.stderr)
        return 1
    except TimedOut as error:
        print(f"fivesafes: {error}", file=sys.stderr)
        return 3


def _run(client: Client, args) -> int:
    if args.command == "submit":
        request = client.submit(
            args.crate, project=args.project, tres=args.tres, title=args.title, description=args.description
        )
        _print_request(request, args.json)
    elif args.command == "build":
        request = client.build(
            project=args.project,
            tres=args.tres,
            title=args.title,
            workflow=args.workflow,
            datasets=args.datasets,
            inputs=_inputs(args.inputs),
            description=args.description,
        )
        _print_request(request, args.json)
    elif args.command == "status":
        if args.request is None:
            for request in client.requests():
                _print_request(request, args.json)
        else:
            _print_request(client.request(args.request), args.json)
    elif args.command == "wait":
        until = set(args.until) if args.until else FINISHED | NEEDS_YOU
        request = client.wait(
            args.request,
            until=until,
            timeout=args.timeout,
            interval=args.interval,
            on_change=None if args.json else lambda r: _print_request(r, False),
        )
        if args.json:
            _print_request(request, True)
    elif args.command == "combine":
        if args.name is None:
            for name in client.combinable(args.request):
                print(name)
            for release in client.combined(args.request):
                print(f"combination {release['id']}: {release['status']}")
        else:
            release = client.combine(args.request, args.name)
            print(
                json.dumps(release, indent=2)
                if args.json
                else f"combination {release['id']}: {release['status']}"
            )
    elif args.command == "download":
        saved = client.download_released(args.request, args.to)
        for path in saved:
            print(path)
        if not saved:
            print("Nothing released yet.", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
