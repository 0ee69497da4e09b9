"""The fused neural-SDF kernel (sphere tracing, normals, shading) against the NumPy reference render.

Models: small grids fitted to an analytic torus (tests/fit_sdf.py). Sphere tracing is iterative, so a last-bit
difference in the network output could change a step count at a silhouette: the tolerance allows 1% of the
pixels to differ by more than 2/255 (none does on lavapipe today)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ngrender.apps import create_app
from ngrender.camera import Camera, orbit
from ngrender.errors import ConfigError
from ngrender.model import load_model
from ngrender.reference import sdf as ref
from ngrender.render import Renderer
from ngrender.session import RenderSession
from screenshots import compare_screenshot

DATA = Path(__file__).resolve().parent / "data"


def torus(encoding: str):
    return load_model(DATA / f"sdf_torus_{encoding}.safetensors")


def render(device, model, variant, width, height, settings=None, tile=(1024, 1024)):
    app = create_app(device, model, variant, max_tile=tile)
    renderer = Renderer(device, app)
    try:
        view = app.make_view(settings or {})
        image, stats = renderer.render(width, height, view)
        return image, stats, view
    finally:
        renderer.destroy()
        app.destroy()


def assert_matches_reference(image, want):
    diff = np.abs(image.astype(int) - want.astype(int)).max(axis=2)
    assert (diff > 2).mean() <= 0.01, f"{(diff > 2).mean():.2%} of pixels differ by more than 2"


@pytest.mark.parametrize("variant", ["baked", "buffered"])
@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres"])
def test_fused_sdf_equals_reference(device, encoding, variant):
    model = torus(encoding)
    image, stats, view = render(device, model, variant, 64, 48)
    want, steps = ref.render(model, 64, 48, view)
    assert_matches_reference(image, want)
    assert (want.max(axis=2) > 0).mean() > 0.1  # the torus covers a real part of the frame
    assert stats.kernel_ms["sdf_fused"] > 0


@pytest.mark.parametrize("mode", ["normals", "depth", "steps"])
def test_render_modes_equal_reference(device, mode):
    model = torus("hash")
    image, _, view = render(device, model, "baked", 48, 40, {"mode": mode})
    assert_matches_reference(image, ref.render(model, 48, 40, view)[0])


def test_camera_inside_the_cube_and_tiles(device):
    model = torus("dense")
    settings = {"camera": {"transform_matrix": orbit(10, 5, 0.3).c2w.tolist(), "fov_x": 90}}
    whole, _, view = render(device, model, "baked", 40, 30, settings)
    tiled, stats, _ = render(device, model, "baked", 40, 30, settings, tile=(16, 16))
    assert stats.tiles == 3 * 2
    np.testing.assert_array_equal(tiled, whole)
    assert_matches_reference(whole, ref.render(model, 40, 30, view)[0])


@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres"])
def test_sdf_screenshots(encoding, regenerate):
    with RenderSession(torus(encoding), validation=True) as session:
        image, _ = session.renderer.render(96, 72, session.view())
        session.check_validation()
    compare_screenshot(f"sdf_torus_{encoding}_96x72", image, regenerate)


@pytest.mark.parametrize("settings, message", [
    ({"max_steps": 0}, "max_steps"),
    ({"mode": "xray"}, "render mode"),
    ({"epsilon": -1}, "epsilon"),
    ({"camera": {"transform_matrix": (np.eye(4) * 2).tolist()}}, "not orthonormal"),
    ({"camera": {"orbit": {"radius": 2}, "fov_x": 179}}, "field of view"),
    ({"camera": {"position": [0, 0, 1]}}, "needs 'transform_matrix' or 'orbit'"),
    ({"window": [0, 0, 1, 1]}, "unknown sdf view field"),
])
def test_bad_views(device, settings, message):
    app = create_app(device, torus("hash"), "baked", max_tile=(8, 8))
    try:
        with pytest.raises(ConfigError, match=message):
            app.make_view(settings)
    finally:
        app.destroy()


def test_scene_file_for_sdf(tmp_path):
    scene = tmp_path / "torus.json"
    scene.write_text(json.dumps({"app": "sdf", "model": str(DATA / "sdf_torus_hash.safetensors"),
                                 "render": {"width": 32, "height": 24},
                                 "view": {"camera": {"orbit": {"azimuth": 45, "elevation": 30, "radius": 1.5}},
                                          "mode": "normals"}}))
    with RenderSession.from_scene(scene, validation=True) as session:
        image, _ = session.renderer.render(32, 24, session.view())
        want, _ = ref.render(session.model, 32, 24, session.view())
    assert_matches_reference(image, want)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"app": "gigapixel", "model": str(DATA / "sdf_torus_hash.safetensors")}))
    with pytest.raises(ConfigError, match="is a 'sdf' model"):
        RenderSession.from_scene(bad)


def test_camera_helpers():
    cam = orbit(0, 0, 2.0)
    np.testing.assert_allclose(cam.origin, [0.5, 0.5, 2.5])
    np.testing.assert_allclose(cam.c2w[:3, 2], [0, 0, 1], atol=1e-12)  # looks down -z at the target
    assert Camera(np.eye(4), 90).focal(200) == pytest.approx(100.0)
