"""tcnn fully-fused MLP forward pass (no biases, ReLU hidden layers) in float32."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def apply_activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, np.float32(0.0))
    if name == "sigmoid":
        return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32)
    if name == "exponential":
        return np.exp(x).astype(np.float32)
    raise ValueError(f"unknown activation {name!r}")


def mlp_forward(layers: Sequence[np.ndarray], x: np.ndarray, output_activation: str = "none") -> np.ndarray:
    """x (N, in) -> (N, out); layers are (out, in) weight matrices."""
    h = np.asarray(x, dtype=np.float32)
    for w in layers[:-1]:
        h = np.maximum(h @ w.T, np.float32(0.0))
    return apply_activation(h @ layers[-1].T, output_activation)
