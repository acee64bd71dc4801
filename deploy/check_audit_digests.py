# ruff: noqa: INP001 (a script run in the portal container, not a module)
"""Check the portal's audit trail against audit digests archived before a restore.

    docker compose exec -T web python deploy/check_audit_digests.py - < audit-digests.json

The input is the portal's own /public/audit/digests.json, saved somewhere the portal cannot write
(see docs/deploy.md, "Backups"). The chain is verified first, as `manage.py verify_audit` does; then
each archived digest is looked up: the event it counted must still carry the hash it published.

Exit status
    0  the chain is intact and every archived digest matches
    1  the chain is broken, or a digest does not match: history was rewritten
    2  the digests file cannot be read
    3  the chain is intact and matches every digest it reaches, but the newest digests count events
       the database no longer has: the backup predates them and those events are lost
"""

import json
import os
import sys
from pathlib import Path


def read_digests(source):
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return [
        (str(d.get("date", "?")), int(d["count"]), str(d["hash"]).strip().lower())
        for d in json.loads(text)["digests"]
    ]


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} DIGESTS.json|-", file=sys.stderr)
        return 2
    try:
        digests = read_digests(argv[1])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot read the archived digests: {exc}", file=sys.stderr)
        return 2

    import django
    from django.apps import apps

    if not apps.ready:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, beside deploy/
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        django.setup()
    from portal import audit
    from transparency.digests import check_digest

    problem = audit.verify_chain()
    if problem is not None:
        print(f"BROKEN: the audit chain fails verification at {problem}")
        return 1
    head = audit.head_digest()
    print(f"The audit chain is intact: {head['count']} events, head {head['hash']}.")

    results = {"match": [], "mismatch": [], "missing": []}
    for day, count, hash_ in digests:
        # A digest of an empty chain vouches for nothing.
        result = "match" if count < 1 else check_digest(count, hash_).result
        results[result].append(f"{day} (event {count})")
    print(f"{len(results['match'])} of {len(digests)} archived digests match.")
    if results["mismatch"]:
        print("MISMATCH: these digests no longer match: " + ", ".join(results["mismatch"]))
        return 1
    if results["missing"]:
        print(
            "MISSING: the database ends before these digests, so events recorded after the backup "
            "are lost: " + ", ".join(results["missing"])
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
