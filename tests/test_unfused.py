"""The unfused and fused-rest pipelines (apps/wavefront.py): the same image as the fused kernel for every app and
encoding, their stage kernels against the NumPy reference, and the timestamps of every dispatch.

Image equality is exact: the stages run the fused kernel's own ray code (shaders/lib/ray_<app>.glsl) with the
same arithmetic, and lavapipe evaluates both identically. (A GPU compiler may contract a multiply-add in one
kernel and not the other; the fused-vs-reference tolerance of test_fused_3d.py would then apply.)"""
from __future__ import annotations

import json

import numpy as np
import pytest

from ngrender.apps import create_app
from ngrender.apps.base import UNFUSED_MAX_TILE
from ngrender.errors import ConfigError
from ngrender.reference.grid import encode_grid
from ngrender.reference.mlp import mlp_forward
from ngrender.reference.nerf import sh_encode
from ngrender.render import KERNEL_CLASSES, Renderer
from helpers import APPS, fitted, model_for, render

ENCODINGS = ["hash", "dense", "lowres", "simplex"]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("app", APPS)
def test_pipelines_draw_the_fused_image(device, app, encoding):
    model = model_for(app, encoding)
    fused, _, _ = render(device, model)
    assert (fused.max(axis=2) > 8).mean() > 0.1  # something is drawn
    for pipeline in ("unfused", "fused-rest"):
        image, stats, _ = render(device, model, pipeline=pipeline)
        np.testing.assert_array_equal(image, fused, err_msg=pipeline)
        classes = stats.class_ms()
        assert classes["fused"] == 0 and all(classes[c] > 0 for c in ("encoding", "mlp", "rest")), classes
        assert stats.samples > 0 and stats.iterations >= 1


@pytest.mark.parametrize("variant", ["buffered", "shared"])
@pytest.mark.parametrize("app", APPS)
def test_buffered_variants_per_layer_mlp_and_per_level_encoding(device, app, variant):
    """The other options: uniform-buffer or shared-memory weights at each layer's offset, one dispatch per
    layer, and tcnn's one invocation per (sample, level)."""
    model = model_for(app, "hash")
    fused, _, _ = render(device, model, variant=variant)
    image, stats, _ = render(device, model, pipeline="unfused", variant=variant, mlp_dispatch="layer",
                             encode_invocation="level")
    np.testing.assert_array_equal(image, fused)
    n_layers = sum(len(layers) for layers in ([model.layers] + ([model.rgb_layers] if model.rgb_net else [])))
    assert len([k for k in stats.kernel_ms if k.startswith("mlp/")]) == n_layers


def test_tiles_and_the_unfused_tile_cap(device):
    model = fitted("volume", "dense")
    whole, _, _ = render(device, model, pipeline="fused")
    tiled, stats, _ = render(device, model, pipeline="fused-rest", tile=(16, 16))
    np.testing.assert_array_equal(tiled, whole)
    assert stats.tiles == 3 * 2
    app = create_app(device, model, "baked", max_tile=(2048, 300), pipeline="unfused")
    try:
        assert app.max_tile == (UNFUSED_MAX_TILE[0], 300)
    finally:
        app.destroy()


def expected_dispatches(app_name: str, stats, pipeline: str, n_networks: int) -> int:
    encodings = 2 if app_name == "nerf" else 1
    per_iteration = encodings + n_networks + (3 if pipeline == "unfused" else 1)  # generate, composite, compact
    return stats.tiles * (2 if pipeline == "unfused" else 1) + stats.iterations * per_iteration


@pytest.mark.parametrize("pipeline", ["unfused", "fused-rest"])
@pytest.mark.parametrize("app", ["gigapixel", "nerf", "sdf"])
def test_every_dispatch_is_timed(device, app, pipeline):
    """A timestamp pair around every dispatch, and their sum accounts for the submissions' GPU time. Tolerance:
    the sum never exceeds the bracket around the whole submission, and misses at most 5% of it plus 0.5 ms per
    dispatch (what lavapipe spends launching a dispatch and on the barrier after it, outside the pair)."""
    model = model_for(app, "hash")
    _, stats, _ = render(device, model, pipeline=pipeline, size=(48, 40), tile=(32, 32))
    n_networks = 2 if app == "nerf" else 1
    assert len(stats.dispatches) == expected_dispatches(app, stats, pipeline, n_networks)
    assert all(ms >= 0 for _, ms in stats.dispatches)
    assert {label.split("/")[0] for label, _ in stats.dispatches} == {"encoding", "mlp", "rest"}
    total = sum(ms for _, ms in stats.dispatches)
    assert total == pytest.approx(stats.gpu_ms)
    assert total <= stats.submit_ms * 1.001 + 0.01
    assert stats.submit_ms - total <= 0.05 * stats.submit_ms + 0.5 * len(stats.dispatches)
    assert set(stats.class_ms()) == set(KERNEL_CLASSES)


