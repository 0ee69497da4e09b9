"""Model files: save/load round trips, tcnn/instant-ngp config loading, and clear errors for bad files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from ngrender.errors import ConfigError
from ngrender.model import load_model, load_network_config
from helpers import INSTANT_NGP_BASE


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_roundtrip(model_factory, tmp_path, dtype):
    model = model_factory("hash", dtype=dtype)
    model.extra = {"psnr_db": 30.0}
    model.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    assert back.storage_dtype == dtype and back.extra == {"psnr_db": 30.0}
    for a, b in zip(model.grid + model.layers, back.grid + back.layers):
        np.testing.assert_array_equal(a, b)
    assert model.to_bytes() == (tmp_path / "m.safetensors").read_bytes()  # what the render farm sends


def test_instant_ngp_config_loads_unchanged(tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(INSTANT_NGP_BASE))
    cfg = load_network_config(path)
    from ngrender.encoding import grid_geometry
    from ngrender.model import NetworkConfig
    geom = grid_geometry(cfg["encoding"], 3)
    assert geom.n_levels == 16 and geom.hashmap_size == 1 << 19
    assert NetworkConfig.from_json(cfg["network"]).layer_shapes(32, 16) == [(64, 32), (16, 64)]


def test_shape_mismatch_is_clear(model_factory, tmp_path):
    model = model_factory("hash")
    model.save(tmp_path / "m.safetensors")
    from safetensors.numpy import load_file
    from safetensors import safe_open
    tensors = load_file(tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), "numpy") as f:
        meta = f.metadata()
    tensors["network.layer.1"] = np.zeros((5, 5), np.float16)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ConfigError, match=r"bad.safetensors: MLP layer 1 has shape \(5, 5\), config says \(32, 32\)"):
        load_model(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("content, message", [
    (b"not a safetensors file at all", "not a readable safetensors"),
    (None, "does not exist"),
])
def test_unreadable_weights(tmp_path, content, message):
    path = tmp_path / "w.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_model(path)


def test_foreign_safetensors_rejected(tmp_path):
    save_file({"x": np.zeros(3, np.float32)}, str(tmp_path / "f.safetensors"))
    with pytest.raises(ConfigError, match="no 'ngrender' metadata"):
        load_model(tmp_path / "f.safetensors")


def test_nan_weights_rejected(model_factory, tmp_path):
    model = model_factory("hash")
    model.layers[0][0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        model.validate()


def test_nerf_occupancy_is_stored_as_bits(model_factory, tmp_path):
    """The occupancy cube goes to disk 8 cells per byte and comes back exactly; a truncated one is an error."""
    import dataclasses

    from safetensors.numpy import safe_open

    model = model_factory("hash")
    occupancy = (np.random.default_rng(0).random((12, 12, 12)) < 0.3).astype(np.uint8)
    nerf = dataclasses.replace(model, app="nerf", n_output_dims=model.n_output_dims, occupancy=occupancy)
    nerf.save(tmp_path / "n.safetensors")
    with safe_open(str(tmp_path / "n.safetensors"), framework="numpy") as f:
        assert f.get_tensor("occupancy_bits").shape == (216,) and "occupancy" not in f.keys()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = f.metadata()
    np.testing.assert_array_equal(load_model(tmp_path / "n.safetensors").occupancy, occupancy)
    tensors["occupancy_bits"] = tensors["occupancy_bits"][:100]
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(ConfigError, match="occupancy_bits holds 100 bytes, not a cube of side 12"):
        load_model(tmp_path / "bad.safetensors")
