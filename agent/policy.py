"""The TRE's disclosure policy as the portal sends it with each job, and what the agent makes of it.

The portal is where the TRE's output policy lives; a job's claim carries the part an agent applies
before anything leaves the TRE (``min_cell_count``, ``zeros_disclosive``, ``rounding_base``). The
agent's own ``agent.toml`` may only be stricter: the effective threshold is the higher of the two and
the effective rounding base a multiple of both (their least common multiple). A job whose policy is
missing or malformed, or asks for what an executor cannot do, is refused before it runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DisclosureRules", "PolicyNotHonoured", "effective_rules"]


class PolicyNotHonoured(ValueError):
    """The job's disclosure policy cannot be honoured; the message says why."""


@dataclass(frozen=True)
class DisclosureRules:
    """The disclosure rules an agent applies to the counts it writes."""

    min_cell_count: int
    zeros_disclosive: bool
    rounding_base: int

    @classmethod
    def from_claim(cls, policy: Any) -> DisclosureRules:
        """The rules in a claim's ``policy``; raises `PolicyNotHonoured` if they cannot be read."""
        if not isinstance(policy, Mapping) or not policy:
            raise PolicyNotHonoured("the portal sent no disclosure policy with the job")
        threshold, zeros, base = (
            policy.get(k) for k in ("min_cell_count", "zeros_disclosive", "rounding_base")
        )
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise PolicyNotHonoured(
                f"the policy's minimum cell count {threshold!r} is not a whole number >= 1"
            )
        if not isinstance(zeros, bool):
            raise PolicyNotHonoured(f"the policy's zeros setting {zeros!r} is not true or false")
        if isinstance(base, bool) or not isinstance(base, int) or base < 0:
            raise PolicyNotHonoured(f"the policy's rounding base {base!r} is not a whole number >= 0")
        return cls(threshold, zeros, base)


def effective_rules(
    portal: DisclosureRules, *, local_threshold: int, local_base: int, zeros_written: bool
) -> tuple[int, int]:
    """The (threshold, rounding base) to apply: the stricter of the portal's policy and ``agent.toml``.

    ``zeros_written`` says whether the executor writes suppressed or empty counts as 0; it cannot then
    honour a policy under which zeros are disclosive.
    """
    if portal.zeros_disclosive and zeros_written:
        raise PolicyNotHonoured(
            "the TRE's policy makes zero counts disclosive, and this executor reports suppressed counts as 0"
        )
    threshold = max(portal.min_cell_count, local_threshold)
    bases = [base for base in (portal.rounding_base, local_base) if base]
    return threshold, math.lcm(*bases) if bases else 1
