"""Five Safes RO-Crates: safe unpacking, BagIt, validation, building, and recording review steps.

A pure-Python library (no Django) shared by the portal and the reference TRE agent:

* :mod:`.safezip` unpacks an untrusted crate ZIP; :mod:`.bag` verifies and re-seals BagIt bags;
* :mod:`.validator` checks metadata against the Five Safes RO-Crate profile (0.4 / 0.5-DRAFT);
* :mod:`.loader` reads and validates a ZIP, bag, crate folder or metadata file in one call;
* :mod:`.builder` makes request crates; :mod:`.writeback` records the review phases in received crates.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .bag import BagInfo, create_bag, regenerate_manifests, verify_bag
    from .builder import (
        BuiltCrate,
        InputFile,
        InputParameter,
        RequestSpec,
        TargetTre,
        build_request_crate,
        requested_datasets,
        target_tres,
    )
    from .errors import CrateRefused
    from .loader import load_metadata, parse_metadata, validate_path
    from .safezip import Limits, extract_bag
    from .validator import CHECKS, CheckInfo, Issue, Report, Severity, validate_metadata
    from .writeback import (
        Agent,
        Agreement,
        License,
        Organization,
        Person,
        Software,
        add_check_action,
        add_disclosure_check,
        add_download_action,
        add_publishing_action,
        add_signoff_action,
        add_validation_action,
        pack_bag,
        record_execution,
        strip_assess_actions,
        withhold_outputs,
        write_metadata,
    )

# Imported on first use (PEP 562), so a command that needs only the validator starts quickly:
# the builder pulls in rocrate and requests, which checking a crate never needs.
_SOURCES = {
    "Agent": "writeback",
    "Agreement": "writeback",
    "BagInfo": "bag",
    "BuiltCrate": "builder",
    "CHECKS": "validator",
    "CheckInfo": "validator",
    "CrateRefused": "errors",
    "InputFile": "builder",
    "InputParameter": "builder",
    "Issue": "validator",
    "License": "writeback",
    "Limits": "safezip",
    "Organization": "writeback",
    "Person": "writeback",
    "Report": "validator",
    "RequestSpec": "builder",
    "Severity": "validator",
    "Software": "writeback",
    "TargetTre": "builder",
    "add_check_action": "writeback",
    "add_disclosure_check": "writeback",
    "add_download_action": "writeback",
    "add_publishing_action": "writeback",
    "add_signoff_action": "writeback",
    "add_validation_action": "writeback",
    "build_request_crate": "builder",
    "create_bag": "bag",
    "extract_bag": "safezip",
    "load_metadata": "loader",
    "pack_bag": "writeback",
    "parse_metadata": "loader",
    "record_execution": "writeback",
    "regenerate_manifests": "bag",
    "requested_datasets": "builder",
    "strip_assess_actions": "writeback",
    "target_tres": "builder",
    "validate_metadata": "validator",
    "validate_path": "loader",
    "verify_bag": "bag",
    "withhold_outputs": "writeback",
    "write_metadata": "writeback",
}


def __getattr__(name: str) -> object:
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_SOURCES])


__all__ = [
    "CHECKS",
    "Agent",
    "Agreement",
    "BagInfo",
    "BuiltCrate",
    "CheckInfo",
    "CrateRefused",
    "InputFile",
    "InputParameter",
    "Issue",
    "License",
    "Limits",
    "Organization",
    "Person",
    "Report",
    "RequestSpec",
    "Severity",
    "Software",
    "TargetTre",
    "add_check_action",
    "add_disclosure_check",
    "add_download_action",
    "add_publishing_action",
    "add_signoff_action",
    "add_validation_action",
    "build_request_crate",
    "create_bag",
    "extract_bag",
    "load_metadata",
    "pack_bag",
    "parse_metadata",
    "record_execution",
    "regenerate_manifests",
    "requested_datasets",
    "strip_assess_actions",
    "target_tres",
    "validate_metadata",
    "validate_path",
    "verify_bag",
    "withhold_outputs",
    "write_metadata",
]
