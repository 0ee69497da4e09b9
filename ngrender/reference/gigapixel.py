"""Gigapixel image app: pixel -> image-plane coordinate -> grid encoding -> MLP -> RGB."""
from __future__ import annotations

import numpy as np

from ..apps.views import pixel_step
from ..model import Model
from .field import Network, field_network
from .output import to_uint8

FULL_WINDOW = (0.0, 0.0, 1.0, 1.0)


def pixel_coords(width: int, height: int, window: tuple[float, float, float, float] = FULL_WINDOW,
                 origin: tuple[int, int] = (0, 0), size: tuple[int, int] | None = None) -> np.ndarray:
    """Image-plane coordinates (u right, v down, [0,1] covers the image) of pixel centres, (h*w, 2) float32.

    ``origin``/``size`` select a tile of the ``width`` x ``height`` frame (all of it by default).
    """
    x0, y0 = np.float32(window[0]), np.float32(window[1])
    du, dv = pixel_step(width, height, window)
    tw, th = size or (width, height)
    px = np.arange(origin[0], origin[0] + tw, dtype=np.float32) + np.float32(0.5)
    py = np.arange(origin[1], origin[1] + th, dtype=np.float32) + np.float32(0.5)
    u, v = np.meshgrid(x0 + px * du, y0 + py * dv)
    return np.stack([u.ravel(), v.ravel()], axis=1).astype(np.float32)


def on_image(uv: np.ndarray) -> np.ndarray:
    """Which image-plane coordinates lie on the image: the pixels that evaluate the network."""
    return np.all((uv >= 0.0) & (uv <= 1.0), axis=1)


def evaluations(width: int, height: int, window: tuple[float, float, float, float] = FULL_WINDOW) -> int:
    """Network evaluations of a frame (the kernel's count): one per pixel on the image."""
    return int(on_image(pixel_coords(width, height, window)).sum())


def shade(model: Model, uv: np.ndarray, background: float = 0.0, network: Network | None = None) -> np.ndarray:
    """RGB in [0,1] (N, 3) for image-plane coordinates; outside the image is the background."""
    network = network or field_network(model)
    inside = on_image(uv)
    rgb = np.full((uv.shape[0], 3), np.float32(background), dtype=np.float32)
    if inside.any():
        rgb[inside] = network(uv[inside])
    return np.clip(rgb, 0.0, 1.0)


def render(model: Model, width: int, height: int, window: tuple[float, float, float, float] = FULL_WINDOW,
           chunk: int = 1 << 16, background: float = 0.0, network: Network | None = None) -> np.ndarray:
    """Reference frame, (height, width, 3) uint8."""
    network = network or field_network(model)
    uv = pixel_coords(width, height, window)
    out = np.empty((uv.shape[0], 3), dtype=np.uint8)
    for start in range(0, uv.shape[0], chunk):
        out[start:start + chunk] = to_uint8(shade(model, uv[start:start + chunk], background, network))
    return out.reshape(height, width, 3)


def render_view(model: Model, width: int, height: int, view, network: Network | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The registry's reference contract (apps/registry.py): (image, network evaluations per pixel) for a
    GigapixelView, one evaluation per pixel."""
    image = render(model, width, height, view.window, background=view.background, network=network)
    return image, np.ones((height, width), dtype=np.int64)
