"""The reliability issue's defect list, one regression test per cause: no code runs from a user file, a failed
run destroys nothing, every bad input is one `ngrender: error:` line, limits are checked before the work.

Most cases call the CLI in-process (``cli.main``) for speed; the ones about processes (closed stdout, a full
device) run it as a subprocess."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.errors import ConfigError
from helpers import assert_one_error_line, run_cli, run_in_process

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
GIGAPIXEL = ROOT / "scenes" / "gigapixel.json"
NERF_MODEL = DATA / "nerf_blobs_dense.safetensors"


def scene(tmp_path: Path, app: str = "nerf", model: Path = NERF_MODEL, view: dict | None = None,
          **fields) -> Path:
    path = tmp_path / "scene.json"
    data = {"app": app, "model": str(model), "render": {"width": 8, "height": 8}, "view": view or {}, **fields}
    path.write_text(json.dumps(data))
    return path


def write_model(path: Path, head: dict | None = None, tensors: dict | None = None, raw_meta: str | None = None):
    """A copy of the stand-in NeRF model with its metadata or tensors replaced."""
    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(NERF_MODEL), framework="numpy") as f:
        meta = json.loads(f.metadata()["ngrender"])
    meta.update(head or {})
    base = load_file(str(NERF_MODEL))
    base.update(tensors or {})
    save_file(base, str(path), metadata={"ngrender": raw_meta if raw_meta is not None else json.dumps(meta)})
    return path


# 1. code execution from a checkpoint -------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_runs_nothing(tmp_path):
    torch = pytest.importorskip("torch", reason="checkpoints come from the [train] extra (PyTorch)")
    marker = tmp_path / "ran"
    ckpt = tmp_path / "m.ckpt"
    torch.save({"module": _RunsCode(str(marker)), "optimizer": {}, "step": 1, "elapsed": 0.0, "losses": [],
                "rng": {}, "torch_rng": torch.get_rng_state(), "meta": {}}, ckpt)
    image = tmp_path / "i.png"
    Image.fromarray(np.zeros((256, 256, 3), np.uint8)).save(image)
    result = run_in_process("train", "gigapixel", "--image", image, "--steps", 2, "--batch", 64, "--resume", ckpt,
                            "--out", tmp_path / "m.safetensors")
    assert_one_error_line(result, "refused (loading it could run code)")
    assert not marker.exists()


# 2-3. a failed render keeps what the user had ---------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (("--width", 200000), "frame size 200000x"),
    (("--window", "0.5,0,0.1,1"), "x1 > x0"),
])
def test_failed_render_keeps_the_existing_output(tmp_path, args, fragment):
    keep = tmp_path / "keep.png"
    keep.write_bytes(b"precious")
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", keep, *args), fragment)
    assert keep.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]  # no temporary file left


def test_failed_render_through_a_symlink_keeps_link_and_target(tmp_path):
    target = tmp_path / "target.png"
    target.write_bytes(b"precious")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", link, "--width", 200000), "frame size")
    assert link.is_symlink() and target.read_bytes() == b"precious"
    code, _, err = run_in_process("render", GIGAPIXEL, "--out", link, "--width", 16, "--height", 8)
    assert code == 0, err
    assert link.is_symlink() and Image.open(target).size == (16, 8)


def test_failed_render_to_dev_null_leaves_the_device(tmp_path):
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", "/dev/null", "--width", 200000), "frame size")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    code, _, err = run_in_process("render", GIGAPIXEL, "--out", "/dev/null", "--width", 8, "--height", 8)
    assert code == 0 and stat.S_ISCHR(os.stat("/dev/null").st_mode), err


def test_a_check_failing_before_commit_leaves_no_png(tmp_path):
    """--validation: a frame with validation messages never appears as a PNG (the check runs before commit)."""
    from ngrender.errors import NgrenderError
    from ngrender.session import RenderSession

    out = tmp_path / "v.png"
    out.write_bytes(b"old")

    def check() -> None:
        raise NgrenderError("Vulkan validation reported: (simulated)")

    with RenderSession.from_scene(GIGAPIXEL, validation=True) as session:
        with pytest.raises(NgrenderError):
            session.renderer.render_to_png(out, 8, 8, check=check)
    assert out.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


# 5. train writes exactly its named files ---------------------------------------------------------------
def test_train_refuses_other_names_and_existing_files(tmp_path):
    pytest.importorskip("torch", reason="training needs the [train] extra")
    image = tmp_path / "i.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(image)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"encoding": {"otype": "HashGrid", "n_levels": 2, "log2_hashmap_size": 6,
                                               "base_resolution": 4},
                                  "network": {"otype": "FullyFusedMLP", "n_neurons": 8, "n_hidden_layers": 1}}))
    base = ("train", "gigapixel", "--image", image, "--config", config, "--steps", 2, "--batch", 64)
    assert_one_error_line(run_in_process(*base, "--out", tmp_path / "model.json"), "named *.safetensors")
    world = tmp_path / "world.json"
    world.write_text('{"app": "gigapixel"}')
    assert_one_error_line(run_in_process(*base, "--out", tmp_path / "world.safetensors"), "world.json exists")
    assert world.read_text() == '{"app": "gigapixel"}'
    code, out, err = run_in_process(*base, "--out", tmp_path / "world.safetensors", "--force")
    assert code == 0, err
    assert json.loads(world.read_text())["model"] == "world.safetensors"
    assert "world.json" in out and "world.ckpt" in out
    assert_one_error_line(run_in_process(*base, "--out", tmp_path / "world.safetensors"), "exists; pass --force")


@pytest.mark.parametrize("budget", ["nan", "-5", "0", "inf"])
def test_time_budget_must_be_positive(tmp_path, budget):
    result = run_in_process("train", "gigapixel", "--time-budget", budget, "--out", tmp_path / "m.safetensors")
    assert_one_error_line(result, "positive number of seconds")


# 6. limits before the work ----------------------------------------------------------------------------------
def test_huge_baked_mlp_is_refused_before_compiling(tmp_path):
    net = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 256,
           "n_hidden_layers": 8}
    from ngrender.model import Model, NetworkConfig
    from ngrender.encoding import grid_geometry

    enc = {"otype": "DenseGrid", "n_levels": 1, "n_features_per_level": 2, "base_resolution": 4,
           "per_level_scale": 1.0}
    layers = [np.zeros(s, np.float32) for s in NetworkConfig.from_json(net).layer_shapes(2, 3)]
    grid = [np.zeros(s, np.float32) for s in grid_geometry(enc, 2).level_shapes()]
    model = tmp_path / "big.safetensors"
    Model("gigapixel", 2, 3, enc, net, grid, layers).save(model)
    path = scene(tmp_path, "gigapixel", model)
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png", "--variant", "baked"),
                          "the baked variant compiles at most")


def test_grid_over_the_device_limits_is_refused_before_loading(tmp_path):
    """The metadata claims a 2^28-entry table; the check fires from the header, before any tensor is read (the
    file holds only the small stand-in's tensors, so loading them would fail differently)."""
    enc = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 4, "log2_hashmap_size": 28,
           "base_resolution": 16, "per_level_scale": 2.0}
    model = write_model(tmp_path / "huge.safetensors", {"encoding": enc})
    path = scene(tmp_path, model=model)
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png"), "texel-buffer limit")
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png", "--variant", "buffered"),
                          "storage buffer")


