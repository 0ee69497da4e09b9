"""The viewer: the overlay pass headless over a known frame, the dynamic-resolution controller and the
refinement's bookkeeping without a window, then the real window under Xvfb (started here) — frames that are the
scene, the overlay drawn over them, synthetic input, toggles, resize, files, refinement at rest to exactly the
`render` image, its abandonment on motion, no rendering once refined, `--benchmark` — and a clean close (no
validation message, no live Vulkan object)."""
from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.apps import create_app
from ngrender.render import Renderer
from ngrender.viewer.controls import ImageControls, OrbitControls
from ngrender.viewer.dynamic import COARSEN, MIN_DYNAMIC_SCALE, DynamicResolution
from ngrender.viewer.refine import REFINE_TILE, Refinement, centre_out_tiles, upscale_nearest
from ngrender.viewer.overlay import OverlayPass
from ngrender.vk.present import OffscreenTarget
from ngrender.vk.resources import Buffer
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
glfw = pytest.importorskip("glfw", reason="the viewer needs the [viewer] extra; ./run.sh installs it")
pytest.importorskip("imgui_bundle", reason="the viewer needs the [viewer] extra; ./run.sh installs it")


def _offscreen(device, size):
    vk = device.vk
    overlay = OverlayPass(device, vk.VK_FORMAT_R8G8B8A8_UNORM, vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL)
    return overlay, OffscreenTarget(device, overlay.render_pass, size)


def test_overlay_pass_over_a_known_frame(device):
    from ngrender.viewer.imgui_frames import ImGuiFrames

    fw, fh = 80, 50
    frame = np.zeros((fh, fw, 4), np.uint8)
    frame[..., 0] = np.arange(fw)[None, :] * 3
    frame[..., 1] = np.arange(fh)[:, None] * 5
    frame[..., 3] = 255
    overlay, target = _offscreen(device, (160, 100))
    gui = None
    try:
        with Buffer(device, frame.nbytes) as buf:
            buf.write(frame)
            device.submit(lambda cmd: overlay.record(cmd, target.framebuffer, buf, (fw, fh)))
            plain = target.read()
            upscaled = np.repeat(np.repeat(frame, 2, 0), 2, 1)
            assert np.array_equal(plain, upscaled)  # the frame's bytes, nearest-upscaled, unchanged
            device.submit(lambda cmd: overlay.record(cmd, target.framebuffer, buf, (fw, fh), gain=2.0))
            brighter = target.read()
            assert np.array_equal(brighter[..., :3], np.minimum(upscaled[..., :3].astype(int) * 2, 255))

            gui = ImGuiFrames((160, 100), overlay.set_texture)

            def panel():
                gui.imgui.set_next_window_pos((4, 4))
                gui.imgui.set_next_window_size((70, 40))
                gui.imgui.begin("stats")
                gui.imgui.text("12.3 ms")
                gui.imgui.end()

            lists = gui.frame(panel, 1 / 60)
            lists = gui.frame(panel, 1 / 60)  # the atlas is complete after the first frame
            device.submit(lambda cmd: overlay.record(cmd, target.framebuffer, buf, (fw, fh), draw_lists=lists))
            drawn = target.read()
        assert not np.array_equal(drawn[4:44, 4:74], upscaled[4:44, 4:74])  # the panel is there
        assert np.array_equal(drawn[50:, 80:], upscaled[50:, 80:])            # and nowhere else
        assert overlay.textures  # the font atlas was uploaded
    finally:
        if gui is not None:
            gui.destroy()
        target.destroy()
        overlay.destroy()


def test_offscreen_target_releases_its_image_when_the_framebuffer_fails(device, monkeypatch):
    from ngrender.vk import live_objects

    vk = device.vk
    overlay = OverlayPass(device, vk.VK_FORMAT_R8G8B8A8_UNORM, vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL)
    try:
        before = live_objects()

        def refuse(*args):
            raise vk.VkErrorOutOfDeviceMemory()

        monkeypatch.setattr(vk, "vkCreateFramebuffer", refuse)
        with pytest.raises(vk.VkErrorOutOfDeviceMemory):
            OffscreenTarget(device, overlay.render_pass, (16, 16))
        monkeypatch.undo()
        assert live_objects() == before  # the image and its view were released with the failed target
    finally:
        overlay.destroy()


