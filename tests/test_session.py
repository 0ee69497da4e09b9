"""RenderSession: the one owner of device, model, app and Renderer; a device lent by the caller, scene switches
and new options in place (what the viewer is built on)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ngrender.errors import ConfigError
from ngrender.session import RenderSession
from ngrender.vk import live_objects

ROOT = Path(__file__).resolve().parent.parent
GIGAPIXEL = ROOT / "scenes" / "gigapixel_lowres.json"
TORUS = ROOT / "scenes" / "standin" / "sdf_torus_hash.json"


def test_a_session_on_a_lent_device_switches_scene_and_options(device, tmp_path):
    wrong = tmp_path / "torus_with_an_image_model.json"
    data = json.loads(TORUS.read_text())
    wrong.write_text(json.dumps({**data, "model": str(ROOT / "assets" / "gigapixel_hash.safetensors")}))
    with RenderSession.from_scene(TORUS, device=device) as fresh:
        want, _ = fresh.renderer.render(24, 16, fresh.view())
    assert device.alive and live_objects() == {"device": 1}  # lent: used, never destroyed

    with RenderSession.from_scene(GIGAPIXEL, device=device) as session:
        assert session.device is device and session.app.name == "gigapixel"
        session.renderer.render(24, 16, session.view())
        session.switch_scene(TORUS)
        assert session.scene.path == TORUS and session.app.name == "sdf"
        image, _ = session.renderer.render(24, 16, session.view())
        assert np.array_equal(image, want)  # the same frame as a session opened on the scene

        app = session.app
        with pytest.raises(ConfigError, match="scene is for app 'sdf' but model gigapixel_hash.safetensors is a "
                                              "'gigapixel' model"):
            session.switch_scene(wrong)
        with pytest.raises(ConfigError, match="unknown pipeline 'warp'"):
            session.reconfigure(pipeline="warp")
        assert session.app is app and session.scene.path == TORUS and session.options["pipeline"] == "fused"

        session.reconfigure(pipeline="unfused")
        image, stats = session.renderer.render(24, 16, session.view())
        assert stats.pipeline == "unfused" and np.array_equal(image, want)
    assert device.alive and live_objects() == {"device": 1}


def test_a_scene_and_model_of_different_apps_make_no_device(tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({**json.loads(TORUS.read_text()),
                                 "model": str(ROOT / "assets" / "gigapixel_hash.safetensors")}))
    with pytest.raises(ConfigError, match="is a 'gigapixel' model"):
        RenderSession.from_scene(wrong)
    assert live_objects() == {}
