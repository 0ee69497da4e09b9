"""Renderer: frames of any size as tiles of one fused dispatch each; returns the image and FrameStats."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import ConfigError
from .pngio import PngStripWriter
from .vk.device import Device
from .vk.timing import TimestampPool


@dataclass
class FrameStats:
    """What one frame cost: wall time, GPU time per kernel (from timestamps) and the work done."""

    width: int
    height: int
    tiles: int = 0
    wall_ms: float = 0.0
    kernel_ms: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    @property
    def gpu_ms(self) -> float:
        return sum(self.kernel_ms.values())

    @property
    def megapixels_per_s(self) -> float:
        return self.width * self.height / max(self.wall_ms, 1e-9) / 1e3

    def summary(self) -> str:
        kernels = ", ".join(f"{k} {v:.1f} ms" for k, v in self.kernel_ms.items())
        return (f"{self.width}x{self.height} in {self.tiles} tile(s): {self.wall_ms:.1f} ms wall, "
                f"{self.gpu_ms:.1f} ms GPU ({kernels}), {self.megapixels_per_s:.2f} Mpx/s")


def tiles(width: int, height: int, tile: tuple[int, int]) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """(origin, size) of the tiles covering a frame, row-major; rows of tiles form strips."""
    for y in range(0, height, tile[1]):
        for x in range(0, width, tile[0]):
            yield (x, y), (min(tile[0], width - x), min(tile[1], height - y))


MAX_SIDE = 1 << 17


class Renderer:
    """Drives one app on one device: tiling, timestamps, and delivery as an array or a streamed PNG."""

    def __init__(self, device: Device, app) -> None:
        self.device, self.app = device, app
        self.timestamps = TimestampPool(device, capacity=8) if device.timestamps_supported else None

    def _strips(self, width: int, height: int, view, stats: FrameStats) -> Iterator[tuple[int, np.ndarray]]:
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ConfigError(f"frame size {width}x{height} must be 1..{MAX_SIDE} on each side")
        tile = self.app.max_tile
        strip = None
        for origin, size in tiles(width, height, tile):
            if origin[0] == 0:
                strip = np.empty((size[1], width, 3), dtype=np.uint8)
            self._dispatch(view, (width, height), origin, size, stats)
            strip[:, origin[0]:origin[0] + size[0]] = self.app.read_tile(size)
            if origin[0] + size[0] == width:
                yield origin[1], strip

    def _dispatch(self, view, frame, origin, size, stats: FrameStats) -> None:
        pool, label = self.timestamps, self.app.kernel_label

        def record(cmd) -> None:
            if pool:
                pool.reset(cmd)
                pool.begin(cmd, label)
            self.app.record_tile(cmd, view, frame, origin, size)
            if pool:
                pool.end(cmd)

        self.device.submit(record)
        stats.tiles += 1
        if pool:
            for name, ms in pool.results():
                stats.kernel_ms[name] = stats.kernel_ms.get(name, 0.0) + ms

    def render(self, width: int, height: int, view=None) -> tuple[np.ndarray, FrameStats]:
        """The frame as (height, width, 3) uint8."""
        view = view or self.app.default_view()
        stats = FrameStats(width, height, samples=self.app.samples(width, height))
        start = time.perf_counter()
        image = np.empty((height, width, 3), dtype=np.uint8)
        for y, strip in self._strips(width, height, view, stats):
            image[y:y + strip.shape[0]] = strip
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return image, stats

    def render_to_png(self, path: str | Path, width: int, height: int, view=None,
                      progress: Callable[[int, int], None] | None = None) -> FrameStats:
        """Render straight into a PNG, one strip of tiles at a time (memory bounded by one strip)."""
        view = view or self.app.default_view()
        stats = FrameStats(width, height, samples=self.app.samples(width, height))
        writer = PngStripWriter(path, width, height)
        start = time.perf_counter()
        try:
            for y, strip in self._strips(width, height, view, stats):
                writer.write(strip)
                if progress:
                    progress(y + strip.shape[0], height)
            writer.close()
        except BaseException:
            writer.abort()
            raise
        stats.wall_ms = (time.perf_counter() - start) * 1e3
        return stats

    def destroy(self) -> None:
        if self.timestamps is not None:
            self.timestamps.destroy()
            self.timestamps = None
