"""instant-ngp snapshots in and out (issue 14).

Snapshots here come from a test-side writer that follows the layout in docs/instant-ngp.md and instant-ngp's and
tiny-cuda-nn's sources (msgpack root = config + ``snapshot``; fully fused MLPs without biases, inputs padded to
16, outputs to 16, row-major [out][in]; NeRF: density MLP, colour MLP, grid; other modes: MLP, grid; the NeRF
density grid fp16 in Morton order), not by ngrender's reader or exporter. Padding holds random values, as in a
trained snapshot, so that carrying it is checked bit for bit."""
from __future__ import annotations

import dataclasses
import json
import gzip
import math
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest

from ngrender.camera import orbit
from ngrender.cli import main
from ngrender.errors import ConfigError
from ngrender.model import Model, load_model
from ngrender.session import RenderSession
from ngrender.snapshot import export_snapshot, import_snapshot

DATA = Path(__file__).resolve().parent / "data"


def pad16(n: int) -> int:
    return (n + 15) // 16 * 16


def morton(x: int, y: int, z: int) -> int:
    """tiny-cuda-nn's morton3D, bit by bit."""
    out = 0
    for bit in range(10):
        out |= ((x >> bit) & 1) << (3 * bit) | ((y >> bit) & 1) << (3 * bit + 1) | ((z >> bit) & 1) << (3 * bit + 2)
    return out


MORTON = np.array([morton(x, y, z) for z in range(128) for y in range(128) for x in range(128)])


def tcnn_matrices(layers: list[np.ndarray], rng) -> list[np.ndarray]:
    """The MLP as tiny-cuda-nn stores it: the first layer's input and the last layer's output padded to 16, the
    padding random."""
    out = []
    for k, w in enumerate(layers):
        rows = pad16(w.shape[0]) if k == len(layers) - 1 else w.shape[0]
        cols = pad16(w.shape[1]) if k == 0 else w.shape[1]
        full = rng.uniform(-1, 1, (rows, cols)).astype(np.float16).astype(np.float32)
        full[:w.shape[0], :w.shape[1]] = w
        out.append(full)
    return out


def ngp_camera(c2w: np.ndarray, fov_y_deg: float) -> dict:
    """instant-ngp's camera block: NGP space is the unit cube with the camera's y axis down and z forward
    (nerf_matrix_to_ngp flips columns 1 and 2); 3 rows of 4; fov along y (fov_axis 1)."""
    m = c2w[:3, :].copy()
    m[:, 1:3] *= -1
    f = 0.5 / math.tan(math.radians(fov_y_deg) / 2)
    return {"matrix": m.tolist(), "fov_axis": 1, "relative_focal_length": [f, f], "zoom": 1.0,
            "screen_center": [0.5, 0.5], "scale": 1.5}


MODE = {"gigapixel": "image", "sdf": "sdf", "volume": "volume", "nerf": "nerf"}