def test_stage_kernels_match_the_reference(device):
    """The last batch's encoding (level-major), SH, density and colour MLP outputs against NumPy."""
    model = fitted("nerf", "hash")
    app = create_app(device, model, "baked", pipeline="unfused")
    renderer = Renderer(device, app)
    try:
        _, stats = renderer.render(24, 20, app.default_view())
        wf = app.wavefront
        words = wf.control.array(np.uint32, 10)
        n = int(words[8])  # n_samples of the last batch
        assert n > 0
        records = wf.samples.read(np.float32, n * 2 * 4).reshape(n, 2, 4)
        geom = model.geometry
        feats = wf.read(wf.features, geom.n_levels * geom.n_features, n)
        want = encode_grid(geom, model.grid, np.clip(records[:, 0, :3], 0, 1))
        np.testing.assert_allclose(feats, want, rtol=1e-5, atol=1e-6)
        sh = wf.read(wf.sh_features, model.sh_degree ** 2, n)
        np.testing.assert_allclose(sh, sh_encode(records[:, 1, :3], model.sh_degree), rtol=1e-5, atol=1e-6)
        density = wf.read(wf.density_out, model.layers[-1].shape[0], n)
        np.testing.assert_allclose(density, mlp_forward(model.layers, feats, model.net.output_activation),
                                   rtol=1e-4, atol=1e-5)
        colour = wf.read(wf.net_out, 3, n)
        want_colour = mlp_forward(model.rgb_layers, np.concatenate([density, sh], axis=1),
                                  model.rgb_net.output_activation)
        np.testing.assert_allclose(colour, want_colour, rtol=1e-4, atol=1e-5)
    finally:
        renderer.destroy()
        app.destroy()


def test_bad_pipeline_options(device, model_factory):
    model = model_factory("hash")
    for options, message in [({"pipeline": "partly"}, "unknown pipeline"),
                             ({"pipeline": "unfused", "mlp_dispatch": "neuron"}, "unknown MLP dispatch"),
                             ({"pipeline": "unfused", "encode_invocation": "corner"}, "unknown encoding invocation")]:
        with pytest.raises(ConfigError, match=message):
            create_app(device, model, "baked", **options)


def test_breakdown_writes_json_markdown_and_chart(tmp_path, model_factory):
    from PIL import Image

    from ngrender.reports.breakdown import breakdown

    path = tmp_path / "gia.safetensors"
    model_factory("dense").save(path)
    rows = breakdown(["gigapixel"], ["dense"], size=16, repeats=1, out_dir=tmp_path / "out",
                     models={("gigapixel", "dense"): path})
    (row,) = rows
    assert sum(row["pct"].values()) == pytest.approx(100.0)
    assert row["paper_encoding_mlp_pct"] == 60.0 and row["fused_speedup"] > 0 and row["rest_fusion_speedup"] > 0
    assert row["unfused"]["samples"] == 16 * 16 and row["fused-rest"]["dispatches"] == 4
    report = json.loads((tmp_path / "out" / "breakdown.json").read_text())
    assert report["paper"]["rest_fusion_speedup"] == 9.94 and len(report["rows"]) == 1
    table = (tmp_path / "out" / "breakdown.md").read_text().splitlines()
    assert len(table) == 3 and table[2].startswith("| gigapixel | dense |")
    with Image.open(tmp_path / "out" / "breakdown.png") as chart:
        assert chart.size[0] > 300


def test_breakdown_without_a_model_is_a_clear_error(tmp_path):
    from ngrender.reports.breakdown import breakdown
    from ngrender.errors import NgrenderError

    with pytest.raises(NgrenderError, match="no gigapixel scene or model for the simplex encoding"):
        breakdown(["gigapixel"], ["simplex"], size=8, repeats=1, out_dir=tmp_path)
