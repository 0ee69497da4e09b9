"""The fused 3D kernels — neural SDF (sphere tracing), neural volume (ray marching) and NeRF (occupancy-skipping
marching, two MLPs, spherical harmonics) — against the NumPy reference renders, on every encoding and both
kernel variants.

Models: small grids fitted to analytic fields (tests/fit_models.py), and the models trained on real data. Both
loops are iterative, so a last-bit difference in a network output could change a step at a silhouette: the
tolerance allows 1% of the pixels to differ by more than 2/255 (on lavapipe none does today)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ngrender.apps import create_app
from ngrender.camera import Camera, orbit
from ngrender.errors import ConfigError
from ngrender.reference import nerf as nerf_ref
from ngrender.reference import sdf as sdf_ref
from ngrender.reference import volume as volume_ref
from ngrender.session import RenderSession
from helpers import DATA, FITTED, fitted, render
from screenshots import compare_screenshot

REFERENCE = {"sdf": sdf_ref, "volume": volume_ref, "nerf": nerf_ref}
ENCODINGS = ["hash", "dense", "lowres", "simplex"]


def assert_matches_reference(image, want):
    diff = np.abs(image.astype(int) - want.astype(int)).max(axis=2)
    assert (diff > 2).mean() <= 0.01, f"{(diff > 2).mean():.2%} of pixels differ by more than 2"


@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres"])
@pytest.mark.parametrize("app", list(REFERENCE))
def test_real_data_models_equal_reference(app, encoding):
    """The models trained on real data (assets/, with their scenes' views) render as the reference does."""
    from ngrender.scene import scene_for

    with RenderSession.from_scene(scene_for(app, encoding), validation=True) as session:
        view = session.view()
        image, _ = session.renderer.render(40, 30, view)
        session.check_validation()
        want, _ = REFERENCE[app].render(session.model, 40, 30, view)
    assert image.std() > 5  # the object is in the frame
    assert_matches_reference(image, want)


@pytest.mark.parametrize("variant", ["baked", "buffered", "shared"])
@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("app", list(REFERENCE))
def test_fused_equals_reference(device, app, encoding, variant):
    model = fitted(app, encoding)
    image, stats, view = render(device, model, variant, (64, 48))
    want, steps = REFERENCE[app].render(model, 64, 48, view)
    assert_matches_reference(image, want)
    assert (want.max(axis=2) > 8).mean() > 0.1  # the object covers a real part of the frame
    assert steps.max() > 1 and stats.kernel_ms[f"fused/{app}"] > 0


@pytest.mark.parametrize("app, mode", [("sdf", "normals"), ("sdf", "depth"), ("sdf", "steps"), ("sdf", "ao"),
                                       ("volume", "opacity"), ("volume", "steps"), ("nerf", "depth"),
                                       ("nerf", "opacity"), ("nerf", "samples")])
def test_render_modes_equal_reference(device, app, mode):
    model = fitted(app, "hash")
    image, _, view = render(device, model, "baked", (48, 40), settings={"mode": mode})
    assert_matches_reference(image, REFERENCE[app].render(model, 48, 40, view)[0])


@pytest.mark.parametrize("app", list(REFERENCE))
def test_camera_inside_the_cube_and_tiles(device, app):
    model = fitted(app, "dense")
    settings = {"camera": {"transform_matrix": orbit(10, 5, 0.3).c2w.tolist(), "fov_x": 90}}
    whole, _, view = render(device, model, "baked", (40, 30), settings=settings)
    tiled, stats, _ = render(device, model, "baked", (40, 30), settings=settings, tile=(16, 16))
    assert stats.tiles == 3 * 2
    np.testing.assert_array_equal(tiled, whole)
    assert_matches_reference(whole, REFERENCE[app].render(model, 40, 30, view)[0])


def test_volume_early_termination_and_background(device):
    model = fitted("volume", "hash")
    dense = {"density_scale": 50.0, "background": [0.0, 0.0, 1.0]}
    image, _, view = render(device, model, "baked", (48, 36), settings=dense)
    want, steps = volume_ref.render(model, 48, 36, view)
    assert_matches_reference(image, want)
    _, steps_light = volume_ref.render(model, 48, 36, volume_ref.VolumeView())
    centre = (slice(14, 22), slice(20, 28))
    assert steps[centre].mean() < steps_light[centre].mean()  # opaque rays stop early
    assert image[0, 0, 2] == 255  # empty corner shows the blue background


def _lowbias32(x: int) -> int:
    """Wellons' lowbias32 in plain Python integers: an independent check of the reference's uint32 arrays."""
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = ((x ^ (x >> shift)) * multiplier) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_volume_jitter(device):
    """The jittered start is a hash of the frame pixel and the seed: the reference equals the hash written out
    here, the kernel equals the reference with jitter on (two seeds) and off, and on / off / seeds differ."""
    from ngrender.reference.camera import pixel_jitter

    u = pixel_jitter(5, 3, 7)
    for y, x in ((0, 0), (1, 4), (2, 3)):
        h = _lowbias32((x + _lowbias32((y + _lowbias32(7)) & 0xFFFFFFFF)) & 0xFFFFFFFF)
        assert u[y * 5 + x] == np.float32((h >> 8) / 2.0 ** 24)
    assert 0.0 <= pixel_jitter(64, 64, 0).min() and pixel_jitter(64, 64, 0).max() < 1.0
    model = fitted("volume", "hash")
    images = {}
    for name, settings in (("off", {"jitter": False}), ("seed 0", {}), ("seed 1", {"seed": 1})):
        images[name], _, view = render(device, model, "baked", (48, 36), settings=settings, tile=(32, 16))
        assert_matches_reference(images[name], volume_ref.render(model, 48, 36, view)[0])
    assert not np.array_equal(images["off"], images["seed 0"])
    assert not np.array_equal(images["seed 0"], images["seed 1"])


def test_sdf_ambient_occlusion(device):
    """Occlusion samples along the normal darken creases only, the ao mode shows them, ao_samples 0 is the plain
    shading, and each hit's extra evaluations are counted."""
    model = fitted("sdf", "hash")
    off, stats_off, view_off = render(device, model, "baked", (48, 40), settings={"ao_samples": 0})
    on, stats_on, view_on = render(device, model, "baked", (48, 40))
    ao, _, view_ao = render(device, model, "baked", (48, 40), settings={"mode": "ao", "ao_strength": 3.0})
    want_off, evals_off = sdf_ref.render(model, 48, 40, view_off)
    want_on, evals_on = sdf_ref.render(model, 48, 40, view_on)
    assert_matches_reference(off, want_off)
    assert_matches_reference(on, want_on)
    assert_matches_reference(ao, sdf_ref.render(model, 48, 40, view_ao)[0])
    assert (on.astype(int) <= off.astype(int) + 1).all() and (on.astype(int) < off.astype(int) - 8).any()
    assert ao.min() < 200  # some occlusion on the torus
    hits = int((evals_on - evals_off).sum()) // view_on.ao_samples
    assert hits > 100 and stats_on.samples - stats_off.samples == hits * view_on.ao_samples
    assert stats_on.samples == int(evals_on.sum())


def test_nerf_occupancy_skipping_cuts_samples(device):
    """Skipping empty cells changes which samples are taken, not the picture; it cuts samples per ray."""
    model = fitted("nerf", "hash")
    with_occ, _, view = render(device, model, "baked", (40, 30))
    without, _, view_off = render(device, model, "baked", (40, 30), settings={"use_occupancy": False})
    want_on, samples_on = nerf_ref.render(model, 40, 30, view)
    want_off, samples_off = nerf_ref.render(model, 40, 30, view_off)
    assert_matches_reference(with_occ, want_on)
    assert_matches_reference(without, want_off)
    assert np.abs(with_occ.astype(int) - without.astype(int)).mean() < 2.0
    factor = samples_off.sum() / samples_on.sum()
    print(f"occupancy skipping: {samples_off.mean():.1f} -> {samples_on.mean():.1f} samples/ray ({factor:.0f}x)")
    assert factor > 5


def test_nerf_needs_its_parts(device):
    model = fitted("nerf", "dense")
    model.occupancy = None
    with pytest.raises(ConfigError, match="occupancy grid"):
        create_app(device, model, "baked")
    assert nerf_ref.sh_encode(np.array([[0.0, 0.0, 1.0]], np.float32))[0, 2] == pytest.approx(0.48860251)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("app", list(REFERENCE))
def test_screenshots(app, encoding, regenerate):
    with RenderSession(fitted(app, encoding), validation=True) as session:
        image, _ = session.renderer.render(96, 72, session.view())
        session.check_validation()
    compare_screenshot(f"{FITTED[app]}_{encoding}_96x72", image, regenerate)


@pytest.mark.parametrize("app, settings, message", [
    ("sdf", {"max_steps": 0}, "max_steps"),
    ("volume", {"n_steps": 0}, "n_steps"),
    ("sdf", {"mode": "xray"}, "render mode"),
    ("sdf", {"epsilon": -1}, "epsilon"),
    ("volume", {"min_transmittance": 1.5}, "min_transmittance"),
    ("sdf", {"camera": {"transform_matrix": (np.eye(4) * 2).tolist()}}, "not orthonormal"),
    ("volume", {"camera": {"orbit": {"radius": 2}, "fov_x": 179}}, r"fov_x must be a finite number in \[1, 170\]"),
    ("sdf", {"camera": {"position": [0, 0, 1]}}, r"unknown field\(s\) \['position'\]"),
    ("sdf", {"camera": {"fov_x": 40}}, "needs 'transform_matrix' or 'orbit'"),
    ("volume", {"window": [0, 0, 1, 1]}, "unknown volume view field"),
    ("nerf", {"n_steps": -3}, "n_steps"),
    ("nerf", {"mode": "normals"}, "render mode"),
    ("sdf", {"ao_samples": -1}, "ao_samples"),
    ("sdf", {"ao_step": 0}, "ao_step"),
    ("volume", {"seed": -1}, "seed"),
    ("volume", {"jitter": "yes"}, "jitter"),
])
def test_bad_views(device, app, settings, message):
    fused = create_app(device, fitted(app, "hash"), "baked", max_tile=(8, 8))
    try:
        with pytest.raises(ConfigError, match=message):
            fused.make_view(settings)
    finally:
        fused.destroy()


def test_scene_files_for_3d_apps(tmp_path):
    scene = tmp_path / "torus.json"
    scene.write_text(json.dumps({"app": "sdf", "model": str(DATA / "sdf_torus_hash.safetensors"),
                                 "render": {"width": 32, "height": 24},
                                 "view": {"camera": {"orbit": {"azimuth": 45, "elevation": 30, "radius": 1.5}},
                                          "mode": "normals"}}))
    with RenderSession.from_scene(scene, validation=True) as session:
        image, _ = session.renderer.render(32, 24, session.view())
        session.check_validation()
        want, _ = sdf_ref.render(session.model, 32, 24, session.view())
    assert_matches_reference(image, want)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"app": "volume", "model": str(DATA / "sdf_torus_hash.safetensors")}))
    with pytest.raises(ConfigError, match="is a 'sdf' model"):
        RenderSession.from_scene(bad)


def test_camera_helpers():
    cam = orbit(0, 0, 2.0)
    np.testing.assert_allclose(cam.origin, [0.5, 0.5, 2.5])
    np.testing.assert_allclose(cam.c2w[:3, 2], [0, 0, 1], atol=1e-12)  # looks down -z at the target
    assert Camera(np.eye(4), 90).focal(200) == pytest.approx(100.0)
