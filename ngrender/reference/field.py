"""A model's network as a function of positions: grid encoding + MLP (the part every app evaluates)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..model import Model
from .grid import encode_grid
from .mlp import mlp_forward

Network = Callable[[np.ndarray], np.ndarray]


def field_network(model: Model) -> Network:
    """p (N, d) -> outputs (N, n_out) float32; 3D inputs are clamped to the unit cube as the shaders do."""
    def evaluate(p: np.ndarray) -> np.ndarray:
        x = np.clip(p, np.float32(0.0), np.float32(1.0)) if model.n_input_dims == 3 else p
        return mlp_forward(model.layers, encode_grid(model.geometry, model.grid, x), model.net.output_activation)

    return evaluate
