"""instant-ngp's config files load as instant-ngp reads them: comments, "parent" files merged (objects
recursively, the child wins), Composite direction encodings, TiledGrid, per_level_scale derived when left
out, and tiny-cuda-nn's parameter count. The configs below are written here in instant-ngp's schema with its
published values (not copied from its files); each trains a few steps and the trainer's scene renders."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.cli import main
from ngrender.errors import ConfigError
from ngrender.model import load_network_config
from ngrender.netconfig import merge, sh_degree, strip_comments, tcnn_param_count, with_per_level_scale
from helpers import INSTANT_NGP_BASE

COMPOSITE = {"otype": "Composite", "nested": [
    {"n_dims_to_encode": 3, "otype": "SphericalHarmonics", "degree": 4},
    {"otype": "Identity"}]}

def _nerf_base(levels: int, features: int) -> str:
    """test_model's instant-ngp NeRF base with its direction and colour networks, as a file with comments."""
    encoding = {**INSTANT_NGP_BASE["encoding"], "n_levels": levels, "n_features_per_level": features}
    config = {**INSTANT_NGP_BASE, "encoding": encoding, "dir_encoding": COMPOSITE,
              "rgb_network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None",
                              "n_neurons": 64, "n_hidden_layers": 2},
              "distortion_map": {"resolution": [32, 32], "optimize": False},
              "envmap": {"loss": "l2", "n_levels": 4}}
    body = json.dumps(config, indent=1)
    return (f"// instant-ngp's NeRF base config (L{levels} F{features})\n"
            + body.replace('"dir_encoding"', "/* SH degree 4 on the direction, the rest passed through */\n"
                           ' "dir_encoding"', 1))


NERF_BASE_2022 = _nerf_base(16, 2)
NERF_BASE_CURRENT = _nerf_base(8, 4)  # since February 2023
DENSEGRID = """// the dense-grid variant: the parent's encoding replaced key by key
{"parent": "base.json",
 "encoding": {"otype": "DenseGrid", "n_levels": 8, "base_resolution": 16, "per_level_scale": 1.405}}"""
DENSEGRID_1RES = """{"parent": "base.json", // the paper's low-resolution dense grid
 "encoding": {"otype": "TiledGrid", "n_levels": 2, "n_features_per_level": 8, "base_resolution": 128,
              "per_level_scale": 1.0}}"""
MLP_64X2 = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64,
            "n_hidden_layers": 2}
SDF_BASE = {"loss": {"otype": "RelativeL2"}, "encoding": {"otype": "HashGrid", "n_levels": 16,
            "n_features_per_level": 2, "log2_hashmap_size": 19, "base_resolution": 16}, "network": MLP_64X2}
IMAGE_BASE = {"encoding": {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2,
                           "log2_hashmap_size": 24, "base_resolution": 16}, "network": MLP_64X2}
VOLUME_BASE = {"encoding": {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2,
                            "log2_hashmap_size": 19, "base_resolution": 16},
               "network": {**MLP_64X2, "output_activation": "ReLU"}}


def test_comments_are_stripped_outside_strings():
    text = '{"a": "x // not a comment", /* gone */ "b": 1 // gone\n, "c": "/* kept */"}'
    assert json.loads(strip_comments(text)) == {"a": "x // not a comment", "b": 1, "c": "/* kept */"}
    assert strip_comments("1 /* a\nb */ 2").count("\n") == 1  # line numbers survive


def test_parent_merge_is_recursive_and_the_child_wins(tmp_path):
    assert merge({"e": {"a": 1, "b": 2}, "n": 1}, {"e": {"b": 3}, "x": [1]}) == {"e": {"a": 1, "b": 3}, "n": 1,
                                                                                 "x": [1]}
    (tmp_path / "base.json").write_text(NERF_BASE_2022)
    (tmp_path / "densegrid.json").write_text(DENSEGRID)
    config = load_network_config(tmp_path / "densegrid.json")
    assert "parent" not in config
    assert config["encoding"] == {"otype": "DenseGrid", "n_levels": 8, "n_features_per_level": 2,
                                  "log2_hashmap_size": 19, "base_resolution": 16, "per_level_scale": 1.405}
    assert config["rgb_network"]["n_hidden_layers"] == 2 and config["loss"] == {"otype": "Huber"}


@pytest.mark.parametrize("text, fragment", [
    ('{"parent": "a.json"}', "does not exist"),
    ('{"parent": "loop.json"}', "loop back"),
    ('{"a": 1 /* open', "not closed"),
    ('{"parent": 3}', "parent must be a non-empty string"),
])
def test_bad_config_files(tmp_path, text, fragment):
    (tmp_path / "loop.json").write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_network_config(tmp_path / "loop.json")


def test_composite_direction_encoding():
    assert sh_degree(COMPOSITE) == 4 and sh_degree({"otype": "SphericalHarmonics", "degree": 3}) == 3
    with pytest.raises(ConfigError, match="n_dims_to_encode must be 3"):
        sh_degree({"otype": "Composite", "nested": [{"otype": "SphericalHarmonics", "n_dims_to_encode": 2}]})
    with pytest.raises(ConfigError, match="not supported"):
        sh_degree({"otype": "Composite", "nested": [{"otype": "Frequency"}]})