def write_snapshot(path: Path, model: Model, params_type: str = "__half", container: str = "gzip",
                   density_grid: np.ndarray | None = None, camera: dict | None = None, seed: int = 0,
                   config_extra: dict | None = None, snapshot_extra: dict | None = None) -> dict:
    """A version-1 snapshot of ``model`` (its config in instant-ngp's schema); returns what was written."""
    rng = np.random.default_rng(seed)
    config = {"loss": {"otype": "Huber"}, "optimizer": {"otype": "Ema", "decay": 0.95},
              "encoding": model.encoding, "network": model.network}
    mlps = [tcnn_matrices(model.layers, rng)]
    if model.app == "nerf":
        rgb = dict(model.rgb_network, output_activation="None")  # instant-ngp applies the sigmoid itself
        config.update(dir_encoding={"otype": "Composite", "nested": [
            {"n_dims_to_encode": 3, "otype": "SphericalHarmonics", "degree": 4}, {"otype": "Identity"}]},
            rgb_network=rgb)
        mlps.append(tcnn_matrices(model.rgb_layers, rng))
    config.update(config_extra or {})
    dtype = np.dtype("<f2") if params_type == "__half" else np.dtype("<f4")
    flat = np.concatenate([m.ravel() for mlp in mlps for m in mlp] + [g.ravel() for g in model.grid]).astype(dtype)
    snapshot = {"version": 1, "mode": MODE[model.app], "n_params": int(flat.size), "params_type": params_type,
                "params_binary": flat.tobytes(), "training_step": 1000, "loss": 0.001,
                "aabb": {"min": [0.0] * 3, "max": [1.0] * 3}, "render_aabb": {"min": [0.0] * 3, "max": [1.0] * 3},
                "up_dir": [0.0, 1.0, 0.0], "exposure": 0.0, "background_color": [1.0, 1.0, 1.0, 1.0]}
    if camera is not None:
        snapshot["camera"] = camera
    if model.app == "nerf":
        snapshot.update(density_grid_size=128, density_grid_binary=density_grid.astype("<f2").tobytes(),
                        nerf={"aabb_scale": 1, "rgb": {"measure_luminance": False}})
    snapshot.update(snapshot_extra or {})
    data = msgpack.packb({**config, "snapshot": snapshot}, use_bin_type=True)
    data = {"gzip": lambda d: gzip.compress(d), "zlib": zlib.compress, "raw": lambda d: d}[container](data)
    path.write_bytes(data)
    return {"flat": flat, "mlps": mlps, "snapshot": snapshot}


def nerf_model() -> Model:
    return load_model(DATA / "nerf_blobs_hash.safetensors")


def random_density_grid(seed: int = 0) -> np.ndarray:
    """Optical thickness per cell (Morton order) as instant-ngp keeps it: -1 where no camera saw, else >= 0."""
    rng = np.random.default_rng(seed)
    values = rng.exponential(0.004, 128 ** 3).astype(np.float16)
    values[rng.random(128 ** 3) < 0.1] = -1
    return values


def expected_occupancy(grid: np.ndarray) -> np.ndarray:
    """instant-ngp's bitfield rule (testbed_nerf.cu grid_to_bitfield): value > min(0.01, mean of max(v, 0)),
    as a [z, y, x] cube."""
    values = grid.astype(np.float32)
    threshold = min(np.float32(0.01), np.maximum(values, 0).mean(dtype=np.float64))
    return (values[MORTON] > threshold).reshape(128, 128, 128).astype(np.uint8)


def source_models(make_model) -> dict[str, Model]:
    """One model per mode: the first layer's input padded (dense 4 x 2 = 8 inputs) or not (16)."""
    return {"gigapixel": make_model("hash", seed=3), "sdf": load_model(DATA / "sdf_torus_dense.safetensors"),
            "volume": load_model(DATA / "volume_cloud_lowres.safetensors"), "nerf": nerf_model()}


def in_precision(model: Model, params_type: str) -> Model:
    return dataclasses.replace(model, storage_dtype="float16" if params_type == "__half" else "float32")


def assert_same_weights(a: Model, b: Model) -> None:
    for x, y in zip(a.grid + a.layers + (a.rgb_layers or []), b.grid + b.layers + (b.rgb_layers or [])):
        assert x.shape == y.shape and np.array_equal(x, y)
    assert len(a.grid) == len(b.grid) and len(a.layers) == len(b.layers)


