"""PyTorch (CPU) implementation of the grid encoding + MLP, used to train models and as a benchmark peer.

The arithmetic is tcnn's, exactly as in ``ngrender.reference``: a model trained here renders the same in the
NumPy reference and in the Vulkan kernels.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..encoding import HASH_PRIMES, GridGeometry
from ..model import Model, NetworkConfig


class TorchGrid(nn.Module):
    """Multi-resolution grid encoding with one parameter table per level."""

    def __init__(self, geom: GridGeometry, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.geom = geom
        self.levels = nn.ParameterList(
            nn.Parameter(torch.empty(size, geom.n_features).uniform_(-init_scale, init_scale))
            for size, _ in geom.level_shapes())
        corners = [[(c >> d) & 1 for d in range(geom.n_dims)] for c in range(1 << geom.n_dims)]
        self.register_buffer("corners", torch.tensor(corners, dtype=torch.int64), persistent=False)

    def _index(self, level: int, cells: torch.Tensor) -> torch.Tensor:
        lv = self.geom.levels[level]
        if lv.hashed:  # uint32 wraparound does not matter: only the low log2(T) bits survive the mask
            h = torch.zeros_like(cells[..., 0])
            for d in range(self.geom.n_dims):
                h = h ^ (cells[..., d] * HASH_PRIMES[d])
            return h & (lv.size - 1)
        index = torch.zeros_like(cells[..., 0])
        stride = 1
        for d in range(self.geom.n_dims):
            index = index + cells[..., d] * stride
            stride *= lv.resolution
        return torch.remainder(index & 0xFFFFFFFF, lv.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for level, table in enumerate(self.levels):
            pos = x * self.geom.levels[level].scale + 0.5
            cell = torch.floor(pos)
            frac = pos - cell
            cells = cell.to(torch.int64)[:, None, :] + self.corners[None]  # (N, 2^d, d)
            weights = torch.where(self.corners[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :]).prod(-1)
            values = table[self._index(level, cells)]  # (N, 2^d, F)
            feats.append((weights[..., None] * values).sum(1))
        return torch.cat(feats, dim=1)


class TorchField(nn.Module):
    """Grid encoding followed by a bias-free ReLU MLP (tcnn's FullyFusedMLP)."""

    def __init__(self, geom: GridGeometry, net: NetworkConfig, n_out: int) -> None:
        super().__init__()
        self.grid = TorchGrid(geom)
        self.output_activation = net.output_activation
        shapes = net.layer_shapes(geom.n_output_dims, n_out)
        self.layers = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.grid(x)
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        out = self.layers[-1](h)
        act = self.output_activation
        if act == "relu":
            return torch.relu(out)
        if act == "sigmoid":
            return torch.sigmoid(out)
        if act == "exponential":
            return torch.exp(out)
        return out

    @classmethod
    def from_model(cls, model: Model) -> "TorchField":
        field = cls(model.geometry, model.net, model.n_output_dims)
        with torch.no_grad():
            for param, table in zip(field.grid.levels, model.grid):
                param.copy_(torch.from_numpy(table))
            for layer, weight in zip(field.layers, model.layers):
                layer.weight.copy_(torch.from_numpy(weight))
        return field

    def export(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(grid tables, MLP weights) as float32 numpy arrays."""
        grid = [p.detach().cpu().numpy().astype(np.float32) for p in self.grid.levels]
        layers = [layer.weight.detach().cpu().numpy().astype(np.float32) for layer in self.layers]
        return grid, layers
