"""Statistical disclosure control for outputs leaving a TRE: policies, automatic checks, ACRO results.

Pure Python with no Django dependency: the management command and background tasks wrap it.

    from reviews.sdc import DisclosurePolicy, check_paths
    report = check_paths(["outputs/"], DisclosurePolicy(min_cell_count=10))
    report.verdict, report.to_dict()
"""

from reviews.sdc.acro import ACRO_CHECK_RULES, AcroResults, is_supported_version, parse_results, read_results
from reviews.sdc.checks import (
    Contributions,
    check_contributions,
    check_counts,
    check_degrees_of_freedom,
    check_file,
    check_table_bytes,
    kind_for,
    residual_degrees_of_freedom,
)
from reviews.sdc.policy import (
    ACRO_POLICY,
    DEFAULT_POLICY,
    OUTPUT_KINDS,
    DisclosurePolicy,
    PolicyError,
    strictest,
)
from reviews.sdc.report import Report, Skipped, Unreadable, check_paths
from reviews.sdc.verdicts import RULE_TEXT, Cell, FileResult, Flag, Rule, Verdict, redact, worst

__all__ = [
    "ACRO_CHECK_RULES",
    "RULE_TEXT",
    "ACRO_POLICY",
    "DEFAULT_POLICY",
    "OUTPUT_KINDS",
    "AcroResults",
    "Cell",
    "Contributions",
    "DisclosurePolicy",
    "FileResult",
    "Flag",
    "PolicyError",
    "Report",
    "Rule",
    "Skipped",
    "Unreadable",
    "Verdict",
    "check_contributions",
    "check_counts",
    "check_degrees_of_freedom",
    "check_file",
    "check_paths",
    "redact",
    "check_table_bytes",
    "is_supported_version",
    "kind_for",
    "parse_results",
    "read_results",
    "residual_degrees_of_freedom",
    "strictest",
    "worst",
]