@pytest.mark.parametrize("params_type", ["__half", "float"])
@pytest.mark.parametrize("app", ["gigapixel", "sdf", "volume", "nerf"])
def test_import_reads_each_mode_and_precision(tmp_path, model_factory, app, params_type):
    model = in_precision(source_models(model_factory)[app], params_type)
    grid = random_density_grid() if app == "nerf" else None
    written = write_snapshot(tmp_path / "s.ingp", model, params_type, density_grid=grid)
    imported = import_snapshot(tmp_path / "s.ingp")
    got = imported.model
    assert got.app == app and got.storage_dtype == model.storage_dtype
    assert_same_weights(got, model)
    if app == "nerf":
        assert got.rgb_net.output_activation == "sigmoid" and got.sh_degree == 4
        np.testing.assert_array_equal(got.occupancy, expected_occupancy(grid))
        assert imported.view["background"] == [1.0, 1.0, 1.0]
    # the padding instant-ngp stores and ngrender does not use travels with the model, bit for bit
    first = written["mlps"][0][0]
    n_in = model.layers[0].shape[1]
    if first.shape[1] > n_in:
        assert np.array_equal(got.carried["ingp.network.pad_columns"], first[:, n_in:])
    last = written["mlps"][-1][-1]  # the colour MLP's for NeRF (the density MLP's 16 outputs are all used)
    name = "rgb_network" if app == "nerf" else "network"
    n_out = (model.rgb_layers if app == "nerf" else model.layers)[-1].shape[0]
    assert np.array_equal(got.carried[f"ingp.{name}.pad_rows"], last[n_out:]) and last.shape[0] == 16


@pytest.mark.parametrize("app", ["gigapixel", "sdf", "volume", "nerf"])
def test_imported_model_renders_the_identical_image(tmp_path, model_factory, app):
    """The Vulkan render of the imported model equals the render of the model the snapshot was built from."""
    model = source_models(model_factory)[app]
    camera = orbit(35.0, 25.0, 1.7, fov_x_deg=40.0)
    grid = random_density_grid(1) if app == "nerf" else None
    write_snapshot(tmp_path / "s.msgpack", model, container="raw", density_grid=grid,
                   camera=None if app == "gigapixel" else ngp_camera(camera.c2w, 40.0))
    imported = import_snapshot(tmp_path / "s.msgpack")
    if app == "nerf":
        model = dataclasses.replace(model, occupancy=expected_occupancy(grid))
    if app != "gigapixel":
        np.testing.assert_allclose(imported.view["camera"]["transform_matrix"], camera.c2w, atol=1e-12)
        assert imported.view["camera"]["fov_x"] == pytest.approx(40.0)
    images = []
    for m in (model, imported.model):
        with RenderSession(m, device=None, variant="buffered", validation=True) as session:
            view = session.app.make_view(imported.view)
            images.append(session.renderer.render(40, 32, view)[0])
            assert session.device.take_messages() == []
    assert images[0].std() > 0 and np.array_equal(images[0], images[1])


@pytest.mark.parametrize("container", ["gzip", "zlib", "raw"])
def test_containers_and_round_trips_are_bit_exact(tmp_path, container):
    """export(import(s)) gives back s's parameters and density grid bit for bit; import(export(m)) gives m."""
    model = nerf_model()
    grid = random_density_grid(2)
    written = write_snapshot(tmp_path / "s.ingp", model, container=container, density_grid=grid)
    imported = import_snapshot(tmp_path / "s.ingp")
    export_snapshot(imported.model, tmp_path / "again.ingp")
    raw = gzip.decompress((tmp_path / "again.ingp").read_bytes())
    assert raw[:0] == b"" and (tmp_path / "again.ingp").read_bytes()[:2] == b"\x1f\x8b"
    again = msgpack.unpackb(raw)
    snap = again["snapshot"]
    assert snap["params_binary"] == written["snapshot"]["params_binary"]
    assert snap["n_params"] == written["snapshot"]["n_params"] and snap["params_type"] == "__half"
    assert snap["density_grid_binary"] == written["snapshot"]["density_grid_binary"]
    assert snap["version"] == 1 and snap["mode"] == "nerf" and snap["nerf"]["aabb_scale"] == 1
    assert again["rgb_network"]["output_activation"] == "None" and again["loss"] == {"otype": "Huber"}

    # a model of ngrender's own: export, import, the same weights and occupancy (refined to 128^3)
    export_snapshot(model, tmp_path / "native.msgpack")
    back = import_snapshot(tmp_path / "native.msgpack").model
    assert_same_weights(back, model)
    k = 128 // model.occupancy.shape[0]
    np.testing.assert_array_equal(back.occupancy, model.occupancy.repeat(k, 0).repeat(k, 1).repeat(k, 2))
    # and the model file keeps what the snapshot carried: a second export is the same bytes
    imported.model.save(tmp_path / "m.safetensors")
    export_snapshot(load_model(tmp_path / "m.safetensors"), tmp_path / "third.ingp")
    assert msgpack.unpackb(gzip.decompress((tmp_path / "third.ingp").read_bytes()))["snapshot"]["params_binary"] \
        == written["snapshot"]["params_binary"]


