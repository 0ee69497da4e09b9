"""NGPC architecture: every parameter of the simulated accelerator with its range and its source (the paper, a
public specification, or an assumption), loaded from configs/ngpc.json. Presets NGPC-8/16/32/64 differ only in
the number of Neural Field Processors. Nothing here is fitted to reproduce a published speed-up."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

ARCH_FILE = Path(__file__).resolve().parents[2] / "configs" / "ngpc.json"


@dataclass(frozen=True)
class Arch:
    """One NGPC configuration: ``values`` (name -> value), ``sources`` (name -> where the value comes from) and
    ``parameters``, the ranges and choices of the architecture file it was loaded from."""

    name: str
    values: Mapping[str, Any]
    sources: Mapping[str, str]
    parameters: Mapping[str, dict] = field(repr=False)

    def __getattr__(self, item: str) -> Any:
        try:
            return self.values[item]
        except KeyError:
            raise AttributeError(item) from None

    @property
    def clock_hz(self) -> float:
        return self.values["clock_ghz"] * 1e9

    def bytes_per_value(self) -> int:
        return 2 if self.values["storage_precision"] == "fp16" else 4

    def with_values(self, name: str | None = None, **changes: Any) -> "Arch":
        """A copy with some parameters changed, checked against the ranges of the file this one came from."""
        values = {**self.values, **changes}
        return Arch(name or self.name, _checked(values, self.parameters), self.sources, self.parameters)

    def describe(self) -> str:
        """``NGPC-64 (64 NFPs at 1 GHz, fp16 storage, fp32 accumulation)``."""
        return (f"{self.name} ({self.n_nfp} NFPs at {self.clock_ghz:g} GHz, {self.storage_precision} storage, "
                f"{self.accumulate_precision} accumulation)")

    def assumptions(self) -> list[str]:
        return [f"{k} = {self.values[k]}: {src}" for k, src in self.sources.items() if "assumption" in src]


def _load_spec(path: Path) -> dict:
    try:
        spec = json.loads(Path(path).read_text())
        spec["parameters"], spec["presets"]  # noqa: B018 - both must exist
    except FileNotFoundError:
        raise ConfigError(f"NGPC architecture file {path} not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"NGPC architecture file {path} is malformed: {exc}") from None
    return spec


def _checked(values: Mapping[str, Any], params: Mapping[str, dict]) -> dict:
    unknown = set(values) - set(params)
    if unknown:
        raise ConfigError(f"unknown NGPC parameter(s) {sorted(unknown)}; known: {sorted(params)}")
    out = {}
    for name, spec in params.items():
        value = values.get(name, spec["value"])
        if "choices" in spec:
            if value not in spec["choices"]:
                raise ConfigError(f"NGPC parameter {name} must be one of {spec['choices']}, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"NGPC parameter {name} must be a number, got {value!r}")
            if not spec["min"] <= value <= spec["max"]:
                raise ConfigError(f"NGPC parameter {name} = {value} is outside its valid range "
                                  f"[{spec['min']}, {spec['max']}] ({spec.get('unit', '')})")
            if isinstance(spec["value"], int) and not float(value).is_integer():
                raise ConfigError(f"NGPC parameter {name} must be a whole number, got {value}")
        out[name] = value
    return out


def load_arch(preset: str = "NGPC-8", path: str | Path = ARCH_FILE, **overrides: Any) -> Arch:
    """A preset of the architecture file, with parameter overrides; every value is range-checked."""
    spec = _load_spec(Path(path))
    if preset not in spec["presets"]:
        raise ConfigError(f"unknown NGPC preset {preset!r}; choose one of {', '.join(spec['presets'])}")
    values = {name: p["value"] for name, p in spec["parameters"].items()}
    values.update(spec["presets"][preset])
    values.update(overrides)
    sources = {name: p["source"] for name, p in spec["parameters"].items()}
    return Arch(preset, _checked(values, spec["parameters"]), sources, spec["parameters"])


def presets(path: str | Path = ARCH_FILE) -> list[str]:
    return list(_load_spec(Path(path))["presets"])
