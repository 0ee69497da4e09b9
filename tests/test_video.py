"""`ngrender video`: a clip of every default scene read back with imageio-ffmpeg, each frame equal to `render
--path --frame`, a run killed with SIGKILL resumed to the same result as an uninterrupted one, and bad input as
one error line that loses nothing finished. Frames are small (64 x 64) to keep the file fast."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, assert_one_error_line, run_cli, run_in_process
from ngrender.camera import orbit
from ngrender.camera_path import append_keyframe, camera_keyframe, image_aspect_of, window_keyframe
from ngrender.scene import load_scene
from ngrender.video import LOCK, MANIFEST, FrameFolder

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="MP4 output needs the [video] extra")

SCENES = {"gigapixel": "gigapixel.json", "sdf": "sdf_bunny.json", "volume": "volume_head.json",
          "nerf": "nerf_bunny.json"}


def write_path(tmp_path: Path, app: str, name: str = "base_cam.json") -> Path:
    """A base_cam.json of four keyframes: an orbit for the 3D apps, a zoom into the image for gigapixel."""
    doc = None
    if app == "gigapixel":
        aspect = image_aspect_of(load_scene(ROOT / "scenes" / SCENES[app]))
        for window in ((0.0, 0.0, 1.0, 1.0), (0.2, 0.1, 0.7, 0.6), (0.4, 0.3, 0.6, 0.5), (0.45, 0.35, 0.5, 0.4)):
            doc = append_keyframe(doc, window_keyframe(window, aspect))
    else:
        for azimuth in (0, 60, 120, 180):
            doc = append_keyframe(doc, camera_keyframe(orbit(azimuth, 20, 1.6, fov_x_deg=45), 64, 64))
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def read_mp4(path: Path) -> tuple[dict, list[np.ndarray]]:
    """imageio-ffmpeg's metadata and the decoded RGB frames."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("app,size,lossless", [("gigapixel", (63, 47), False), ("sdf", (64, 64), True),
                                               ("volume", (64, 48), False), ("nerf", (64, 64), False)])
def test_a_two_second_clip_of_every_default_scene(tmp_path, app, size, lossless):
    """12 frames at 6 frames/s; read back: frame count, size, codec, rate. gigapixel at an odd size gets one
    more column and row (4:2:0); the lossless film decodes to the PNG frames bit for bit."""
    film = tmp_path / "film.mp4"
    proc = run_cli("video", ROOT / "scenes" / SCENES[app], "--path", write_path(tmp_path, app), "--out", film,
                   "--width", size[0], "--height", size[1], "--fps", 6, "--seconds", 2,
                   *(["--lossless"] if lossless else []), env={"NGRENDER_PROGRESS_INTERVAL": "0"})
    assert proc.returncode == 0, proc.stderr
    assert "rendered 12 frames, 0 already there" in proc.stdout
    progress = [line for line in proc.stderr.splitlines() if line.startswith("video: ")]
    assert progress[-1].startswith("video: 12/12 frames (100%)") and "frames/s" in progress[0], proc.stderr
    meta, decoded = read_mp4(film)
    assert len(decoded) == 12 and meta["codec"] == "h264" and meta["fps"] == 6.0
    even = (size[0] + size[0] % 2, size[1] + size[1] % 2)
    assert meta["size"] == (size if lossless else even)
    assert ("gbrp" if lossless else "yuv420p") in meta["pix_fmt"], meta  # H.264 stores RGB as planar GBR
    frames = FrameFolder(film.with_name("film.mp4.frames"), 12)
    assert frames.missing(range(12)) == []
    first = png(frames.path(0))
    assert first.shape == (size[1], size[0], 3) and first.std() > 0  # a picture, not a flat frame
    assert not np.array_equal(first, png(frames.path(6)))  # the camera moves
    if lossless:
        for index, image in enumerate(decoded):
            assert np.array_equal(image, png(frames.path(index))), index
    else:
        assert np.abs(decoded[0][:size[1], :size[0]].astype(int) - first).mean() < 6  # crf 18: close
        if size != even:  # the padding repeats the last column and row (within the codec's loss)
            column = np.abs(decoded[0][:, -1].astype(int) - decoded[0][:, -2]).mean()
            row = np.abs(decoded[0][-1].astype(int) - decoded[0][-2]).mean()
            assert column < 6 and row < 6, (column, row)