def test_image_snapshot_without_per_level_scale_needs_the_image_size(tmp_path, model_factory):
    """instant-ngp derives per_level_scale from the image's size, which the snapshot does not store."""
    from ngrender.encoding import grid_geometry

    enc = {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 2, "log2_hashmap_size": 12,
           "base_resolution": 4}
    b = np.exp(np.log(np.float32(600 / 2) / np.float32(4)) / np.float32(7), dtype=np.float32)  # max(800, 600) / 2
    full = model_factory("hash", seed=5)
    geom = grid_geometry({**enc, "per_level_scale": float(b)}, 2)
    rng = np.random.default_rng(0)
    model = dataclasses.replace(full, encoding={**enc, "per_level_scale": float(b)},
                                grid=[rng.uniform(-1, 1, s).astype(np.float16) for s in geom.level_shapes()])
    write_snapshot(tmp_path / "img.ingp", model, config_extra={"encoding": enc})
    with pytest.raises(ConfigError, match="pass --image-size"):
        import_snapshot(tmp_path / "img.ingp")
    with pytest.raises(ConfigError, match="holds .* parameters, its config describes"):
        import_snapshot(tmp_path / "img.ingp", image_size=(100, 100))
    got = import_snapshot(tmp_path / "img.ingp", image_size=(600, 400)).model
    assert got.encoding["per_level_scale"] == float(b)
    assert_same_weights(got, model)


def snapshot_bytes(tmp_path: Path, **changes) -> bytes:
    from ngrender.encoding import grid_geometry
    from ngrender.model import NetworkConfig

    # a small image model of zeros
    enc = {"otype": "DenseGrid", "n_levels": 2, "n_features_per_level": 2, "base_resolution": 4, "per_level_scale": 2.0}
    net = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 16,
           "n_hidden_layers": 1}
    model = Model("gigapixel", 2, 3, enc, net, [np.zeros(s) for s in grid_geometry(enc, 2).level_shapes()],
                  [np.zeros(s) for s in NetworkConfig.from_json(net).layer_shapes(4, 3)])
    write_snapshot(tmp_path / "good.msgpack", model, container="raw")
    root = msgpack.unpackb((tmp_path / "good.msgpack").read_bytes())
    for key, value in changes.items():
        if value is None:
            root["snapshot"].pop(key)
        else:
            root["snapshot"][key] = value
    return msgpack.packb(root, use_bin_type=True)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


