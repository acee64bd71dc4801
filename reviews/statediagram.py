"""The job state diagram (Mermaid), generated from the transition table."""

from collections import defaultdict

from crates.models import Job
from crates.transitions import TERMINAL, TRANSITIONS

HEADER = """# Job states

Generated from `crates/transitions.py` by `python manage.py statediagram --write`; CI fails when this file
and the table differ. Each arrow is an allowed move, labelled with who may make it and the audit event it writes.
"""


def mermaid():
    lines = ["stateDiagram-v2", f"    [*] --> {Job.Status.AWAITING_REVIEW}: a valid crate version"]
    edges = defaultdict(list)
    for (source, target), move in TRANSITIONS.items():
        edges[(source, target)].append(move)
    for (source, target), moves in sorted(edges.items()):
        who = "/".join(sorted(set().union(*(m.actors for m in moves))))
        event = moves[0].event
        lines.append(f"    {source} --> {target}: {who} ({event})")
    for state in sorted(TERMINAL):
        lines.append(f"    {state} --> [*]")
    return "\n".join(lines)


def table():
    rows = ["| from | to | who may | audit event | what happens |", "|---|---|---|---|---|"]
    for (source, target), move in sorted(TRANSITIONS.items()):
        rows.append(
            f"| {source} | {target} | {', '.join(sorted(move.actors))} | `{move.event}` | {move.description} |"
        )
    return "\n".join(rows)


def document():
    return f"{HEADER}\n```mermaid\n{mermaid()}\n```\n\n## Every move\n\n{table()}\n"
