"""The trainers' --device: cpu (the default), cuda or cuda:N. A device torch cannot use is one clear line before
any work; --device cpu is the default run bit for bit; checkpoints hold CPU tensors; and, on a machine with an
NVIDIA GPU and a CUDA build of torch, a CUDA run trains like the CPU run (same samples, same format)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")

from ngrender.cli import main  # noqa: E402
from ngrender.errors import DeviceError  # noqa: E402
from ngrender.model import load_model  # noqa: E402
from ngrender.train import loop  # noqa: E402
from helpers import assert_one_error_line, write_inv3  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = (f"no CUDA device here: torch {torch.__version__} (built for CUDA {torch.version.cuda}) reports "
           "torch.cuda.is_available() False; this runs on a machine with an NVIDIA GPU and a CUDA build of torch")

TINY_2D = {"encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 10,
                        "base_resolution": 4},
           "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None",
                       "n_neurons": 16, "n_hidden_layers": 1}}
TINY_3D = {"encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 10,
                        "base_resolution": 8, "per_level_scale": 1.5},
           "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None",
                       "n_neurons": 16, "n_hidden_layers": 1}}
TINY_NERF = {**TINY_3D, "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU",
                                        "output_activation": "Sigmoid", "n_neurons": 16, "n_hidden_layers": 1}}


def write_json(path, value):
    path.write_text(json.dumps(value))
    return path


@pytest.fixture
def image(tmp_path):
    """A 48 x 32 picture: colour ramps and a disc, edges for the grid to learn."""
    y, x = np.mgrid[0:32, 0:48].astype(np.float64)
    disc = (x - 30) ** 2 + (y - 14) ** 2 < 81
    rgb = np.stack([x / 47, y / 31, np.where(disc, 0.9, 0.2)], axis=2)
    path = tmp_path / "picture.png"
    Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
    return path


# --- parsing and the errors ------------------------------------------------------------------------------------

def test_cpu_names():
    for spec in ("cpu", "CPU", " cpu ", None, torch.device("cpu")):
        assert loop.resolve_device(spec) == torch.device("cpu")
    assert loop.device_label("cpu") == "cpu"


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "cpu:0", "mps", "", "cuda0", "cuda:0:1"])
def test_unknown_device_is_one_clear_error(spec):
    with pytest.raises(DeviceError, match="expected cpu, cuda or cuda:N"):
        loop.resolve_device(spec)


@pytest.mark.skipif(HAS_CUDA, reason="this torch has CUDA: the no-CUDA message cannot be seen here")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:3"])
def test_cuda_without_cuda_says_what_to_do(spec):
    with pytest.raises(DeviceError) as caught:
        loop.resolve_device(spec)
    message = str(caught.value)
    assert "\n" not in message and "--device cpu" in message
    if torch.version.cuda is None:  # the CPU wheel ngrender pins
        assert "has no CUDA" in message and "CPU-only wheel" in message and "CUDA build of torch" in message
    else:
        assert "finds no usable NVIDIA GPU" in message


def test_cuda_index_past_the_last_gpu(monkeypatch):
    """As torch on a one-GPU machine answers (no GPU is touched: only the checks run)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert loop.resolve_device("cuda") == torch.device("cuda", 0)
    assert loop.resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match=r"only 1 CUDA device \(cuda:0 to cuda:0\)"):
        loop.resolve_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match=r"only 2 CUDA devices \(cuda:0 to cuda:1\)"):
        loop.resolve_device("cuda:2")


def one_error_line(capsys, argv) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert_one_error_line((code, captured.out, captured.err), "")
    assert captured.out == ""
    return captured.err.strip()


@pytest.mark.parametrize("app", ["gigapixel", "sdf", "volume", "nerf"])
def test_cli_device_errors_come_before_any_work(app, tmp_path, capsys, monkeypatch):
    """The data named does not exist, so any work done before the check would fail on it instead."""
    out = tmp_path / "m.safetensors"
    argv = ["train", app, "--data", str(tmp_path / "missing"), "--out", str(out), "--steps", "1"]
    line = one_error_line(capsys, argv + ["--device", "gpu"])
    assert "--device 'gpu': expected cpu, cuda or cuda:N" in line
    if not HAS_CUDA:
        line = one_error_line(capsys, argv + ["--device", "cuda"])
        assert "no CUDA" in line or "no usable NVIDIA GPU" in line
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = one_error_line(capsys, argv + ["--device", "cuda:4"])
    assert "--device cuda:4: there is only 1 CUDA device" in line
    assert not any(tmp_path.iterdir())  # nothing written


def test_trainer_api_checks_the_device_first(tmp_path):
    from ngrender.train import gigapixel, sdf, volume

    with pytest.raises(DeviceError):
        gigapixel.train(tmp_path / "missing.png", device="tpu", progress=False)
    with pytest.raises(DeviceError):
        sdf.train(tmp_path / "missing.off", device="tpu", progress=False)
    with pytest.raises(DeviceError):
        volume.train(tmp_path / "missing.inv3", device="tpu", progress=False)