def test_image_controls_pan_and_zoom_to_native_resolution():
    controls = ImageControls((0.0, 0.0, 1.0, 1.0), source_size=(1000, 500))
    controls.pan(-100, 0, (200, 100))
    assert controls.window == pytest.approx((0.5, 0.0, 1.5, 1.0))
    controls.reset()
    for _ in range(100):
        controls.zoom(1, (100, 50), (200, 100))
    x0, _, x1, _ = controls.window
    assert x1 - x0 == pytest.approx(200 / 1000)  # one source pixel per screen pixel, no closer
    assert (x0 + x1) / 2 == pytest.approx(0.5)   # about the cursor


def test_orbit_controls_start_at_the_scene_camera_and_reset():
    from ngrender.camera import orbit

    home = orbit(30, 20, 1.6)
    controls = OrbitControls(home)
    assert controls.camera() is home
    controls.rotate(10, 0)
    assert controls.azimuth == pytest.approx(30 - 3) and controls.moved
    np.testing.assert_allclose(np.linalg.norm(controls.camera().origin - 0.5), 1.6)
    controls.zoom(2)
    assert controls.radius == pytest.approx(1.6 * 0.81)
    controls.reset()
    assert controls.camera() is home


def offscreen_render(viewer):
    app = create_app(viewer.render_device, viewer.model, "baked")
    renderer = Renderer(viewer.render_device, app)
    try:
        return renderer.render(*viewer.render_size(), viewer.view())[0]
    finally:
        renderer.destroy()
        app.destroy()


def test_viewer_window(xvfb, tmp_path, capsys):
    from ngrender.camera_path import camera_keyframe, load_camera_path
    from ngrender.viewer.app import Viewer
    from ngrender.viewer.x11 import grab_window

    scene = tmp_path / "sdf.json"  # a copy: the test saves the camera into it
    data = json.loads((ROOT / "scenes" / "standin" / "sdf_torus_hash.json").read_text())
    data["model"] = str((ROOT / "scenes" / "standin" / data["model"]).resolve())
    scene.write_text(json.dumps(data))
    with Viewer(scene, size=(480, 300), validation=True, resolution_scale=1.0, dynamic=False) as v:
        assert v.step() and v.step()
        shown = grab_window(v.window)
        want = offscreen_render(v)
        assert shown.shape == (300, 480, 3) and np.array_equal(v.image, want)
        differs = np.abs(shown.astype(int) - want).max(axis=2) > 0
        ys, xs = np.nonzero(differs)                               # the panel, top left, and only there
        assert xs.min() < 20 and ys.min() < 20 and 100 < xs.max() < 400 and 60 < ys.max() < 250
        assert differs[ys.min():ys.max(), xs.min():xs.max()].mean() > 0.3
        assert v.stats.gpu_ms > 0.2 * v.stats.wall_ms  # timestamps time the dispatches (see Viewer)

        v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)          # hide the overlay
        v.step()
        assert np.array_equal(grab_window(v.window), offscreen_render(v))

        before = v.image.copy()                                    # drag to orbit, outside the panel
        v.on_cursor(v.window, 400, 200)
        v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS, 0)
        v.on_cursor(v.window, 440, 190)
        v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.RELEASE, 0)
        v.on_scroll(v.window, 0, 1)
        v.on_key(v.window, glfw.KEY_W, 0, glfw.PRESS, 0)
        v.step()
        assert v.controls.moved and not np.array_equal(v.image, before)
        assert np.array_equal(grab_window(v.window), offscreen_render(v))

        v.on_key(v.window, glfw.KEY_C, 0, glfw.PRESS, 0)           # save the camera into the scene
        saved = json.loads(scene.read_text())
        assert saved["view"]["camera"]["transform_matrix"] == v.controls.camera().to_json()["transform_matrix"]
        assert saved["model"] == data["model"]                     # everything else kept
        v.on_key(v.window, glfw.KEY_P, 0, glfw.PRESS, 0)           # keyframes into instant-ngp's base_cam.json
        v.on_key(v.window, glfw.KEY_P, 0, glfw.PRESS, 0)
        base_cam = tmp_path / "sdf_base_cam.json"
        assert load_camera_path(base_cam, "sdf").n_keyframes == 2
        written = json.loads(base_cam.read_text())["path"][1]
        want_kf = camera_keyframe(v.controls.camera(), *v.swapchain.extent, scale=v.controls.radius)
        assert written == {**want_kf, "timestamp": 1.0}
        base_cam.write_text('{"frames": []}')                      # not a base_cam: left alone, one line
        capsys.readouterr()
        v.on_key(v.window, glfw.KEY_P, 0, glfw.PRESS, 0)
        err = capsys.readouterr().err
        assert err.startswith("ngrender: error: sdf_base_cam.json is left as it is") and err.count("\n") == 1
        assert base_cam.read_text() == '{"frames": []}'
        shot = v.screenshot(tmp_path / "shot.png")
        assert np.array_equal(np.asarray(Image.open(shot)), v.image)

        v.on_key(v.window, glfw.KEY_R, 0, glfw.PRESS, glfw.MOD_SHIFT)  # reset
        v.step()
        assert not v.controls.moved and np.array_equal(v.image, want)

        v.set_pipeline("unfused")                                  # toggles
        v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)          # overlay back on, with the breakdown
        v.step()
        assert v.stats.pipeline == "unfused" and v.stats.class_ms()["mlp"] > 0 and np.array_equal(v.image, want)
        v.set_pipeline("ngpc", "NGPC-16")
        v.step()
        assert v.stats.ngpc_ms is not None and v.ngpc_preset == "NGPC-16"
        v.base_view = type(v.base_view)(**{**v.base_view.__dict__, "mode": "normals"})
        v.set_user_scale(0.5)
        v.step()
        assert v.stats.width == 240 and v.image.shape == (150, 240, 3)

        glfw.set_window_size(v.window, 320, 200)                   # resize
        for _ in range(20):
            v.step()
            if v.swapchain.extent == (320, 200):
                break
        assert v.swapchain.extent == (320, 200) and grab_window(v.window).shape == (200, 320, 3)
        assert v.messages() == []