BAD = {
    "not msgpack": (lambda t: b"\xc1\xc1 not msgpack", "not a msgpack file"),
    "other .ingp": (lambda t: msgpack.packb({"gaussians": [1, 2]}), "not an instant-ngp snapshot"),
    "not a map": (lambda t: msgpack.packb([1, 2, 3]), "not an instant-ngp snapshot"),
    "version 0": (lambda t: snapshot_bytes(t, version=0), "snapshot version 0; ngrender reads version 1"),
    "mode": (lambda t: snapshot_bytes(t, mode="gaussians"), "snapshot.mode must be one of"),
    "n_params": (lambda t: snapshot_bytes(t, n_params=12), "holds 12 parameters, its config describes"),
    "short binary": (lambda t: snapshot_bytes(t, params_binary=b"\0" * 10), "params_binary holds 10 bytes"),
    "params_type": (lambda t: snapshot_bytes(t, params_type="double"), "params_type must be"),
    "truncated gzip": (lambda t: (lambda z: z[:len(z) // 2])(gzip.compress(snapshot_bytes(t))),
                       "compressed stream is truncated"),
    "corrupt zlib": (lambda t: b"\x78\x9c" + b"\xff" * 64, "corrupt compressed data"),
    "no params": (lambda t: snapshot_bytes(t, params_binary=None), "params_binary"),
    "deep nesting": (lambda t: msgpack.packb({"snapshot": {}, "loss": nested(1000)}), "nested more than 64"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_snapshots_are_one_line(tmp_path, capsys, case):
    make, message = BAD[case]
    path = tmp_path / "bad.ingp"
    path.write_bytes(make(tmp_path))
    with pytest.raises(ConfigError, match=message):
        import_snapshot(path)
    assert main(["render", str(path), "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ngrender: error: ") and not (tmp_path / "x.png").exists()


def expected_cascades(grid: np.ndarray, cascades: int) -> np.ndarray:
    """instant-ngp's bitfield over cascades: each cascade's bits by the rule of cascade 0's mean, then every
    occupied cell of cascade c - 1 marks the cell of cascade c that holds it (x // 2 + 32 per axis)."""
    values = grid.astype(np.float32).reshape(cascades, 128 ** 3)
    threshold = min(np.float32(0.01), np.maximum(values[0], 0).mean(dtype=np.float64))
    bits = (values[:, MORTON] > threshold).reshape(cascades, 128, 128, 128)
    for c in range(1, cascades):
        z, y, x = np.nonzero(bits[c - 1])
        bits[c][z // 2 + 32, y // 2 + 32, x // 2 + 32] = True
    return bits.astype(np.uint8)


def test_nerf_beyond_the_unit_cube(tmp_path):
    """aabb_scale 4: three cascades of density grid, the box [-1.5, 2.5]^3; the imported model renders as the
    source model with instant-ngp's bits, and exports back bit for bit."""
    model = nerf_model()
    grid = np.concatenate([random_density_grid(seed) for seed in (4, 5, 6)])
    written = write_snapshot(tmp_path / "big.ingp", model, density_grid=grid,
                             snapshot_extra={"nerf": {"aabb_scale": 4}, "aabb": {"min": [-1.5] * 3, "max": [2.5] * 3}})
    got = import_snapshot(tmp_path / "big.ingp").model
    assert got.aabb_scale == 4 and got.occupancy.shape == (3, 128, 128, 128)
    want_bits = expected_cascades(grid, 3)
    np.testing.assert_array_equal(got.occupancy, want_bits)
    source = dataclasses.replace(model, aabb_scale=4, occupancy=want_bits)
    camera = {"camera": {"transform_matrix": orbit(20.0, 15.0, 1.8).c2w.tolist(), "fov_x": 50.0}}
    images = []
    for m in (source, got):
        with RenderSession(m, variant="buffered", validation=True) as session:
            images.append(session.renderer.render(32, 24, session.app.make_view(camera))[0])
    assert np.array_equal(images[0], images[1])
    export_snapshot(got, tmp_path / "again.msgpack")
    again = msgpack.unpackb((tmp_path / "again.msgpack").read_bytes())["snapshot"]
    assert again["density_grid_binary"] == written["snapshot"]["density_grid_binary"]
    assert again["nerf"]["aabb_scale"] == 4 and again["aabb"] == {"min": [-1.5] * 3, "max": [2.5] * 3}


def test_bad_density_grids_are_refused(tmp_path):
    model = nerf_model()
    write_snapshot(tmp_path / "grid.ingp", model, density_grid=random_density_grid()[:1000])
    with pytest.raises(ConfigError, match="density_grid_binary holds 2,000 bytes; 1 cascade"):
        import_snapshot(tmp_path / "grid.ingp")
    write_snapshot(tmp_path / "few.ingp", model, density_grid=random_density_grid(),
                   snapshot_extra={"nerf": {"aabb_scale": 16}})
    with pytest.raises(ConfigError, match="5 cascade\\(s\\) of 128\\^3 fp16 values"):
        import_snapshot(tmp_path / "few.ingp")


def test_cli_import_export_and_render_without_a_scene(tmp_path, capsys):
    """import writes NAME.safetensors + NAME.json that render as the snapshot does; render takes a snapshot
    or a bare model file; export writes what import reads; existing files are kept without --force."""
    write_snapshot(tmp_path / "torus.ingp", load_model(DATA / "sdf_torus_dense.safetensors"),
                   camera=ngp_camera(orbit(10.0, 20.0, 1.5).c2w, 50.0))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["import", str(tmp_path / "torus.ingp"), "--out", str(out)]) == 0
    assert (out / "torus.safetensors").is_file() and (out / "torus.json").is_file()
    assert main(["import", str(tmp_path / "torus.ingp"), "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    pngs = {}
    for name, source in [("snapshot", tmp_path / "torus.ingp"), ("scene", out / "torus.json")]:
        pngs[name] = tmp_path / f"{name}.png"
        assert main(["render", str(source), "--out", str(pngs[name]), "--width", "48", "--height", "40"]) == 0
    assert pngs["snapshot"].read_bytes() == pngs["scene"].read_bytes()
    assert main(["render", str(out / "torus.safetensors"), "--out", str(tmp_path / "bare.png"), "--width", "24",
                 "--height", "24"]) == 0
    assert main(["export", str(out / "torus.json"), "--out", str(tmp_path / "again.ingp")]) == 0
    assert main(["render", str(tmp_path / "again.ingp"), "--out", str(tmp_path / "again.png"), "--width", "48",
                 "--height", "40"]) == 0
    assert (tmp_path / "again.png").read_bytes() == pngs["scene"].read_bytes()
    assert main(["export", str(out / "torus.json"), "--out", str(tmp_path / "x.ply")]) == 2
    assert "named *.ingp" in capsys.readouterr().err


def test_viewer_opens_a_snapshot_and_saves_its_camera_beside_it(xvfb, tmp_path):
    """``ngrender view SNAPSHOT.ingp``; the camera key writes SNAPSHOT_scene.json (naming the snapshot as its
    model, which then opens too) and leaves the snapshot as it was."""
    pytest.importorskip("glfw", reason="the viewer needs the [viewer] extra; ./run.sh installs it")
    pytest.importorskip("imgui_bundle", reason="the viewer needs the [viewer] extra; ./run.sh installs it")
    from ngrender.viewer.app import Viewer

    snapshot = tmp_path / "torus.ingp"
    write_snapshot(snapshot, load_model(DATA / "sdf_torus_dense.safetensors"),
                   camera=ngp_camera(orbit(10.0, 20.0, 1.5).c2w, 50.0))
    before = snapshot.read_bytes()
    with Viewer(snapshot, size=(320, 200), validation=True, resolution_scale=0.25) as v:
        assert v.step() and v.image.std() > 0
        saved = v.save_camera()
        assert v.messages() == []
    assert saved == tmp_path / "torus_scene.json" and snapshot.read_bytes() == before
    scene = json.loads(saved.read_text())
    assert scene["model"] == "torus.ingp" and scene["app"] == "sdf" and "transform_matrix" in scene["view"]["camera"]
    assert main(["render", str(saved), "--out", str(tmp_path / "s.png"), "--width", "24", "--height", "24"]) == 0