def test_the_2022_nerf_base_has_instant_ngps_parameter_count(tmp_path):
    """3,072 (density 32 -> 64 -> 16) + 7,168 (colour 32 -> 64 -> 64 -> 16) + 12,196,240 (the grid with
    per_level_scale derived for a finest resolution of 2048) = 12,206,480: the published figure."""
    (tmp_path / "base.json").write_text(NERF_BASE_2022)
    config = with_per_level_scale(load_network_config(tmp_path / "base.json"), 2048)
    assert config["encoding"]["per_level_scale"] == pytest.approx(1.3819128)
    assert tcnn_param_count(config, "nerf", 3, 16) == 12_206_480


@pytest.fixture
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "img.png"
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(path)
    return path


def train_and_render(tmp_path: Path, capsys, *args) -> np.ndarray:
    out = tmp_path / "m.safetensors"
    code = main(["train", *map(str, args), "--out", str(out), "--force"])
    err = capsys.readouterr().err
    assert code == 0, err
    code = main(["render", str(out.with_suffix(".json")), "--out", str(tmp_path / "m.png"), "--width", "16",
                 "--height", "16"])
    assert code == 0, capsys.readouterr().err
    return np.asarray(Image.open(tmp_path / "m.png"))


@pytest.mark.parametrize("name, config", [("sdf", SDF_BASE), ("volume", VOLUME_BASE), ("gigapixel", IMAGE_BASE)])
def test_sdf_image_volume_bases_train_and_render(tmp_path, capsys, image, name, config):
    pytest.importorskip("torch", reason="training needs the [train] extra")
    path = tmp_path / "base.json"
    path.write_text("// instant-ngp's base config\n" + json.dumps(config))
    if name == "volume":  # through the API: the CLI's quality figures render 96 x 96 views, minutes here
        from ngrender.scene import default_scene
        from ngrender.train import volume
        from helpers import write_inv3

        z, y, x = np.mgrid[:16, :24, :24]
        scan = write_inv3(tmp_path / "v.inv3", np.where((x - 12) ** 2 + (y - 12) ** 2 + (z - 8) ** 2 < 30, 800, -1000))
        result = volume.train(scan, config_path=path, steps=3, batch=1024, progress=False, eval_size=8)
        result.model.save(tmp_path / "m.safetensors")
        (tmp_path / "m.json").write_text(json.dumps(default_scene(result.model, "m.safetensors")))
        assert main(["render", str(tmp_path / "m.json"), "--out", str(tmp_path / "m.png"), "--width", "16",
                     "--height", "16"]) == 0
        return
    if name == "gigapixel":
        data = image
    else:
        import trimesh
        data = tmp_path / "sphere.ply"
        trimesh.creation.icosphere(subdivisions=2).export(data)
    rendered = train_and_render(tmp_path, capsys, name, "--data", data, "--config", path, "--steps", 3,
                                "--batch", 1024)
    assert rendered.shape == (16, 16, 3)


def nerf_configs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "base.json").write_text(NERF_BASE_2022)
    (tmp_path / "current").mkdir()
    (tmp_path / "current" / "base.json").write_text(NERF_BASE_CURRENT)
    (tmp_path / "densegrid.json").write_text(DENSEGRID)
    (tmp_path / "densegrid_1res.json").write_text(DENSEGRID_1RES)
    return {"base_2022": tmp_path / "base.json", "base_current": tmp_path / "current" / "base.json",
            "densegrid": tmp_path / "densegrid.json", "densegrid_1res": tmp_path / "densegrid_1res.json"}


@pytest.mark.parametrize("variant, kind, levels, features, params", [
    ("base_2022", "hash", 16, 2, 12_206_480),
    ("base_current", "hash", 8, 4, None),
    ("densegrid", "dense", 8, 2, None),
    ("densegrid_1res", "dense", 2, 8, 2_048 + 7_168 + 2 * 128 ** 3 * 8)  # res = ceil(128 - 1) + 1,
])
def test_nerf_configs_load(tmp_path, variant, kind, levels, features, params):
    """Each NeRF config's geometry (TiledGrid is a dense grid) and instant-ngp's parameter count for it. (The
    dense kernels are tested on small grids elsewhere; these models hold 16-34 M parameters.)"""
    from ngrender.encoding import grid_geometry
    from ngrender.netconfig import NERF_SDF_FINEST
    from ngrender.train.nerf import load_nerf_config

    config = with_per_level_scale(load_nerf_config(nerf_configs(tmp_path)[variant]), NERF_SDF_FINEST)
    geometry = grid_geometry(config["encoding"], 3)
    assert (geometry.kind, geometry.n_levels, geometry.n_features) == (kind, levels, features)
    count = tcnn_param_count(config, "nerf", 3, 16)
    density = -(-geometry.n_output_dims // 16) * 16 * 64 + 64 * 16  # input padded to 16, 16 outputs
    assert count == density + 7_168 + geometry.n_entries * geometry.n_features
    if params is not None:
        assert count == params


def test_the_2022_nerf_base_trains_and_renders(tmp_path, capsys, request):
    pytest.importorskip("torch", reason="training needs the [train] extra")
    pytest.importorskip("mitsuba", reason="the NeRF test data is rendered with Mitsuba 3 (extra [train])")
    tiny_set = request.getfixturevalue("tiny_set")
    rendered = train_and_render(tmp_path, capsys, "nerf", "--data", tiny_set, "--config",
                                nerf_configs(tmp_path)["base_2022"], "--steps", 2, "--batch", 2048, "--n-steps", 64)
    assert rendered.shape == (16, 16, 3)
