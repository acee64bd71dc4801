"""Five Safes RO-Crates: safe unpacking, BagIt, validation, building, and recording review steps.

A pure-Python library (no Django) shared by the portal and the reference TRE agent:

* :mod:`.safezip` unpacks an untrusted crate ZIP; :mod:`.bag` verifies and re-seals BagIt bags;
* :mod:`.validator` checks metadata against the Five Safes RO-Crate profile (0.4 / 0.5-DRAFT);
* :mod:`.loader` reads and validates a ZIP, bag, crate folder or metadata file in one call;
* :mod:`.builder` makes request crates; :mod:`.writeback` records the review phases in received crates.
"""

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