def test_a_failed_scene_switch_leaves_the_viewer_on_its_scene(xvfb, tmp_path, capsys):
    """The scene/model check runs on a switch too: a scene whose model is for another app is one error line
    (from the panel's model list as well), and the viewer goes on showing the scene it had."""
    from ngrender.errors import ConfigError
    from ngrender.viewer.app import Viewer
    from ngrender.viewer.panel import _report

    data = json.loads((ROOT / "scenes" / "standin" / "sdf_torus_hash.json").read_text())
    data["model"] = str((ROOT / "scenes" / "standin" / data["model"]).resolve())
    scene, wrong = tmp_path / "sdf.json", tmp_path / "sdf_wrong_model.json"
    scene.write_text(json.dumps(data))
    wrong.write_text(json.dumps({**data, "model": str(ROOT / "assets" / "gigapixel_hash.safetensors")}))
    with Viewer(scene, size=(320, 200), validation=True, resolution_scale=0.25, dynamic=False) as v:
        assert v.step()
        before, app = v.image.copy(), v.app
        assert wrong in v.siblings  # offered by the panel's model list (the scene file says sdf)
        with pytest.raises(ConfigError, match=r"sdf_wrong_model.json: scene is for app 'sdf' but model "
                                              r"gigapixel_hash.safetensors is a 'gigapixel' model") as failure:
            v.switch_scene(wrong)
        assert "\n" not in str(failure.value)
        assert v.scene.path == scene and v.app is app and v.app.name == "sdf"
        capsys.readouterr()
        _report(v.switch_scene, wrong)
        err = capsys.readouterr().err
        assert err.startswith("ngrender: error: ") and err.count("\n") == 1 and "'gigapixel' model" in err
        assert v.step() and v.scene.path == scene and np.array_equal(v.image, before)
        assert v.messages() == []


