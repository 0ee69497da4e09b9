"""The frames folder of a video and the MP4 assembled from it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.video import MANIFEST, FrameFolder

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="MP4 output needs the [video] extra")


def read_mp4(path: Path) -> tuple[dict, list[np.ndarray]]:
    """imageio-ffmpeg's metadata and the decoded RGB frames."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_frame_folder_writes_atomically_and_refuses_another_video(tmp_path):
    frames = FrameFolder(tmp_path / "f", 120000)
    frames.prepare({"size": [4, 2]})
    assert frames.path(7).name == "frame_000007.png"  # six digits for 120000 frames
    frames.write(7, np.full((2, 4, 3), 9, np.uint8))
    assert frames.missing([6, 7, 8]) == [6, 8] and png(frames.path(7)).shape == (2, 4, 3)
    (tmp_path / "f" / ".frame_000008.png.x1.tmp").write_bytes(b"half")  # as a SIGKILL leaves it
    frames.prepare({"size": [4, 2]})  # the same video: kept, the leftover removed
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["frame_000007.png", MANIFEST]
    from ngrender.errors import NgrenderError
    with pytest.raises(NgrenderError, match="different size"):
        frames.prepare({"size": [8, 2]})
    frames.prepare({"size": [8, 2]}, force=True)
    assert frames.missing([7]) == [7]


def test_encode_keeps_the_frames_and_replaces_the_film_only_when_ffmpeg_succeeds(tmp_path, monkeypatch):
    """Frames of odd size, encoded lossless (bit for bit) and as yuv420p (one more row and column); a failing
    ffmpeg leaves the old film and the frames as they were, and no temporary file."""
    from ngrender.errors import NgrenderError
    from ngrender.video import encode_mp4

    rng = np.random.default_rng(0)
    frames = FrameFolder(tmp_path / "frames", 5)
    frames.prepare({"size": [21, 11]})
    images = [rng.integers(0, 256, (11, 21, 3), dtype=np.uint8) for _ in range(5)]
    for index, image in enumerate(images):
        frames.write(index, image)
    film = tmp_path / "film.mp4"
    said = encode_mp4(frames, range(1, 5), film, 7.5, 21, 11, lossless=True, progress=False)
    meta, decoded = read_mp4(film)
    assert "libx264rgb" in said and meta["size"] == (21, 11) and meta["fps"] == 7.5
    assert len(decoded) == 4 and all(np.array_equal(a, b) for a, b in zip(decoded, images[1:]))
    before = film.read_bytes()
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/bin/false")
    with pytest.raises(NgrenderError, match="failed with exit code 1.*frames are kept"):
        encode_mp4(frames, range(5), film, 7.5, 21, 11, progress=False)
    assert film.read_bytes() == before and frames.missing(range(5)) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    said = encode_mp4(frames, range(5), film, 30, 21, 11, progress=False)
    meta, decoded = read_mp4(film)
    assert "padded to 22x12" in said and meta["size"] == (22, 12) and len(decoded) == 5
    assert "yuv420p" in meta["pix_fmt"]