def test_tile_over_the_storage_limit(tmp_path):
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", tmp_path / "o.png", "--tile", "131072x131072",
                                         "--width", 8, "--height", 8), "use a smaller --tile")


def test_decompression_bomb_is_refused(tmp_path):
    from ngrender.data.images import open_image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (15000, 12000)).save(bomb, optimize=True)  # 180 MP in a few hundred KB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ConfigError, match="decompression bomb"):
        open_image(bomb)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo", "dir"])
def test_special_files_as_scene_or_model(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "fifo.json"
        os.mkfifo(path)
    elif special == "dir":
        path = tmp_path / "folder.json"
        path.mkdir()
    else:
        path = Path(special)
    fragment = "is a directory" if special == "dir" else "not a regular file"
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png"), fragment)
    assert_one_error_line(run_in_process("render", scene(tmp_path, model=path), "--out", tmp_path / "o.png"), fragment)


def test_symlink_loop_as_model(tmp_path):
    loop = tmp_path / "loop.safetensors"
    loop.symlink_to(loop)
    assert_one_error_line(run_in_process("render", scene(tmp_path, model=loop), "--out", tmp_path / "o.png"),
                          "symbolic links")


# 7-8. malformed and silently-accepted values: one line each --------------------------------------------
VIEW_CASES = [
    ({"camera": {"camera_angle_x": "wide", "orbit": {}}}, "camera_angle_x must be a finite number"),
    ({"camera": {"camera_angle_x": None, "orbit": {}}}, "camera_angle_x must be a finite number"),
    ({"camera": {"orbit": [0, 0, 1]}}, "orbit must be an object"),
    ({"camera": {"orbit": 3}}, "orbit must be an object"),
    ({"n_steps": "12"}, "n_steps must be an integer"),
    ({"n_steps": 12.7}, "n_steps must be an integer"),
    ({"use_occupancy": "false"}, "use_occupancy must be true or false"),
    ({"background": "111"}, "background must be a list of 3 finite numbers"),
    ({"depth_far": 1e999}, "1e999 is out of range for a number"),  # written as 1e999, which would parse to inf
    ({"depth_far": 1e308}, "depth_far must be a finite number"),  # a double, but no float32 (the GPU's)
    ({"background": [1, 1, 10 ** 400]}, "background must be a list of 3 finite numbers"),
    ({"min_transmittance": 2.0}, "min_transmittance must be in [0, 1)"),
]


@pytest.mark.parametrize("view, fragment", VIEW_CASES)
def test_bad_view_fields(tmp_path, view, fragment):
    path = scene(tmp_path, view=view)
    if view.get("depth_far") == 1e999:
        path.write_text(path.read_text().replace("Infinity", "1e999"))
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png"), fragment)


@pytest.mark.parametrize("text, fragment", [
    ('{"app": "sdf", "model": "m", "view": {"max_steps": Infinity}}', "Infinity is not a JSON number"),
    ('{"app": "gigapixel", "model": "m", "view": {"background": NaN}}', "NaN is not a JSON number"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('\xff\xfe{"app"', "not UTF-8"),
])
def test_bad_scene_text(tmp_path, text, fragment):
    path = tmp_path / "s.json"
    path.write_bytes(text.encode("latin-1"))
    assert_one_error_line(run_in_process("render", path, "--out", tmp_path / "o.png"), fragment)


@pytest.mark.parametrize("head, fragment", [
    ({"encoding": "HashGrid"}, "encoding must be an object"),
    ({"network": [64, 2]}, "network must be an object"),
    ({"rgb_network": 3}, "rgb_network must be an object"),
    ({"dir_encoding": "SH"}, "dir_encoding must be an object"),
    ({"occupancy_side": "abc"}, "occupancy_side must be an integer"),
])
def test_bad_model_metadata(tmp_path, head, fragment):
    model = write_model(tmp_path / "m.safetensors", head)
    assert_one_error_line(run_in_process("render", scene(tmp_path, model=model), "--out", tmp_path / "o.png"), fragment)


def test_non_finite_per_level_scale(tmp_path):
    from safetensors import safe_open

    with safe_open(str(NERF_MODEL), framework="numpy") as f:
        text = f.metadata()["ngrender"]
    head = json.loads(text)
    for bad in ("NaN", "Infinity"):
        head["encoding"]["per_level_scale"] = "@@"
        model = write_model(tmp_path / "m.safetensors", raw_meta=json.dumps(head).replace('"@@"', bad))
        assert_one_error_line(run_in_process("render", scene(tmp_path, model=model), "--out", tmp_path / "o.png"),
                              f"{bad} is not a JSON number")


@pytest.mark.parametrize("dtype, fragment", [
    (np.float64, "is F64"), (np.int8, "is I8"), ("bf16", "is BF16")])
def test_model_tensor_dtypes(tmp_path, dtype, fragment):
    from safetensors.numpy import load_file

    base = load_file(str(NERF_MODEL))
    if dtype == "bf16":
        torch = pytest.importorskip("torch", reason="bf16 tensors are written with PyTorch")
        from safetensors.torch import load_file as load_torch, save_file as save_torch
        from safetensors import safe_open

        with safe_open(str(NERF_MODEL), framework="numpy") as f:
            meta = f.metadata()
        tensors = load_torch(str(NERF_MODEL))
        tensors["network.layer.0"] = tensors["network.layer.0"].to(torch.bfloat16)
        model = tmp_path / "m.safetensors"
        save_torch(tensors, str(model), metadata=meta)
    else:
        model = write_model(tmp_path / "m.safetensors",
                            tensors={"network.layer.0": base["network.layer.0"].astype(dtype)})
    assert_one_error_line(run_in_process("render", scene(tmp_path, model=model), "--out", tmp_path / "o.png"), fragment)


def test_nerf_data_set_values(tmp_path):
    from ngrender.data.transforms import load_split

    Image.fromarray(np.zeros((4, 4, 4), np.uint8)).save(tmp_path / "a.png")
    frame = {"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}
    cases = [({"scale": "0.5"}, "scale must be a finite number"), ({"scale": 0}, "scale must be a finite number > 0"),
             ({"offset": [0.5, 0.5]}, "offset must be a list of 3"), ({"cx": "2"}, "cx must be a finite number")]
    for extra, fragment in cases:
        (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": [frame], **extra}))
        with pytest.raises(ConfigError, match=fragment):
            load_split(tmp_path)
    (tmp_path / "transforms.json").write_bytes(b'{"camera_angle_x": 0.7, "frames": [\xff]}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_split(tmp_path)


def test_png_only_output(tmp_path):
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", tmp_path / "o.jpg"),
                          "ngrender writes PNG images")


def test_ngpc_set_needs_the_ngpc_path(tmp_path):
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", tmp_path / "o.png", "--ngpc-set", "clock_ghz=2"),
                          "add --pipeline ngpc")


def test_cache_dir_that_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "cache"
    blocker.write_text("x")
    monkeypatch.setenv("NGRENDER_CACHE_DIR", str(blocker))
    from ngrender import shaders

    monkeypatch.setattr(shaders, "_memory_cache", {})
    assert_one_error_line(run_in_process("render", GIGAPIXEL, "--out", tmp_path / "o.png", "--width", 8, "--height", 8),
                          "NGRENDER_CACHE_DIR")


# 9. usage mistakes -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragment", [
    (("render",), "the following arguments are required"),
    (("render", "s.json", "--width", "abc"), "is not an integer"),
    (("rendr",), "invalid choice"),
    (("render", "s.json", "--out", "o.png", "--fov", "nan"), "field of view"),
])
def test_usage_mistakes_are_one_line(args, fragment):
    assert_one_error_line(run_in_process(*args), fragment)


def test_full_device_and_closed_stdout(tmp_path):
    proc = run_cli("render", GIGAPIXEL, "--out", "/dev/full", "--width", 8, "--height", 8)
    assert proc.returncode != 0 and proc.stderr.startswith("ngrender: error: cannot write /dev/full"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run(f"{sys.executable} {ROOT / 'main.py'} info >&-", shell=True, capture_output=True,
                          text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    proc = subprocess.run(f"{sys.executable} {ROOT / 'main.py'} ngpc arch | head -1", shell=True,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
