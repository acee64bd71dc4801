import dataclasses
from decimal import Decimal
from types import SimpleNamespace

import pytest

from reviews.sdc.policy import (
    ACRO_POLICY,
    DEFAULT_POLICY,
    OUTPUT_KINDS,
    DisclosurePolicy,
    PolicyError,
    strictest,
)

from .vectors import acro_config


def test_defaults_follow_the_design():
    policy = DisclosurePolicy()
    assert policy.min_cell_count == 10
    assert policy.zeros_disclosive is False
    assert (policy.dominance_n, policy.dominance_k, policy.p_ratio) == (2, Decimal("0.9"), Decimal("0.1"))
    assert policy.rounding_base == 0
    assert policy.permitted_output_kinds == OUTPUT_KINDS
    assert policy.required_checkers == 2
    assert policy.check_missing_values is False
    assert policy.min_degrees_of_freedom == 10


def test_acro_policy_is_acros_default_appetite():
    assert ACRO_POLICY.zeros_disclosive is True
    assert ACRO_POLICY == dataclasses.replace(DEFAULT_POLICY, zeros_disclosive=True)


@pytest.mark.parametrize("version", ["1.0.2", "0.4.12"])
def test_acro_config_json_gives_acros_appetite(version):
    assert DisclosurePolicy.from_acro_config(acro_config(version)) == ACRO_POLICY


def test_acro_config_keys_map_to_fields_and_others_are_ignored():
    policy = DisclosurePolicy.from_acro_config(
        {
            "safe_threshold": 5,
            "safe_nk_k": 0.75,
            "zeros_are_disclosive": False,
            "safe_round_base": 5,
            "suppress": True,
        }
    )
    assert (policy.min_cell_count, policy.dominance_k, policy.zeros_disclosive) == (5, Decimal("0.75"), False)
    assert policy.rounding_base == 0


def test_acro_config_with_bad_values_is_refused():
    with pytest.raises(PolicyError, match="min_cell_count"):
        DisclosurePolicy.from_acro_config({"safe_threshold": "ten"})
    with pytest.raises(PolicyError, match="JSON object"):
        DisclosurePolicy.from_acro_config(["safe_threshold", 10])


def test_policy_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_POLICY.min_cell_count = 5  # type: ignore[misc]


def test_version_is_stable_for_equal_values_and_changes_with_any_field():
    assert DisclosurePolicy().version == DEFAULT_POLICY.version
    # The registry stores k as Decimal("0.900"); a form may give 0.9 as a float.
    assert DisclosurePolicy(dominance_k=Decimal("0.900")).version == DisclosurePolicy(dominance_k=0.9).version
    changed = {
        "min_cell_count": 11,
        "zeros_disclosive": True,
        "dominance_n": 3,
        "dominance_k": Decimal("0.8"),
        "p_ratio": Decimal("0.2"),
        "rounding_base": 5,
        "permitted_output_kinds": {"table"},
        "required_checkers": 3,
        "check_missing_values": True,
        "min_degrees_of_freedom": 12,
    }
    assert set(changed) == set(DisclosurePolicy.field_names())
    versions = {DEFAULT_POLICY.with_overrides({name: value}).version for name, value in changed.items()}
    assert len(versions) == len(changed)
    assert DEFAULT_POLICY.version not in versions


def test_version_is_a_short_hex_digest():
    assert len(DEFAULT_POLICY.version) == 16
    int(DEFAULT_POLICY.version, 16)


def test_overrides_return_a_new_policy():
    stricter = DEFAULT_POLICY.with_overrides({"min_cell_count": 20, "dominance_k": 0.85})
    assert (stricter.min_cell_count, stricter.dominance_k) == (20, Decimal("0.85"))
    assert DEFAULT_POLICY.min_cell_count == 10


def test_overrides_accept_the_registry_name_for_checkers():
    assert DEFAULT_POLICY.with_overrides({"required_output_checkers": 3}).required_checkers == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_cells": 5}, "'min_cells' is not a policy field; use one of: min_cell_count"),
        ({"min_cell_count": 0}, "min_cell_count must be at least 1, got 0"),
        ({"min_cell_count": 10.5}, "min_cell_count must be a whole number, got 10.5"),
        ({"min_cell_count": True}, "min_cell_count must be a whole number, got True"),
        ({"dominance_n": 0}, "dominance_n must be at least 1"),
        ({"dominance_k": 0}, "dominance_k must be more than 0 and at most 1"),
        ({"dominance_k": 1.5}, "dominance_k must be more than 0 and at most 1"),
        ({"dominance_k": "high"}, "dominance_k must be a number between 0 and 1"),
        ({"dominance_k": float("nan")}, "dominance_k must be a finite number"),
        ({"p_ratio": -0.1}, "p_ratio must be at least 0 and at most 1"),
        ({"rounding_base": -5}, "rounding_base must be at least 0"),
        ({"zeros_disclosive": "yes"}, "zeros_disclosive must be true or false"),
        ({"permitted_output_kinds": ["table", "dataset"]}, "unknown kind\\(s\\) dataset"),
        ({"permitted_output_kinds": "table"}, "must be a list of kinds"),
        ({"required_checkers": 0}, "required_checkers must be at least 1"),
        ({"required_checkers": 2, "required_output_checkers": 3}, "overridden twice"),
    ],
)
def test_bad_overrides_are_refused_with_a_clear_message(overrides, message):
    with pytest.raises(PolicyError, match=message):
        DEFAULT_POLICY.with_overrides(overrides)


