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
from typing import Any, Mapping

import numpy as np

from . import validate
from .errors import ConfigError

# instant-ngp's coherent prime hash (tcnn common_device.h); the first prime is 1 on purpose.
HASH_PRIMES = (1, 2654435761, 805459861, 3674653429, 2097192037, 1434869437, 2165219737)

# TiledGrid is tiny-cuda-nn's dense grid with a tiled memory layout: the same values, so a dense grid here.
GRID_KINDS = {"hashgrid": "hash", "densegrid": "dense", "tiledgrid": "dense", "simplexhashgrid": "simplex"}


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
    if otype == "grid":
        kind = validate.string(encoding.get("type", "Hash"), "encoding.type").lower()
        kind = "dense" if kind == "tiled" else kind
    elif otype in GRID_KINDS:
        kind = GRID_KINDS[otype]
    else:
        raise ConfigError(f"encoding otype {encoding.get('otype')!r} is not a grid encoding "
                          f"(expected one of HashGrid, DenseGrid, TiledGrid, SimplexHashGrid, Grid)")
    if kind not in ("hash", "dense", "simplex"):
        raise ConfigError(f"grid type {kind!r} is not supported (Hash, Dense or Simplex)")
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
        res = int(math.ceil(float(scale))) + 1
        if kind == "simplex":
            # Skewed lattice: coordinates reach (scale + 0.5) * (1 + n F), plus the simplex's far vertex.
            res = int(math.ceil((float(scale) + 0.5) * (1.0 + n_dims * float(simplex_skew(n_dims))))) + 2
        dense = res ** n_dims
        size = _next_multiple(min(dense, max_params), 8)
        hashed = False
        if kind in ("hash", "simplex") and size > (1 << log2_t):
            size, hashed = 1 << log2_t, True
        levels.append(Level(float(scale), res, size, offset, hashed))
        offset += size
    return GridGeometry(kind, n_dims, n_levels, n_features, log2_t, base, b, tuple(levels))
