"""The four apps are layers and imports flow one way (docs/adr/0005-layers.md)."""

import subprocess
import sys
from pathlib import Path

from crates import signals as crate_signals
from portal import signals as portal_signals
from reviews import signals as review_signals

ROOT = Path(__file__).resolve().parents[2]


def test_no_app_imports_a_higher_one():
    """import-linter's layers contract (pyproject.toml), imports inside functions included."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603  (our own tool, fixed arguments)
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_handover_has_its_receiver_in_the_higher_app():
    for signal in (
        crate_signals.review_needed,
        crate_signals.results_returned,
        crate_signals.leases_swept,
        review_signals.publication_changed,
        portal_signals.project_approved,
    ):
        assert signal.has_listeners(), signal
