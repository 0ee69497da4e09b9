"""Input-encoding geometry shared by the host, the NumPy reference and the shaders.

Everything here follows tiny-cuda-nn's GridEncoding exactly (float32 arithmetic included), so that
instant-ngp configs and weights line up entry for entry:

* level scale  ``s_l = exp2(l * log2(b)) * N_min - 1``   (float32)
* resolution   ``res_l = ceil(s_l) + 1``
* entries      ``min(next_multiple(res_l ** d, 8), T)`` for hash grids, ``next_multiple(res_l ** d, 8)``
  for dense grids (the low-resolution dense grid is a dense grid with per-level scale 1); a level is *hashed*
  when its dense size would exceed the table size T.
* position     ``p = s_l * x + 0.5``, corner ``floor(p)``, fraction ``p - floor(p)`` (tcnn uses fmaf; we round
  the product and the sum separately, which every driver reproduces bit for bit).
* simplex hash grid (arXiv 2311.15439; not in tcnn): the level position is skewed, ``s = p + F_n * sum(p)``,
  the simplex is found by sorting the fractional parts, and its n+1 vertices are indexed like grid corners
  (dense below T entries, hashed above) over the skewed lattice, whose extent is the level's ``resolution``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from . import validate
from .errors import ConfigError

# instant-ngp's coherent prime hash (tcnn common_device.h); the first prime is 1 on purpose.
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)


@dataclass(frozen=True)
class Level:
    """One resolution level of a multi-resolution grid."""

    scale: float  # float32 value of tcnn's grid_scale()
    resolution: int
    size: int  # entries (each n_features wide) stored for this level
    offset: int  # first entry of this level in the concatenated table
    hashed: bool


@dataclass(frozen=True)
class GridGeometry:
    """Level layout of a multi-resolution grid encoding (hash, dense or low-resolution dense)."""

    kind: str  # "hash" | "dense" | "simplex"
    n_dims: int
    n_levels: int
    n_features: int
    log2_hashmap_size: int
    base_resolution: int
    per_level_scale: float
    levels: tuple[Level, ...]

    @property
    def n_output_dims(self) -> int:
        return self.n_levels * self.n_features

    @property
    def n_entries(self) -> int:
        return self.levels[-1].offset + self.levels[-1].size

    @property
    def hashmap_size(self) -> int:
        return 1 << self.log2_hashmap_size

    def level_shapes(self) -> list[tuple[int, int]]:
        """Shape (entries, features) of each level's parameter table."""
        return [(lv.size, self.n_features) for lv in self.levels]

    def describe(self) -> str:
        hashed = sum(lv.hashed for lv in self.levels)
        return (f"{self.kind} grid {self.n_dims}D: L={self.n_levels} F={self.n_features} "
                f"T=2^{self.log2_hashmap_size} N_min={self.base_resolution} b={self.per_level_scale:.4f} "
                f"res {self.levels[0].resolution}..{self.levels[-1].resolution}, "
                f"{hashed} hashed level(s), {self.n_entries * self.n_features:,} parameters")


def _lattice_resolution(scale: np.float32, n_dims: int) -> int:
    """Vertices per axis of a level's cube lattice: tcnn's ceil(s_l) + 1."""
    return int(math.ceil(float(scale))) + 1


def _simplex_resolution(scale: np.float32, n_dims: int) -> int:
    """The skewed lattice's extent: coordinates reach (scale + 0.5) * (1 + n F), plus the simplex's far vertex."""
    return int(math.ceil((float(scale) + 0.5) * (1.0 + n_dims * float(simplex_skew(n_dims))))) + 2


@dataclass(frozen=True)
class EncodingSpec:
    """One grid-encoding kind, registered with ``register_encoding``: how configs name it, how its levels are laid
    out, what a sample costs, and which named configs (presets) use it. Its lookups live beside it in
    shaders/lib/grid.glsl (``#if GRID_<KIND>``), reference/grid.py and train/torch_field.py (docs/extending.md)."""

    kind: str  # GridGeometry.kind
    otypes: tuple[str, ...]  # tiny-cuda-nn / instant-ngp encoding otypes that select it (any case in a config)
    grid_types: tuple[str, ...] = ()  # values of otype "Grid"'s "type" (lower case) that select it
    hashed: bool = True  # a level over the table size T is hashed (else stored dense at any size)
    lookups: Callable[[int], int] = lambda n_dims: 2 ** n_dims  # table entries read per level and sample
    resolution: Callable[[np.float32, int], int] = _lattice_resolution  # (level scale, dims) -> lattice extent
    defines: Callable[["GridGeometry"], Mapping[str, Any]] = lambda geom: {}  # its GLSL constants (ints, floats)
    presets: tuple[str, ...] = ()  # configs/<app>_<preset>.json (and scenes/<stem>_<preset>.json) of this kind
    instant_ngp: bool = True  # instant-ngp loads it (a model of this kind exports as a snapshot)
    # The simulated NGPC's encoding engine computes it (cube lattice, d-linear weights); other kinds run the GPU
    # encoding on the NGPC path, rounded at the output.
    ngpc_engine: bool = True


_ENCODINGS: dict[str, EncodingSpec] = {}


def register_encoding(spec: EncodingSpec) -> EncodingSpec:
    """Make a grid kind known to configs, shaders (its GRID_<KIND> flag), the CLI's preset choices and reports."""
    known = _ENCODINGS.get(spec.kind)
    if known is not None and known != spec:
        raise ValueError(f"encoding kind {spec.kind!r} is registered already")
    _ENCODINGS[spec.kind] = spec
    return spec