@pytest.mark.parametrize("app,indices", [("nerf", (0, 5)), ("gigapixel", (3,))])
def test_each_frame_equals_render_of_the_same_frame(tmp_path, app, indices):
    """`video --out DIR/` writes the PNGs; `render --path --frame I` of a few of them is the same file."""
    path, folder = write_path(tmp_path, app), tmp_path / "frames"
    common = ["--path", path, "--width", 64, "--height", 64, "--fps", 3, "--seconds", 2]
    proc = run_cli("video", ROOT / "scenes" / SCENES[app], *common, "--out", f"{folder}/")
    assert proc.returncode == 0, proc.stderr
    frames = FrameFolder(folder, 6)
    for index in indices:
        still = tmp_path / f"still_{index}.png"
        proc = run_cli("render", ROOT / "scenes" / SCENES[app], *common, "--frame", index, "--out", still)
        assert proc.returncode == 0, proc.stderr
        assert still.read_bytes() == frames.path(index).read_bytes(), index
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK, MANIFEST] + [f"frame_{i:05d}.png" for i in range(6)])


def _interrupt(args: list, frames: FrameFolder, n: int, at_least: int, signum: int) -> subprocess.Popen:
    """Start ``ngrender ARGS`` and send it ``signum`` once ``at_least`` of its ``n`` frames exist."""
    proc = subprocess.Popen([sys.executable, "-m", "ngrender", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while len(frames.missing(range(n))) > n - at_least and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
    finally:
        proc.wait()
    return proc


def test_sigterm_then_sigkill_halfway_then_rerun_equals_an_uninterrupted_run(tmp_path):
    """A real process stopped by SIGTERM once frames exist (one line, exit 143), continued and killed by SIGKILL
    a few frames later; the rerun renders only the rest, and the frames and the (lossless) film equal those of
    a run that was never interrupted."""
    path, n = write_path(tmp_path, "nerf"), 16
    args = ["video", ROOT / "scenes" / SCENES["nerf"], "--path", path, "--width", 64, "--height", 64,
            "--fps", 8, "--seconds", 2, "--lossless"]
    whole = run_cli(*args, "--out", tmp_path / "whole.mp4")
    assert whole.returncode == 0, whole.stderr

    film = tmp_path / "film.mp4"
    frames = FrameFolder(tmp_path / "film.mp4.frames", n)
    proc = _interrupt([*args, "--out", film], frames, n, 2, signal.SIGTERM)
    assert proc.returncode == 143 and proc.stderr.read().strip().splitlines()[-1] == "ngrender: terminated"
    after_term = n - len(frames.missing(range(n)))
    proc = _interrupt([*args, "--out", film], frames, n, after_term + 3, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    done = n - len(frames.missing(range(n)))
    assert 2 <= after_term < done < n and not film.exists(), (after_term, done)  # halfway: no film yet

    rerun = run_cli(*args, "--out", film)
    assert rerun.returncode == 0, rerun.stderr
    assert f"rendered {n - done} frames, {done} already there" in rerun.stdout
    uninterrupted = FrameFolder(tmp_path / "whole.mp4.frames", n)
    for index in range(n):
        assert frames.path(index).read_bytes() == uninterrupted.path(index).read_bytes(), index
    assert not list(frames.folder.glob(".*.tmp"))  # what the kill left half-written is gone
    (_, resumed), (_, decoded) = read_mp4(film), read_mp4(tmp_path / "whole.mp4")
    assert len(resumed) == n and all(np.array_equal(a, b) for a, b in zip(resumed, decoded))


def test_bad_input_is_one_line_and_loses_nothing_finished(tmp_path, monkeypatch):
    scene = ROOT / "scenes" / SCENES["sdf"]
    path, film = write_path(tmp_path, "sdf"), tmp_path / "film.mp4"
    common = ["--width", 32, "--height", 32, "--fps", 2, "--seconds", 2]
    code, out, err = run_in_process("video", scene, "--path", path, "--out", film, *common)
    assert code == 0, err
    frames = FrameFolder(tmp_path / "film.mp4.frames", 4)
    finished = {p: p.read_bytes() for p in [film, *frames.folder.iterdir()]}

    def refused(fragment: str, *args, path_file: Path = path, out: Path | str = film) -> None:
        assert_one_error_line(run_in_process("video", scene, "--path", path_file, "--out", out, *args),
                              fragment)
        assert {p: p.read_bytes() for p in finished} == finished

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"loop": False, "path": []}))
    refused("bad.json", *common, "--force", path_file=bad)  # an empty path
    nerfstudio = {"camera_path": [{"camera_to_world": [1e999] + [0.0] * 15, "fov": 50, "aspect": 1}],
                  "fps": 2, "seconds": 2}
    bad.write_text(json.dumps(nerfstudio).replace("Infinity", "1e999"))
    refused("bad.json", *common, "--force", path_file=bad)  # a non-finite matrix
    bad.write_text(json.dumps({"keyframes": []}))
    refused("unknown camera path format", *common, "--force", path_file=bad)
    refused("--frames", *common, "--force", "--frames", "2:9")
    assert_one_error_line(run_in_process("render", scene, "--path", path, "--frame", 4, "--fps", 2, "--seconds", 2,
                                         "--out", tmp_path / "f.png"), "--frame 4 is out of range")
    assert_one_error_line(run_in_process("render", scene, "--frame", 1, "--out", tmp_path / "f.png"),
                          "--path and --frame go together")
    refused("exists; pass --force", *common)  # the finished film is not replaced without --force
    refused("another video (different size)", "--width", 48, "--height", 32, "--fps", 2, "--seconds", 2,
            out=tmp_path / "film.mp4.frames/")  # frames of another size are not mixed in
    other_path = tmp_path / "looped.json"  # the same keyframes, looped: other cameras
    other_path.write_text(json.dumps({**json.loads(path.read_text()), "loop": True}))
    refused("another video (different camera path)", *common, path_file=other_path, out=tmp_path / "film.mp4.frames/")
    under_a_file = tmp_path / "file.txt"
    under_a_file.write_text("a regular file")
    refused("does not exist", *common, out=under_a_file / "film.mp4")
    refused("file.txt is not a folder", *common, out=f"{under_a_file}/frames/")
    refused("at most 16384 pixels on a side", "--width", 16385, "--height", 8, "--fps", 2, "--seconds", 2,
            out=tmp_path / "wide.mp4")

    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))
    refused("is not an executable program", *common, "--force")  # found before any work
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", "/bin/false")
    refused("ffmpeg /bin/false does not work", *common, "--force")  # found before any work
    failing = tmp_path / "ffmpeg-that-fails"  # lists libx264, then fails to encode: found after the frames
    failing.write_text("#!/bin/sh\ncase \"$*\" in *-encoders*) echo ' V....D libx264  H.264';; "
                       "*) echo 'disk on fire' >&2; exit 1;; esac\n")
    failing.chmod(0o755)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(failing))
    refused("failed with exit code 1: disk on fire; the frames are kept", *common, "--force")
    refused("has no libx264rgb encoder", *common, "--force", "--lossless")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.delenv("IMAGEIO_FFMPEG_EXE")
    code, out, err = run_in_process("video", scene, "--path", path, "--out", film, *common, "--force", "--clean")
    assert code == 0 and "rendered 0 frames, 4 already there" in out, err  # the rerun only encodes
    assert film.read_bytes() == finished[film] and not frames.folder.exists()  # same frames, same film