# --- --device cpu is the default, bit for bit -----------------------------------------------------------------

def model_arrays(model):
    return [*model.grid, *model.layers, *(model.rgb_layers or [])]


def test_cli_device_cpu_is_the_default_bit_for_bit(image, tmp_path, capsys):
    config = write_json(tmp_path / "tiny.json", TINY_2D)
    common = ["train", "gigapixel", "--image", str(image), "--config", str(config), "--steps", "6",
              "--batch", "512"]
    assert main(common + ["--out", str(tmp_path / "a.safetensors")]) == 0
    assert main(common + ["--out", str(tmp_path / "b.safetensors"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and all("s of training on cpu;" in line for line in out), out
    a, b = load_model(tmp_path / "a.safetensors"), load_model(tmp_path / "b.safetensors")
    for x, y in zip(model_arrays(a), model_arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.extra["psnr_db"] == b.extra["psnr_db"] and a.extra["train_device"] == b.extra["train_device"] == "cpu"
    # The checkpoint holds CPU tensors only (it loads without map_location) and no CUDA generator state.
    data = torch.load(tmp_path / "b.ckpt", weights_only=True)
    assert "torch_cuda_rng" not in data
    tensors = [*data["module"].values(), data["torch_rng"]]
    tensors += [t for s in data["optimizer"]["state"].values() for t in s.values() if isinstance(t, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def phantom(tmp_path):
    """A 12 x 16 x 16 scan: a soft-tissue ball with a bone core in air."""
    z, y, x = np.meshgrid(np.arange(12) * 2.0, np.arange(16.0), np.arange(16.0), indexing="ij")
    r = np.sqrt((x - 7.5) ** 2 + (y - 7.5) ** 2 + (z - 11.0) ** 2)
    return write_inv3(tmp_path / "phantom.inv3", np.where(r < 3, 800, np.where(r < 6, 40, -1000)))


def test_sdf_device_cpu_is_the_default_bit_for_bit(tmp_path):
    runs = [tiny_run("sdf", tmp_path, steps=8, **extra) for extra in ({}, {"device": "cpu"})]
    assert runs[0].losses == runs[1].losses and runs[0].metrics == runs[1].metrics
    assert runs[0].device == runs[1].device == "cpu"
    for x, y in zip(model_arrays(runs[0].model), model_arrays(runs[1].model), strict=True):
        np.testing.assert_array_equal(x, y)


# --- CUDA against the CPU (runs where torch has CUDA) ----------------------------------------------------------

def nerf_set(folder):
    """A tiny transforms.json data set (6 views, 16 x 16): a ball's disc, opaque, on a transparent ground."""
    from ngrender.camera import look_at
    from ngrender.data.transforms import cube_to_world

    folder.mkdir()
    frames, fov = [], 40.0
    y, x = np.mgrid[0:16, 0:16] + 0.5
    disc = (x - 8) ** 2 + (y - 8) ** 2 < 3.2 ** 2
    for k in range(6):
        a = 2 * math.pi * k / 6
        camera = look_at(0.5 + 1.5 * np.array([math.cos(a), 0.3, math.sin(a)]), fov_x_deg=fov)
        rgba = np.zeros((16, 16, 4), np.uint8)
        rgba[disc] = (200, 60 + 20 * k, 40, 255)
        Image.fromarray(rgba, "RGBA").save(folder / f"r_{k}.png")
        frames.append({"file_path": f"./r_{k}", "transform_matrix": cube_to_world(camera.c2w, 1.0, (0.5,) * 3).tolist()})
    write_json(folder / "transforms.json", {"camera_angle_x": math.radians(fov), "scale": 1.0,
                                            "offset": [0.5, 0.5, 0.5], "frames": frames})
    return folder


def tiny_run(app, tmp_path, steps=30, **options):
    """A few-step run of ``app`` on tiny data (written into tmp_path on the first call)."""
    if app == "gigapixel":
        from ngrender.train import gigapixel

        y, x = np.mgrid[0:32, 0:48].astype(np.float64)
        path = tmp_path / "picture.png"
        if not path.exists():
            rgb = np.stack([x / 47, y / 31, np.where((x - 30) ** 2 + (y - 14) ** 2 < 81, 0.9, 0.2)], axis=2)
            Image.fromarray((rgb * 255).astype(np.uint8)).save(path)
        return gigapixel.train(path, config_path=write_json(tmp_path / "tiny.json", TINY_2D), steps=steps,
                               batch=1024, progress=False, **options)
    if app == "sdf":
        trimesh = pytest.importorskip("trimesh", reason="the sdf trainer needs the [train] extra")
        from ngrender.train import sdf

        mesh = tmp_path / "sphere.off"
        if not mesh.exists():
            trimesh.creation.icosphere(subdivisions=2, radius=1.0).export(mesh)
        return sdf.train(mesh, config_path=write_json(tmp_path / "tiny.json", TINY_3D), steps=steps, batch=1024,
                         pool=8192, progress=False, **options)
    if app == "volume":
        from ngrender.train import volume

        config = {**TINY_3D, "network": {**TINY_3D["network"], "output_activation": "ReLU"}}
        scan = tmp_path / "phantom.inv3"
        return volume.train(scan if scan.exists() else phantom(tmp_path),
                            config_path=write_json(tmp_path / "tiny.json", config), steps=steps, batch=1024,
                            progress=False, **options)
    from ngrender.train import nerf

    data = tmp_path / "nerf"
    return nerf.train(data if data.exists() else nerf_set(data), config_path=write_json(tmp_path / "tiny.json",
                                                                                          TINY_NERF),
                      steps=steps, batch=1024, n_steps=64, progress=False, eval_views=1, **options)


def compare_devices(app, tmp_path, device, monkeypatch):
    """``app`` trained on ``device`` and on the CPU: the same samples, so the same losses to float tolerance
    (the first one before any update almost exactly), a model of the same format and quality; the device's
    checkpoint holds CPU tensors and resumes on the CPU, and the CPU's resumes on the device."""
    from ngrender.train import volume

    full = volume.evaluate  # 1 view at 24 x 24, not 4 at 96 x 96 (the NumPy marcher): seconds, not a minute
    monkeypatch.setattr(volume, "evaluate", lambda model, sampler, device="cpu": full(model, sampler, 24, 1, device))
    n = 20 if app == "nerf" else 30  # a NeRF run ends with all 128^3 grid cells evaluated: slow on the CPU
    cpu = tiny_run(app, tmp_path, steps=n, device="cpu", checkpoint=tmp_path / "cpu.ckpt")
    dev = tiny_run(app, tmp_path, steps=n, device=device, checkpoint=tmp_path / "dev.ckpt")
    assert cpu.device == "cpu" and dev.device == loop.device_label(device)
    assert dev.model.extra["train_device"] == dev.device
    assert dev.steps == cpu.steps == n and len(dev.losses) == n
    assert dev.losses[0] == pytest.approx(cpu.losses[0], rel=1e-4)
    np.testing.assert_allclose(dev.losses, cpu.losses, rtol=2e-2)
    assert np.mean(dev.losses[-5:]) == pytest.approx(np.mean(cpu.losses[-5:]), rel=1e-2)
    a, b = model_arrays(cpu.model), model_arrays(dev.model)
    assert [(x.shape, x.dtype) for x in a] == [(y.shape, y.dtype) for y in b]
    assert all(isinstance(x, np.ndarray) for x in b) and dev.model.storage_dtype == cpu.model.storage_dtype
    close = np.mean(np.concatenate([np.isclose(x, y, rtol=1e-2, atol=2e-3).ravel() for x, y in zip(a, b)]))
    assert close > 0.95, close
    if app == "nerf":
        assert dev.model.occupancy.shape == cpu.model.occupancy.shape and dev.model.occupancy.dtype == np.uint8
    quality = [r.metrics for r in (cpu, dev)]
    for key, value in quality[0].items():
        if isinstance(value, float) and key.startswith(("psnr", "surface_error", "sign_accuracy")):
            assert quality[1][key] == pytest.approx(value, rel=0.05, abs=0.5 if key.startswith("psnr") else 2e-3), key
    data = torch.load(tmp_path / "dev.ckpt", weights_only=True)
    assert all(t.device.type == "cpu" for t in data["module"].values())
    assert ("torch_cuda_rng" in data) == (torch.device(device).type == "cuda")
    # A checkpoint trains on elsewhere: the device's on the CPU, the CPU's on the device.
    moves = [("cpu.ckpt", device, cpu)] if app == "nerf" else [("dev.ckpt", "cpu", dev), ("cpu.ckpt", device, cpu)]
    for ckpt, where, before in moves:
        more = tiny_run(app, tmp_path, steps=n + 6, device=where, resume=tmp_path / ckpt)
        assert more.steps == n + 6 and more.losses[:n] == before.losses and more.device == loop.device_label(where)
        assert np.all(np.isfinite(more.losses)) and np.mean(more.losses[-3:]) < 2 * np.mean(before.losses[-3:])
    if app == "nerf":  # past the warm-up: the occupancy grid's bit field and the visibility mask, on the device
        longer = tiny_run(app, tmp_path, steps=80, device=device)
        assert np.all(np.isfinite(longer.losses)) and np.mean(longer.losses[-10:]) < np.mean(longer.losses[:10])
        assert 0.0 < longer.model.occupancy.mean() < 1.0


@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("app", ["gigapixel", "sdf", "volume", "nerf"])
def test_cuda_trains_like_the_cpu(app, tmp_path, monkeypatch):
    compare_devices(app, tmp_path, "cuda", monkeypatch)
