"""The NSDF trainer: exact signed distances with the right sign, a few steps on a small real-format mesh make
the loss fall, checkpoints resume, and bad input gives one clear line."""
from __future__ import annotations

import json
import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")
trimesh = pytest.importorskip("trimesh", reason="training needs the [train] extra; ./run.sh installs it")

from ngrender.errors import ConfigError  # noqa: E402
from ngrender.model import load_model  # noqa: E402
from ngrender.train import sdf as trainer  # noqa: E402
from helpers import run_cli  # noqa: E402

TINY = {"encoding": {"otype": "HashGrid", "n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 10,
                     "base_resolution": 8, "per_level_scale": 1.5},
        "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 16,
                    "n_hidden_layers": 1}}


@pytest.fixture
def sphere_mesh(tmp_path):
    """A watertight sphere of radius 1 (1280 triangles) as an OFF file."""
    path = tmp_path / "sphere.off"
    trimesh.creation.icosphere(subdivisions=3, radius=1.0).export(path)
    return path


def test_signed_distance_sign_and_value(sphere_mesh):
    vertices, faces = trainer.load_mesh(sphere_mesh)
    inside = np.array([[0, 0, 0], [0.5, 0, 0], [0, -0.7, 0.2]])
    outside = np.array([[2, 0, 0], [1.2, 1.2, 0], [0, 0, -3]])
    d_in, d_out = trainer.signed_distance(inside, vertices, faces), trainer.signed_distance(outside, vertices, faces)
    assert (d_in < 0).all() and (d_out > 0).all()
    np.testing.assert_allclose(d_in, np.linalg.norm(inside, axis=1) - 1, atol=0.01)  # facets: within 1%
    np.testing.assert_allclose(d_out, np.linalg.norm(outside, axis=1) - 1, atol=0.01)
    fitted, scale, offset = trainer.fit_unit_cube(vertices)
    assert fitted.min() >= 0.1 - 1e-9 and fitted.max() <= 0.9 + 1e-9 and scale == pytest.approx(0.4, rel=0.01)


def test_trainer_learns_checkpoints_and_resumes(sphere_mesh, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    ckpt = tmp_path / "run.ckpt"
    result = trainer.train(sphere_mesh, config_path=config, steps=120, batch=2048, pool=20000, checkpoint=ckpt,
                           progress=False)
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last < 0.5 * first, (first, last)
    assert result.metrics["sign_accuracy"] > 0.9 and result.metrics["surface_error_mean"] < 0.05
    assert ckpt.is_file()
    more = trainer.train(sphere_mesh, config_path=config, steps=150, batch=2048, pool=20000, checkpoint=ckpt,
                         resume=ckpt, progress=False)
    assert more.steps == 150 and len(more.losses) == 150 and more.losses[:120] == result.losses
    result.model.save(tmp_path / "m.safetensors")
    assert load_model(tmp_path / "m.safetensors").extra["source"] == "sphere.off"
    with pytest.raises(ConfigError, match="from another training set-up"):
        trainer.train(sphere_mesh, config_path=config, steps=150, batch=1024, pool=20000, resume=ckpt,
                      progress=False)


def test_bad_training_input_is_one_clear_line(tmp_path):
    broken = tmp_path / "broken.off"
    broken.write_text("OFF\n3 1 0\n0 0 0\nnot a vertex\n")
    empty = tmp_path / "empty.ply"
    trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), int)).export(empty)
    for mesh, message in [(broken, "cannot read mesh"), (empty, "has no triangles"),
                          (tmp_path / "none.off", "does not exist")]:
        proc = run_cli("train", "sdf", "--mesh", mesh, "--out", tmp_path / "o.safetensors", "--steps", 1,
                       timeout=300)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("ngrender: error:") and message in proc.stderr, proc.stderr
