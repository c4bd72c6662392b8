"""Conditions and updates as small objects that render to DynamoDB expressions AND evaluate in Python.

Why both: the transition rules (who may claim, who may complete, when a report may be claimed) are written once,
as conditions built from named parts (`pipeline.state.conditions`). The DynamoDB backend renders them into
`ConditionExpression` / `UpdateExpression` text with placeholders; the in-memory backend evaluates the very
same objects over a plain item. So there is no second copy of the state machine to drift from the first.

Items here are *plain* dictionaries (what boto3's TypeDeserializer gives: numbers are `Decimal`); the DynamoDB
backend (de)serialises at its boundary. Every attribute name goes through a `#name` placeholder: `status` and
`size` are DynamoDB reserved words.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

Item = dict[str, Any]


def normalise(value: Any) -> Any:
    """The one stored form of a value: enums by value, numbers as Decimal (floats rounded to 6 places)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bool, Decimal)):
        return value
    if isinstance(value, float):
        return Decimal(str(round(value, 6)))
    if isinstance(value, int):
        return Decimal(value)
    return value


class Placeholders:
    """`#name` and `:vN` placeholders of one request (values stay plain; the backend serialises them)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        placeholder = f"#{attr}"
        self.names[placeholder] = attr
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = normalise(value)
        return placeholder


# --- conditions -------------------------------------------------------------------------------------------------


class Condition:
    """A condition on one item (None: there is no item). Join with `&` and `|`."""

    def render(self, p: Placeholders) -> str:
        raise NotImplementedError

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        raise NotImplementedError

    def __and__(self, other: Condition) -> Condition:
        return All((self, other))

    def __or__(self, other: Condition) -> Condition:
        return AnyOf((self, other))


@dataclass(frozen=True)
class Exists(Condition):
    attr: str
    present: bool = True

    def render(self, p: Placeholders) -> str:
        function = "attribute_exists" if self.present else "attribute_not_exists"
        return f"{function}({p.name(self.attr)})"

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return (item is not None and self.attr in item) == self.present


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Compare(Condition):
    """`attr <op> value`; false when the attribute is missing or of another type, as in DynamoDB."""

    attr: str
    op: str
    value: Any

    def render(self, p: Placeholders) -> str:
        return f"{p.name(self.attr)} {self.op} {p.value(self.value)}"

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        if item is None or self.attr not in item:
            return False
        current, wanted = item[self.attr], normalise(self.value)
        if type(current) is not type(wanted):
            return False
        return _ORDERINGS[self.op](current, wanted)


@dataclass(frozen=True)
class SizeBelow(Condition):
    """`size(attr) < limit` (a set's or string's length); false when the attribute is missing, as in DynamoDB."""

    attr: str
    limit: int

    def render(self, p: Placeholders) -> str:
        return f"size({p.name(self.attr)}) < {p.value(self.limit)}"

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return item is not None and self.attr in item and len(item[self.attr]) < self.limit


@dataclass(frozen=True)
class In(Condition):
    attr: str
    options: tuple[Any, ...]

    def render(self, p: Placeholders) -> str:
        return f"{p.name(self.attr)} IN ({', '.join(p.value(option) for option in self.options)})"

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return item is not None and item.get(self.attr) in {normalise(option) for option in self.options}


@dataclass(frozen=True)
class BeginsWith(Condition):
    attr: str
    prefix: str

    def render(self, p: Placeholders) -> str:
        return f"begins_with({p.name(self.attr)}, {p.value(self.prefix)})"

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        value = None if item is None else item.get(self.attr)
        return isinstance(value, str) and value.startswith(self.prefix)


@dataclass(frozen=True)
class _Join(Condition):
    parts: tuple[Condition, ...]
    word: ClassVar[str]
    combine: ClassVar[Callable[[Iterable[bool]], bool]]

    def render(self, p: Placeholders) -> str:
        return f" {self.word} ".join(f"({part.render(p)})" for part in self.parts)

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return type(self).combine(part.holds(item) for part in self.parts)


class All(_Join):
    word = "AND"
    combine = staticmethod(all)


class AnyOf(_Join):
    word = "OR"
    combine = staticmethod(any)


@dataclass(frozen=True)
class Named(Condition):
    """A sub-condition with a name (`lease_expired`, `owned_by`...), so a write reads as its rule."""

    name: str
    inner: Condition

    def render(self, p: Placeholders) -> str:
        return self.inner.render(p)

    def holds(self, item: Mapping[str, Any] | None) -> bool:
        return self.inner.holds(item)

    def __repr__(self) -> str:
        return self.name


# --- updates ----------------------------------------------------------------------------------------------------


@dataclass
class Update:
    """The actions of one UpdateItem: SET, REMOVE, ADD, DELETE (from a set) and
    `attr = if_not_exists(attr, start) + step`."""

    sets: list[tuple[str, Any]] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    adds: list[tuple[str, Any]] = field(default_factory=list)
    deletes: list[tuple[str, set[str]]] = field(default_factory=list)
    increments: list[tuple[str, Any, Any]] = field(default_factory=list)

    def set(self, attr: str, value: Any) -> None:
        self.sets.append((attr, value))

    def set_or_remove(self, attr: str, value: Any) -> None:
        if value is None:
            self.remove(attr)
        else:
            self.set(attr, value)

    def remove(self, *attrs: str) -> None:
        self.removes.extend(attrs)

    def add(self, attr: str, amount: int | float | Decimal | frozenset[str]) -> None:
        """ADD a number to a number, or the members of a string set to a set (DynamoDB's two ADDs)."""
        self.adds.append((attr, set(amount) if isinstance(amount, frozenset | set) else amount))

    def delete(self, attr: str, members: frozenset[str]) -> None:
        """DELETE members from a string set (an emptied set disappears, as in DynamoDB)."""
        self.deletes.append((attr, set(members)))

    def increment(self, attr: str, *, start: int = 0, step: int = 1) -> None:
        """`attr = if_not_exists(attr, start) + step` (step 0: keep it, or start it at `start`)."""
        self.increments.append((attr, start, step))

    def __bool__(self) -> bool:
        return bool(self.sets or self.removes or self.adds or self.deletes or self.increments)

    def render(self, p: Placeholders) -> str:
        assignments = [f"{p.name(attr)} = {p.value(value)}" for attr, value in self.sets]
        assignments += [
            f"{p.name(attr)} = if_not_exists({p.name(attr)}, {p.value(start)}) + {p.value(step)}"
            for attr, start, step in self.increments
        ]
        clauses = []
        if assignments:
            clauses.append("SET " + ", ".join(assignments))
        if self.removes:
            clauses.append("REMOVE " + ", ".join(p.name(attr) for attr in self.removes))
        if self.adds:
            clauses.append("ADD " + ", ".join(f"{p.name(attr)} {p.value(amount)}" for attr, amount in self.adds))
        if self.deletes:
            clauses.append("DELETE " + ", ".join(f"{p.name(attr)} {p.value(gone)}" for attr, gone in self.deletes))
        return " ".join(clauses)

    def apply(self, old: Mapping[str, Any] | None, key: Mapping[str, Any]) -> Item:
        """The item after this update, as DynamoDB computes it: every right-hand side reads the old item."""
        before = dict(old) if old is not None else dict(key)
        after = dict(before)
        for attr, value in self.sets:
            after[attr] = normalise(value)
        for attr, start, step in self.increments:
            after[attr] = normalise(before.get(attr, normalise(start))) + normalise(step)
        for attr in self.removes:
            after.pop(attr, None)
        for attr, amount in self.adds:
            if isinstance(amount, set):
                after[attr] = set(before.get(attr, set())) | amount
            else:
                after[attr] = before.get(attr, Decimal(0)) + normalise(amount)
        for attr, gone in self.deletes:
            left = set(after.get(attr, set())) - gone
            if left:
                after[attr] = left
            else:
                after.pop(attr, None)
        return after
