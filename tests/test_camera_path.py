"""Camera paths (ngrender/camera_path.py): instant-ngp's base_cam.json and nerfstudio's camera_path.json written
here from their published schemas, the B-spline against numbers worked out by hand from its basis, quaternion
hemispheres, loops, frames computed alone or in any order, GIA windows, the viewer's keyframes read back, and
every bad input as one ConfigError naming the file and the field."""
from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from ngrender.camera import Camera, look_at, orbit
from ngrender.camera_path import (IMAGE_MODE_FOV, append_keyframe, camera_keyframe, image_aspect_of,
                                  load_camera_path, matrix_to_quat, parse_frames, plan_frames, quat_to_matrix,
                                  window_keyframe)
from ngrender.errors import ConfigError, NgrenderError
from ngrender.scene import load_scene

ROOT = Path(__file__).resolve().parent.parent

IDENTITY_Q = [0.0, 0.0, 0.0, 1.0]


def keyframe(x: float, r=IDENTITY_Q, fov: float = 50.0, **extra) -> dict:
    """One keyframe as instant-ngp's CameraPath::save writes it (R is x, y, z, w)."""
    return {"R": list(r), "T": [x, 0.5, 2.0], "slice": 0.0, "scale": 1.5, "fov": fov, "aperture_size": 0.0,
            "timestamp": 0.0, **extra}


def base_cam(tmp_path, frames, name="base_cam.json", **top) -> object:
    doc = {"loop": False, "time": 0.0, "path": frames, "duration_seconds": 0.0, "spline_order": 3, **top}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def ngp_position(view: dict) -> np.ndarray:
    return np.array(view["camera"]["transform_matrix"])[:3, 3]


# -- instant-ngp's spline, against hand-computed values --------------------------------------------------------
# Four keyframes at x = 0, 1, 3, 6 with timestamps 0 (invalid, so instant-ngp spaces them (i+1)/4: 0.25, 0.5,
# 0.75, 1). Without loop the path lasts to the second-to-last timestamp (0.75): t -> playtime 0.75 t; keyframe i's
# timestamp ends segment i; indices outside 0..3 clamp. Basis at f: (1-f)^3/6, (3f^3-6f^2+4)/6,
# (-3f^3+3f^2+3f+1)/6, f^3/6 on keyframes i-1, i, i+1, i+2.
#   t = 0:    segment 0, f = 0    -> k0,k0,k1,k2 weights 1/6, 4/6, 1/6, 0 -> 1/6
#   t = 0.25: playtime 0.1875, segment 0, f = 0.75 -> weights 1/384, 121/384, 235/384, 27/384 on 0, 0, 1, 3
#             -> (235 + 81)/384 = 316/384
#   t = 0.5:  playtime 0.375, segment 1, f = 0.5 -> 1/48, 23/48, 23/48, 1/48 on 0, 1, 3, 6 -> 98/48
#   t = 1:    playtime 0.75, segment 2 (clamped), f = 1 -> 0, 1/6, 4/6, 1/6 on 1, 3, 6, 6 -> 33/6
# With loop the path lasts to the last timestamp (1) and indices wrap:
#   t = 0:   segment 0, f = 0 -> k3, k0, k1 weights 1/6, 4/6, 1/6 -> 7/6
#   t = 0.5: playtime 0.5, segment 2, f = 0 -> k1, k2, k3 -> (1 + 12 + 6)/6 = 19/6
#   t = 1:   segment 3, f = 1 -> k3, k0, k1 weights 1/6, 4/6, 1/6 -> 7/6 (the loop closes)
OPEN_VALUES = [(0.0, 1 / 6), (0.25, 316 / 384), (0.5, 98 / 48), (1.0, 33 / 6)]
LOOP_VALUES = [(0.0, 7 / 6), (0.5, 19 / 6), (1.0, 7 / 6)]


@pytest.mark.parametrize("loop, values", [(False, OPEN_VALUES), (True, LOOP_VALUES)])
def test_cubic_bspline_equals_hand_computed_values(tmp_path, loop, values):
    path = load_camera_path(base_cam(tmp_path, [keyframe(x) for x in (0, 1, 3, 6)], loop=loop), "nerf")
    assert path.loop is loop and path.n_keyframes == 4
    for t, x in values:
        view = path.view_at(t, 64, 64)
        assert ngp_position(view) == pytest.approx([x, 0.5, 2.0], abs=1e-12), t