def test_overrides_must_be_a_mapping():
    with pytest.raises(PolicyError, match="mapping"):
        DEFAULT_POLICY.with_overrides([("min_cell_count", 5)])  # type: ignore[arg-type]


def test_p_ratio_of_zero_and_k_of_one_are_allowed():
    policy = DEFAULT_POLICY.with_overrides({"p_ratio": 0, "dominance_k": 1})
    assert (policy.p_ratio, policy.dominance_k) == (0, 1)


def _tre_defaults():
    return {
        "min_cell_count": 10,
        "zeros_disclosive": False,
        "dominance_n": 2,
        "dominance_k": Decimal("0.900"),
        "p_ratio": Decimal("0.100"),
        "rounding_base": 0,
        "required_output_checkers": 2,
    }


def test_from_record_reads_a_tres_fields():
    tre = SimpleNamespace(
        min_cell_count=20,
        zeros_disclosive=True,
        dominance_n=3,
        dominance_k=Decimal("0.800"),
        p_ratio=Decimal("0.150"),
        rounding_base=5,
        required_output_checkers=3,
        permitted_output_kinds=["table", "figure"],
    )
    policy = DisclosurePolicy.from_record(tre)
    assert policy == DisclosurePolicy(
        min_cell_count=20,
        zeros_disclosive=True,
        dominance_n=3,
        dominance_k=Decimal("0.8"),
        p_ratio=Decimal("0.15"),
        rounding_base=5,
        permitted_output_kinds=frozenset({"table", "figure"}),
        required_checkers=3,
    )


def test_from_record_reads_no_kinds_as_unrestricted():
    tre = SimpleNamespace(**{**_tre_defaults(), "permitted_output_kinds": []})
    assert DisclosurePolicy.from_record(tre).permitted_output_kinds == OUTPUT_KINDS


def test_an_empty_set_of_kinds_in_a_policy_permits_nothing():
    assert DisclosurePolicy(permitted_output_kinds=frozenset()).permitted_output_kinds == frozenset()


def test_strictest_takes_the_strictest_value_of_each_field():
    a = DisclosurePolicy(
        min_cell_count=10,
        dominance_n=2,
        dominance_k=Decimal("0.9"),
        p_ratio=Decimal("0.1"),
        rounding_base=5,
        permitted_output_kinds=frozenset({"table", "figure", "model"}),
        required_checkers=2,
        min_degrees_of_freedom=10,
    )
    b = DisclosurePolicy(
        min_cell_count=7,
        zeros_disclosive=True,
        dominance_n=3,
        dominance_k=Decimal("0.95"),
        p_ratio=Decimal("0.2"),
        rounding_base=3,
        permitted_output_kinds=frozenset({"table", "model", "report"}),
        required_checkers=3,
        check_missing_values=True,
        min_degrees_of_freedom=20,
    )
    combined = strictest(a, b)
    assert combined == DisclosurePolicy(
        min_cell_count=10,
        zeros_disclosive=True,
        dominance_n=3,
        dominance_k=Decimal("0.9"),
        p_ratio=Decimal("0.2"),
        rounding_base=15,
        permitted_output_kinds=frozenset({"table", "model"}),
        required_checkers=3,
        check_missing_values=True,
        min_degrees_of_freedom=20,
    )
    assert strictest(b, a) == combined


def test_strictest_ignores_policies_without_rounding():
    assert strictest(DEFAULT_POLICY, DisclosurePolicy(rounding_base=5)).rounding_base == 5
    assert strictest(DEFAULT_POLICY, DEFAULT_POLICY).rounding_base == 0


def test_strictest_of_one_policy_is_that_policy():
    assert strictest(ACRO_POLICY) == ACRO_POLICY


def test_strictest_needs_policies():
    with pytest.raises(PolicyError, match="at least one"):
        strictest()
    with pytest.raises(PolicyError, match="DisclosurePolicy"):
        strictest(DEFAULT_POLICY, {"min_cell_count": 5})  # type: ignore[arg-type]


def test_as_dict_is_json_ready_and_describe_reads_plainly():
    data = DEFAULT_POLICY.as_dict()
    assert data["dominance_k"] == "0.9"
    assert data["permitted_output_kinds"] == sorted(OUTPUT_KINDS)
    assert "min cell count 10" in DEFAULT_POLICY.describe()
    assert "zeros not disclosive" in DEFAULT_POLICY.describe()
