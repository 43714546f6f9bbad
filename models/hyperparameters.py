"""Typed hyper-parameters: every model declares a frozen dataclass of its knobs with their defaults,
so the command line, the pipeline and the benchmarks can list and check them without building a model.

    @dataclasses.dataclass(frozen=True)
    class ItemKNNConfig:
        regularization: float = hyperparameter(20.0, "λ: support added against rare-item coincidences")

`make_config(ItemKNNConfig, {"regularization": 5}, "itemknn")` checks every key and value against
the declared types (`int`, `float`, `bool`, `str`, `Literal[...]` choices) and raises a ValueError
that names the model, the argument and what it accepts; `describe(ItemKNNConfig)` lists the fields.

A field may also declare where a search looks for it (`movierec tune`, the pipeline's Tuner):

        alpha: float = hyperparameter(0.5, "α of the asymmetric cosine", search=Range(0.0, 1.0, step=0.05))

`Choice(v1, v2, ...)` searches the listed values, `Range(low, high, step=..., log=...)` a numeric
interval (an int field draws ints). `search_space(ItemKNNConfig)` returns the declared spaces in
declaration order; a model without any is not tuned. The spaces are plain declarations: the search
itself (KerasTuner) lives in `movierec.evaluation.tuning`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Iterable
from typing import Any, Literal

HELP = "help"
SEARCH = "search"


@dataclasses.dataclass(frozen=True, init=False)
class Choice:
    """A search over the listed values (ints, floats, strings or bools, of one type)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        if len(values) < 2:
            raise ValueError(f"Choice needs at least two values, got {values!r}")
        object.__setattr__(self, "values", tuple(values))

    def contains(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return " | ".join(repr(value) for value in self.values)


@dataclasses.dataclass(frozen=True)
class Range:
    """A search over [low, high]: on a grid of `step` when given, log-uniform when `log` (low > 0)."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"Range needs low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"a log Range needs low > 0, got {self.low}")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"Range step must be > 0, got {self.step}")

    def contains(self, value: Any) -> bool:
        return is_number(value) and self.low <= value <= self.high

    def describe(self) -> str:
        grid = f" step {self.step:g}" if self.step is not None else ""
        return f"[{self.low:g}, {self.high:g}]{grid}{' log' if self.log else ''}"


SearchSpace = Choice | Range


def hyperparameter(default: Any, help: str, search: SearchSpace | None = None) -> Any:
    """A dataclass field with a default and a one-line description (shown by `movierec models`).

    Args:
        default: the value a model gets unless told otherwise (and the search's trial 0).
        help: one line on what the knob does.
        search: where `movierec tune` looks for a better value (None: the search leaves it alone).
    """
    metadata: dict[str, Any] = {HELP: help}
    if search is not None:
        metadata[SEARCH] = search
    return dataclasses.field(default=default, metadata=metadata)


def search_space(config_class: type) -> dict[str, SearchSpace]:
    """{field: its declared search space} in declaration order; empty when nothing is searched."""
    return {f.name: f.metadata[SEARCH] for f in dataclasses.fields(config_class) if SEARCH in f.metadata}


def check_search_space(config_class: type, owner: str) -> None:
    """Raises ValueError (naming `owner` and the field) when a declared space does not fit its field:
    a value of the wrong type, a Range on a field that is not a number, or a default outside it."""
    types = _types(config_class)
    for field in dataclasses.fields(config_class):
        space = field.metadata.get(SEARCH)
        if space is None:
            continue
        kind = types[field.name]
        if isinstance(space, Range):
            if kind not in (int, float):
                raise ValueError(f"{owner}: {field.name} is {type_name(kind)}; a Range needs int or float")
            if kind is int and not all(
                float(v).is_integer() for v in (space.low, space.high, space.step or 1)
            ):
                raise ValueError(f"{owner}: {field.name} is int; its Range must have whole bounds and step")
        else:
            for value in space.values:
                if not _accepts(kind, value)[0]:
                    raise ValueError(f"{owner}: {field.name} must be {type_name(kind)}, Choice has {value!r}")
        if not space.contains(field.default):
            raise ValueError(
                f"{owner}: {field.name}'s default {field.default!r} is outside its search space "
                f"{space.describe()}"
            )


@functools.cache
def _types(config_class: type) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def _accepts(kind: Any, value: Any) -> tuple[bool, Any]:
    """(value fits `kind`, the value converted: an int where a float is declared becomes a float)."""
    if typing.get_origin(kind) is Literal:
        return value in typing.get_args(kind), value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, str), value
    return True, value


def type_name(kind: Any) -> str:
    if typing.get_origin(kind) is Literal:
        return " | ".join(repr(choice) for choice in typing.get_args(kind))
    return getattr(kind, "__name__", str(kind))


def make_config(config_class: type, values: dict[str, Any], owner: str) -> Any:
    """`config_class(**values)` after checking every key and value; errors name `owner` (the model)."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"{owner}: unknown hyper-parameters {unknown}; it takes {sorted(fields)}")
    types, checked = _types(config_class), {}
    for key, value in values.items():
        ok, checked[key] = _accepts(types[key], value)
        if not ok:
            raise ValueError(f"{owner}: {key} must be {type_name(types[key])}, got {value!r}")
    return config_class(**checked)


def describe(config_class: type) -> list[dict[str, Any]]:
    """[{name, type, default, help, search}] of every hyper-parameter, in declaration order (`search`:
    the declared search space as text, or None when the search leaves the field alone)."""
    types = _types(config_class)
    return [
        {
            "name": f.name,
            "type": type_name(types[f.name]),
            "default": f.default,
            "help": f.metadata.get(HELP, ""),
            "search": f.metadata[SEARCH].describe() if SEARCH in f.metadata else None,
        }
        for f in dataclasses.fields(config_class)
    ]


def require(condition: bool, owner: str, argument: str, message: str) -> None:
    """For `__post_init__` checks beyond the type: raises ValueError naming the model and the argument."""
    if not condition:
        raise ValueError(f"{owner}: {argument} {message}")


def is_int(value: object) -> bool:
    """An integer and not a bool (`True` is an int to Python, never a size to a model)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or a float and not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_integers(config: Any, owner: str, names: Iterable[str], minimum: int) -> None:
    """For `__post_init__`: each named field of `config` is an integer (not a bool) >= `minimum`."""
    for name in names:
        value = getattr(config, name)
        require(
            is_int(value) and value >= minimum, owner, name, f"must be an integer >= {minimum}, got {value!r}"
        )


def require_numbers(
    config: Any,
    owner: str,
    names: Iterable[str],
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
) -> None:
    """For `__post_init__`: each named field of `config` is a number (not a bool) in [low, high), or in
    (low, high) with `low_open`; `high` is always excluded, so infinity and NaN never pass."""
    if high == math.inf:
        wording = f"> {low}" if low_open else f">= {low}"
    else:
        wording = f"in {'(' if low_open else '['}{low}, {high})"
    for name in names:
        value = getattr(config, name)
        ok = is_number(value) and (low < value if low_open else low <= value) and value < high
        require(ok, owner, name, f"must be {wording}, got {value!r}")
