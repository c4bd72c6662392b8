"""Storage lifecycle presets of the archive bucket: where media live after upload, and what that costs.

Why presets instead of free-form transitions: each storage class has a minimum billed stay (Glacier Instant
Retrieval 90 days, Deep Archive 180), so most hand-written chains pay for days the objects are no longer there
(the old default moved media to Glacier IR at 7 days and on to Deep Archive at 14, paying IR's 90-day minimum for a
7-day stay). Every preset here respects the minimums: media are never moved out of a class before its minimum.

S3 runs lifecycle rules once a day and moves an object at the first midnight UTC after its age reaches the rule's
days, so a transition at 0 days is a Standard stay of under one day: the night's uploads wait in Standard for the
next midnight UTC. `scripts/estimate_cost.py` prices that stay as `days + 1` days (an upper bound).

Pure data (no CDK import): the cost estimator and the configuration file loader read it without starting Node.
"""

from __future__ import annotations

from dataclasses import dataclass

# Storage classes by their CloudFormation names (also the keys of scripts/prices.json's per-GB prices).
GLACIER_IR = "GLACIER_IR"
DEEP_ARCHIVE = "DEEP_ARCHIVE"
# Minimum billed stay per class (S3 pricing page): moving or deleting earlier still bills the remaining days.
MINIMUM_DAYS = {GLACIER_IR: 90, DEEP_ARCHIVE: 180}


@dataclass(frozen=True)
class Transition:
    storage_class: str
    after_days: int


@dataclass(frozen=True)
class LifecyclePolicy:
    name: str
    transitions: tuple[Transition, ...]
    summary: str

    def days_in_standard(self) -> int:
        """Days after upload at which media leave S3 Standard (the first transition); none: forever."""
        return self.transitions[0].after_days if self.transitions else -1


DEFAULT_LIFECYCLE = "deep-archive"

LIFECYCLES: dict[str, LifecyclePolicy] = {
    policy.name: policy
    for policy in (
        LifecyclePolicy(
            "deep-archive",
            (Transition(DEEP_ARCHIVE, 0),),
            "Deep Archive from the first midnight UTC after upload: the cheapest storage (0.00099 USD/GB-month "
            "in eu-west-1); a restore takes up to 12 hours (48 in bulk) and is billed per GB",
        ),
        LifecyclePolicy(
            "glacier-ir-then-deep-archive",
            (Transition(GLACIER_IR, 0), Transition(DEEP_ARCHIVE, MINIMUM_DAYS[GLACIER_IR])),
            "Glacier Instant Retrieval for the first 90 days (its minimum: millisecond access to recent media), "
            "then Deep Archive",
        ),
        LifecyclePolicy(
            "glacier-instant-retrieval",
            (Transition(GLACIER_IR, 0),),
            "Glacier Instant Retrieval for good: millisecond access to everything, about 4x Deep Archive",
        ),
        LifecyclePolicy(
            "standard",
            (),
            "S3 Standard for good: no transition, about 23x Deep Archive (for short-lived test deployments)",
        ),
    )
}


def lifecycle(name: str) -> LifecyclePolicy:
    if name not in LIFECYCLES:
        raise ValueError(f"unknown lifecycle {name!r}; expected one of {', '.join(LIFECYCLES)}")
    return LIFECYCLES[name]
