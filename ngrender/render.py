"""Renderer: frames of any size as tiles (each one fused dispatch, or the unfused pipelines' dispatches);
returns the image and FrameStats with every dispatch's GPU time."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import ConfigError
from .limits import MAX_SIDE
from .pngio import PngStripWriter
from .vk.device import Device
from .vk.timing import TimedCommands


KERNEL_CLASSES = ("encoding", "mlp", "rest", "fused")


@dataclass
class FrameStats:
    """What one frame cost: wall time, GPU time per kernel (from timestamps) and the work done. Filled by the
    Renderer only: submissions as they complete, each tile's TileWork, the projection after the last tile.

    Kernel labels are ``class/name``, the class one of KERNEL_CLASSES: the paper's breakdown (input encoding,
    MLP, rest of kernels) for the unfused pipelines, ``fused/<app>`` for the fused kernel."""

    width: int
    height: int
    tiles: int = 0
    wall_ms: float = 0.0
    kernel_ms: dict[str, float] = field(default_factory=dict)   # label -> summed over the frame's dispatches
    dispatches: list[tuple[str, float]] = field(default_factory=list)  # every timed dispatch, in order
    submit_ms: float = 0.0   # GPU time of the whole submissions (brackets around all their dispatches)
    submissions: int = 0
    samples: int = 0         # network evaluations: counted on the GPU (fused), batch sizes (unfused pipelines)
    iterations: int = 0      # unfused pipelines: march iterations (batches), summed over tiles
    pipeline: str = "fused"
    ngpc_ms: float | None = None  # ngpc pipeline: the projected frame time on the simulated NGPC (ngpc/timing.py)
    ngpc: str | None = None       # ngpc pipeline: the simulated NGPC (Arch.describe)

    @property
    def gpu_ms(self) -> float:
        return sum(self.kernel_ms.values())

    @property
    def megapixels_per_s(self) -> float:
        return self.width * self.height / max(self.wall_ms, 1e-9) / 1e3

    def class_ms(self) -> dict[str, float]:
        """GPU milliseconds per kernel class (encoding / mlp / rest / fused)."""
        out = dict.fromkeys(KERNEL_CLASSES, 0.0)
        for label, ms in self.kernel_ms.items():
            out[label.split("/", 1)[0]] += ms
        return out

    def add_submission(self, sections: list[tuple[str, float]], whole_ms: float) -> None:
        self.submissions += 1
        self.submit_ms += whole_ms
        self.dispatches.extend(sections)
        for label, ms in sections:
            self.kernel_ms[label] = self.kernel_ms.get(label, 0.0) + ms

    def summary(self) -> str:
        if self.pipeline == "fused":
            kernels = ", ".join(f"{k} {v:.1f} ms" for k, v in self.kernel_ms.items())
        else:
            kernels = ", ".join(f"{k} {v:.1f} ms" for k, v in self.class_ms().items() if k != "fused") + \
                f"; {len(self.dispatches)} dispatches, {self.iterations} iterations, {self.samples:,} samples"
        ngpc = f"; projected on {self.ngpc}: {self.ngpc_ms:.3f} ms" if self.ngpc_ms is not None else ""
        return (f"{self.width}x{self.height} in {self.tiles} tile(s), {self.pipeline} pipeline: "
                f"{self.wall_ms:.1f} ms wall, {self.gpu_ms:.1f} ms GPU ({kernels}), {self.megapixels_per_s:.2f} Mpx/s"
                f"{ngpc}")


def tiles(width: int, height: int, tile: tuple[int, int]) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """(origin, size) of the tiles covering a frame, row-major; rows of tiles form strips."""
    for y in range(0, height, tile[1]):
        for x in range(0, width, tile[0]):
            yield (x, y), (min(tile[0], width - x), min(tile[1], height - y))


def strip_rows(height: int, tile: tuple[int, int]) -> list[tuple[int, int]]:
    """(first row, rows) of each strip of tiles (a row of tiles) of a frame this tall."""
    return [(y, min(tile[1], height - y)) for y in range(0, height, tile[1])]


def check_frame_size(width: int, height: int) -> None:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ConfigError(f"frame size {width}x{height} must be 1..{MAX_SIDE} on each side")


class Renderer:
    """Drives one app on one device: tiling, timestamps, and delivery as an array or a streamed PNG."""

    def __init__(self, device: Device, app) -> None:
        self.device, self.app = device, app
        self.commands = TimedCommands(device)

    def _strips(self, width: int, height: int, view, stats: FrameStats,
                first_row: int = 0, end_row: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """The frame's strips of tiles (all of them, or those starting in rows [first_row, end_row))."""
        check_frame_size(width, height)
        tile = self.app.max_tile
        end_row = height if end_row is None else end_row
        strip = None
        for origin, size in tiles(width, height, tile):
            if not first_row <= origin[1] < end_row:
                continue
            if origin[0] == 0:
                strip = np.empty((size[1], width, 3), dtype=np.uint8)
            self._dispatch(view, (width, height), origin, size, stats)
            strip[:, origin[0]:origin[0] + size[0]] = self.app.read_tile(size)
            if origin[0] + size[0] == width:
                yield origin[1], strip

    def _dispatch(self, view, frame, origin, size, stats: FrameStats) -> None:
        def submit(record) -> None:
            stats.add_submission(*self.commands.submit(record))

        work = self.app.run_tile(submit, view, frame, origin, size)
        stats.tiles += 1
        stats.samples += work.samples
        stats.iterations += work.iterations

    def _new_stats(self, width: int, height: int) -> FrameStats:
        return FrameStats(width, height, pipeline=self.app.pipeline)

    def _finish(self, stats: FrameStats) -> None:
        """After the last tile: a simulated device's projection of the frame (the ngpc pipeline)."""
        projected = self.app.projected(stats)
        if projected is not None:
            stats.ngpc, stats.ngpc_ms = projected

    def render(self, width: int, height: int, view=None) -> tuple[np.ndarray, FrameStats]:
        """The frame as (height, width, 3) uint8."""
        view = view or self.app.default_view()
        stats = self._new_stats(width, height)
        start = time.perf_counter()
        image = np.empty((height, width, 3), dtype=np.uint8)
        for y, strip in self._strips(width, height, view, stats):
            image[y:y + strip.shape[0]] = strip
        self._finish(stats)
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return image, stats

    def render_strip(self, width: int, height: int, y: int, view=None) -> tuple[np.ndarray, FrameStats]:
        """The strip of tiles starting at row ``y`` (one of ``strip_rows(height, app.max_tile)``) as
        (rows, width, 3) uint8: the same tiles, hence the same pixels, as the whole frame's rows there."""
        if y not in dict(strip_rows(height, self.app.max_tile)):
            raise ValueError(f"row {y} does not start a strip of tiles of a {height}-row frame")
        view = view or self.app.default_view()
        stats = self._new_stats(width, height)
        start = time.perf_counter()
        ((_, strip),) = self._strips(width, height, view, stats, y, y + 1)
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return strip, stats

    def render_region(self, width: int, height: int, origin: tuple[int, int], size: tuple[int, int], view=None,
                      rgba: bool = False) -> tuple[np.ndarray, FrameStats]:
        """The pixels [x, x + w) x [y, y + h) of the ``width`` x ``height`` frame, ``origin`` = (x, y) and ``size`` =
        (w, h), as (h, w, 3) uint8 (``rgba``: (h, w, 4), the kernel's RGBA8 words). A pixel depends on its position
        and the frame's size only, so these are exactly the whole frame's pixels there, whatever the region (the
        viewer refines a frame region by region). FrameStats describe the region."""
        check_frame_size(width, height)
        (x, y), (w, h) = origin, size
        if not (0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height):
            raise ValueError(f"region {w}x{h} at ({x}, {y}) is not inside the {width}x{height} frame")
        view = view or self.app.default_view()
        stats = self._new_stats(w, h)
        start = time.perf_counter()
        image = np.empty((h, w, 4 if rgba else 3), dtype=np.uint8)
        for (tx, ty), (tw, th) in tiles(w, h, self.app.max_tile):
            self._dispatch(view, (width, height), (x + tx, y + ty), (tw, th), stats)
            image[ty:ty + th, tx:tx + tw] = self.app.tile_rgba((tw, th)) if rgba else self.app.read_tile((tw, th))
        self._finish(stats)
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return image, stats

    def render_to_png(self, path: str | Path, width: int, height: int, view=None,
                      progress: Callable[[int, int], None] | None = None,
                      check: Callable[[], None] | None = None) -> FrameStats:
        """Render straight into a PNG, one strip of tiles at a time (memory bounded by one strip). The PNG
        appears only when the frame is complete and ``check()`` (e.g. the validation messages) passes."""
        check_frame_size(width, height)
        return self._render_png(PngStripWriter(path, width, height), view, progress, check)

    def render_png_bytes(self, width: int, height: int, view=None,
                         check: Callable[[], None] | None = None) -> tuple[bytes, FrameStats]:
        """The bytes ``render_to_png`` writes for this frame, in memory (what a farm worker sends back)."""
        check_frame_size(width, height)
        writer = PngStripWriter(None, width, height)
        stats = self._render_png(writer, view, None, check)
        return writer.png_bytes(), stats

    def _render_png(self, writer: PngStripWriter, view, progress: Callable[[int, int], None] | None,
                    check: Callable[[], None] | None) -> FrameStats:
        width, height = writer.width, writer.height
        view = view or self.app.default_view()
        stats = self._new_stats(width, height)
        start = time.perf_counter()
        try:
            for y, strip in self._strips(width, height, view, stats):
                writer.write(strip)
                if progress:
                    progress(y + strip.shape[0], height)
            self._finish(stats)
            if check is not None:
                check()
            writer.close()
        except BaseException:
            writer.abort()
            raise
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return stats

    def destroy(self) -> None:
        if self.commands is not None:
            self.commands.destroy()
            self.commands = None