def test_viewer_ngpc_pipeline_runs_the_chosen_preset(xvfb, tmp_path):
    """`view --pipeline ngpc --ngpc-preset P --ngpc-set K=V` simulates P with the overrides, at start and after
    switching pipelines in the panel (the viewer once always started on NGPC-8 without overrides)."""
    from ngrender.cli import _ngpc_overrides, build_parser
    from ngrender.viewer.app import Viewer

    scene = ROOT / "scenes" / "standin" / "sdf_torus_hash.json"
    args = build_parser().parse_args(["view", str(scene), "--pipeline", "ngpc", "--ngpc-preset", "NGPC-64",
                                      "--ngpc-set", "clock_ghz=2"])
    with Viewer(scene, size=(320, 200), validation=True, resolution_scale=0.25, pipeline=args.pipeline,
                ngpc_preset=args.ngpc_preset, ngpc_overrides=_ngpc_overrides(args.ngpc_set)) as v:
        assert v.step()
        arch = v.app.wavefront.arch
        assert (arch.name, arch.n_nfp, arch.clock_ghz) == ("NGPC-64", 64, 2)
        v.set_pipeline("fused")
        assert v.step() and v.app.wavefront is None
        v.set_pipeline("ngpc")
        assert v.step() and (v.app.wavefront.arch.n_nfp, v.app.wavefront.arch.clock_ghz) == (64, 2)
        assert v.messages() == []


