"""Typed hyper-parameters: every model declares a frozen dataclass of its knobs with their defaults,
so the command line, the pipeline and the benchmarks can list and check them without building a model.

    @dataclasses.dataclass(frozen=True)
    class ItemKNNConfig:
        regularization: float = hyperparameter(20.0, "λ: support added against rare-item coincidences")

`make_config(ItemKNNConfig, {"regularization": 5}, "itemknn")` checks every key and value against
the declared types (`int`, `float`, `bool`, `str`, `Literal[...]` choices) and raises a ValueError
that names the model, the argument and what it accepts; `describe(ItemKNNConfig)` lists the fields.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, Literal

HELP = "help"


def hyperparameter(default: Any, help: str) -> Any:
    """A dataclass field with a default and a one-line description (shown by `movierec models`)."""
    return dataclasses.field(default=default, metadata={HELP: help})


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
    """[{name, type, default, help}] of every hyper-parameter, in declaration order."""
    types = _types(config_class)
    return [
        {
            "name": f.name,
            "type": type_name(types[f.name]),
            "default": f.default,
            "help": f.metadata.get(HELP, ""),
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
