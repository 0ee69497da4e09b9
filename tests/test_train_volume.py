"""The NVR trainer: a real-format (.inv3) scan is read, the transfer function and sampler are right on known
voxels, a few steps make the loss fall and the model renders close to the raw scan, and bad input gives one
clear line."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")

from ngrender.train import volume as trainer  # noqa: E402
from helpers import run_cli, write_inv3  # noqa: E402

TINY = ('{"encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 12, '
        '"base_resolution": 8, "per_level_scale": 1.5}, "network": {"otype": "FullyFusedMLP", "n_neurons": 16, '
        '"n_hidden_layers": 1, "output_activation": "ReLU"}}')


@pytest.fixture
def phantom(tmp_path):
    """A 24 x 32 x 32 phantom: a soft-tissue ball (40 HU) with a bone core (800 HU) in air."""
    z, y, x = np.meshgrid(np.arange(24) * 2.0, np.arange(32.0), np.arange(32.0), indexing="ij")
    r = np.sqrt((x - 15.5) ** 2 + (y - 15.5) ** 2 + (z - 23.0) ** 2)
    hu = np.where(r < 6, 800, np.where(r < 13, 40, -1000))
    return write_inv3(tmp_path / "phantom.inv3", hu)


def test_scan_sampler_and_transfer_function(phantom):
    scan = trainer.load_scan(phantom)
    assert scan.hu.shape == (24, 32, 32) and scan.extent.tolist() == [32.0, 48.0, 32.0]
    sampler = trainer.ScanSampler(scan)
    hu = sampler(np.array([[0.5, 0.5, 0.5], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5 + 0.3 * 0.5]])).numpy()
    assert hu[0] == pytest.approx(800, abs=1) and hu[1] == trainer.AIR_HU and hu[2] == pytest.approx(40, abs=1)
    r, g, b, density = (np.asarray(v) for v in trainer.transfer(np.array([-1000.0, 40.0, 800.0])))
    assert density[0] == 0 and 0 < density[1] < density[2] and r[2] == pytest.approx(trainer.BONE[0])


def test_trainer_learns_and_renders_like_the_scan(phantom, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(TINY)
    result = trainer.train(phantom, config_path=config, steps=150, batch=4096, checkpoint=tmp_path / "c.ckpt",
                           progress=False)
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last < 0.3 * first, (first, last)
    assert result.metrics["psnr_db"] > 20.0 and len(result.metrics["psnr_views_db"]) == 4
    assert result.model.extra["density_scale"] == trainer.DENSITY_SCALE


def test_bad_volume_input_is_one_clear_line(tmp_path):
    empty = write_inv3(tmp_path / "empty.inv3", np.full((4, 4, 4), -1000))
    garbage = tmp_path / "garbage.inv3"
    garbage.write_bytes(b"not a tarball")
    for volume, message in [(empty, "is empty"), (garbage, "cannot read volume"),
                            (tmp_path / "none.inv3", "does not exist")]:
        proc = run_cli("train", "volume", "--volume", volume, "--out", tmp_path / "o.safetensors", "--steps", 1,
                       timeout=300)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("ngrender: error:") and message in proc.stderr, proc.stderr