def test_view_without_a_display_says_what_to_do():
    proc = run_cli("view", ROOT / "scenes" / "gigapixel.json", env={"DISPLAY": None, "WAYLAND_DISPLAY": None},
                   timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "needs a display" in proc.stderr and "ngrender render" in proc.stderr


def test_viewer_gigapixel_path_keyframes(xvfb, tmp_path):
    """P on a GIA scene: instant-ngp image-mode keyframes whose windows come back as the viewer showed them."""
    from ngrender.camera_path import image_aspect_of, load_camera_path
    from ngrender.viewer.app import Viewer

    data = json.loads((ROOT / "scenes" / "gigapixel_lowres.json").read_text())
    data["model"] = str((ROOT / "scenes" / data["model"]).resolve())
    scene = tmp_path / "gia.json"
    scene.write_text(json.dumps(data))
    with Viewer(scene, size=(256, 128), validation=True, resolution_scale=0.25) as v:
        windows = [v.controls.window]
        v.on_key(v.window, glfw.KEY_P, 0, glfw.PRESS, 0)
        v.controls.zoom(6, (64, 40), (256, 128))
        windows.append(v.controls.window)
        v.on_key(v.window, glfw.KEY_P, 0, glfw.PRESS, 0)
        assert v.step() and v.messages() == []
        base_cam = tmp_path / "gia_base_cam.json"
        doc = json.loads(base_cam.read_text())
        base_cam.write_text(json.dumps({**doc, "spline_order": 1}))  # keyframes at t = 0 and 1
        path = load_camera_path(base_cam, "gigapixel", image_aspect=image_aspect_of(v.scene))
        assert path.view_at(0.0, 256, 128)["window"] == pytest.approx(windows[0], abs=1e-12)
        assert path.view_at(1.0, 256, 128)["window"] == pytest.approx(windows[1], abs=1e-12)


# -- dynamic resolution and refinement ------------------------------------------------------------------------

def test_dynamic_resolution_converges_to_the_target_and_holds():
    """Synthetic frames: render time proportional to the pixels (and march steps) plus a fixed rest. The scale
    reaches the target frame time within a few frames, holds it, stops at the floor and the rest resolution, and
    coarsens the march only when even the floor misses the target."""
    window = 960 * 540

    def fly(per_px_ms, rest_ms, fps, frames=12, can_coarsen=False, limit=1.0, start=0.25):
        dyn, times = DynamicResolution(start), []
        for _ in range(frames):
            pixels = round(dyn.scale * 960) * round(dyn.scale * 540)
            render = per_px_ms * pixels / dyn.coarsen
            times.append(render + rest_ms)
            dyn.update(render + rest_ms, render, pixels, window, fps, can_coarsen, limit)
        return dyn, times

    dyn, times = fly(2e-4, 8.0, 15.0)   # 100 ms for the whole window's render at 2e-4 ms/pixel
    assert times[-1] == pytest.approx(1e3 / 15, rel=0.05) and times[4] == pytest.approx(1e3 / 15, rel=0.05)
    assert max(times[4:]) / min(times[4:]) < 1.05                             # holds: no hunting
    dyn, _ = fly(5e-2, 8.0, 15.0)                                             # too slow even at the floor
    assert dyn.scale == MIN_DYNAMIC_SCALE and dyn.coarsen == 1
    dyn, times = fly(5e-2, 8.0, 15.0, can_coarsen=True)                       # a 3D app: fewer march steps
    assert dyn.coarsen in COARSEN[1:] and times[-1] <= 1e3 / 15 * 1.05
    dyn, _ = fly(1e-6, 1.0, 15.0, limit=0.5)                                  # fast: the rest resolution caps it
    assert dyn.scale == pytest.approx(1.0) and dyn.coarsen == 1
    dyn, _ = fly(2e-4, 8.0, 15.0, frames=1, start=0.5)                        # one slow frame: at most 4x down
    dyn.update(5000.0, 4990.0, 480 * 270, window, 15.0)
    assert dyn.scale >= 0.25 * 0.5 * 0.99


def test_refinement_goes_centre_out_and_accumulates_the_running_mean():
    tiles = centre_out_tiles(200, 130, REFINE_TILE)
    assert sorted(tiles) == sorted(((x, y), (min(64, 200 - x), min(64, 130 - y)))
                                   for y in range(0, 130, 64) for x in range(0, 200, 64))
    (x, y), (w, h) = tiles[0]
    assert x <= 100 < x + w and y <= 65 < y + h                                # the centre first
    small = np.arange(5 * 7 * 4, dtype=np.uint8).reshape(5, 7, 4)
    up = upscale_nearest(small, 20, 13)
    assert up.shape == (13, 20, 4) and np.array_equal(up[12, 19], small[4, 6]) and np.array_equal(up[0, 0], small[0, 0])
    assert np.array_equal(upscale_nearest(small, 14, 10), np.repeat(np.repeat(small, 2, 0), 2, 1))

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Seeded:
        seed: int = 0

    ref = Refinement("key", Seeded(), (130, 70), small, passes=3)
    assert ref.shown.shape == (70, 130, 4) and ref.progress() == "refining 0%"
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (70, 130, 4), dtype=np.uint8) for _ in range(3)]
    seeds = []
    while not ref.done:
        view, (x, y), (w, h) = ref.next_tile()
        seeds.append(view.seed)
        ref.paste(frames[view.seed][y:y + h, x:x + w])
        if ref.pass_index == 1 and ref.tile_index == 0:
            assert ref.refined and np.array_equal(ref.shown, frames[0])       # pass 0: the frame itself
            assert ref.progress() == "accumulating 2/3"
    n = len(centre_out_tiles(130, 70))
    assert seeds == [0] * n + [1] * n + [2] * n
    mean = np.rint(np.mean([f[..., :3].astype(np.float32) for f in frames], axis=0)).astype(np.uint8)
    assert np.array_equal(ref.shown[..., :3], mean) and ref.progress() == "accumulated 3/3"
    exact = Refinement("key", Seeded(), (7, 5), small, passes=1)              # the moving frame was the rest frame
    assert exact.done and exact.shown is small
    assert not Refinement("key", Seeded(), (7, 5), small, exact=False).done   # a coarser march: refine it


def test_render_region_is_the_frame_there(device):
    """A pixel depends on its position and the frame size only: any region equals the whole frame's pixels."""
    from helpers import fitted

    for app_name, variant in (("sdf", "baked"), ("nerf", "buffered")):
        app = create_app(device, fitted(app_name, "hash"), variant, max_tile=(24, 16))
        renderer = Renderer(device, app)
        try:
            whole, _ = renderer.render(50, 38)
            for origin, size in (((0, 0), (50, 38)), ((13, 7), (29, 21)), ((49, 37), (1, 1)), ((40, 0), (10, 38))):
                part, stats = renderer.render_region(50, 38, origin, size, rgba=True)
                (x, y), (w, h) = origin, size
                assert np.array_equal(part[..., :3], whole[y:y + h, x:x + w]) and (stats.width, stats.height) == size
            with pytest.raises(ValueError, match="not inside"):
                renderer.render_region(50, 38, (40, 0), (11, 38))
        finally:
            renderer.destroy()
            app.destroy()


