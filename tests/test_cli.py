"""The command line as a user runs it: real subprocesses, real files; bad input gives one clear line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import assert_one_error_line, default_device_info, run_cli

ROOT = Path(__file__).resolve().parent.parent
SCENE = ROOT / "scenes" / "gigapixel.json"


def test_render_default_scene(tmp_path):
    out = tmp_path / "g.png"
    proc = run_cli("render", SCENE, "--out", out, "--width", 200, "--height", 100, "--validation")
    assert proc.returncode == 0, proc.stderr
    info = default_device_info()
    # The scene asks for auto: baked on CPU drivers; on GPUs shared-fp16 (every current GPU has shaderFloat16),
    # as its 12,672 B of fp16 weights fit the 16 KiB of shared memory that Vulkan guarantees.
    variant = "baked" if info.is_cpu else "shared-fp16"
    assert "200x100" in proc.stdout and f"[{info.name}, {variant} variant]" in proc.stdout, proc.stdout
    img = np.asarray(Image.open(out))
    assert img.shape == (100, 200, 3) and img.std() > 10  # a real picture, not a flat colour


def test_render_window_and_tiles(tmp_path):
    out = tmp_path / "z.png"
    proc = run_cli("render", SCENE, "--out", out, "--width", 96, "--height", 64, "--window", "0.5,0.2,0.6,0.3",
                   "--tile", "40x40", "--variant", "buffered")
    assert proc.returncode == 0, proc.stderr
    assert "in 6 tile(s)" in proc.stdout and "buffered variant" in proc.stdout


def test_info_lists_the_devices_and_the_chosen_one():
    from ngrender.vk.device import list_devices

    proc = run_cli("info")
    assert proc.returncode == 0, proc.stderr
    info = default_device_info()
    assert all(f"  {each}\n" in proc.stdout for each in list_devices()) and f"chosen: {info}\n" in proc.stdout
    auto = "baked" if info.is_cpu else "shared-fp16 (buffered when the weights exceed the shared memory)"
    assert f"kernel variant (auto): {auto}\n" in proc.stdout, proc.stdout
    assert "fp16 arithmetic (shaderFloat16, the shared-fp16 variant): " in proc.stdout
    assert ("fused workgroup: 8x8\n" if info.is_cpu else "fused workgroup: 16x8\n") in proc.stdout


def test_missing_scene(tmp_path):
    assert_one_error_line(run_cli("render", tmp_path / "nope.json", "--out", tmp_path / "o.png"), "does not exist")


def test_malformed_scene(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"app": "gigapixel", "model": ')
    assert_one_error_line(run_cli("render", bad, "--out", tmp_path / "o.png"), "not valid JSON")
    bad.write_text(json.dumps({"app": "gigapixel", "model": "x.safetensors", "camera": {}}))
    assert_one_error_line(run_cli("render", bad, "--out", tmp_path / "o.png"), "unknown field(s) ['camera']")
    bad.write_text(json.dumps({"app": "gigapixel", "model": str(tmp_path / "missing.safetensors")}))
    assert_one_error_line(run_cli("render", bad, "--out", tmp_path / "o.png"), "missing.safetensors does not exist")


def test_weights_shape_mismatch(tmp_path, model_factory):
    model = model_factory("hash")
    model.save(tmp_path / "m.safetensors")
    # Same weights, but the scene's model claims a bigger table: rewrite the metadata config.
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
    with safe_open(str(tmp_path / "m.safetensors"), "numpy") as f:
        meta = json.loads(f.metadata()["ngrender"])
    meta["encoding"]["log2_hashmap_size"] = 14
    save_file(load_file(tmp_path / "m.safetensors"), str(tmp_path / "m.safetensors"),
              metadata={"ngrender": json.dumps(meta)})
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps({"app": "gigapixel", "model": "m.safetensors"}))
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "o.png"), "grid level 6 has shape")


def test_unknown_device(tmp_path):
    proc = run_cli("render", SCENE, "--out", tmp_path / "o.png", "--device", "radeon-9000")
    from ngrender.vk.device import list_devices

    listing = "; ".join(str(each) for each in list_devices())
    assert_one_error_line(proc, f"no Vulkan device matches 'radeon-9000'; available: {listing}")


def test_no_vulkan_driver(tmp_path):
    env = {"VK_ICD_FILENAMES": str(tmp_path / "none.json"), "VK_DRIVER_FILES": str(tmp_path / "none.json")}
    assert_one_error_line(run_cli("render", SCENE, "--out", tmp_path / "o.png", env=env), "no Vulkan driver found")
    assert not (tmp_path / "o.png").exists()


def test_unwritable_output(tmp_path):
    assert_one_error_line(run_cli("render", SCENE, "--out", tmp_path / "no" / "such" / "o.png"), "does not exist")
    assert_one_error_line(run_cli("render", SCENE, "--out", tmp_path), "is a directory")


def test_bad_window_argument(tmp_path):
    proc = run_cli("render", SCENE, "--out", tmp_path / "o.png", "--window", "0,0,1")
    assert proc.returncode == 2 and "four numbers" in proc.stderr and "Traceback" not in proc.stderr


def test_scene_app_mismatch(tmp_path, model_factory):
    model_factory("hash", app="sdf", n_in=3, n_out=1).save(tmp_path / "sdf.safetensors")
    scene = tmp_path / "s.json"
    scene.write_text(json.dumps({"app": "gigapixel", "model": "sdf.safetensors"}))
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "o.png"), "is a 'sdf' model")


def test_glsl_error_through_the_cli(tmp_path, monkeypatch, capsys):
    """A shader that does not compile: the CLI prints file:line and the line, no traceback."""
    from ngrender import cli, shaders
    broken = tmp_path / "shaders"
    (broken / "fused").mkdir(parents=True)
    (broken / "lib").symlink_to(shaders.SHADER_ROOT / "lib")
    text = (shaders.SHADER_ROOT / "fused" / "gigapixel.comp").read_text()
    broken_text = text.replace("grid_encode(s.xy, feat);", "grid_encode(s.xy, feat_typo);")
    (broken / "fused" / "gigapixel.comp").write_text(broken_text)
    monkeypatch.setattr(shaders, "SHADER_ROOT", broken)
    shaders._memory_cache.clear()
    code = cli.main(["render", str(SCENE), "--out", str(tmp_path / "o.png"), "--width", "8", "--height", "8"])
    err = capsys.readouterr().err
    assert code == 4 and "Traceback" not in err
    assert "shaders/fused/gigapixel.comp:" in err and "error:" in err and "feat_typo" in err
    assert "grid_encode(s.xy, feat_typo);" in err  # the offending source line itself


def test_bench_runs_and_prints_ratios():
    proc = run_cli("bench", "gigapixel", "--sizes", "32", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    assert "vulkan fused" in proc.stdout and "numpy reference" in proc.stdout and "vs NumPy" in proc.stdout


def test_train_then_render_end_to_end(tmp_path):
    """`train` writes a model + a scene beside it, which renders as it is."""
    pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")
    from ngrender.data.images import resolve_image
    Image.open(resolve_image("bmng")).crop((0, 0, 64, 32)).save(tmp_path / "img.png")
    (tmp_path / "cfg.json").write_text(json.dumps({
        "encoding": {"otype": "HashGrid", "n_levels": 4, "log2_hashmap_size": 8, "base_resolution": 4},
        "network": {"otype": "FullyFusedMLP", "n_neurons": 16, "n_hidden_layers": 1}}))
    proc = run_cli("train", "gigapixel", "--image", tmp_path / "img.png", "--config", tmp_path / "cfg.json",
                   "--steps", "5", "--batch", "512", "--out", tmp_path / "m.safetensors")
    assert proc.returncode == 0, proc.stderr
    assert "PSNR" in proc.stdout and (tmp_path / "m.json").exists()
    proc = run_cli("render", tmp_path / "m.json", "--out", tmp_path / "o.png", "--width", "32", "--height", "16")
    assert proc.returncode == 0, proc.stderr
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (16, 32, 3)
    proc = run_cli("train", "gigapixel", "--image", tmp_path / "nope.jpg", "--out", tmp_path / "x.safetensors")
    assert_one_error_line(proc, "does not exist")
    assert_one_error_line(run_cli("train", "gigapixel", "--out", tmp_path / "x.st"),
                          "a model file is named *.safetensors")


def test_render_3d_model_with_mode_and_orbit(tmp_path):
    data = ROOT / "tests" / "data"
    scene = tmp_path / "nerf.json"
    scene.write_text(json.dumps({"app": "nerf", "model": str(data / "nerf_blobs_dense.safetensors"),
                                 "render": {"width": 40, "height": 30}}))
    proc = run_cli("render", scene, "--out", tmp_path / "n.png", "--mode", "opacity", "--orbit", "90,30,1.4")
    assert proc.returncode == 0, proc.stderr
    img = np.asarray(Image.open(tmp_path / "n.png"))
    assert img.shape == (30, 40, 3) and img.max() > 200 and img.min() < 20  # opaque blobs on clear background
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "n.png", "--mode", "xray"),
                          "nerf render mode must be one of 'rgb', 'depth', 'opacity', 'samples', got 'xray'")
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "n.png", "--window", "0,0,1,1"),
                          "unknown nerf view field(s) ['window']")


@pytest.mark.parametrize("app", ["sdf", "volume", "nerf"])
def test_bench_3d_apps_run(app):
    proc = run_cli("bench", app, "--sizes", "24", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    assert "samples/pixel" in proc.stdout and "pytorch cpu" in proc.stdout
    if app == "nerf":
        assert "occupancy-grid skipping" in proc.stdout


def test_bench_compare_encodings():
    proc = run_cli("bench", "sdf", "--compare-encodings", "--sizes", "24", "--repeats", "1")
    assert proc.returncode == 0, proc.stderr
    assert "simplex vs hash" in proc.stdout and "lookups/sample" in proc.stdout


SCENE_FILES = sorted(p for p in (ROOT / "scenes").rglob("*.json") if p.parent.name != "paths")  # paths: camera paths


@pytest.mark.parametrize("scene", SCENE_FILES, ids=lambda p: p.stem)
def test_every_scene_renders(scene):
    """Every committed scene file loads, validates and renders (small, through the real session)."""
    from ngrender.session import RenderSession
    with RenderSession.from_scene(scene, validation=True) as session:
        image, stats = session.renderer.render(24, 16, session.view())
        session.check_validation()
    assert image.shape == (16, 24, 3) and image.std() > 1  # not a flat frame


def test_render_unfused_pipelines_through_the_cli(tmp_path):
    """`--pipeline unfused|fused-rest` writes the fused image and prints the kernel classes."""
    scene = ROOT / "scenes" / "standin" / "volume_cloud_hash.json"
    images = {}
    for pipeline in ("fused", "unfused", "fused-rest"):
        out = tmp_path / f"{pipeline}.png"
        proc = run_cli("render", scene, "--out", out, "--width", 40, "--height", 30, "--pipeline", pipeline,
                       "--mlp-dispatch", "layer", "--validation")
        assert proc.returncode == 0, proc.stderr
        assert f"{pipeline} pipeline" in proc.stdout
        images[pipeline] = np.asarray(Image.open(out))
    assert "encoding" in proc.stdout and "mlp" in proc.stdout and "rest" in proc.stdout and "iterations" in proc.stdout
    assert np.array_equal(images["unfused"], images["fused"]) and np.array_equal(images["fused-rest"], images["fused"])
    proc = run_cli("render", scene, "--out", tmp_path / "x.png", "--pipeline", "half")
    assert proc.returncode == 2 and "invalid choice: 'half'" in proc.stderr


def test_ngpc_preset_and_overrides_are_what_is_simulated(tmp_path):
    """--pipeline ngpc --ngpc-preset NGPC-64 simulates NGPC-64 with the overrides (it once ran NGPC-8): the
    projection is described by the engines' own architecture, and its time is NGPC-64's, not NGPC-8's."""
    scene = ROOT / "scenes" / "standin" / "sdf_torus_dense.json"
    proc = run_cli("render", scene, "--out", tmp_path / "n.png", "--width", 32, "--height", 24, "--pipeline", "ngpc",
                   "--ngpc-preset", "NGPC-64", "--ngpc-set", "clock_ghz=2", "--ngpc-set", "storage_precision=fp32")
    assert proc.returncode == 0, proc.stderr
    assert "projected on NGPC-64 (64 NFPs at 2 GHz, fp32 storage, fp32 accumulation)" in proc.stdout

    from ngrender.cli import _pipeline_options, build_parser
    from ngrender.ngpc.arch import load_arch
    from ngrender.ngpc.timing import Workload, project
    from ngrender.session import RenderSession

    args = build_parser().parse_args(["render", str(scene), "--out", "x.png", "--pipeline", "ngpc",
                                      "--ngpc-preset", "NGPC-64", "--ngpc-set", "clock_ghz=2"])
    with RenderSession.from_scene(scene, **_pipeline_options(args)) as session:
        arch = session.app.wavefront.arch
        assert (arch.name, arch.n_nfp, arch.clock_ghz) == ("NGPC-64", 64, 2)
        _, stats = session.renderer.render(32, 24, session.view())
        rest = stats.class_ms()["rest"]
        work = Workload.from_model(session.model, stats.samples, arch.bytes_per_value())
        want = {preset: project(load_arch(preset, clock_ghz=2), work, max(stats.gpu_ms, rest, 1e-9), rest).frame_ms
                for preset in ("NGPC-8", "NGPC-64")}
        assert stats.ngpc_ms == want["NGPC-64"] != want["NGPC-8"]


