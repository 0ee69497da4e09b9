"""The encoding registry (encoding.py): a kind registered through docs/extending.md's path is read from configs,
flagged to the shaders, offered by the CLI and costed by the reports; the built-in kinds keep their geometry.
The app registry's documented path is proven by the fifth app (test_fifth_app.py)."""
from __future__ import annotations

import numpy as np
import pytest

from ngrender import encoding, glslgen
from ngrender.apps import app_names, app_spec
from ngrender.cli import build_parser
from ngrender.encoding import EncodingSpec, encoding_presets, encoding_spec, grid_geometry, register_encoding
from ngrender.errors import ConfigError

CONFIG = {"n_levels": 4, "n_features_per_level": 2, "log2_hashmap_size": 10, "base_resolution": 4,
          "per_level_scale": 2.0}


@pytest.fixture
def test_kind(monkeypatch):
    """A registered test kind: a hash grid with one lookup per level, registered for this test only."""
    monkeypatch.setattr(encoding, "_ENCODINGS", dict(encoding._ENCODINGS))
    return register_encoding(EncodingSpec("nearest", ("NearestHashGrid",), lookups=lambda n_dims: 1,
                                          defines=lambda geom: {"NEAREST_BIAS": np.float32(0.5)},
                                          presets=("nearest",), instant_ngp=False))


def test_a_registered_kind_is_read_from_configs_and_flagged_to_shaders(test_kind):
    geom = grid_geometry({"otype": "NearestHashGrid", **CONFIG}, 3)
    assert geom.kind == "nearest" and geom.levels == grid_geometry({"otype": "HashGrid", **CONFIG}, 3).levels
    defines = glslgen.grid_defines(geom)
    assert defines["GRID_NEAREST"] == 1 and defines["GRID_HASH"] == defines["GRID_SIMPLEX"] == 0
    assert defines["NEAREST_BIAS"] == "0.5" and defines["GRID_NGPC_ENGINE"] == 1
    assert glslgen.grid_defines(grid_geometry({"otype": "HashGrid", **CONFIG}, 3))["GRID_NEAREST"] == 0
    assert encoding_spec("nearest").lookups(3) == 1


def test_a_registered_kind_with_presets_is_a_cli_choice(test_kind):
    assert encoding_presets() == ("hash", "dense", "lowres", "nearest")
    args = build_parser().parse_args(["train", "sdf", "--encoding", "nearest", "--out", "m.safetensors"])
    assert args.encoding == "nearest"


def test_registering_a_different_kind_under_a_known_name_fails(test_kind):
    register_encoding(test_kind)  # the same spec again: fine (a module imported twice)
    with pytest.raises(ValueError, match="registered already"):
        register_encoding(EncodingSpec("hash", ("OtherHashGrid",)))
    with pytest.raises(ConfigError, match="unknown grid kind 'missing'"):
        encoding_spec("missing")


def test_the_built_in_kinds():
    assert [s.kind for s in encoding.encoding_specs()][:3] == ["hash", "dense", "simplex"]
    assert encoding_presets() == ("hash", "dense", "lowres")
    assert [encoding_spec(k).lookups(3) for k in ("hash", "dense", "simplex")] == [8, 8, 4]
    assert not encoding_spec("simplex").instant_ngp and not encoding_spec("simplex").ngpc_engine
    dense = grid_geometry({"otype": "TiledGrid", **CONFIG}, 2)
    assert dense.kind == "dense" and not any(lv.hashed for lv in dense.levels)
    assert grid_geometry({"otype": "Grid", "type": "Tiled", **CONFIG}, 2) == dense
    with pytest.raises(ConfigError, match="expected one of HashGrid, DenseGrid, TiledGrid, SimplexHashGrid, Grid"):
        grid_geometry({"otype": "Frequency"}, 3)
    with pytest.raises(ConfigError, match=r"grid type 'cubic' is not supported \(Hash, Dense, Simplex\)"):
        grid_geometry({"otype": "Grid", "type": "Cubic"}, 3)


def test_the_built_in_apps_and_what_the_cli_offers():
    assert app_names()[:4] == ("gigapixel", "sdf", "volume", "nerf")
    assert app_spec("gigapixel").plane and not app_spec("nerf").plane
    parser = build_parser()
    assert parser.parse_args(["bench", "volume"]).app == "volume"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "nosuchapp", "--out", "m.safetensors"])
    with pytest.raises(ConfigError, match="this ngrender renders gigapixel, sdf, volume, nerf"):
        app_spec("nosuchapp")
