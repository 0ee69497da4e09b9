"""The fused GIA kernel against the NumPy reference render, tiling, views, PNG streaming, screenshots."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.apps import create_app
from ngrender.apps.gigapixel import GigapixelView
from ngrender.errors import ConfigError
from ngrender.model import load_model
from ngrender.pngio import PngStripWriter, adler32_combine, deflate_rows, write_png
from ngrender.reference import gigapixel as ref
from ngrender.reference.output import to_uint8
from ngrender.render import Renderer, strip_rows
from ngrender.session import RenderSession
from helpers import render
from screenshots import compare_screenshot

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENE = ROOT / "scenes" / "gigapixel.json"


def assert_close_images(got: np.ndarray, want: np.ndarray) -> None:
    """Equal up to 1 LSB where the GPU's summation order tips a rounding; such pixels are rare."""
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, f"max abs diff {diff.max()}"
    assert (diff > 0).mean() < 1e-3, f"{(diff > 0).mean():.2%} of values differ"


@pytest.mark.parametrize("variant", ["baked", "buffered", "shared"])
@pytest.mark.parametrize("encoding", ["hash", "dense", "lowres"])
def test_fused_render_equals_reference(device, model_factory, encoding, variant):
    model = model_factory(encoding)
    view = GigapixelView(window=(-0.1, 0.05, 1.05, 0.9), background=0.25)  # includes outside-image pixels
    image, stats, _ = render(device, model, variant, (83, 61), view=view)
    want = ref.render(model, 83, 61, view.window)
    want[~_inside(83, 61, view.window)] = to_uint8(np.float32(0.25))
    assert_close_images(image, want)
    assert stats.tiles == 1 and stats.samples == ref.evaluations(83, 61, view.window)  # the on-image pixels
    assert 0 < stats.samples < 83 * 61


def _inside(width, height, window):
    uv = ref.pixel_coords(width, height, window)
    return np.all((uv >= 0) & (uv <= 1), axis=1).reshape(height, width)


def test_tiling_is_seamless(device, model_factory):
    model = model_factory("hash")
    whole, _, _ = render(device, model, "baked", (100, 70))
    tiled, stats, _ = render(device, model, "baked", (100, 70), tile=(32, 24))
    assert stats.tiles == 4 * 3
    np.testing.assert_array_equal(tiled, whole)


def test_timestamps_cover_every_tile(device, model_factory):
    model = model_factory("hash")
    _, stats, _ = render(device, model, "baked", (64, 64), tile=(32, 32))
    assert stats.tiles == 4
    assert set(stats.kernel_ms) == {"fused/gigapixel"} and stats.kernel_ms["fused/gigapixel"] > 0
    assert stats.gpu_ms <= stats.wall_ms


def test_zoom_window_matches_reference(device, model_factory):
    model = model_factory("hash", seed=3)
    window = (0.40, 0.30, 0.45, 0.34)  # deep zoom: a 20x magnification of the image plane
    image, _, _ = render(device, model, "baked", (48, 40), view=GigapixelView(window))
    assert_close_images(image, ref.render(model, 48, 40, window))


def test_png_stream_equals_in_memory_render(device, model_factory, tmp_path):
    model = model_factory("hash")
    app = create_app(device, model, "baked", max_tile=(40, 16))
    renderer = Renderer(device, app)
    try:
        image, _ = renderer.render(90, 50)
        stats = renderer.render_to_png(tmp_path / "out.png", 90, 50)
    finally:
        renderer.destroy()
        app.destroy()
    assert stats.tiles == 3 * 4
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), image)


def test_strips_deflated_apart_make_the_same_png(device, model_factory, tmp_path):
    """What the render farm relies on: each strip of tiles rendered alone (render_strip) and deflated alone
    (deflate_rows, as a worker does), appended in order, is the file render_to_png writes, byte for byte; the
    zlib stream is strict (one stream, its Adler-32 combined from the strips')."""
    model = model_factory("hash")
    app = create_app(device, model, "baked", max_tile=(40, 16))
    renderer = Renderer(device, app)
    try:
        renderer.render_to_png(tmp_path / "whole.png", 90, 50)
        pieces = {y: deflate_rows(renderer.render_strip(90, 50, y)[0])  # in any order; appended in order
                  for y, _ in reversed(strip_rows(50, app.max_tile))}
    finally:
        renderer.destroy()
        app.destroy()
    writer = PngStripWriter(tmp_path / "strips.png", 90, 50)
    for y in sorted(pieces):
        writer.write_deflated(pieces[y])
    writer.close()
    data = (tmp_path / "strips.png").read_bytes()
    assert data == (tmp_path / "whole.png").read_bytes()
    assert [p.rows for _, p in sorted(pieces.items())] == [16, 16, 16, 2]
    stream = zlib.decompressobj()
    stream.decompress(b"".join(chunk for kind, chunk in _png_chunks(data) if kind == b"IDAT"))
    assert stream.eof and stream.unused_data == b""
    a, b = b"x" * 70001, bytes(range(256)) * 300
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)


def _png_chunks(data: bytes):
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        yield data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n


def test_png_writer_roundtrip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), img)


def test_bad_view_and_sizes(device, model_factory):
    with pytest.raises(ConfigError, match="x1 > x0"):
        GigapixelView(window=(0.5, 0, 0.5, 1))
    with pytest.raises(ConfigError, match="frame size"):
        render(device, model_factory("hash"), "baked", (0, 10))


def test_wrong_app_model_rejected(device, model_factory):
    model = model_factory("hash", app="nerf")
    with pytest.raises(ConfigError, match="nerf"):
        create_app(device, model, "baked")


def test_default_model_matches_reference_both_variants(device):
    model = load_model(ROOT / "assets" / "gigapixel_hash.safetensors")
    window = (0.55, 0.2, 0.75, 0.4)  # Europe / Africa coast: detail from every level
    want = ref.render(model, 48, 48, window)
    for variant in ("baked", "buffered", "shared"):
        image, _, _ = render(device, model, variant, (48, 48), view=GigapixelView(window))
        assert_close_images(image, want)


def test_default_scene_screenshot(regenerate):
    with RenderSession.from_scene(DEFAULT_SCENE, validation=True) as session:
        image, _ = session.renderer.render(256, 128, session.view())
        session.check_validation()
    compare_screenshot("gigapixel_default_256x128", image, regenerate)


def test_default_scene_zoom_screenshot(regenerate):
    with RenderSession.from_scene(DEFAULT_SCENE, validation=True) as session:
        image, _ = session.renderer.render(160, 120, session.view(window=(0.27, 0.25, 0.33, 0.34)))
        session.check_validation()
    compare_screenshot("gigapixel_zoom_160x120", image, regenerate)
