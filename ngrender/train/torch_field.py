"""PyTorch implementation of the grid encoding + MLP (on the CPU, or a CUDA device when the trainer is given one),
used to train models and as a benchmark peer.

The arithmetic is tcnn's, exactly as in ``ngrender.reference``: a model trained here renders the same in the
NumPy reference and in the Vulkan kernels.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ..encoding import HASH_PRIMES, GridGeometry, simplex_skew
from ..model import Model, NetworkConfig
from ..shader_interface import SH_COEFFICIENTS


class _GatherRows(torch.autograd.Function):
    """table[idx] whose backward is one index_add_ (PyTorch's own index backward, index_put with accumulate, is
    2-3x slower on CPU and dominates a training step)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.rows = table.shape[0]
        return table.index_select(0, idx.reshape(-1)).reshape(*idx.shape, table.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        idx, = ctx.saved_tensors
        out = torch.zeros(ctx.rows, grad.shape[-1], dtype=grad.dtype, device=grad.device)
        return out.index_add_(0, idx.reshape(-1), grad.reshape(-1, grad.shape[-1])), None


def gather_rows(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return _GatherRows.apply(table, idx)


class TorchGrid(nn.Module):
    """Multi-resolution grid encoding with one parameter table per level."""

    def __init__(self, geom: GridGeometry, init_scale: float = 1e-4) -> None:
        super().__init__()
        self.geom = geom
        self.levels = nn.ParameterList(
            nn.Parameter(torch.empty(size, geom.n_features).uniform_(-init_scale, init_scale))
            for size, _ in geom.level_shapes())

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

    def _corner_index(self, level: int, cell: torch.Tensor) -> torch.Tensor:
        """_index of all 2^d corners of the cells (N, d) -> (N, 2^d), combining per-dimension terms."""
        lv = self.geom.levels[level]
        offsets = torch.tensor([0, 1], dtype=torch.int64, device=cell.device)
        index, stride = None, 1
        for d in range(self.geom.n_dims):
            term = cell[:, d, None] + offsets  # (N, 2)
            term = term * (HASH_PRIMES[d] if lv.hashed else stride)
            stride *= lv.resolution
            index = term if index is None else (
                (index[:, None, :] ^ term[:, :, None]) if lv.hashed else (index[:, None, :] + term[:, :, None])
            ).reshape(cell.shape[0], -1)
        return index & (lv.size - 1) if lv.hashed else torch.remainder(index & 0xFFFFFFFF, lv.size)

    def _simplex_level(self, level: int, table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """reference.grid.simplex_vertices in PyTorch: skew, rank the fractional parts, n+1 lookups."""
        d = self.geom.n_dims
        pos = x * self.geom.levels[level].scale + 0.5
        skewed = pos + float(simplex_skew(d)) * pos.sum(dim=1, keepdim=True)
        cell = torch.floor(skewed)
        frac = skewed - cell
        idx = torch.arange(d, device=x.device)
        before = (frac[:, None, :] > frac[:, :, None]) | ((frac[:, None, :] == frac[:, :, None])
                                                          & (idx[None, None, :] < idx[None, :, None]))
        rank = before.sum(dim=2)  # (N, d): position of each dimension in descending order
        ordered = torch.zeros_like(frac).scatter(1, rank, frac)
        weights = [1.0 - ordered[:, 0]] + [ordered[:, k - 1] - ordered[:, k] for k in range(1, d)] + \
            [ordered[:, d - 1]]
        base = cell.to(torch.int64)
        out = 0.0
        for k, weight in enumerate(weights):
            vertex = base + (rank < k).to(torch.int64)
            out = out + weight[:, None] * gather_rows(table, self._index(level, vertex))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.geom.kind == "simplex":
            return torch.cat([self._simplex_level(lv, table, x) for lv, table in enumerate(self.levels)], dim=1)
        feats = []
        d = self.geom.n_dims
        for level, table in enumerate(self.levels):
            pos = x * self.geom.levels[level].scale + 0.5
            cell = torch.floor(pos)
            frac = pos - cell
            # Per dimension, the two corner choices; broadcast to all 2^d corners (corner c = sum bit_k << k,
            # the reference's order), multiplying the weights in dimension order as the reference does.
            per_dim = torch.stack([1.0 - frac, frac], dim=1)  # (N, 2, d)
            weights = per_dim[:, :, 0]
            for k in range(1, d):
                weights = (weights[:, None, :] * per_dim[:, :, k, None]).reshape(x.shape[0], -1)
            values = gather_rows(table, self._corner_index(level, cell.to(torch.int64)))  # (N, 2^d, F)
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

    def to_model(self, app: str, config: dict, dtype: str = "float16") -> Model:
        """The trained field as a Model ({"encoding", "network"} config), weights rounded to the storage
        precision first, so every quality figure is that of the weights that get rendered."""
        grid, layers = self.export()
        grid = [g.astype(dtype).astype(np.float32) for g in grid]
        layers = [m.astype(dtype).astype(np.float32) for m in layers]
        return Model(app, self.grid.geom.n_dims, self.layers[-1].out_features, config["encoding"], config["network"],
                     grid, layers, storage_dtype=dtype)

    def export(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(grid tables, MLP weights) as float32 numpy arrays."""
        grid = [p.detach().cpu().numpy().astype(np.float32) for p in self.grid.levels]
        layers = [layer.weight.detach().cpu().numpy().astype(np.float32) for layer in self.layers]
        return grid, layers


def torch_sh(d: torch.Tensor, degree: int) -> torch.Tensor:
    """tcnn's SphericalHarmonics of unit directions (N, 3) -> (N, degree**2), as reference.nerf.sh_encode."""
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    xy, xz, yz, x2, y2, z2 = x * y, x * z, y * z, x * x, y * y, z * z
    c = SH_COEFFICIENTS
    out = [torch.full_like(x, c["SH_C0"])]
    if degree > 1:
        out += [-c["SH_C1"] * y, c["SH_C1"] * z, -c["SH_C1"] * x]
    if degree > 2:
        out += [c["SH_C2_XY"] * xy, -c["SH_C2_XY"] * yz, c["SH_C2_ZZ"] * z2 - c["SH_C2_0"], -c["SH_C2_XY"] * xz,
                c["SH_C2_XX"] * x2 - c["SH_C2_XX"] * y2]
    if degree > 3:
        out += [c["SH_C3_A"] * y * (-3.0 * x2 + y2), c["SH_C3_B"] * xy * z,
                c["SH_C3_C"] * y * (1.0 - 5.0 * z2), c["SH_C3_D"] * z * (5.0 * z2 - 3.0),
                c["SH_C3_C"] * x * (1.0 - 5.0 * z2), c["SH_C3_E"] * z * (x2 - y2),
                c["SH_C3_A"] * x * (-x2 + 3.0 * y2)]
    return torch.stack(out, dim=1)


class TorchNerf(nn.Module):
    """instant-ngp's NeRF network: grid + density MLP (density = exp(out[0])), SH + colour MLP (sigmoid)."""

    def __init__(self, geom: GridGeometry, density_net: NetworkConfig, rgb_net: NetworkConfig,
                 n_density_out: int = 16, sh_degree: int = 4) -> None:
        super().__init__()
        self.density = TorchField(geom, density_net, n_density_out)
        self.sh_degree = sh_degree
        shapes = rgb_net.layer_shapes(n_density_out + sh_degree ** 2, 3)
        self.rgb_layers = nn.ModuleList(nn.Linear(i, o, bias=False) for o, i in shapes)

    def forward(self, p: torch.Tensor, d: torch.Tensor,
                max_log_density: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(density, rgb); ``max_log_density`` clamps exp's argument (training: keeps gradients finite)."""
        h = self.density(p)
        x = torch.cat([h, torch_sh(d, self.sh_degree)], dim=1)
        for layer in self.rgb_layers[:-1]:
            x = torch.relu(layer(x))
        log_density = h[:, 0] if max_log_density is None else torch.clamp(h[:, 0], max=max_log_density)
        return torch.exp(log_density), torch.sigmoid(self.rgb_layers[-1](x))

    def to_model(self, config: dict, occupancy: np.ndarray, dtype: str = "float16", aabb_scale: int = 1) -> Model:
        """The trained NeRF as a Model (instant-ngp config with dir_encoding and rgb_network), weights rounded to
        the storage precision, with its occupancy grid (cascades when aabb_scale > 1)."""
        rgb_layers = [layer.weight.detach().cpu().numpy().astype(dtype).astype(np.float32)
                      for layer in self.rgb_layers]
        return replace(self.density.to_model("nerf", config, dtype), dir_encoding=config["dir_encoding"],
                       rgb_network=config["rgb_network"], rgb_layers=rgb_layers, occupancy=occupancy,
                       aabb_scale=aabb_scale)

    @classmethod
    def from_model(cls, model: Model) -> "TorchNerf":
        nerf = cls(model.geometry, model.net, model.rgb_net, model.n_output_dims, model.sh_degree)
        nerf.density = TorchField.from_model(model)
        with torch.no_grad():
            for layer, weight in zip(nerf.rgb_layers, model.rgb_layers):
                layer.weight.copy_(torch.from_numpy(weight))
        return nerf


def torch_network(model: Model, device="cpu"):
    """The model's network in PyTorch as a NumPy-in/NumPy-out function (reference.field.field_network's peer),
    evaluated on ``device``."""
    field = TorchField.from_model(model).to(device).eval()

    def evaluate(p: np.ndarray) -> np.ndarray:
        x = np.clip(p, 0.0, 1.0) if model.n_input_dims == 3 else p
        with torch.inference_mode():
            return field(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)).cpu().numpy()

    return evaluate


def torch_radiance(model: Model, device="cpu"):
    """NeRF's (p, d) -> (density, rgb) in PyTorch (reference.nerf.radiance's peer), evaluated on ``device``."""
    nerf = TorchNerf.from_model(model).to(device).eval()

    def evaluate(p: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            sigma, rgb = nerf(torch.from_numpy(np.clip(p, 0.0, 1.0).astype(np.float32)).to(device),
                              torch.from_numpy(np.ascontiguousarray(d, dtype=np.float32)).to(device))
        return sigma.cpu().numpy(), rgb.cpu().numpy()

    return evaluate