def test_bench_breakdown_through_the_cli(tmp_path):
    proc = run_cli("bench", "sdf", "--breakdown", "--encodings", "lowres", "--sizes", "16", "--repeats", "1",
               "--out-dir", tmp_path / "bd")
    assert proc.returncode == 0, proc.stderr
    assert "| sdf | lowres |" in proc.stdout and "paper 9.94x" in proc.stdout
    assert {p.name for p in (tmp_path / "bd").iterdir()} == {"breakdown.json", "breakdown.md", "breakdown.png"}
    assert_one_error_line(run_cli("bench"), "bench needs an APP")
    # simplex has no real-data scenes to profile, so the option does not offer it (it could only fail)
    proc = run_cli("bench", "--breakdown", "--encodings", "simplex", "--out-dir", tmp_path / "none")
    assert proc.returncode == 2 and "invalid choice: 'simplex'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "none").exists()


def test_ngpc_through_the_cli(tmp_path):
    scene = ROOT / "scenes" / "standin" / "sdf_torus_dense.json"
    proc = run_cli("render", scene, "--out", tmp_path / "n.png", "--width", 32, "--height", 24, "--pipeline", "ngpc",
                   "--ngpc-preset", "NGPC-16", "--ngpc-set", "storage_precision=fp32", "--validation")
    assert proc.returncode == 0, proc.stderr
    assert "ngpc pipeline" in proc.stdout and "projected on NGPC-16 (16 NFPs" in proc.stdout
    proc = run_cli("ngpc", "arch", "--ngpc-preset", "NGPC-32")
    assert proc.returncode == 0 and proc.stdout.startswith("NGPC-32 ") and "assumption" in proc.stdout, proc.stdout
    assert re.search(r"^  n_nfp +32 ", proc.stdout, re.M), proc.stdout  # the preset's value, not its name
    ngpc = ("render", scene, "--out", tmp_path / "n.png", "--pipeline", "ngpc")
    assert_one_error_line(run_cli(*ngpc, "--ngpc-set", "clock_ghz=0"), "clock_ghz = 0 is outside its valid range")
    assert_one_error_line(run_cli(*ngpc, "--ngpc-set", "fast"), "must look like KEY=VALUE")
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "n.png", "--dispatch", "ngpc"),
                          "the simulated NGPC is --pipeline ngpc")
    assert_one_error_line(run_cli("render", scene, "--out", tmp_path / "n.png", "--ngpc-preset", "NGPC-16"),
                          "add --pipeline ngpc")
    assert_one_error_line(run_cli("ngpc", "arch", "--ngpc-preset", "NGPC-3"), "unknown NGPC preset")