def test_timestamps_in_the_file_are_used_when_they_increase(tmp_path):
    # Timestamps 1, 2, 4, 8 (seconds of a recorded path): without loop the path lasts 4; t = 0.5 is playtime 2,
    # the end of segment 1 -> segment 2 at f = 0: k1, k2, k3 weights 1/6, 4/6, 1/6 on 1, 3, 6 -> 19/6.
    frames = [keyframe(x, timestamp=s) for x, s in zip((0, 1, 3, 6), (1, 2, 4, 8))]
    path = load_camera_path(base_cam(tmp_path, frames, duration_seconds=8.0), "nerf")
    assert path.seconds == 8.0 and path.fps is None
    assert ngp_position(path.view_at(0.5, 64, 64))[0] == pytest.approx(19 / 6, abs=1e-12)


def test_linear_and_nearest_orders(tmp_path):
    frames = [keyframe(x) for x in (0, 1, 3, 6)]
    linear = load_camera_path(base_cam(tmp_path, frames, spline_order=1), "nerf")
    # keyframe k is reached at t = k / 3; halfway between 1 and 3 at t = 1/2
    assert [ngp_position(linear.view_at(k / 3, 8, 8))[0] for k in range(4)] == pytest.approx([0, 1, 3, 6])
    assert ngp_position(linear.view_at(0.5, 8, 8))[0] == pytest.approx(2.0)
    nearest = load_camera_path(base_cam(tmp_path, frames, spline_order=0), "nerf")
    assert ngp_position(nearest.view_at(0.4, 8, 8))[0] == 1.0  # playtime 0.3: segment 1 at f = 0.2 -> k1


def test_quaternions_are_aligned_to_one_hemisphere(tmp_path):
    """Rotations by 0 and 90 degrees about y, the second stored as its negative (the same rotation): halfway is
    the 45-degree rotation. Summed without flipping, q0/2 + q1/2 would be a -135 degree turn."""
    s = math.sin(math.pi / 4)
    frames = [keyframe(0.0, IDENTITY_Q), keyframe(0.0, [0.0, -s, 0.0, -s])]
    path = load_camera_path(base_cam(tmp_path, frames, spline_order=1), "nerf")
    m = np.array(path.view_at(0.5, 32, 32)["camera"]["transform_matrix"])
    c = math.cos(math.pi / 4)
    assert m[:3, 0] == pytest.approx([c, 0.0, -c], abs=1e-12)  # ngrender keeps NGP's x column
    assert m[:3, 2] == pytest.approx([-c, 0.0, -c], abs=1e-12)  # and flips its z column


def test_quaternion_matrix_round_trip():
    rng = np.random.default_rng(1)
    for q in rng.normal(size=(20, 4)):
        q /= np.linalg.norm(q)
        back = matrix_to_quat(quat_to_matrix(q))
        assert min(np.abs(back - q).max(), np.abs(back + q).max()) < 1e-12


def test_fov_is_vertical_and_follows_the_frame(tmp_path):
    path = load_camera_path(base_cam(tmp_path, [keyframe(0.5, fov=60.0)]), "sdf")
    assert path.view_at(0.0, 100, 100)["camera"]["fov_x"] == pytest.approx(60.0)
    wide = 2 * math.degrees(math.atan(math.tan(math.radians(30)) * 2))
    assert path.view_at(0.0, 200, 100)["camera"]["fov_x"] == pytest.approx(wide)


# -- frames ----------------------------------------------------------------------------------------------------

def test_a_frame_alone_equals_the_frame_in_a_sequence_in_any_order(tmp_path):
    path = load_camera_path(base_cam(tmp_path, [keyframe(x) for x in (0, 1, 3, 6, 2)], loop=True), "nerf")
    plan = plan_frames(path, 12, 2)
    assert plan.n_frames == 24 and plan.fps == 12
    in_order = [plan.view(i, 48, 32) for i in range(plan.n_frames)]
    shuffled = list(range(plan.n_frames))
    random.Random(5).shuffle(shuffled)
    again = plan_frames(load_camera_path(path.file, "nerf"), 12, 2)  # another process reading the file
    for i in shuffled:
        assert again.view(i, 48, 32) == in_order[i]
    assert in_order[0] == path.view_at(0.0, 48, 32)  # frame i of N is t = i / N, as instant-ngp renders videos
    assert in_order[6] == path.view_at(0.25, 48, 32)


