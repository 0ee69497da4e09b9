"""Videos: the frames folder (numbered PNGs, the resume state of a video) and the MP4 assembled from it.

A frame is written atomically, so a frame file that exists is complete: a rerun renders only the missing ones,
and a killed run loses nothing it finished. A small manifest (``frames.json``) says which video the frames
belong to, so frames of another path, size or scene are never mixed in. The MP4 is encoded by imageio-ffmpeg's
ffmpeg from the finished frames into a temporary file, renamed into place when ffmpeg succeeds."""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .errors import NgrenderError
from .fileio import AtomicFile, read_json, write_json
from .pngio import write_png
from .progress import Progress

MANIFEST = "frames.json"
LOCK = ".lock"  # held (shared) by every run writing frames into the folder
FRAME_PREFIX = "frame_"
CRF = 18  # libx264's constant rate factor: visually lossless for most content, ~10x smaller than crf 0
PRESET = "medium"
MP4_MAX_SIDE = 16384  # libx264 refuses wider or taller frames ("invalid width x height")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (what the manifest records of the scene, the model and the path)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FrameFolder:
    """``folder/frame_00000.png`` ... for a video of ``n_frames`` frames. ``prepare`` takes the folder's lock
    for this run (released by ``close``, or when the process ends, however it ends)."""

    def __init__(self, folder: Path, n_frames: int) -> None:
        self.folder, self.n_frames = Path(folder), int(n_frames)
        self._digits = max(5, len(str(self.n_frames - 1)))
        self._lock: int | None = None

    def __enter__(self) -> "FrameFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def path(self, index: int) -> Path:
        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame {index} is outside 0..{self.n_frames - 1}")
        return self.folder / f"{FRAME_PREFIX}{index:0{self._digits}d}.png"

    def missing(self, indices: Iterable[int]) -> list[int]:
        """The frames not yet written (a frame file that exists is complete: writes are atomic)."""
        return [i for i in indices if not self.path(i).is_file()]

    def write(self, index: int, image: np.ndarray) -> None:
        """Frame ``index`` as (height, width, 3) uint8; it appears complete or not at all."""
        write_png(self.path(index), image)

    def frame_files(self) -> list[Path]:
        return sorted(self.folder.glob(f"{FRAME_PREFIX}*.png"))

    def prepare(self, manifest: dict[str, Any], force: bool = False) -> None:
        """Make the folder ready for this video's frames: create it, or check that the frames already there
        belong to the same video (``manifest``); ``force`` replaces frames of another video. Temporary files
        of a killed run are removed."""
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise NgrenderError(f"cannot use {folder} for the frames: it is not a folder")
        if not folder.exists():
            if not folder.parent.is_dir():
                why = "is not a folder" if folder.parent.exists() else "does not exist"
                raise NgrenderError(f"cannot create {folder}: {folder.parent} {why}")
            try:
                folder.mkdir()
            except OSError as exc:
                raise NgrenderError(f"cannot create {folder}: {exc.strerror or exc}") from None
        if not os.access(folder, os.W_OK | os.X_OK):
            raise NgrenderError(f"cannot write frames into {folder}: permission denied")
        alone = self._take_lock()
        if alone:  # no other run writes here: a temporary frame is what a killed run left half-written
            for leftover in folder.glob(f".{FRAME_PREFIX}*.tmp"):
                leftover.unlink(missing_ok=True)
        theirs = self._manifest()
        if theirs != manifest and (theirs is not None or self.frame_files()):
            if not force:
                raise NgrenderError(f"{folder} holds frames of another video ({_difference(theirs, manifest)}); "
                                    "pass --force to replace them, or choose another folder")
            if not alone:
                raise NgrenderError(f"{folder}: another run is writing its frames; --force replaces them only "
                                    "when it has ended")
            for frame in self.frame_files():
                frame.unlink()
        if theirs != manifest:
            write_json(folder / MANIFEST, manifest)

    def _take_lock(self) -> bool:
        """Hold the folder's lock, shared: runs of the same video may write frames side by side (say, other
        --frames ranges). True when no other run holds it."""
        self.close()
        try:
            fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise NgrenderError(f"cannot write frames into {self.folder}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            fcntl.flock(fd, fcntl.LOCK_SH)  # the exclusive test over, share it
        except OSError as exc:  # a file system without locks
            os.close(fd)
            raise NgrenderError(f"cannot lock {self.folder / LOCK}: {exc.strerror or exc}") from None
        self._lock = fd
        return alone

    def remove(self) -> bool | None:
        """Delete the frames, the manifest and the lock (nothing else), and the folder when that leaves it
        empty: True when it did, False when other files stay, None (nothing removed) while another run uses
        the folder."""
        if self._lock is not None:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
        self.close()
        for frame in self.frame_files():
            frame.unlink()
        for name in (MANIFEST, LOCK):
            (self.folder / name).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # something of the user's is in it
            return False
        return True

    def _manifest(self) -> dict | None:
        path = self.folder / MANIFEST
        if not path.exists():
            return None
        try:
            return read_json(path, "frames manifest")
        except NgrenderError:
            return {}  # unreadable: not this video's


def _difference(theirs: dict | None, ours: dict) -> str:
    if not theirs:
        return f"no readable {MANIFEST}"
    names = []
    for key in dict.fromkeys([*ours, *theirs]):
        mine, other = ours.get(key), theirs.get(key)
        if mine != other:  # inside a group (the files' digests), name the member that differs
            both = isinstance(mine, dict) and isinstance(other, dict)
            names += [k for k in dict.fromkeys([*mine, *other]) if mine.get(k) != other.get(k)] if both else [key]
    return "different " + ", ".join(names)


# -- the MP4 ------------------------------------------------------------------------------------------------
def ffmpeg_exe() -> str:
    """imageio-ffmpeg's ffmpeg (its wheel carries one; IMAGEIO_FFMPEG_EXE overrides it)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise NgrenderError("MP4 output needs the [video] extra (pip install imageio-ffmpeg); or write PNG "
                            "frames with --out DIR/") from None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise NgrenderError(f"no ffmpeg: {exc}") from None
    if shutil.which(exe) is None:  # IMAGEIO_FFMPEG_EXE is taken as it is: check it before any work
        raise NgrenderError(f"ffmpeg {exe} is not an executable program (IMAGEIO_FFMPEG_EXE?)")
    return exe


def codec(lossless: bool) -> str:
    return "libx264rgb" if lossless else "libx264"


def check_encoder(lossless: bool) -> None:
    """Before the frames are rendered: ffmpeg runs and has the H.264 encoder this film needs."""
    exe, name = ffmpeg_exe(), codec(lossless)
    try:
        listing = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True,
                                 errors="replace", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NgrenderError(f"cannot run ffmpeg {exe}: {getattr(exc, 'strerror', None) or exc}") from None
    if listing.returncode != 0:
        raise NgrenderError(f"ffmpeg {exe} does not work (listing its encoders exited {listing.returncode})")
    if not any(line.split()[1:2] == [name] for line in listing.stdout.splitlines()):
        raise NgrenderError(f"ffmpeg {exe} has no {name} encoder; use imageio-ffmpeg's own (unset "
                            "IMAGEIO_FFMPEG_EXE) or write PNG frames with --out DIR/")


def check_mp4_size(width: int, height: int) -> None:
    """Before the frames are rendered: a size the H.264 encoder takes (with the padding to even sides)."""
    if max(width + width % 2, height + height % 2) > MP4_MAX_SIDE:
        raise NgrenderError(f"an H.264 MP4 is at most {MP4_MAX_SIDE} pixels on a side, not {width}x{height}; "
                            "write PNG frames with --out DIR/")


def _read_frame(path: Path, width: int, height: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise NgrenderError(f"cannot read frame {path}: {exc}") from None
    if rgb.shape[:2] != (height, width):
        raise NgrenderError(f"frame {path} is {rgb.shape[1]}x{rgb.shape[0]}, not {width}x{height}")
    return rgb


def encode_mp4(frames: FrameFolder, indices: Sequence[int], out: Path, fps: float, width: int, height: int,
               lossless: bool = False, progress: bool = True) -> str:
    """H.264 MP4 of the finished frames ``indices`` at ``fps``; returns what was written, in words.

    Default: libx264, yuv420p (what every player decodes), crf 18. 4:2:0 needs even sides: an odd width or
    height gets one more column or row, a copy of the last (no pixel is resampled). ``lossless``: libx264rgb
    at crf 0, RGB kept as it is, so the decoded frames equal the PNGs bit for bit (any size)."""
    exe = ffmpeg_exe()
    pix_fmt, pad = ("rgb24", (0, 0)) if lossless else ("yuv420p", (width % 2, height % 2))
    size = (width + pad[0], height + pad[1])
    rate = Fraction(fps).limit_denominator(1001)
    target = AtomicFile(out)  # ffmpeg writes the temporary file; it is renamed into place when ffmpeg succeeds
    if target.tmp is None:
        target.discard()
        raise NgrenderError(f"--out {out}: an MP4 is written to a regular file")
    cmd = [exe, "-hide_banner", "-y", "-v", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", str(rate), "-i", "-",
           "-an", "-c:v", codec(lossless), "-preset", PRESET, "-crf", "0" if lossless else str(CRF), "-pix_fmt", pix_fmt,
           "-movflags", "+faststart", "-f", "mp4", target.tmp]
    try:
        with tempfile.TemporaryFile() as log:
            code = _run_ffmpeg(cmd, log, frames, indices, width, height, pad, progress)
            if code != 0:
                log.seek(0)
                said = log.read().decode(errors="replace").strip().splitlines()
                reason = said[0].strip()[:300] if said else "no message"  # the first line names the cause
                raise NgrenderError(f"ffmpeg ({exe}) failed with exit code {code}: {reason}; the frames are kept "
                                    f"in {frames.folder}: rerun to assemble the MP4")
        target.commit()
    except BaseException:
        target.discard()
        raise
    padded = f", padded to {size[0]}x{size[1]} (4:2:0 needs even sides)" if pad != (0, 0) else ""
    return (f"H.264 ({codec(lossless)}, {pix_fmt}, crf {0 if lossless else CRF}{', lossless' if lossless else ''}), "
            f"{len(indices)} frames {width}x{height}{padded} at {float(rate):g} frames/s")


def _run_ffmpeg(cmd: list[str], log, frames: FrameFolder, indices: Sequence[int], width: int, height: int,
                pad: tuple[int, int], progress: bool) -> int:
    """Feed the frames to ffmpeg as raw RGB; its exit code (ffmpeg is killed if this is interrupted)."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
    except OSError as exc:
        raise NgrenderError(f"cannot run ffmpeg {cmd[0]}: {exc.strerror or exc}") from None
    bar = Progress(len(indices), "frames", "encode", enabled=progress)
    try:
        for index in indices:
            rgb = _read_frame(frames.path(index), width, height)
            if pad != (0, 0):
                rgb = np.pad(rgb, ((0, pad[1]), (0, pad[0]), (0, 0)), mode="edge")
            try:
                proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
            except BrokenPipeError:
                break  # ffmpeg stopped: its exit code and message say why
            bar.update()
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        code = proc.wait()
    except BaseException:
        bar.close(final_line=False)
        proc.kill()
        proc.wait()
        raise
    bar.close(final_line=code == 0)  # a failure's message is the last line
    return code


def render_frame(session, plan, index: int, width: int, height: int, out: Path,
                 progress: Callable[[int, int], None] | None = None, **view_overrides):
    """Frame ``index`` of ``plan`` (camera_path.FramePlan) rendered by ``session`` (a RenderSession) into the
    PNG ``out``, atomically; what `video` writes for each frame and `render --path --frame` for one.
    ``progress(rows_done, height)`` as Renderer.render_to_png's."""
    view = session.view(**view_overrides, **plan.view(index, width, height))
    return session.renderer.render_to_png(out, width, height, view, progress, check=session.check_validation)
