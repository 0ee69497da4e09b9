"""Dynamic resolution: the scale of the viewer's moving frames (a share of the window's side) from a model of
the frames before them: render time proportional to the pixels (and to the march steps), plus a fixed rest of
the frame (overlay, present). Window-free, so the controller is tested on synthetic frame times."""
from __future__ import annotations

MIN_DYNAMIC_SCALE = 1 / 16  # the floor (of the window's side): NeRF on 2 CPU cores needs it
COARSEN = (1, 2, 4, 8)      # march-step divisors of a moving frame when even the floor misses the target
MAX_DOWN, MAX_UP = 0.25, 2.0  # a frame changes the scale by at most these factors


class DynamicResolution:
    """``scale`` and ``coarsen`` (divide the 3D apps' n_steps by it) for the next moving frame; ``update`` after
    each moving frame with what it cost. One frame far off the model (a shader compiled on first use) moves the
    scale by at most MAX_DOWN / MAX_UP; the model is an average of the last frames, so it converges in a few
    frames and then holds (no hunting: the scale follows the model, not the last error)."""

    def __init__(self, scale: float, floor: float = MIN_DYNAMIC_SCALE) -> None:
        self.scale, self.floor, self.coarsen = scale, floor, 1
        self.px_ms: float | None = None        # render ms per pixel at full march steps
        self.overhead_ms: float | None = None  # the frame's time outside rendering

    def update(self, frame_ms: float, render_ms: float, pixels: int, window_pixels: int, target_fps: float,
               can_coarsen: bool = False, limit: float = 1.0) -> None:
        """The last moving frame took ``frame_ms`` in all, ``render_ms`` of it rendering ``pixels`` at
        ``self.scale`` (up to ``limit``, the rest resolution) and ``self.coarsen``."""
        px_ms = render_ms / max(pixels, 1) * self.coarsen  # march steps: cost roughly proportional to them
        overhead = max(frame_ms - render_ms, 0.0)
        self.px_ms = px_ms if self.px_ms is None else 0.5 * (self.px_ms + px_ms)
        self.overhead_ms = overhead if self.overhead_ms is None else 0.5 * (self.overhead_ms + overhead)
        target_ms = 1e3 / target_fps
        available = max(target_ms - self.overhead_ms, 0.25 * target_ms)
        for self.coarsen in COARSEN if can_coarsen else (1,):  # the finest march that fits above the floor
            want = (available * self.coarsen / max(self.px_ms, 1e-9) / max(window_pixels, 1)) ** 0.5
            if want >= self.floor:
                break
        last = min(self.scale, limit)
        want = min(max(want, MAX_DOWN * last), MAX_UP * last)
        self.scale = min(max(want, self.floor), 1.0)

    @property
    def overhead(self) -> float:
        """The frame's estimated time outside rendering (ms): what refinement leaves out of its budget."""
        return self.overhead_ms or 0.0