def test_plan_uses_the_cli_then_the_path_then_defaults(tmp_path):
    path = load_camera_path(base_cam(tmp_path, [keyframe(0)]), "nerf")
    assert (plan_frames(path, None, None).n_frames, plan_frames(path, None, None).fps) == (150, 30.0)
    recorded = load_camera_path(base_cam(tmp_path, [keyframe(0)], duration_seconds=2.0), "nerf")
    assert plan_frames(recorded, None, None).n_frames == 60
    assert plan_frames(recorded, 24, 1.5).n_frames == 36
    with pytest.raises(ConfigError, match="gives no frame"):
        plan_frames(path, 1, 0.5)
    with pytest.raises(ConfigError, match="--fps"):
        plan_frames(path, -3, None)
    with pytest.raises(ConfigError, match="not in 0..149"):
        plan_frames(path, None, None).view(150, 8, 8)


@pytest.mark.parametrize("text, frames", [("2:5", range(2, 5)), (":3", range(0, 3)), ("7:", range(7, 10)),
                                          (":", range(10)), ("-3:", range(7, 10)), ("0:10", range(10))])
def test_parse_frames(text, frames):
    assert parse_frames(text, 10) == frames


@pytest.mark.parametrize("text, fragment", [("3:11", "out of range"), ("-11:", "out of range"),
                                            ("5:5", "selects no frame"), ("a:b", "must be A:B"), ("4", "A:B")])
