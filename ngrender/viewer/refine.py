"""Progressive refinement at rest: the full-resolution frame of a resting camera, rendered tile by tile from the
centre outwards over the last moving frame scaled up (nearest, as the overlay pass stretches it); optionally
followed by accumulation passes (the view's ``seed`` 1..N-1) whose running mean is shown. Vulkan-free: the
viewer renders each tile (Renderer.render_region) and pastes it here."""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np

REFINE_TILE = 64  # pixels a side: small enough to poll input between tiles at a few ms each


@lru_cache(maxsize=8)
def centre_out_tiles(width: int, height: int, tile: int = REFINE_TILE) -> tuple[tuple[tuple[int, int],
                                                                                       tuple[int, int]], ...]:
    """(origin, size) of the tiles covering the frame, nearest to the frame's centre first (ties row-major)."""
    out = []
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            w, h = min(tile, width - x), min(tile, height - y)
            d = (x + w / 2 - width / 2) ** 2 + (y + h / 2 - height / 2) ** 2
            out.append((d, y, x, (x, y), (w, h)))
    out.sort(key=lambda t: t[:3])
    return tuple((origin, size) for *_, origin, size in out)


def upscale_nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` stretched to ``width`` x ``height`` with the overlay pass's nearest mapping (q = p * n / N), so
    the first refining frame looks exactly like the moving frame it starts from."""
    h, w = image.shape[:2]
    ys = np.arange(height) * h // height
    xs = np.arange(width) * w // width
    return image[ys][:, xs]


def has_seed(view: Any) -> bool:
    """Views with an integer ``seed`` field can be accumulated (the volume march's jittered start)."""
    return dataclasses.is_dataclass(view) and any(f.name == "seed" for f in dataclasses.fields(view)) and \
        isinstance(getattr(view, "seed"), int)


class Refinement:
    """The refinement of one view at ``size`` (width, height) from ``start``, the last moving frame (RGBA):
    pass 0 renders the frame itself (skipped when ``start`` is already that frame: ``exact`` and of that size,
    not a moving frame of fewer march steps); passes 1..N-1 (``passes`` = N,
    only for views with a seed) render it again with seeds seed+1.. and show the running mean. ``shown`` is the
    RGBA frame on screen, changed in place; ``next_tile`` / ``paste`` advance it."""

    def __init__(self, key: Any, view: Any, size: tuple[int, int], start: np.ndarray, passes: int = 1,
                 exact: bool = True) -> None:
        self.key, self.view, self.size = key, view, size
        self.tiles = centre_out_tiles(*size)
        self.passes = passes if has_seed(view) else 1
        self.tile_index = 0
        if exact and start.shape[:2] == size[::-1]:  # the moving frame is the rest frame: pass 0 is done
            self.shown, self.pass_index = start, 1
        else:
            self.shown, self.pass_index = np.ascontiguousarray(upscale_nearest(start, *size)), 0
        self.sum: np.ndarray | None = None  # float32 running sum of the accumulation passes

    @property
    def done(self) -> bool:
        return self.pass_index >= self.passes

    @property
    def refined(self) -> bool:
        """The first pass is complete: the frame is exactly the full-resolution render."""
        return self.pass_index >= 1

    def progress(self) -> str:
        if self.done:
            return "refined" if self.passes == 1 else f"accumulated {self.passes}/{self.passes}"
        if self.pass_index == 0:
            return f"refining {self.tile_index / len(self.tiles):.0%}"
        return f"accumulating {self.pass_index + 1}/{self.passes}"

    def next_tile(self) -> tuple[Any, tuple[int, int], tuple[int, int]]:
        """(view, origin, size) of the next tile to render."""
        view = self.view
        if self.pass_index:
            view = dataclasses.replace(view, seed=view.seed + self.pass_index)
        origin, size = self.tiles[self.tile_index]
        return view, origin, size

    def paste(self, rgba: np.ndarray) -> tuple[int, int]:
        """Put the rendered tile (from ``next_tile``) into the frame; returns the rows changed [y0, y1)."""
        (x, y), (w, h) = self.tiles[self.tile_index]
        target = self.shown[y:y + h, x:x + w]
        if self.pass_index == 0:
            target[...] = rgba
        else:
            if self.sum is None:
                self.sum = self.shown[..., :3].astype(np.float32)  # pass 0: the frame itself
            acc = self.sum[y:y + h, x:x + w]
            acc += rgba[..., :3]
            target[..., :3] = np.rint(acc / (self.pass_index + 1)).astype(np.uint8)
        self.tile_index += 1
        if self.tile_index == len(self.tiles):
            self.pass_index, self.tile_index = self.pass_index + 1, 0
        return y, y + h
