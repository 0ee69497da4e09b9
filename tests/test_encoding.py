"""Encoding geometry, hash and grid encodings: the reference against tcnn's numbers, the GPU against the
reference (indices exact; features to 1e-5 relative, since the GPU may fuse the accumulation into FMAs)."""
from __future__ import annotations

import numpy as np
import pytest

from ngrender.encoding import grid_geometry, level_scale, per_level_scale_for
from ngrender.errors import ConfigError
from ngrender.reference.grid import encode_grid, grid_hash, grid_index
from unit_kernel import run_field_stage

NERF_HASH = {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 19,
             "base_resolution": 16, "per_level_scale": 1.3819}


def test_level_geometry_matches_tcnn():
    geom = grid_geometry(NERF_HASH, 3)
    # tcnn: scale = exp2(l * log2 b) * 16 - 1, res = ceil(scale) + 1; hashed when res^3 > 2^19.
    assert [lv.resolution for lv in geom.levels[:6]] == [16, 23, 31, 43, 59, 81]
    assert [lv.size for lv in geom.levels[:5]] == [4096, 12168, 29792, 79512, 205384]
    assert [lv.hashed for lv in geom.levels] == [False] * 5 + [True] * 11
    assert geom.levels[5].size == 1 << 19 and geom.levels[-1].resolution == 2048
    assert geom.levels[1].offset == 4096 and geom.n_output_dims == 32
    assert float(level_scale(0, 1.3819, 16)) == 15.0


def test_paper_dense_and_lowres_geometries():
    dense = grid_geometry({"otype": "DenseGrid", "n_levels": 8, "base_resolution": 16, "per_level_scale": 1.405}, 3)
    assert dense.levels[0].resolution == 16 and dense.levels[-1].resolution == 173
    assert not any(lv.hashed for lv in dense.levels)
    low = grid_geometry({"otype": "DenseGrid", "n_levels": 2, "n_features_per_level": 8, "base_resolution": 128,
                         "per_level_scale": 1.0}, 3)
    assert [lv.resolution for lv in low.levels] == [128, 128] and low.n_output_dims == 16
    assert low.levels[1].size == 128 ** 3


def test_every_documented_otype_is_accepted():
    """grid_geometry's docstring names what it takes: TiledGrid and Grid/Tiled are tcnn's dense grid in another
    memory layout, so the same levels as DenseGrid; Grid/Hash is HashGrid."""
    dense = {"n_levels": 4, "base_resolution": 8, "per_level_scale": 1.5}
    want = grid_geometry({"otype": "DenseGrid", **dense}, 3)
    for config in ({"otype": "TiledGrid"}, {"otype": "Grid", "type": "Tiled"}, {"otype": "Grid", "type": "Dense"}):
        assert grid_geometry({**config, **dense}, 3) == want, config
    hashed = grid_geometry({"otype": "HashGrid", **dense}, 3)
    assert grid_geometry({"otype": "Grid", "type": "Hash", **dense}, 3) == hashed
    assert grid_geometry({"otype": "SimplexHashGrid", **dense}, 3).kind == "simplex"


def test_gia_per_level_scale_rule():
    b = per_level_scale_for(16, 5400, 16)
    assert np.isclose(16 * b ** 15, 5400)


@pytest.mark.parametrize("bad, message", [
    ({"otype": "Frequency"}, "not a grid encoding"),
    ({"otype": "HashGrid", "n_features_per_level": 3}, "n_features_per_level"),
    ({"otype": "HashGrid", "log2_hashmap_size": 40}, "log2_hashmap_size"),
    ({"otype": "HashGrid", "interpolation": "Smoothstep"}, "interpolation"),
    ({"otype": "HashGrid", "n_levels": "many"}, "n_levels must be an integer"),
])
def test_bad_encoding_configs(bad, message):
    with pytest.raises(ConfigError, match=message):
        grid_geometry(bad, 3)


