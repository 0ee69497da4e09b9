"""Multi-resolution grid encoding (hash / dense / low-resolution dense), exactly as tiny-cuda-nn computes it."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..encoding import HASH_PRIMES, GridGeometry, simplex_skew


def grid_hash(coords: np.ndarray) -> np.ndarray:
    """instant-ngp hash of integer grid coordinates (N, d) uint32: XOR of coord_i * prime_i, uint32 wraparound."""
    coords = np.asarray(coords, dtype=np.uint32)
    result = np.zeros(coords.shape[0], dtype=np.uint32)
    for dim in range(coords.shape[1]):
        result ^= coords[:, dim] * np.uint32(HASH_PRIMES[dim])
    return result


def grid_index(geom: GridGeometry, level: int, coords: np.ndarray) -> np.ndarray:
    """Entry index inside a level's table for integer corner coordinates (N, d) (tcnn grid_index)."""
    lv = geom.levels[level]
    coords = np.asarray(coords, dtype=np.uint32)
    index = np.zeros(coords.shape[0], dtype=np.uint32)
    stride = 1
    for dim in range(geom.n_dims):
        if stride > lv.size:  # tcnn stops here to avoid overflow; such a level is hashed anyway
            break
        index += coords[:, dim] * np.uint32(stride)
        stride *= lv.resolution
    if lv.hashed:
        index = grid_hash(coords)
    return index % np.uint32(lv.size)


def level_positions(geom: GridGeometry, level: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell (uint32) and fraction (float32) of inputs x in [0,1]^d at one level."""
    # float32 multiply, then add (two roundings), as the shaders do on every driver; tcnn's fmaf differs by
    # at most 1 ulp of pos.
    pos = np.float32(geom.levels[level].scale) * x.astype(np.float32) + np.float32(0.5)
    cell = np.floor(pos)
    return cell.astype(np.int64).astype(np.uint32), (pos - cell).astype(np.float32)


def simplex_vertices(geom: GridGeometry, level: int, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The n+1 vertices (uint32 (N, d) each) and barycentric weights (float32 (N,) each) of the simplex holding
    each input at one level: skew, sort the fractional parts (descending; ties keep the lower dimension first),
    step one dimension at a time; weights 1 - f(1), f(1) - f(2), ..., f(n)."""
    n, d = x.shape
    pos = np.float32(geom.levels[level].scale) * x.astype(np.float32) + np.float32(0.5)
    total = pos[:, 0].copy()
    for dim in range(1, d):
        total = total + pos[:, dim]
    skewed = pos + simplex_skew(d) * total[:, None]
    cell = np.floor(skewed)
    frac = (skewed - cell).astype(np.float32)
    # rank[i] = how many dimensions come before i in descending order of frac
    rank = np.zeros((n, d), np.int64)
    for i in range(d):
        for j in range(d):
            if j != i:
                rank[:, i] += (frac[:, j] > frac[:, i]) | ((frac[:, j] == frac[:, i]) & (j < i))
    ordered = np.zeros((n, d), np.float32)
    np.put_along_axis(ordered, rank, frac, axis=1)
    base = cell.astype(np.int64).astype(np.uint32)
    vertices = [base + (rank < k).astype(np.uint32) for k in range(d + 1)]
    weights = [np.float32(1.0) - ordered[:, 0]] + [ordered[:, k - 1] - ordered[:, k] for k in range(1, d)] + \
        [ordered[:, d - 1]]
    return vertices, weights


def encode_grid(geom: GridGeometry, levels: Sequence[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Encode inputs x (N, d) in [0,1] into (N, L*F) features by d-linear interpolation per level (or the
    simplex interpolation of a simplex grid)."""
    x = np.asarray(x, dtype=np.float32)
    if geom.kind == "simplex":
        out = np.zeros((x.shape[0], geom.n_levels, geom.n_features), dtype=np.float32)
        for lv in range(geom.n_levels):
            vertices, weights = simplex_vertices(geom, lv, x)
            for vertex, weight in zip(vertices, weights):
                out[:, lv] += weight[:, None] * levels[lv][grid_index(geom, lv, vertex)]
        return out.reshape(x.shape[0], -1)
    n, d = x.shape
    out = np.zeros((n, geom.n_levels, geom.n_features), dtype=np.float32)
    for lv in range(geom.n_levels):
        cell, frac = level_positions(geom, lv, x)
        for corner in range(1 << d):
            weight = np.ones(n, dtype=np.float32)
            offs = np.zeros((n, d), dtype=np.uint32)
            for dim in range(d):
                bit = (corner >> dim) & 1
                weight *= frac[:, dim] if bit else np.float32(1.0) - frac[:, dim]
                offs[:, dim] = bit
            idx = grid_index(geom, lv, cell + offs)
            out[:, lv] += weight[:, None] * levels[lv][idx]
    return out.reshape(n, -1)