def _standin_scene(tmp_path, name="sdf_torus_hash.json") -> Path:
    """A copy of a stand-in scene whose model path is absolute (the tests write cameras into it)."""
    data = json.loads((ROOT / "scenes" / "standin" / name).read_text())
    data["model"] = str((ROOT / "scenes" / "standin" / data["model"]).resolve())
    scene = tmp_path / name
    scene.write_text(json.dumps(data))
    return scene


def _drag(v, x=120, y=60, dx=15):
    """A left drag (an orbit); the panel must be hidden or not yet drawn, or ImGui takes it."""
    v.on_cursor(v.window, x, y)
    v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS, 0)
    v.on_cursor(v.window, x + dx, y + 3)
    v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.RELEASE, 0)


def _rest(v):
    """As if the last input was MOVING_S ago."""
    from ngrender.viewer.app import MOVING_S

    v.last_input = min(v.last_input, time.perf_counter() - MOVING_S)


def test_a_rested_camera_refines_to_exactly_the_render_image(xvfb, tmp_path):
    """Defaults: dynamic resolution on, rest resolution 1. Moving frames are a fraction of the 160x120 window;
    at rest the frame is refined tile by tile to exactly Renderer.render's image of the view, and to the file
    `ngrender render` writes for the saved camera; the window shows it."""
    from ngrender.viewer.app import Viewer
    from ngrender.viewer.panel import resolution_line
    from ngrender.viewer.x11 import grab_window

    scene = _standin_scene(tmp_path)
    with Viewer(scene, size=(160, 120), validation=True, target_fps=1000) as v:  # 1000: the floor, tile per step
        assert v.dynamic and v.user_scale == 1.0 and v.render_size() == (160, 120)
        _drag(v)
        assert v.step() and v.state == "refining" and v.progress() == "moving"
        assert v.stats.width < 160 and v.image.shape == (v.stats.height, v.stats.width, 3)
        w, h = v.stats.width, v.stats.height
        assert resolution_line(v) == f"{w}x{h} ({w / 160:.0%}, dynamic)"       # the overlay's line
        _rest(v)
        progress = []
        for _ in range(50):
            assert v.step()
            progress.append(v.progress())
            if v.refined:
                break
        tiles = len(centre_out_tiles(160, 120))
        assert v.refined and progress[-1] == "refined" and len(progress) == tiles   # one 64x64 tile per step
        assert progress[0] == f"refining {1 / tiles:.0%}"
        want = offscreen_render(v)
        assert np.array_equal(v.image, want) and resolution_line(v) == "160x120 (100%, rest)"
        v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)                    # overlay off: the frame alone
        assert v.step() and np.array_equal(grab_window(v.window), want)
        v.on_key(v.window, glfw.KEY_C, 0, glfw.PRESS, 0)                      # the camera into the scene copy
        assert v.refined and v.messages() == []
    out = tmp_path / "render.png"
    run_cli("render", scene, "--out", out, "--width", 160, "--height", 120, check=True)
    assert np.array_equal(np.asarray(Image.open(out)), want)


def test_motion_abandons_the_refinement(xvfb, tmp_path):
    """A drag between refinement steps: the next frame is a moving one at the dynamic scale. A drag arriving
    while tiles are rendered (input is polled between tiles) stops the step after that tile."""
    from ngrender.viewer.app import Viewer

    with Viewer(_standin_scene(tmp_path), size=(160, 120), validation=True, target_fps=1000) as v:
        v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)  # no panel: ImGui would take the drags in so small a window
        assert v.step()
        _rest(v)
        assert v.step() and v.step()
        partial = v.refinement
        assert v.state == "refining" and partial.tile_index == 2 and v.image.shape == (120, 160, 3)
        _drag(v)
        scale = v.dynamic_scale
        assert v.step()
        w, h = round(160 * scale), round(120 * scale)
        assert v.refinement is not partial and v.progress() == "moving" and scale < 1
        assert (v.stats.width, v.stats.height) == (w, h) and v.image.shape == (h, w, 3)

        _rest(v)                                                                # now within one step
        v.target_fps = 1.0                                                      # a budget for every tile
        tiles_rendered = []
        render_region = v.renderer.render_region

        def render_and_drag(*args, **kwargs):
            tiles_rendered.append(args[2])
            if len(tiles_rendered) == 2:
                _drag(v, dx=-10)  # what glfw delivers from the poll after this tile
            return render_region(*args, **kwargs)

        v.renderer.render_region = render_and_drag
        assert v.step()
        assert len(tiles_rendered) == 2 and v.refinement.tile_index == 2 and not v.refined
        v.target_fps = 1000.0
        assert v.step() and len(tiles_rendered) == 3 and tiles_rendered[-1] == (0, 0)  # a moving frame
        assert v.progress() == "moving" and v.stats.width < 160
        assert v.messages() == []


