"""The registry's documented path for a new app, proven by a fifth app that lives in the test suite only
(tests/fifth_app.py + tests/shaders/sdf2d.comp): registered by importing it, then found by scene files, sessions
and the CLI's names like the built-in apps, and rendered on the GPU like its NumPy reference."""
from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

from ngrender.apps import app_names, app_spec, registry
from ngrender.errors import ConfigError
from ngrender.scene import load_scene
from ngrender.session import RenderSession


def assert_close_images(got: np.ndarray, want: np.ndarray, max_share: float) -> None:
    """Equal up to 1 LSB, at most ``max_share`` of the values off (the GPU's summation order tips a rounding,
    or the sign of a distance within rounding of 0 in the inside mode)."""
    diff = np.abs(got.astype(int) - want.astype(int))
    share = (diff > 0).mean()
    assert share <= max_share, f"{share:.2%} of values differ"
    if max_share < 0.01:
        assert diff.max() <= 1, f"max abs diff {diff.max()}"


@pytest.fixture
def fifth_app():
    """The documented path: importing the app's module registers it. For each test here only: the rest of the suite
    sees the built-in apps alone."""
    app_names()  # the built-ins first
    saved = dict(registry._APPS)
    sys.modules.pop("fifth_app", None)
    yield importlib.import_module("fifth_app")
    registry._APPS.clear()
    registry._APPS.update(saved)


def test_the_fifth_app_is_registered_beside_the_built_ins(fifth_app):
    assert app_names() == ("gigapixel", "sdf", "volume", "nerf", "sdf2d")
    spec = app_spec("sdf2d")
    assert spec is fifth_app.SPEC
    assert spec.app_class is fifth_app.Sdf2dApp and spec.view_class is fifth_app.Sdf2dView
    assert dict(spec.modes) == {"distance": 0, "inside": 1}
    assert spec.reference_render() is fifth_app.render
    with pytest.raises(ValueError, match="registered already"):
        from ngrender.apps import AppSpec, register_app
        register_app(AppSpec("sdf2d", fifth_app.Sdf2dApp, reference="elsewhere:render"))


@pytest.mark.parametrize("mode, max_share", [("distance", 1e-3), ("inside", 0.01)])
def test_the_fifth_app_renders_like_its_reference(fifth_app, model_factory, mode, max_share):
    model = model_factory("hash", app="sdf2d", n_in=2, n_out=1)
    with RenderSession(model, validation=True, tile=(40, 32)) as session:
        view = session.view(mode=mode)
        image, stats = session.renderer.render(64, 48, view)  # 2 x 2 tiles
        session.check_validation()
    want, evaluations = app_spec("sdf2d").reference_render()(model, 64, 48, view)
    assert image.shape == want.shape == (48, 64, 3)
    assert len(np.unique(want)) > 1, "the test model should not be one flat grey"
    assert_close_images(image, want, max_share)
    assert stats.tiles == 4 and stats.samples == int(evaluations.sum())


def test_a_scene_file_names_the_fifth_app(fifth_app, tmp_path, model_factory):
    model = model_factory("dense", app="sdf2d", n_in=2, n_out=1)
    model.save(tmp_path / "sdf2d.safetensors")
    scene_path = tmp_path / "sdf2d.json"
    scene_path.write_text(json.dumps({"app": "sdf2d", "model": "sdf2d.safetensors",
                                      "render": {"width": 24, "height": 16}, "view": {"scale": 2.0}}))
    with RenderSession.from_scene(scene_path, validation=True) as session:
        view = session.view()
        assert view == fifth_app.Sdf2dView(scale=2.0)
        image = session.renderer.render(session.scene.width, session.scene.height, view)[0]
        session.check_validation()
    assert_close_images(image, fifth_app.render(session.model, 24, 16, view)[0], 1e-3)
    bad = dict(json.loads(scene_path.read_text()), view={"scale": -1.0})
    scene_path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="scale must be > 0"):
        with RenderSession.from_scene(scene_path) as session:
            session.view()
    assert load_scene(scene_path).app == "sdf2d"


def test_the_rest_of_the_suite_sees_the_built_in_apps_alone():
    """Runs after the fixture of the tests above is torn down (pytest runs a module's tests in file order)."""
    assert app_names() == ("gigapixel", "sdf", "volume", "nerf")