def encoding_spec(kind: str) -> EncodingSpec:
    try:
        return _ENCODINGS[kind]
    except KeyError:
        raise ConfigError(f"unknown grid kind {kind!r}; known: {', '.join(_ENCODINGS)}") from None


def encoding_specs() -> tuple[EncodingSpec, ...]:
    return tuple(_ENCODINGS.values())


def encoding_presets() -> tuple[str, ...]:
    """The named encoding configs (``--encoding`` choices): hash, dense, lowres, ..."""
    return tuple(p for spec in _ENCODINGS.values() for p in spec.presets)


def _next_multiple(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


def simplex_skew(n_dims: int) -> np.float32:
    """The simplex skew factor F_n = (sqrt(n+1) - 1) / n, in float32."""
    return np.float32((math.sqrt(n_dims + 1) - 1) / n_dims)


def level_scale(level: int, per_level_scale: float, base_resolution: int) -> np.float32:
    """tcnn grid_scale(): exp2f(level * log2f(b)) * N_min - 1, in float32."""
    log2_b = np.log2(np.float32(per_level_scale), dtype=np.float32)
    return np.float32(np.exp2(np.float32(level) * log2_b, dtype=np.float32) * np.float32(base_resolution)
                      - np.float32(1.0))


def per_level_scale_for(base_resolution: int, finest_resolution: float, n_levels: int) -> float:
    """The per-level scale b that spans N_min .. finest over n_levels (instant-ngp's formula)."""
    if n_levels <= 1:
        return 1.0
    return math.exp(math.log(finest_resolution / base_resolution) / (n_levels - 1))


def grid_geometry(encoding: Mapping[str, Any], n_dims: int) -> GridGeometry:
    """Level layout from a tiny-cuda-nn encoding config: ``otype`` HashGrid, DenseGrid, TiledGrid (a dense grid),
    SimplexHashGrid, or Grid with ``type`` Hash, Dense or Tiled."""
    encoding = validate.obj(encoding, "encoding")
    otype = validate.string(encoding.get("otype", ""), "encoding.otype").lower() if "otype" in encoding else ""
    specs = encoding_specs()
    if otype == "grid":
        grid_type = validate.string(encoding.get("type", "Hash"), "encoding.type").lower()
        spec = next((s for s in specs if grid_type in s.grid_types), None)
        if spec is None:
            raise ConfigError(f"grid type {grid_type!r} is not supported "
                              f"({', '.join(t.capitalize() for s in specs for t in s.grid_types[:1])})")
    else:
        spec = next((s for s in specs if otype in (o.lower() for o in s.otypes)), None)
        if spec is None:
            raise ConfigError(f"encoding otype {encoding.get('otype')!r} is not a grid encoding (expected one of "
                              f"{', '.join(o for s in specs for o in s.otypes)}, Grid)")
    kind = spec.kind
    interpolation = validate.string(encoding.get("interpolation", "Linear"), "encoding.interpolation")
    if interpolation.lower() != "linear":
        raise ConfigError(f"grid interpolation {interpolation!r} is not supported (only Linear)")
    n_levels = validate.integer(encoding.get("n_levels", 16), "encoding.n_levels", 1, 32)
    n_features = validate.integer(encoding.get("n_features_per_level", 2), "encoding.n_features_per_level")
    if n_features not in (1, 2, 4, 8):
        raise ConfigError(f"encoding.n_features_per_level must be 1, 2, 4 or 8, got {n_features}")
    log2_t = validate.integer(encoding.get("log2_hashmap_size", 19), "encoding.log2_hashmap_size", 3, 30)
    base = validate.integer(encoding.get("base_resolution", 16), "encoding.base_resolution", 1, 1 << 20)
    b = validate.number(encoding.get("per_level_scale", 2.0), "encoding.per_level_scale", 1.0, 64.0)
    if n_dims not in (2, 3):
        raise ConfigError(f"grid encodings take 2 or 3 input dimensions, got {n_dims}")

    levels = []
    offset = 0
    max_params = np.iinfo(np.uint32).max // 2
    for lv in range(n_levels):
        scale = level_scale(lv, b, base)
        res = spec.resolution(scale, n_dims)
        dense = res ** n_dims
        size = _next_multiple(min(dense, max_params), 8)
        hashed = False
        if spec.hashed and size > (1 << log2_t):
            size, hashed = 1 << log2_t, True
        levels.append(Level(float(scale), res, size, offset, hashed))
        offset += size
    return GridGeometry(kind, n_dims, n_levels, n_features, log2_t, base, b, tuple(levels))


register_encoding(EncodingSpec("hash", ("HashGrid",), ("hash",), presets=("hash",)))
# TiledGrid is tiny-cuda-nn's dense grid with a tiled memory layout: the same values, so a dense grid here. The
# low-resolution dense preset is a dense grid with per-level scale 1.
register_encoding(EncodingSpec("dense", ("DenseGrid", "TiledGrid"), ("dense", "tiled"), hashed=False,
                               presets=("dense", "lowres")))
register_encoding(EncodingSpec("simplex", ("SimplexHashGrid",), ("simplex",), lookups=lambda n_dims: n_dims + 1,
                               resolution=_simplex_resolution,
                               defines=lambda geom: {"SIMPLEX_SKEW": simplex_skew(geom.n_dims)},
                               instant_ngp=False, ngpc_engine=False))