def test_frame_folder_writes_atomically_and_refuses_another_video(tmp_path):
    from ngrender.errors import NgrenderError

    folder = tmp_path / "f"
    with FrameFolder(folder, 120000) as frames, FrameFolder(folder, 120000) as other_run:
        frames.prepare({"size": [4, 2]})
        assert frames.path(7).name == "frame_000007.png"  # six digits for 120000 frames
        frames.write(7, np.full((2, 4, 3), 9, np.uint8))
        assert frames.missing([6, 7, 8]) == [6, 8] and png(frames.path(7)).shape == (2, 4, 3)
        leftover = folder / ".frame_000008.png.x1.tmp"
        leftover.write_bytes(b"half")  # as a SIGKILL leaves it, or as a run writing frame 8 has it
        other_run.prepare({"size": [4, 2]})  # the same video while `frames` holds the folder: nothing removed
        assert leftover.exists()
        with pytest.raises(NgrenderError, match="another run is writing"):
            other_run.prepare({"size": [8, 2]}, force=True)
        assert frames.remove() is None and frames.missing([7]) == []  # --clean waits for the other run
        other_run.close()  # the other run ends
        frames.prepare({"size": [4, 2]})  # alone again: the leftover is a killed run's, removed
        assert sorted(p.name for p in folder.iterdir()) == [LOCK, "frame_000007.png", MANIFEST]
        with pytest.raises(NgrenderError, match="different size"):
            frames.prepare({"size": [8, 2]})
        frames.prepare({"size": [8, 2]}, force=True)
        assert frames.missing([7]) == [7]
        (folder / "notes.txt").write_text("the user's")
        assert frames.remove() is False and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


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