def test_parse_frames_refuses(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_frames(text, 10)


# -- nerfstudio ---------------------------------------------------------------------------------------------

def nerfstudio_path(tmp_path, cameras, **top):
    """camera_path.json as nerfstudio's viewer exports it (render.py reads camera_path, render_height/width,
    seconds, camera_type, crop)."""
    doc = {"default_fov": 50.0, "default_transition_sec": 2, "keyframes": [], "camera_type": "perspective",
           "render_height": 48, "render_width": 64, "fps": 24, "seconds": len(cameras) / 24, "is_cycle": False,
           "smoothness_value": 0.5, "crop": None,
           "camera_path": [{"camera_to_world": c.c2w.ravel().tolist(), "fov": 40.0, "aspect": 64 / 48}
                           for c in cameras], **top}
    path = tmp_path / "camera_path.json"
    path.write_text(json.dumps(doc))
    return path


def test_nerfstudio_entries_are_the_frames(tmp_path):
    cameras = [orbit(a, 15.0, 1.6) for a in range(0, 120, 10)]
    path = load_camera_path(nerfstudio_path(tmp_path, cameras), "nerf")
    assert path.size == (64, 48) and path.fps == pytest.approx(24) and path.seconds == pytest.approx(0.5)
    plan = plan_frames(path, None, None)
    assert plan.n_frames == len(cameras)
    for i, cam in enumerate(cameras):
        view = plan.view(i, 64, 48)["camera"]
        assert view["transform_matrix"] == cam.c2w.tolist()  # entry i exactly, in model space
        assert view["fov_x"] == pytest.approx(2 * math.degrees(math.atan(math.tan(math.radians(20)) * 64 / 48)))


def test_nerfstudio_at_another_rate_interpolates(tmp_path):
    cameras = [look_at((x, 0.5, 2.0)) for x in (0.0, 0.2, 0.6)] + [orbit(40.0, 10.0, 1.6)]
    path = load_camera_path(nerfstudio_path(tmp_path, cameras), "nerf")
    plan = plan_frames(path, 48, None)  # twice the entries' rate over the same 1/6 s
    assert plan.n_frames == 8
    assert plan.view(2, 64, 48)["camera"]["transform_matrix"] == cameras[1].c2w.tolist()
    assert ngp_position(plan.view(3, 64, 48)) == pytest.approx([0.4, 0.5, 2.0])
    halfway = np.array(plan.view(5, 64, 48)["camera"]["transform_matrix"])
    Camera(halfway)  # slerped: still a rotation
    assert plan.view(7, 64, 48)["camera"]["transform_matrix"] == cameras[3].c2w.tolist()  # held past the last


# -- gigapixel ---------------------------------------------------------------------------------------------------

def test_gigapixel_windows_interpolate_centre_and_log_zoom(tmp_path):
    frames = [window_keyframe((0.0, 0.0, 1.0, 1.0), 1.0), window_keyframe((0.25, 0.25, 0.5, 0.5), 1.0)]
    path = load_camera_path(base_cam(tmp_path, frames, spline_order=1), "gigapixel")
    assert path.view_at(0.0, 32, 32)["window"] == pytest.approx((0.0, 0.0, 1.0, 1.0))
    assert path.view_at(1.0, 32, 32)["window"] == pytest.approx((0.25, 0.25, 0.5, 0.5))
    # centre halfway (0.4375), height the geometric mean of 1 and 0.25 (0.5)
    assert path.view_at(0.5, 32, 32)["window"] == pytest.approx((0.1875, 0.1875, 0.6875, 0.6875))
    # a frame twice as wide sees twice the width at the same height: pixels stay square
    assert path.view_at(0.5, 64, 32)["window"] == pytest.approx((-0.0625, 0.1875, 0.9375, 0.6875))


def test_gigapixel_instant_ngp_image_mode_camera(tmp_path):
    """instant-ngp's image-mode start: camera at (0.5, 0.5, 1.5) looking down (R = 180 deg about x), relative
    focal length 1 (fov 2 atan(1/2) along y): the whole image, full-screen."""
    kf = keyframe(0.5, [1.0, 0.0, 0.0, 0.0], fov=IMAGE_MODE_FOV)
    kf["T"] = [0.5, 0.5, 1.5]
    path = load_camera_path(base_cam(tmp_path, [kf]), "gigapixel", image_aspect=2.0)
    assert path.view_at(0.3, 1024, 512)["window"] == pytest.approx((0.0, 0.0, 1.0, 1.0))


# -- the viewer's keyframes, read back ----------------------------------------------------------------------------

def test_viewer_keyframes_round_trip(tmp_path):
    cameras = [orbit(a, 20.0, 1.6, fov_x_deg=55.0) for a in (0, 60, 120)]
    doc = None
    for cam in cameras:
        doc = append_keyframe(doc, camera_keyframe(cam, 96, 64))
    assert [kf["timestamp"] for kf in doc["path"]] == pytest.approx([1 / 3, 2 / 3, 1.0])
    doc["spline_order"] = 1  # keyframe k at t = k / 2 (the default cubic approximates them)
    path = tmp_path / "scene_base_cam.json"
    path.write_text(json.dumps(doc))
    loaded = load_camera_path(path, "nerf")
    for k, cam in enumerate(cameras):
        view = loaded.view_at(k / 2, 96, 64)["camera"]
        assert np.array(view["transform_matrix"]) == pytest.approx(cam.c2w, abs=1e-12)
        assert view["fov_x"] == pytest.approx(55.0)


# -- bad input: one ConfigError naming the file and the field -------------------------------------------------------

GOOD = {"R": IDENTITY_Q, "T": [0.5, 0.5, 2.0], "fov": 50.0}
BAD_BASE_CAMS = [
    ({"path": []}, "path is empty"),
    ({"path": [{**GOOD, "T": [0.5, "x", 2.0]}]}, "path[0].T"),
    ({"path": [{**GOOD, "R": [0, 0, 0, 0]}]}, "path[0].R"),
    ({"path": [{**GOOD, "T": [1e300, 0.5, 2.0]}]}, "path[0].T"),  # finite in JSON, not in float32
    ({"path": [{**GOOD, "R": [0, 0, 0]}]}, "path[0].R"),
    ({"path": [{**GOOD, "fov": 0}]}, "path[0].fov"),
    ({"path": [GOOD, {"R": IDENTITY_Q, "fov": 50.0}]}, "path[1]: field 'T'"),
    ({"path": [GOOD], "spline_order": 4}, "spline_order"),
    ({"path": [GOOD], "loop": "yes"}, "loop"),
    ({"path": "keyframes"}, "path must be a list"),
    ({"frames": [{"camera": {}}]}, "unknown camera path format"),
    ({"path": [GOOD], "camera_path": []}, "unknown camera path format"),
    ([1, 2], "must be an object"),
]
BAD_NERFSTUDIO = [
    ({"camera_path": []}, "camera_path is empty"),
    ({"camera_path": [{"camera_to_world": [1] * 15, "fov": 50}]}, "camera_path[0].camera_to_world"),
    ({"camera_path": [{"camera_to_world": [1e300] + [0] * 15, "fov": 50}]}, "camera_path[0].camera_to_world"),
    ({"camera_path": [{"camera_to_world": [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1], "fov": 50}]},
     "not a rotation"),
    ({"camera_path": [{"camera_to_world": np.eye(4).ravel().tolist(), "fov": 50}], "camera_type": "fisheye"},
     "camera_type"),
    ({"camera_path": [{"camera_to_world": np.eye(4).ravel().tolist(), "fov": 50}], "seconds": 0}, "seconds"),
]


@pytest.mark.parametrize("doc, fragment", BAD_BASE_CAMS + BAD_NERFSTUDIO)
def test_bad_paths_are_one_config_error_naming_file_and_field(tmp_path, doc, fragment):
    path = tmp_path / "bad_path.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as err:
        load_camera_path(path, "nerf")
    message = str(err.value)
    assert str(path) in message and fragment in message and "\n" not in message


@pytest.mark.parametrize("text", ['{"path": [{"R": [0, 0, 0, 1], "T": [NaN, 0, 0], "fov": 50}]}',
                                  '{"path": [{"R": [0, 0, 0, 1e999], "T": [0, 0, 0], "fov": 50}]}', '{"path": ['])
def test_non_finite_numbers_and_broken_json(tmp_path, text):
    """NaN and 1e999 are not JSON numbers: the parser refuses the file (naming it and the token)."""
    path = tmp_path / "base_cam.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="base_cam.json is not valid JSON"):
        load_camera_path(path, "sdf")


def test_gigapixel_path_refusals(tmp_path):
    looking_up = keyframe(0.5, IDENTITY_Q)  # NGP cameras look along +z: away from the plane below
    with pytest.raises(ConfigError, match=r"path\[0\]: the camera does not look down"):
        load_camera_path(base_cam(tmp_path, [looking_up]), "gigapixel")
    with pytest.raises(ConfigError, match="nerfstudio camera path is 3D"):
        load_camera_path(nerfstudio_path(tmp_path, [orbit(0, 0, 1.5)]), "gigapixel")


def test_a_too_wide_field_of_view_is_refused_at_the_frame(tmp_path):
    path = load_camera_path(base_cam(tmp_path, [keyframe(0.5, fov=150.0)]), "nerf")
    with pytest.raises(ConfigError, match="1..170 degrees"):
        path.view_at(0.0, 400, 100)


def test_viewer_gigapixel_keyframes_round_trip(tmp_path):
    """The viewer's P key on a GIA scene (viewer/files.py): image-mode keyframes in <scene>_base_cam.json whose
    windows come back at the keyframes; a file of another kind under that name is left alone."""
    from ngrender.viewer import files

    scene = dataclasses.replace(load_scene(ROOT / "scenes" / "gigapixel.json"), path=tmp_path / "gigapixel.json")
    aspect = image_aspect_of(scene)
    assert aspect == 2.0  # 1024x512 frames show the whole 2:1 image
    windows = [(0.0, 0.0, 1.0, 1.0), (0.25, 0.25, 0.5, 0.5), (0.6, 0.1, 0.7, 0.2)]
    for k, window in enumerate(windows):
        path, count = files.add_camera_to_path(scene, window_keyframe(window, aspect))
        assert count == k + 1 and path == tmp_path / "gigapixel_base_cam.json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "spline_order": 1}))
    loaded = load_camera_path(path, "gigapixel", image_aspect=aspect)
    for k, window in enumerate(windows):
        assert loaded.view_at(k / 2, 1024, 512)["window"] == pytest.approx(window, abs=1e-12)

    ns = nerfstudio_path(tmp_path, [orbit(0, 0, 1.5)]).read_text()
    path.write_text(ns)
    with pytest.raises(NgrenderError, match="gigapixel_base_cam.json is left as it is"):
        files.add_camera_to_path(scene, window_keyframe(windows[0], aspect))
    assert path.read_text() == ns


@pytest.mark.parametrize("name, app", [("orbit_base_cam.json", "sdf"), ("gigapixel_zoom.json", "gigapixel")])
def test_example_paths(name, app):
    """scenes/paths/: the orbit circles the cube's centre, looking at it, at about the default scenes' distance;
    the GIA zoom starts on the whole image and zooms in more than 10x."""
    path = load_camera_path(ROOT / "scenes" / "paths" / name, app, image_aspect=2.0)
    plan = plan_frames(path, 4, None)
    views = [plan.view(i, 128, 64 if app == "gigapixel" else 128) for i in range(plan.n_frames)]
    if app == "gigapixel":
        assert views[0]["window"] == pytest.approx((0.0, 0.0, 1.0, 1.0), abs=1e-9)  # the file has 9 digits
        assert min(w["window"][3] - w["window"][1] for w in views) < 0.1
        return
    for view in views:
        m = np.array(view["camera"]["transform_matrix"])
        to_centre = np.array([0.5, 0.5, 0.5]) - m[:3, 3]
        assert 1.5 < np.linalg.norm(to_centre) < 1.7
        assert np.dot(-m[:3, 2], to_centre / np.linalg.norm(to_centre)) > 0.999  # looking at the centre
