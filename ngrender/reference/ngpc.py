"""NumPy model of the NGPC engines' arithmetic (shaders/ngpc/): the input-encoding engine's stages and the MLP
engine's tiled multiply-accumulate, with values rounded to the storage precision where they leave a stage and
every multiply-add rounded to the accumulation precision."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..encoding import GridGeometry, encoding_spec
from .grid import encode_grid, grid_index, level_positions
from .mlp import apply_activation


def quantize(x: np.ndarray, precision: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.astype(np.float16).astype(np.float32) if precision == "fp16" else x


def engine_encode(geom: GridGeometry, levels: Sequence[np.ndarray], x: np.ndarray, storage: str = "fp16",
                  accumulate: str = "fp32") -> np.ndarray:
    """(N, d) -> (N, L*F) as the encoding engines: pos_fract, grid_index, interp_weights (each product rounded to
    the accumulation precision), fetch, weighted accumulation; outputs at the storage precision. Kinds the
    engine does not compute (EncodingSpec.ngpc_engine false: the simplex grid) are the GPU encoding, rounded at the
    output."""
    x = np.asarray(x, dtype=np.float32)
    if not encoding_spec(geom.kind).ngpc_engine:
        return quantize(encode_grid(geom, levels, x), storage)
    n, d = x.shape
    out = np.zeros((n, geom.n_levels, geom.n_features), dtype=np.float32)
    for lv in range(geom.n_levels):
        cell, frac = level_positions(geom, lv, x)
        table = quantize(levels[lv], storage)
        for corner in range(1 << d):
            weight = np.ones(n, dtype=np.float32)
            offs = np.zeros((n, d), dtype=np.uint32)
            for dim in range(d):
                bit = (corner >> dim) & 1
                weight = quantize(weight * (frac[:, dim] if bit else np.float32(1.0) - frac[:, dim]), accumulate)
                offs[:, dim] = bit
            fetched = table[grid_index(geom, lv, cell + offs)]
            out[:, lv] = quantize(out[:, lv] + weight[:, None] * fetched, accumulate)
    return quantize(out.reshape(n, -1), storage)


def engine_mlp(layers: Sequence[np.ndarray], x: np.ndarray, output_activation: str = "none", storage: str = "fp16",
               accumulate: str = "fp32", tile: int = 64) -> np.ndarray:
    """(N, in) -> (N, out) as the MLP engine: per layer, input tiles of ``tile`` rows; within a tile the
    multiply-adds run in input order into a partial sum, which is added to the output; ReLU on hidden layers,
    activations rounded to the storage precision."""
    a = quantize(x, storage)
    for index, w in enumerate(layers):
        w = quantize(w, storage)
        acc = np.zeros((a.shape[0], w.shape[0]), dtype=np.float32)
        for start in range(0, w.shape[1], tile):
            partial = np.zeros_like(acc)
            for i in range(start, min(start + tile, w.shape[1])):
                partial = quantize(partial + a[:, i:i + 1] * w[None, :, i], accumulate)
            acc = quantize(acc + partial, accumulate)
        last = index == len(layers) - 1
        a = quantize(apply_activation(acc, output_activation) if last else np.maximum(acc, np.float32(0.0)), storage)
    return a
