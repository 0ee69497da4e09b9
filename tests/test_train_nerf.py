"""The NeRF trainer and its data: transforms.json files (Blender, instant-ngp and nerf-from-mesh's own) land in
the unit cube where their images say, rays match the renderer's camera, a few steps on a tiny rendered data set
make the loss fall with the occupancy grid updated and saved, resume continues the same run, and bad data sets
give one clear line each."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")
pytest.importorskip("mitsuba", reason="the test data is rendered with Mitsuba 3 (extra [train]); ./run.sh installs it")
trimesh = pytest.importorskip("trimesh", reason="training needs the [train] extra; ./run.sh installs it")

from PIL import Image  # noqa: E402

from ngrender.camera import look_at  # noqa: E402
from ngrender.cli import main  # noqa: E402
from ngrender.data import nerf_from_mesh as nfm  # noqa: E402
from ngrender.data.transforms import cube_to_world, load_split, pixel_rays, world_to_cube  # noqa: E402
from ngrender.train import nerf as trainer  # noqa: E402

from helpers import assert_one_error_line, run_in_process  # noqa: E402

TINY = {"encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 12,
                     "base_resolution": 8, "per_level_scale": 1.6},
        "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 16,
                    "n_hidden_layers": 1},
        "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "Sigmoid",
                        "n_neurons": 16, "n_hidden_layers": 1}}


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def test_world_to_cube_follows_instant_ngp():
    """A Blender camera 4 units along -y looking at the origin (z up) sits at x = 0.5 - 4 * 0.33 in the cube,
    y up, looking at the cube's centre; cube_to_world undoes it."""
    blender = np.eye(4)
    blender[:3, :3] = np.column_stack([(1.0, 0, 0), (0, 0, 1.0), (0, -1.0, 0)])  # x right, y up = world z, back -y
    blender[:3, 3] = (0.0, -4.0, 0.0)
    cube = world_to_cube(blender, 0.33, (0.5, 0.5, 0.5))
    np.testing.assert_allclose(cube[:3, 3], [0.5 - 4 * 0.33, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(-cube[:3, 2], [1.0, 0.0, 0.0], atol=1e-12)  # looks along +x, at the centre
    np.testing.assert_allclose(cube[:3, 1], [0.0, 1.0, 0.0], atol=1e-12)   # world z up -> cube y up
    np.testing.assert_allclose(cube_to_world(cube, 0.33, (0.5, 0.5, 0.5)), blender, atol=1e-12)


def test_loaded_poses_match_the_images(tiny_set):
    """nerf-from-mesh's files, read back through the generic loader, project the mesh onto each image's alpha."""
    from ngrender.train.sdf import load_mesh

    vertices, faces = load_mesh(tiny_set / "mesh_in_unit_cube.ply")
    split = load_split(tiny_set, "train")
    assert split.rgba.shape == (8, 32, 32, 4) and split.fov_x_deg == pytest.approx(40.0)
    for k in range(len(split.c2w)):
        projected = nfm.silhouette(vertices, faces, split.c2w[k], split.fov_x_deg, 32)
        rendered = split.rgba[k, ..., 3] > 0.5
        assert (projected & rendered).sum() / (projected | rendered).sum() > nfm.MIN_IOU


def test_pixel_rays_are_the_renderers_rays(tiny_set):
    from ngrender.camera import Camera
    from ngrender.reference.camera import camera_rays

    split = load_split(tiny_set, "test")
    o, d = camera_rays(Camera(split.c2w[0], split.fov_x_deg), 32, 32)
    py, px = np.divmod(np.arange(32 * 32), 32)
    got_o, got_d = pixel_rays(split, np.zeros(32 * 32, int), px + 0.5, py + 0.5)
    np.testing.assert_allclose(got_o, o, atol=1e-6)
    np.testing.assert_allclose(got_d, d, atol=1e-5)


def test_instant_ngp_transforms_json(tmp_path):
    """instant-ngp's single transforms.json: fl_x/fl_y/cx/cy, file paths with extensions, default scale/offset."""
    (tmp_path / "images").mkdir()
    Image.fromarray(np.full((6, 8, 3), 200, np.uint8)).save(tmp_path / "images" / "a.jpg")
    c2w = look_at((0.0, -3.0, 0.0), (0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)).c2w
    (tmp_path / "transforms.json").write_text(json.dumps({
        "fl_x": 10.0, "fl_y": 10.0, "cx": 4.5, "cy": 3.0, "w": 8, "h": 6,
        "frames": [{"file_path": "images/a.jpg", "transform_matrix": c2w.tolist()}]}))
    split = load_split(tmp_path, "test")  # no transforms_test.json: every split reads transforms.json
    assert split.size == (8, 6) and split.focal == (10.0, 10.0) and split.centre == (4.5, 3.0)
    assert np.allclose(split.rgba[0, 0, 0], [200 / 255, 200 / 255, 200 / 255, 1.0], atol=0.02)
    np.testing.assert_allclose(split.c2w[0, :3, 3], [0.5 - 3 * 0.33, 0.5, 0.5], atol=1e-9)


def test_gather_rows_gradient_is_indexings():
    from ngrender.train.torch_field import gather_rows

    table = torch.randn(50, 2, requires_grad=True)
    idx = torch.randint(0, 50, (300, 8))
    weights = torch.randn(300, 8, 2)
    (gather_rows(table, idx) * weights).sum().backward()
    got = table.grad.clone()
    table.grad = None
    (table[idx] * weights).sum().backward()
    torch.testing.assert_close(got, table.grad)


def test_trainer_learns_with_its_occupancy_grid_and_resumes(tiny_set, tiny_config, tmp_path):
    options = dict(config_path=tiny_config, batch=4096, n_steps=128, progress=False, eval_views=1)
    run = trainer.train(tiny_set, steps=100, checkpoint=tmp_path / "a.ckpt", **options)
    first, last = np.mean(run.losses[:10]), np.mean(run.losses[-10:])
    assert last < 0.5 * first, (first, last)
    occupancy = run.model.occupancy
    assert occupancy.shape == (128, 128, 128) and 0.0 < occupancy.mean() < 0.5  # updated after the warm-up
    assert run.metrics["psnr_db"] > 15
    assert 0.0 <= run.metrics["floater_fraction"] <= 1.0 and 0.0 <= run.metrics["floater_opacity"] <= 1.0
    assert run.model.extra["density_penalty"] == trainer.DENSITY_PENALTY
    assert run.model.extra["occupancy_fraction"] == pytest.approx(occupancy.mean(), abs=1e-4)
    # The occupied cells cover the object: its surface points fall into occupied cells.
    from ngrender.reference.nerf import occupancy_cells
    from ngrender.train.sdf import load_mesh, surface_points

    vertices, faces = load_mesh(tiny_set / "mesh_in_unit_cube.ply")
    cells = occupancy_cells(surface_points(vertices, faces, 2000, np.random.default_rng(0)).astype(np.float32), 128)
    assert occupancy[cells[:, 2], cells[:, 1], cells[:, 0]].mean() > 0.9
    # 60 steps, stop, resume to 100: the same run
    trainer.train(tiny_set, steps=60, checkpoint=tmp_path / "b.ckpt", **options)
    resumed = trainer.train(tiny_set, steps=100, checkpoint=tmp_path / "b.ckpt", resume=tmp_path / "b.ckpt", **options)
    np.testing.assert_allclose(resumed.losses, run.losses, rtol=1e-5)
    np.testing.assert_array_equal(resumed.model.occupancy, occupancy)


def frames_file(folder, meta):
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(folder / "r_0.png")
    (folder / "transforms_train.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


GOOD_FRAME = {"file_path": "./r_0", "transform_matrix": np.eye(4).tolist()}


@pytest.mark.parametrize("meta, message", [
    (None, "no transforms_train.json or transforms.json"),
    ("{not json", "is not valid JSON"),
    ({"camera_angle_x": 0.7}, "missing or empty 'frames'"),
    ({"frames": [GOOD_FRAME]}, "missing the intrinsics"),
    ({"camera_angle_x": 0.7, "frames": [{"file_path": "./r_0"}]}, "needs 'file_path' and 'transform_matrix'"),
    ({"camera_angle_x": 0.7, "frames": [{"file_path": "./r_0", "transform_matrix": [[1, 0], [0, 1]]}]},
     "transform_matrix must be a 4x4 matrix of finite numbers"),
    ({"camera_angle_x": 0.7, "frames": [{"file_path": "./r_9", "transform_matrix": np.eye(4).tolist()}]},
     "does not exist"),
    ({"camera_angle_x": "wide", "frames": [GOOD_FRAME]}, "camera_angle_x must be a finite number"),
])
def test_bad_data_set_is_one_clear_line(tmp_path, capsys, meta, message):
    folder = tmp_path / "set"
    if meta is not None:
        frames_file(folder, meta)
    code = main(["train", "nerf", "--data", str(folder), "--out", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("ngrender: error:") and message in err and len(err.splitlines()) == 1, err


def test_train_nerf_needs_data(tmp_path, capsys):
    assert main(["train", "nerf", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "needs --data" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "nan", "x"])
def test_bad_density_penalty_is_one_clear_line(tmp_path, value):
    assert_one_error_line(run_in_process("train", "nerf", "--data", tmp_path, "--out", tmp_path / "m.safetensors",
                                         "--density-penalty", value), "--density-penalty")


def test_nerf_from_mesh_frames_say_where_the_cube_is(tiny_set):
    meta = json.loads((tiny_set / "transforms_train.json").read_text())
    assert meta["scale"] == 1.0 and meta["offset"] == [0.5, 0.5, 0.5]
    assert math.isclose(meta["camera_angle_x"], math.radians(40.0))


def test_trainer_beyond_the_unit_cube(tiny_set, tiny_config, tmp_path):
    """The tiny set placed 3 times larger (``scale`` 3: the object reaches past the unit cube on every side)
    trains with aabb_scale 4 as instant-ngp would: three occupancy cascades, cone-stepped samples; the loss
    falls, the object's surface lies in occupied cells of the cascades the renderer looks it up in, and the
    model renders on Vulkan as the reference does."""
    import shutil

    from ngrender.model import load_model
    from ngrender.reference import nerf as nerf_ref
    from ngrender.session import RenderSession
    from ngrender.train.sdf import load_mesh, surface_points

    big = tmp_path / "big"
    shutil.copytree(tiny_set, big)
    for path in big.glob("transforms_*.json"):
        meta = json.loads(path.read_text())
        path.write_text(json.dumps({**meta, "scale": 3.0}))
    run = trainer.train(big, config_path=tiny_config, batch=4096, n_steps=128, progress=False, eval_views=1,
                        steps=100, aabb_scale=4)
    first, last = np.mean(run.losses[:10]), np.mean(run.losses[-10:])
    print(f"\naabb_scale 4: loss {first:.4f} -> {last:.4f} in 100 steps, held-out PSNR "
          f"{run.metrics['psnr_db']:.1f} dB, occupancy {run.model.extra['occupancy_fraction']:.3f} of cascade 0")
    assert last < 0.5 * first, (first, last)
    model = run.model
    assert model.aabb_scale == 4 and model.occupancy.shape == (3, 128, 128, 128)
    vertices, faces = load_mesh(tiny_set / "mesh_in_unit_cube.ply")
    surface = (surface_points(vertices, faces, 2000, np.random.default_rng(0)) - 0.5) * 3 + 0.5
    assert np.abs(surface - 0.5).max() > 0.75  # the object reaches into cascade 1 (and 2)
    mip = nerf_ref.cascade_of(surface.astype(np.float32), np.full(len(surface), np.float32(np.sqrt(3) / 128)), 2, 128)
    cells = nerf_ref.occupancy_cells(nerf_ref.to_cascade(surface.astype(np.float32), mip), 128)
    assert model.occupancy[mip, cells[:, 2], cells[:, 1], cells[:, 0]].mean() > 0.9
    model.save(tmp_path / "big.safetensors")
    model = load_model(tmp_path / "big.safetensors")
    camera = {"camera": {"transform_matrix": look_at((0.5 - 3.5, 0.9, 0.5)).c2w.tolist(), "fov_x": 60.0},
              "n_steps": 128}
    with RenderSession(model, variant="buffered", validation=True) as session:
        view = session.app.make_view(camera)
        image = session.renderer.render(32, 24, view)[0]
    want = nerf_ref.render(model, 32, 24, view)[0]
    assert (np.abs(image.astype(int) - want.astype(int)).max(axis=2) > 2).mean() <= 0.01
    assert (want.astype(int).sum(axis=2) < 700).mean() > 0.05  # the object is in the frame


def test_floater_measure_on_a_constructed_case():
    """Opacity where the image is empty counts, opacity on the object does not; > 0.05 marks a floater pixel."""
    alpha = np.zeros((4, 4))
    alpha[:2] = 1.0                       # the object covers the top half: 8 empty pixels below it
    opacity = np.zeros((4, 4))
    opacity[:2] = 0.9                     # the object itself, opaque: not a floater
    opacity[2, 0], opacity[3, 3] = 0.5, 0.04  # one floater pixel, one faint haze under the threshold
    mean, fraction, count = trainer.floater_measure(opacity, alpha)
    assert count == 8
    assert mean == pytest.approx((0.5 + 0.04) / 8)
    assert fraction == pytest.approx(1 / 8)
    assert trainer.floater_measure(opacity, np.ones((4, 4))) == (0.0, 0.0, 0)  # nothing empty: nothing to measure


def test_density_penalty_pushes_density_down_where_the_images_do_not_need_it():
    """Two rays, composited as the trainer does: one through empty space in front of the background (a faint
    floater sample), one hitting a surface whose colour the target needs (a sample not yet opaque). The penalty's
    gradient lowers both log densities, the denser one more (sigma*dt / rays); with the photometric loss and a
    small penalty the floater still goes down while the needed surface still goes up."""
    dt = 0.01
    log_density = torch.tensor([math.log(5.0), math.log(100.0)], requires_grad=True)  # floater, surface
    ray = torch.tensor([0, 1])
    rgb = torch.tensor([[0.2, 0.2, 0.2], [0.9, 0.1, 0.1]])
    background = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    wanted = torch.tensor([[1.0, 1.0, 1.0], [0.9, 0.1, 0.1]])  # ray 0 sees the background, ray 1 the surface

    def losses():
        sdt = torch.exp(log_density) * dt
        excl, total = trainer.segment_exclusive_sum(sdt, ray, 2)
        weight = torch.exp(-excl) * (1.0 - torch.exp(-sdt))
        colour = torch.zeros(2, 3).index_add_(0, ray, weight[:, None] * rgb)
        predicted = colour + torch.exp(-total)[:, None] * background
        return torch.mean((predicted - wanted) ** 2), trainer.density_penalty_term(sdt, 2)

    _, penalty = losses()
    (grad,) = torch.autograd.grad(penalty, log_density)
    sdt = torch.exp(log_density.detach()) * dt
    torch.testing.assert_close(grad, sdt / 2)  # d(sigma*dt)/d(log sigma) = sigma*dt, averaged over 2 rays
    assert (grad > 0).all() and grad[1] > grad[0]  # descent lowers every density, the denser most
    photometric, penalty = losses()
    (grad,) = torch.autograd.grad(photometric + 1e-3 * penalty, log_density)
    assert grad[0] > 0 > grad[1]  # the floater goes down, the surface the image needs goes up
