"""The one definition of a plan's parameters: names, defaults, bounds, descriptions, server limits.

:class:`planner.search.PlanConfig` and :class:`planner.search.Budget` declare their fields with
:func:`knob`; everything else is derived from them — the checks here, the HTTP request model
(``protocol.plan``), the ``foresight plan`` flags and the server's plan limits. Adding a knob
touches one dataclass field (and its tests). Pure Python: no pydantic, no argparse beyond its
error type, nothing of ours.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from planner.errors import InvalidPlanRequest

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # what vLLM takes as a seed (int64)
T = TypeVar("T")


@dataclass(frozen=True)
class Knob:
    """What a plan parameter may be, and what it means."""

    description: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    limit: str | None = None  # the server setting (``Settings`` field) that caps it, if any


def knob(default: Any, description: str, *, ge: float | None = None, gt: float | None = None,
         le: float | None = None, min_length: int | None = None, max_length: int | None = None,
         limit: str | None = None) -> Any:
    """A dataclass field that is a plan parameter."""
    meta = {"knob": Knob(description, ge, gt, le, min_length, max_length, limit)}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Param:
    """One plan parameter as the edges see it: its name, its Python type, its default and its knob."""

    name: str
    type: Any  # the field's resolved annotation (int, float, int | None, an enum, str)
    default: Any
    knob: Knob

    @property
    def base(self) -> type:
        """The type without ``None`` (``int | None`` → int)."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        return args[0] if isinstance(self.type, types.UnionType) and len(args) == 1 else self.type  # type: ignore[no-any-return]

    @property
    def choices(self) -> list[str] | None:
        base = self.base
        return [m.value for m in base] if isinstance(base, type) and issubclass(base, enum.Enum) else None


def params(cls: type) -> list[Param]:
    """The knobs of a dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [Param(f.name, hints[f.name], f.default, f.metadata["knob"])
            for f in dataclasses.fields(cls) if "knob" in f.metadata]


def nested(cls: type) -> Iterator[tuple[str, type]]:
    """The fields of ``cls`` that are themselves dataclasses of knobs (PlanConfig.budget)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind) and params(kind):
            yield f.name, kind


def _bounds(k: Knob) -> str | None:
    """What a value outside the knob's bounds is told ("must be in [0, 1]")."""
    if k.ge is not None and k.le is not None:
        return f"must be in [{k.ge:g}, {k.le:g}]"
    if k.gt is not None and k.le is not None:
        return f"must be in ({k.gt:g}, {k.le:g}]"
    if k.ge is not None:
        return f"must be at least {k.ge:g}"
    if k.gt is not None:
        return "must be positive" if k.gt == 0 else f"must be greater than {k.gt:g}"
    if k.le is not None:
        return f"must be at most {k.le:g}"
    return None


def violation(p: Param, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``p``, or None."""
    k = p.knob
    if value is None:
        return None if p.type is not p.base else "must be given"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        low_ok = (k.ge is None or value >= k.ge) and (k.gt is None or value > k.gt)
        if not (low_ok and (k.le is None or value <= k.le)):
            return f"{_bounds(k)}, got {value}"
    if isinstance(value, str):
        if k.min_length is not None and len(value) < k.min_length:
            return f"must have at least {k.min_length} characters"
        if k.max_length is not None and len(value) > k.max_length:
            return f"must have at most {k.max_length} characters"
    return None


def check(obj: Any, prefix: str = "") -> None:
    """Raise :class:`InvalidPlanRequest` naming the first knob of ``obj`` that is out of bounds."""
    for p in params(type(obj)):
        why = violation(p, getattr(obj, p.name))
        if why is not None:
            raise InvalidPlanRequest(prefix + p.name, why)


def from_mapping(cls: type[T], data: Mapping[str, Any]) -> T:
    """``cls`` (PlanConfig or Budget) from wire values: enums from their values, nested knobs from
    mappings; unknown keys are ignored (the edges decide whether extras are an error)."""
    kwargs: dict[str, Any] = {}
    for p in params(cls):
        if p.name in data:
            value = data[p.name]
            if p.choices is not None and value is not None and not isinstance(value, p.base):
                try:
                    value = p.base(value)
                except ValueError:
                    raise InvalidPlanRequest(p.name, f"must be one of {p.choices}, got {value!r}") from None
            kwargs[p.name] = value
    for name, kind in nested(cls):
        if isinstance(data.get(name), Mapping):
            kwargs[name] = from_mapping(kind, data[name])
    return cls(**kwargs)


def arg_type(kind: Callable[[str], Any], *, ge: float | None = None, gt: float | None = None,
             le: float | None = None) -> Callable[[str], Any]:
    """An argparse ``type=``: a bad value is an argparse error that says why ("must be in [0, 1]")."""
    bound = Knob("", ge, gt, le)
    what = "a whole number" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        why = violation(Param("", kind, None, bound), value)
        if why is not None:
            raise argparse.ArgumentTypeError(why.replace(", got", ":"))
        return value

    parse.__name__ = kind.__name__ if isinstance(kind, type) else "value"  # argparse's "invalid int value"
    return parse


def param_type(p: Param) -> Callable[[str], Any]:
    """The argparse ``type=`` of a numeric knob."""
    return arg_type(p.base, ge=p.knob.ge, gt=p.knob.gt, le=p.knob.le)


number = arg_type(float)
unit = arg_type(float, ge=0, le=1)
positive = arg_type(int, ge=1)