def test_hash_known_values():
    coords = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [3, 5, 7]], dtype=np.uint32)
    expect = [0, 1, 2654435761, 805459861, 3 ^ ((5 * 2654435761) % 2**32) ^ ((7 * 805459861) % 2**32)]
    assert grid_hash(coords).tolist() == expect


def test_dense_index_is_row_major():
    geom = grid_geometry({"otype": "DenseGrid", "n_levels": 1, "base_resolution": 10}, 2)
    coords = np.array([[0, 0], [3, 0], [0, 1], [9, 9]], dtype=np.uint32)
    assert grid_index(geom, 0, coords).tolist() == [0, 3, 10, 99]


def test_encoding_is_continuous_and_interpolates_corners(model_factory):
    model = model_factory("hash")
    geom = model.geometry
    lv = geom.levels[0]
    # At a lattice point the level-0 features are exactly the stored entry of that corner.
    corner = np.array([[2, 3]], dtype=np.uint32)
    x = ((corner.astype(np.float64) - 0.5) / lv.scale).astype(np.float32)
    feats = encode_grid(geom, model.grid, x)
    idx = grid_index(geom, 0, corner)[0]
    np.testing.assert_allclose(feats[0, :2], model.grid[0][idx], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres", "simplex"])
def test_gpu_grid_index_exact(device, model_factory, encoding, dims):
    model = model_factory(encoding, n_in=dims)
    rng = np.random.default_rng(1)
    coords = rng.integers(0, 400, (1000, dims)).astype(np.uint32)
    coords[:4] = [[0] * dims, [1] * dims, [lv - 1 for lv in [model.geometry.levels[-1].resolution] * dims],
                  [2**31 + 7] * dims]
    want = np.stack([grid_index(model.geometry, lv, coords) for lv in range(model.geometry.n_levels)], axis=1)
    got = run_field_stage(device, model, "baked", "index", coords)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("variant", ["baked", "buffered", "shared"])
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres", "simplex"])
def test_gpu_encoding_matches_reference(device, model_factory, encoding, dims, variant):
    model = model_factory(encoding, n_in=dims)
    x = np.random.default_rng(2).random((2000, dims)).astype(np.float32)
    x[:2] = [[0.0] * dims, [1.0] * dims]  # edges, where tcnn's dense index wraps into the next row
    want = encode_grid(model.geometry, model.grid, x)
    got = run_field_stage(device, model, variant, "encode", x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gpu_encoding_fp32_model(device, model_factory):
    model = model_factory("hash", dtype="float32")
    x = np.random.default_rng(3).random((500, 2)).astype(np.float32)
    got = run_field_stage(device, model, "baked", "encode", x)
    np.testing.assert_allclose(got, encode_grid(model.geometry, model.grid, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", [2, 3])
def test_simplex_weights_and_continuity(model_factory, dims):
    """Barycentric weights are >= 0 and sum to 1; n+1 lookups; the encoding is continuous across simplices."""
    from ngrender.reference.grid import simplex_vertices
    model = model_factory("simplex", n_in=dims)
    x = np.random.default_rng(7).random((4000, dims)).astype(np.float32)
    vertices, weights = simplex_vertices(model.geometry, 3, x)
    w = np.stack(weights, axis=1)
    assert len(vertices) == dims + 1 and (w >= 0).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)
    # Neighbouring vertices differ in exactly one coordinate by one (a walk along the simplex's edges).
    for a, b in zip(vertices, vertices[1:]):
        assert ((b.astype(np.int64) - a).sum(axis=1) == 1).all()
    eps = np.float32(1e-5)
    f0 = encode_grid(model.geometry, model.grid, x)
    f1 = encode_grid(model.geometry, model.grid, np.clip(x + eps, 0, 1))
    assert np.abs(f1 - f0).max() < 0.05  # the finest level spans ~100 cells: a jump would be O(1)
