"""`ngrender data nerf-from-mesh`: a Blender-style NeRF data set rendered with Mitsuba 3 whose poses are verified
against the images (silhouette IoU), and a wrong pose convention is caught."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("mitsuba", reason="nerf-from-mesh needs Mitsuba 3 (extra [train]); ./run.sh installs it")
trimesh = pytest.importorskip("trimesh", reason="training needs the [train] extra; ./run.sh installs it")

from PIL import Image  # noqa: E402

from ngrender.camera import look_at  # noqa: E402
from ngrender.data import nerf_from_mesh as nfm  # noqa: E402


@pytest.fixture
def l_shape(tmp_path):
    """An asymmetric object: a mirrored pose would not match its silhouette."""
    a = trimesh.creation.box(extents=(2.0, 0.5, 0.5))
    b = trimesh.creation.box(extents=(0.5, 1.5, 0.5))
    b.apply_translation((0.75, 0.75, 0.0))
    path = tmp_path / "l.ply"
    trimesh.util.concatenate([a, b]).export(path)
    return path


def test_dataset_layout_and_pose_check(l_shape, tmp_path):
    out = tmp_path / "set"
    summary = nfm.make_dataset(str(l_shape), out, views=4, size=48, spp=4, progress=False)
    assert all(s["min_iou"] >= nfm.MIN_IOU for s in summary.values())
    train = json.loads((out / "transforms_train.json").read_text())
    assert train["camera_angle_x"] == pytest.approx(math.radians(40.0)) and len(train["frames"]) == 4
    assert len(json.loads((out / "transforms_test.json").read_text())["frames"]) == 1
    frame = train["frames"][0]
    c2w = np.array(frame["transform_matrix"])
    assert c2w.shape == (4, 4) and np.allclose(c2w[:3, :3].T @ c2w[:3, :3], np.eye(3))
    with Image.open(out / (frame["file_path"] + ".png")) as img:
        rgba = np.asarray(img)
    assert img.mode == "RGBA" and rgba.shape == (48, 48, 4)
    assert rgba[0, 0, 3] == 0 and (rgba[..., 3] == 255).mean() > 0.05  # transparent background, opaque object


def test_a_mirrored_pose_is_caught(l_shape, tmp_path):
    from ngrender.data.mesh import fit_unit_cube, load_mesh

    vertices, faces = load_mesh(l_shape)
    vertices, _, _ = fit_unit_cube(vertices)
    ply = tmp_path / "coloured.ply"
    nfm.write_ply(ply, vertices, faces, nfm.vertex_colours(vertices))
    camera = look_at((0.9, 1.2, 1.8), (0.5, 0.5, 0.5), fov_x_deg=40.0)
    alpha = nfm.render_view(ply, camera.c2w, 40.0, 48, 4)[..., 3] > 127

    def iou(c2w):
        sil = nfm.silhouette(vertices, faces, c2w, 40.0, 48)
        return (sil & alpha).sum() / (sil | alpha).sum()

    mirrored = camera.c2w @ np.diag([-1.0, 1.0, 1.0, 1.0])  # x axis flipped: a left-handed camera
    assert iou(camera.c2w) > 0.9 and iou(mirrored) < 0.8
