"""Typed checks for everything a user gives ngrender: scenes, cameras, model metadata, configs, data sets and
CLI values all go through these, so every message has one shape:

    ``<where>: must be <expected>, got <value>``

where ``where`` names the file and the field (``scenes/a.json: view.max_steps``). Nothing is coerced: a
string is not a number, a float is not an integer, ``"false"`` is not a boolean, NaN and Infinity are not
finite numbers.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from .errors import ConfigError


def show(value: Any) -> str:
    """A short repr for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(where: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{where} must be {expected}, got {show(value)}")


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi:g}"
    return ""


def _in_range(v: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    return not ((lo is not None and (v <= lo if lo_open else v < lo)) or
                (hi is not None and (v >= hi if hi_open else v > hi)))


FLOAT32_MAX = 3.4028234663852886e38


def is_number(value: Any) -> bool:
    """An int or float (not a bool) that is finite in 32-bit floating point, the precision the GPU computes in
    (1e308 is a finite double but overflows when it is packed for a shader; 10**400 is no float at all)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and abs(float(value)) <= FLOAT32_MAX
    except OverflowError:
        return False


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, "true or false", value)
    return value


def integer(value: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not _in_range(value, lo, hi, False, False):
        raise fail(where, "an integer" + _range_text(lo, hi, False, False), value)
    return value


def number(value: Any, where: str, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    if not is_number(value) or not _in_range(float(value), lo, hi, lo_open, hi_open):
        raise fail(where, "a finite number" + _range_text(lo, hi, lo_open, hi_open), value)
    return float(value)


def string(value: Any, where: str, choices: Iterable[str] | None = None) -> str:
    if choices is not None:
        choices = list(choices)
        if not isinstance(value, str) or value not in choices:
            raise fail(where, "one of " + ", ".join(map(repr, choices)), value)
    elif not isinstance(value, str) or not value:
        raise fail(where, "a non-empty string", value)
    return value


def numbers(value: Any, where: str, n: int, lo: float | None = None, hi: float | None = None) -> tuple[float, ...]:
    """A list of exactly ``n`` finite numbers."""
    if not isinstance(value, (list, tuple)) or len(value) != n or not all(is_number(v) for v in value) \
            or not all(_in_range(float(v), lo, hi, False, False) for v in value):
        raise fail(where, f"a list of {n} finite numbers" + _range_text(lo, hi, False, False), value)
    return tuple(float(v) for v in value)


def matrix(value: Any, where: str, rows: int, cols: int) -> list[list[float]]:
    if not isinstance(value, (list, tuple)) or len(value) != rows:
        raise fail(where, f"a {rows}x{cols} matrix of finite numbers", value)
    return [list(numbers(row, f"{where}[{i}]", cols)) for i, row in enumerate(value)]


def obj(value: Any, where: str, allowed: Iterable[str] | None = None,
        required: Sequence[str] = ()) -> Mapping[str, Any]:
    """A JSON object; with ``allowed``, unknown keys are errors (typos do not pass silently)."""
    if not isinstance(value, Mapping):
        raise fail(where, "an object", value)
    if allowed is not None:
        allowed = set(allowed)
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed {sorted(allowed)}")
    for key in required:
        if key not in value:
            raise ConfigError(f"{where}: field '{key}' is required")
    return value


def like(value: Any, default: Any, where: str) -> Any:
    """``value`` checked against the type of ``default`` (bool, int, float, tuple of floats, str)."""
    if isinstance(default, bool):
        return boolean(value, where)
    if isinstance(default, int):
        return integer(value, where)
    if isinstance(default, float):
        return number(value, where)
    if isinstance(default, tuple):
        return numbers(value, where, len(default))
    if isinstance(default, str):
        return string(value, where)
    raise ConfigError(f"{where} cannot be set")
