"""Small SDF models fitted to an analytic torus, for the sphere-tracing tests (until the mesh-trained models of
the data-and-training issue exist). Run as a script to rewrite tests/data/sdf_torus_*.safetensors."""
from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
ENCODINGS = {
    "hash": {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 2, "log2_hashmap_size": 14,
             "base_resolution": 8, "per_level_scale": 1.5},
    "dense": {"otype": "DenseGrid", "n_levels": 4, "n_features_per_level": 2, "base_resolution": 8,
              "per_level_scale": 1.405},
    "lowres": {"otype": "DenseGrid", "n_levels": 2, "n_features_per_level": 8, "base_resolution": 24,
               "per_level_scale": 1.0},
}
NETWORK = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 32,
           "n_hidden_layers": 2}


def torus_sdf(p: np.ndarray) -> np.ndarray:
    """A torus around the cube's centre, tilted so every view shows its hole and its ring."""
    q = p - 0.5
    c, s = np.cos(-0.6), np.sin(-0.6)
    y = c * q[:, 1] - s * q[:, 2]
    z = s * q[:, 1] + c * q[:, 2]
    ring = np.sqrt(q[:, 0] ** 2 + z ** 2) - 0.25
    return (np.sqrt(ring ** 2 + y ** 2) - 0.1).astype(np.float32)


def fit(encoding: str, steps: int = 400, seed: int = 0):
    import torch

    from ngrender.encoding import grid_geometry
    from ngrender.model import Model, NetworkConfig
    from ngrender.train.torch_field import TorchField

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    geom = grid_geometry(ENCODINGS[encoding], 3)
    field = TorchField(geom, NetworkConfig.from_json(NETWORK), 1)
    opt = torch.optim.Adam(field.parameters(), lr=1e-2, betas=(0.9, 0.99), eps=1e-15)
    for _ in range(steps):
        p = rng.random((8192, 3)).astype(np.float32)
        loss = torch.mean(torch.abs(field(torch.from_numpy(p))[:, 0] - torch.from_numpy(torus_sdf(p))))
        opt.zero_grad()
        loss.backward()
        opt.step()
    grid, layers = field.export()
    return Model("sdf", 3, 1, ENCODINGS[encoding], NETWORK, [g.astype(np.float16).astype(np.float32) for g in grid],
                 [w.astype(np.float16).astype(np.float32) for w in layers], {"fitted_to": "analytic torus"}, "float16")


if __name__ == "__main__":
    DATA.mkdir(exist_ok=True)
    for name in ENCODINGS:
        fit(name).save(DATA / f"sdf_torus_{name}.safetensors")
        print(name, (DATA / f"sdf_torus_{name}.safetensors").stat().st_size)
