"""Disclosure-control policy: the risk appetite a TRE sets for the outputs it releases.

A `DisclosurePolicy` is an immutable value. Every verdict records the `version` of the policy it was
reached under, so a decision can always be traced back to the exact thresholds in force.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from portal.errors import Refusal

#: The kinds of output a TRE can permit; the same vocabulary as the registry's forms.
OUTPUT_KINDS: frozenset[str] = frozenset({"table", "figure", "model", "report", "code"})

#: ACRO's `default.yaml`, the risk appetite its published verdicts were produced with.
ACRO_DEFAULT_CONFIG: Mapping[str, Any] = MappingProxyType(
    {
        "safe_threshold": 10,
        "safe_dof_threshold": 10,
        "safe_nk_n": 2,
        "safe_nk_k": 0.9,
        "safe_pratio_p": 0.1,
        "check_missing_values": False,
        "zeros_are_disclosive": True,
    }
)

# Field names accepted by `with_overrides` besides the dataclass's own: the registry stores the number
# of checkers as `required_output_checkers`, and agreements override it under that name.
_ALIASES = {"required_output_checkers": "required_checkers"}

_ACRO_KEYS = {
    "safe_threshold": "min_cell_count",
    "safe_dof_threshold": "min_degrees_of_freedom",
    "safe_nk_n": "dominance_n",
    "safe_nk_k": "dominance_k",
    "safe_pratio_p": "p_ratio",
    "check_missing_values": "check_missing_values",
    "zeros_are_disclosive": "zeros_disclosive",
}


class PolicyError(Refusal, ValueError):
    """A policy value or override is not acceptable; the message names the field and the problem."""


def _whole_number(name: str, value: Any, minimum: int) -> int:
    # bool is an int subclass; `True` as a cell count is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(f"{name} must be a whole number, got {value!r}.")
    if value < minimum:
        raise PolicyError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _fraction(name: str, value: Any, *, lowest: Decimal, inclusive_low: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PolicyError(f"{name} must be a number between 0 and 1, got {value!r}.")
    try:
        # str() first so that a float such as 0.9 becomes Decimal("0.9"), not its binary expansion.
        number = Decimal(str(value))
    except InvalidOperation:
        raise PolicyError(f"{name} must be a number between 0 and 1, got {value!r}.") from None
    if not number.is_finite():
        raise PolicyError(f"{name} must be a finite number, got {value!r}.")
    too_low = number < lowest if inclusive_low else number <= lowest
    if too_low or number > 1:
        bound = "at least" if inclusive_low else "more than"
        raise PolicyError(f"{name} must be {bound} {lowest} and at most 1, got {value!r}.")
    # normalize() makes 0.900 and 0.9 the same value, so they hash to the same policy version.
    return number.normalize()


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{name} must be true or false, got {value!r}.")
    return value


def _kinds(value: Any) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError(f"permitted_output_kinds must be a list of kinds, got {value!r}.")
    kinds = frozenset(value)
    unknown = sorted(str(kind) for kind in kinds - OUTPUT_KINDS)
    if unknown:
        raise PolicyError(
            f"permitted_output_kinds has unknown kind(s) {', '.join(unknown)}; "
            f"known kinds are {', '.join(sorted(OUTPUT_KINDS))}."
        )
    return kinds


@dataclass(frozen=True)
class DisclosurePolicy:
    """Thresholds for statistical disclosure control.

    Invariants (enforced on construction, so every instance is valid):
    - `min_cell_count` >= 1: a count cell fails when it is below this (a zero cell therefore always fails).
    - `zeros_disclosive`: when true, a zero count additionally fails the `zeros` rule (class disclosure).
    - `dominance_n` >= 1 and 0 < `dominance_k` <= 1: a magnitude cell fails when its `dominance_n` largest
      contributions make up at least `dominance_k` of its total.
    - 0 <= `p_ratio` <= 1: a magnitude cell fails when (total - x1 - x2) / x1 < `p_ratio`.
    - `rounding_base` >= 0: when positive, every published count must be a multiple of it.
    - `permitted_output_kinds` is a subset of `OUTPUT_KINDS`; an empty set permits nothing.
    - `required_checkers` >= 1 human output checkers must approve a file before release.
    - `min_degrees_of_freedom` >= 0: a model fails when its residual degrees of freedom are below it.
    - `dominance_k` and `p_ratio` are normalised Decimals, so equal policies have equal `version`s.
    """

    min_cell_count: int = 10
    zeros_disclosive: bool = False
    dominance_n: int = 2
    dominance_k: Decimal = Decimal("0.9")
    p_ratio: Decimal = Decimal("0.1")
    rounding_base: int = 0
    permitted_output_kinds: frozenset[str] = field(default=OUTPUT_KINDS)
    required_checkers: int = 2
    check_missing_values: bool = False
    min_degrees_of_freedom: int = 10

    def __post_init__(self) -> None:
        coerced = {
            "min_cell_count": _whole_number("min_cell_count", self.min_cell_count, 1),
            "zeros_disclosive": _flag("zeros_disclosive", self.zeros_disclosive),
            "dominance_n": _whole_number("dominance_n", self.dominance_n, 1),
            "dominance_k": _fraction("dominance_k", self.dominance_k, lowest=Decimal(0), inclusive_low=False),
            "p_ratio": _fraction("p_ratio", self.p_ratio, lowest=Decimal(0), inclusive_low=True),
            "rounding_base": _whole_number("rounding_base", self.rounding_base, 0),
            "permitted_output_kinds": _kinds(self.permitted_output_kinds),
            "required_checkers": _whole_number("required_checkers", self.required_checkers, 1),
            "check_missing_values": _flag("check_missing_values", self.check_missing_values),
            "min_degrees_of_freedom": _whole_number("min_degrees_of_freedom", self.min_degrees_of_freedom, 0),
        }
        for name, value in coerced.items():
            # The dataclass is frozen; coercion happens once, here, before anyone can see the instance.
            object.__setattr__(self, name, value)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def with_overrides(self, overrides: Mapping[str, Any]) -> DisclosurePolicy:
        """Return a copy with some fields replaced, e.g. a data-access agreement's stricter threshold.

        Keys are field names (or `required_output_checkers`, the registry's name for `required_checkers`).
        Raises `PolicyError` naming the key for an unknown key or an unacceptable value.
        """
        if not isinstance(overrides, Mapping):
            raise PolicyError(f"Overrides must be a mapping of field names to values, got {overrides!r}.")
        known = self.field_names()
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            name = _ALIASES.get(key, key)
            if name not in known:
                raise PolicyError(f"{key!r} is not a policy field; use one of: {', '.join(known)}.")
            if name in changes:
                raise PolicyError(f"{name} is overridden twice (as {key!r} and under another name).")
            changes[name] = value
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_acro_config(cls, config: Mapping[str, Any]) -> DisclosurePolicy:
        """The policy equivalent to an ACRO risk appetite (`config.json` or `default.yaml` keys).

        Keys ACRO uses for things other than checks (suppression, rounding mitigation, federated mode,
        blocked extensions, survival plots) are ignored; missing keys take ACRO's defaults.
        ACRO requires no rounding and restricts no output kinds, so neither does the result.
        """
        if not isinstance(config, Mapping):
            raise PolicyError(f"An ACRO config must be a JSON object, got {type(config).__name__}.")
        merged = {**ACRO_DEFAULT_CONFIG, **{k: v for k, v in config.items() if k in _ACRO_KEYS}}
        return cls().with_overrides({_ACRO_KEYS[key]: value for key, value in merged.items()})

    @classmethod
    def from_record(cls, record: Any) -> DisclosurePolicy:
        """The policy held on a registry record (a TRE), read by attribute name.

        An empty `permitted_output_kinds` on the record means the TRE has not restricted kinds, so every
        kind is permitted; within a policy, by contrast, an empty set permits nothing.
        """
        kinds = getattr(record, "permitted_output_kinds", None) or OUTPUT_KINDS
        return cls(
            min_cell_count=record.min_cell_count,
            zeros_disclosive=record.zeros_disclosive,
            dominance_n=record.dominance_n,
            dominance_k=record.dominance_k,
            p_ratio=record.p_ratio,
            rounding_base=record.rounding_base,
            permitted_output_kinds=frozenset(kinds),
            required_checkers=record.required_output_checkers,
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field (Decimals as strings, kinds sorted)."""
        values: dict[str, Any] = {}
        for name in self.field_names():
            value = getattr(self, name)
            if isinstance(value, Decimal):
                value = format(value, "f")
            elif isinstance(value, frozenset):
                value = sorted(value)
            values[name] = value
        return values

    @property
    def version(self) -> str:
        """A stable identifier of the policy's values: equal policies share it, any change alters it."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line a person can read, e.g. in a report header."""
        parts = [
            f"min cell count {self.min_cell_count}",
            "zeros disclosive" if self.zeros_disclosive else "zeros not disclosive",
            f"dominance n={self.dominance_n} k={format(self.dominance_k, 'f')}",
            f"p-ratio {format(self.p_ratio, 'f')}",
            f"rounding to base {self.rounding_base}" if self.rounding_base else "no rounding",
            f"min dof {self.min_degrees_of_freedom}",
            "missing values checked" if self.check_missing_values else "missing values not checked",
            "kinds " + (", ".join(sorted(self.permitted_output_kinds)) or "none"),
            f"{self.required_checkers} checker(s)",
        ]
        return "; ".join(parts)


DEFAULT_POLICY = DisclosurePolicy()

#: ACRO's default risk appetite as a policy (zeros disclosive, unlike the portal's default).
ACRO_POLICY = DisclosurePolicy.from_acro_config({})


def strictest(*policies: DisclosurePolicy) -> DisclosurePolicy:
    """The policy that satisfies every given policy at once, e.g. for an output combined across TREs.

    Per field: the highest thresholds (cell count, dominance n, p-ratio, checkers, dof), the lowest
    dominance k, zeros and missing-value checks if any policy wants them, the kinds all policies permit,
    and a rounding base that is a multiple of every non-zero base (their least common multiple).
    """
    if not policies:
        raise PolicyError("strictest() needs at least one policy.")
    for policy in policies:
        if not isinstance(policy, DisclosurePolicy):
            raise PolicyError(f"strictest() takes DisclosurePolicy values, got {type(policy).__name__}.")
    bases = [p.rounding_base for p in policies if p.rounding_base]
    return DisclosurePolicy(
        min_cell_count=max(p.min_cell_count for p in policies),
        zeros_disclosive=any(p.zeros_disclosive for p in policies),
        # More contributors summed gives a larger share, so a larger n fails more cells.
        dominance_n=max(p.dominance_n for p in policies),
        dominance_k=min(p.dominance_k for p in policies),
        p_ratio=max(p.p_ratio for p in policies),
        rounding_base=math.lcm(*bases) if bases else 0,
        permitted_output_kinds=frozenset.intersection(*(p.permitted_output_kinds for p in policies)),
        required_checkers=max(p.required_checkers for p in policies),
        check_missing_values=any(p.check_missing_values for p in policies),
        min_degrees_of_freedom=max(p.min_degrees_of_freedom for p in policies),
    )