def test_a_refined_viewer_renders_nothing(xvfb, tmp_path):
    from ngrender.viewer.app import Viewer

    with Viewer(_standin_scene(tmp_path), size=(160, 120), validation=True) as v:
        for _ in range(20):
            assert v.step()
            _rest(v)
            if v.refined:
                break
        assert v.refined
        calls = []
        render_region, render = v.renderer.render_region, v.renderer.render
        v.renderer.render_region = lambda *a, **k: calls.append(a) or render_region(*a, **k)
        v.renderer.render = lambda *a, **k: calls.append(a) or render(*a, **k)
        frames = v.frames_rendered
        for _ in range(4):
            assert v.step()                                    # waits for input (IDLE_WAIT_S at most), redraws
        assert calls == [] and v.frames_rendered == frames
        v.controls.zoom(1)                                                    # a change: one moving frame
        assert v.step() and len(calls) == 1 and v.frames_rendered == frames + 1
        assert v.messages() == []


def test_view_benchmark_prints_its_figures(xvfb, tmp_path):
    out = tmp_path / "bench.json"
    proc = run_cli("view", _standin_scene(tmp_path), "--size", "160x120", "--benchmark", 1, "--benchmark-json", out,
                   env={"DISPLAY": xvfb}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    assert lines[0].startswith("benchmark: ") and "160x120 window" in lines[0] and "toward 15 FPS" in lines[0]
    assert re.match(r"moving 1\.\d s: \d+ frames, [\d.]+ FPS, frame time median [\d.]+ ms, p90 ", lines[1]), lines[1]
    assert lines[2].startswith("refined to 160x120 ") and lines[3].startswith("stages while moving")
    figures = json.loads(out.read_text())
    assert figures["frames"] > 0 and figures["refined"] and figures["refine_s"] > 0
    assert 0 < figures["median_ms"] <= figures["p90_ms"]
    assert MIN_DYNAMIC_SCALE <= figures["mean_resolution_factor"] <= 1
    assert figures["fps_moving"] == pytest.approx(figures["frames"] / figures["moving_s"])
    assert set(figures["stages_ms"]) == {"render", "compose", "upload", "imgui", "record+submit", "present"}
    proc = run_cli("view", _standin_scene(tmp_path), "--benchmark-json", out)
    assert proc.returncode == 2 and proc.stderr.startswith("ngrender: error: --benchmark-json needs --benchmark")


def test_accumulation_shows_the_mean_of_the_seeds(xvfb, tmp_path):
    """--accumulate 3 on a volume (its view's seed jitters the march's start): once refined, the frame is the
    rounded float32 mean of the renders of seeds 0, 1 and 2."""
    from ngrender.viewer.app import Viewer

    with Viewer(_standin_scene(tmp_path, "volume_cloud_hash.json"), size=(96, 72), validation=True,
                accumulate=3) as v:
        for _ in range(100):  # how many passes one step gets through depends on the machine's speed
            assert v.step()
            _rest(v)
            if v.refined:
                break
        assert v.refined and v.progress() == "accumulated 3/3"
        app = create_app(v.render_device, v.model, "baked")
        renderer = Renderer(v.render_device, app)
        try:
            frames = [renderer.render(96, 72, dataclasses.replace(v.view(), seed=s))[0] for s in range(3)]
        finally:
            renderer.destroy()
            app.destroy()
        assert not np.array_equal(frames[0], frames[1])                        # the seeds jitter differently
        mean = np.rint(np.mean(np.stack(frames).astype(np.float32), axis=0)).astype(np.uint8)
        assert np.array_equal(v.image, mean) and v.messages() == []
