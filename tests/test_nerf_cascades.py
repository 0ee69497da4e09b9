"""NeRF beyond the unit cube (issue 14): instant-ngp's scene box [0.5 - s/2, 0.5 + s/2]^3 for aabb_scale s,
occupancy cascades (cascade c covers 2^c times the unit cube), cone stepping (dt = clamp(t / 256, sqrt(3)/1024,
sqrt(3))). The Vulkan kernels (both fused variants, the unfused, fused-rest and NGPC pipelines) equal the NumPy
reference, as they do in the unit cube; the reference's cascade choice follows instant-ngp's mip_from_dt."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ngrender.camera import orbit
from ngrender.errors import ConfigError
from ngrender.model import load_model
from ngrender.ngpc.arch import load_arch
from ngrender.ngpc.wavefront import pipeline_options
from ngrender.reference import nerf as nerf_ref
from helpers import cascaded, render

SIZE = (40, 30)


def close(image: np.ndarray, want: np.ndarray) -> float:
    return float((np.abs(image.astype(int) - want.astype(int)).max(axis=2) > 2).mean())


CAMERA = {"camera": {"transform_matrix": orbit(30.0, 20.0, 1.8).c2w.tolist(), "fov_x": 50.0}}


def test_cascade_choice_is_instant_ngps():
    """mip_from_pos: the finest cascade holding the point; mip_from_dt: coarser for large steps."""
    p = np.array([[0.5, 0.5, 0.9], [0.5, 0.5, 1.2], [-1.2, 0.5, 0.5], [0.5, 0.5, 9.0], [0.5, 0.5, 0.5]], np.float32)
    small = np.full(5, np.float32(0.001))
    assert nerf_ref.cascade_of(p, small, 4, 128).tolist() == [0, 1, 2, 4, 1]  # |p - .5| = 0 -> frexp exponent 0
    big = np.full(5, np.float32(0.05))  # 0.05 * 256 = 12.8 = 0.8 * 2^4 -> at least cascade 4
    assert nerf_ref.cascade_of(p, big, 4, 128).tolist() == [4, 4, 4, 4, 4]
    assert nerf_ref.cascade_of(p, big, 2, 128).tolist() == [2, 2, 2, 2, 2]
    t = np.array([0.1, 1.0, 10.0, 1000.0], np.float32)
    np.testing.assert_array_equal(nerf_ref.step_size(t, np.float32(1 / 256), np.float32(np.sqrt(3) / 1024)),
                                  np.float32([np.sqrt(3) / 1024, 1 / 256, 10 / 256, np.sqrt(3)]))


@pytest.mark.parametrize("aabb_scale", [1, 4, 16])
def test_fused_kernels_equal_the_reference(device, aabb_scale):
    model = cascaded(aabb_scale)
    images = {}
    for variant in ("baked", "buffered"):
        images[variant], _, view = render(device, model, size=SIZE, settings=CAMERA, variant=variant)
    want, samples = nerf_ref.render(model, *SIZE, view)
    assert (want.astype(int).sum(axis=2) < 700).mean() > 0.05  # something in front of the white background
    for variant, image in images.items():
        assert close(image, want) <= 0.01, variant
    cone = nerf_ref.cone_angle(view, model)
    assert cone == (0 if aabb_scale == 1 else np.float32(1 / 256))


@pytest.mark.parametrize("aabb_scale", [4, 16])
def test_unfused_pipelines_draw_the_fused_image(device, aabb_scale):
    """The staged pipelines (and the simulated NGPC with fp32 storage, which computes what the GPU path does)
    draw the fused image, through their own stage kernels."""
    model = cascaded(aabb_scale, seed=1)
    fused, _, _ = render(device, model, size=SIZE, settings=CAMERA)
    assert (fused.astype(int).sum(axis=2) < 700).mean() > 0.05  # something in front of the white background
    for pipeline in ("unfused", "fused-rest", "ngpc"):
        arch = load_arch(storage_precision="fp32") if pipeline == "ngpc" else None
        image, stats, _ = render(device, model, size=SIZE, settings=CAMERA, **pipeline_options(pipeline, arch))
        np.testing.assert_array_equal(image, fused, err_msg=pipeline)
        classes = stats.class_ms()
        assert classes["fused"] == 0 and classes["rest"] > 0 and stats.iterations >= 1, (pipeline, classes)
        projected = stats.ngpc_ms is not None and stats.ngpc_ms > 0
        assert projected == (pipeline == "ngpc"), (pipeline, stats.ngpc_ms)


@pytest.mark.parametrize("aabb_scale", [4, 16])
def test_cone_stepping_cuts_samples(device, aabb_scale):
    """The same box marched with fixed steps and with instant-ngp's cone steps: samples per ray printed."""
    model = cascaded(aabb_scale, seed=2)
    # the blobs fill the box: a camera inside it at 0.45 s from the centre sees them at distances ~s/4..s/2
    camera = {"camera": {"transform_matrix": orbit(30.0, 20.0, 0.45 * aabb_scale).c2w.tolist(), "fov_x": 50.0}}
    fixed, _, fixed_view = render(device, model, size=SIZE, settings={**camera, "cone_angle": 0.0})
    cone, _, cone_view = render(device, model, size=SIZE, settings=camera)
    want_fixed, samples_fixed = nerf_ref.render(model, *SIZE, fixed_view)
    want_cone, samples_cone = nerf_ref.render(model, *SIZE, cone_view)
    assert close(fixed, want_fixed) <= 0.01 and close(cone, want_cone) <= 0.01
    print(f"\naabb_scale {aabb_scale}: {samples_fixed.mean():.1f} samples/ray with fixed steps, "
          f"{samples_cone.mean():.1f} with cone stepping ({samples_fixed.sum() / samples_cone.sum():.2f}x fewer)")
    assert samples_cone.sum() < samples_fixed.sum()


def test_cascades_must_match_the_box(device, tmp_path):
    model = cascaded(4)
    with pytest.raises(ConfigError, match="aabb_scale 4 needs 3 occupancy cascade"):
        dataclasses.replace(model, occupancy=model.occupancy[:2])
    with pytest.raises(ConfigError, match="aabb_scale must be an integer in 1..128"):
        dataclasses.replace(model, aabb_scale=256)
    model.save(tmp_path / "m.safetensors")
    back = load_model(tmp_path / "m.safetensors")
    assert back.aabb_scale == 4 and back.occupancy_cascades == 3
    np.testing.assert_array_equal(back.occupancy, model.occupancy)
    with pytest.raises(ConfigError, match="cone_angle must be"):
        render(device, model, size=SIZE, settings={"cone_angle": 2.0})
