"""scripts/device_check.sh end to end: the ``--local --quick`` rehearsal on this machine's Vulkan driver writes a
complete report (JSON + Markdown) in which every render is within the bounds and the timing, breakdown and
PyTorch-peer sections have rows; plus the report's pieces on their own (image metrics, Markdown of a partial
report, the budget sharing).

The run takes about 25 s with warm shader caches and about 3 minutes with cold ones (lavapipe JIT-compiles the
buffered and shared pipelines on their first dispatch), under the GPU machine's 470 s limit."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "device_check.sh"


def load_module():
    spec = importlib.util.spec_from_file_location("device_check", ROOT / "scripts" / "device_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_check")
    env = dict(os.environ, DEVICE_CHECK_TOTAL_S="470")  # the GPU machine's hard limit holds here too
    proc = subprocess.run(["bash", str(SCRIPT), "--local", "--quick", str(out)], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=500)
    return out, proc


def test_local_quick_run_writes_a_complete_report(quick_report):
    out, proc = quick_report
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("device_check.json", "device_check.md", "device_check.log", "setup.log"):
        assert (out / name).is_file(), name
    report = json.loads((out / "device_check.json").read_text())
    assert report["complete"] and report["mode"] == "local" and report["quick"]
    assert report["total_s"] < report["budget_s"]
    steps = report["steps"]
    assert list(steps) == ["environment", "kernel_tests", "render", "timing", "breakdown", "pytorch_peer"]
    for name, entry in steps.items():
        assert entry["status"] == "ok", (name, entry.get("error"))
        assert entry["seconds"] is not None and entry["seconds"] >= 0
    env = steps["environment"]["result"]
    assert env["device"]["name"] and env["limits"]["maxComputeSharedMemorySize"] > 0
    assert isinstance(env["features"]["shaderFloat16"], bool) and env["features"]["subgroupSize"] >= 1
    assert set(env["extensions_of_interest"]) >= {"VK_KHR_cooperative_matrix", "VK_NV_cooperative_matrix"}
    assert steps["kernel_tests"]["result"]["counts"].get("passed", 0) > 0
    # the Markdown printed at the end is the file's
    md = (out / "device_check.md").read_text()
    assert md.startswith("# ngrender device check") and md.strip() in proc.stdout


def test_every_render_is_within_the_bounds(quick_report):
    out, _ = quick_report
    render = json.loads((out / "device_check.json").read_text())["steps"]["render"]["result"]
    rows = render["rows"]
    assert render["bounds"] == {"psnr_db_min": 40.0, "max_frac_over_2": 0.01}
    assert {r["app"] for r in rows} == {"gigapixel", "sdf", "volume", "nerf"}
    assert {r["variant"] for r in rows if r["app"] == "gigapixel"} >= {"baked", "buffered", "shared", "shared-fp16"}
    for r in rows:
        assert r["error"] is None and r["pass"], r
        assert r["psnr_db"] is None or r["psnr_db"] >= 40  # None: identical images (infinite PSNR)
        assert r["frac_over_2"] <= 0.01 and r["reference_std"] > 1  # something is in the frame
    assert render["passed"] == render["total"] == len(rows)


def test_timing_breakdown_and_peer_sections(quick_report):
    out, _ = quick_report
    report = json.loads((out / "device_check.json").read_text())
    timing = report["steps"]["timing"]["result"]
    assert len(timing["frames"]) == 2 and timing["paper_target_fps_4k"]["nerf"] == 30
    rows = timing["rows"]
    assert {r["app"] for r in rows} == {"gigapixel", "sdf", "volume", "nerf"}
    for r in rows:
        assert r["error"] is None and r["wall_ms"] > 0 and r["fps_wall"] > 0 and r["target_fps"] in (30, 60)
    breakdown = report["steps"]["breakdown"]["result"]
    assert breakdown["paper"]["encoding_mlp_pct"]["hash"] == pytest.approx(72.37)
    for r in breakdown["rows"]:
        assert r["error"] is None
        assert sum(r["pct"].values()) == pytest.approx(100)
        for pipeline in ("fused", "unfused", "fused-rest"):
            assert r[pipeline]["gpu_ms"] > 0
    peer = report["steps"]["pytorch_peer"]["result"]
    assert peer["torch_device"] == "cpu"
    for r in peer["rows"]:
        assert r["error"] is None and r["pytorch_ms"] > 0 and r["vulkan_wall_ms"] > 0
        assert r["pytorch_over_vulkan"] == pytest.approx(r["pytorch_ms"] / r["vulkan_wall_ms"])
        assert r["image_frac_over_2"] <= 0.01  # the peer renders the same picture
    md = (out / "device_check.md").read_text()
    for heading in ("## 1. Environment", "## 2. Kernel tests", "## 3. Render vs NumPy reference",
                    "## 4. Frame timing", "## 5. Kernel breakdown", "## 6. PyTorch peer"):
        assert heading in md


def test_image_metrics_and_bounds():
    dc = load_module()
    rng = np.random.default_rng(0)
    want = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    same = dc.compare_images(want.copy(), want)
    assert same["pass"] and same["psnr_db"] == float("inf") and same["frac_over_2"] == 0
    near = want.astype(int)
    near[0, :8, 0] += np.where(near[0, :8, 0] < 250, 3, -3)  # 8 of 1024 pixels off by 3/255: 0.78%
    near = dc.compare_images(near.astype(np.uint8), want)
    assert near["pass"] and near["frac_over_2"] == pytest.approx(8 / 1024) and near["max_abs"] == 3
    far = want.astype(int)
    far[:4] = 255 - far[:4]  # an eighth of the image wrong
    far = dc.compare_images(far.astype(np.uint8), want)
    assert not far["pass"] and far["psnr_db"] < 40
    assert json.dumps(dc.clean(same), allow_nan=False)  # infinities become null in the JSON


def test_partial_report_markdown_and_budget(tmp_path):
    """A report cut short (a step running, others not run, an error) still renders; the caps share the budget
    so that every later step keeps its reserve."""
    dc = load_module()
    check = dc.Check(type("Args", (), {"report_dir": str(tmp_path), "local": True, "quick": True, "budget": 100.0})())
    steps = check.report["steps"]
    steps["environment"].update(status="error", error="DeviceError: no Vulkan driver found\ntraceback", seconds=0.5)
    steps["render"].update(status="running", result={"rows": [
        {"scene": "sdf_bunny", "app": "sdf", "encoding": "hash", "variant": "baked", "pass": False,
         "error": "skipped: step deadline"}]})
    md = dc.markdown(check.report)
    assert "| 1. environment | error | 0.5 | DeviceError: no Vulkan driver found |" in md
    assert "| 4. frame timing | not run |" in md and "**incomplete**" in md
    assert "error: skipped: step deadline" in md
    assert check.cap_for("environment") <= 100 - dc.FINAL_MARGIN_S - 5 * dc.RESERVE_S
    assert check.cap_for("pytorch_peer") <= 100 - dc.FINAL_MARGIN_S
    check.save()
    assert json.loads((tmp_path / "device_check.json").read_text())["complete"] is False


def test_usage_errors():
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "unknown option --bogus" in proc.stderr
    proc = subprocess.run(["bash", str(SCRIPT), "--local"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "REPORT_DIR is required" in proc.stderr
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_check.py"), "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--local" in proc.stdout
