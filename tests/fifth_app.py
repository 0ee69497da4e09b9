"""A fifth app added the way docs/extending.md says, kept in the test suite only: a 2D neural SDF over the unit
square (2D grid encoding + MLP -> signed distance), shown as a grey level or as inside/outside.

Its three pieces: this module (the App subclass with its view type and modes, its NumPy reference, and the
register_app call), and its shader tests/shaders/sdf2d.comp. Importing this module registers it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ngrender.apps import AppSpec, register_app
from ngrender.apps.base import App
from ngrender.model import Model
from ngrender.reference.field import Network, field_network
from ngrender.reference.output import to_uint8
from ngrender.shader_interface import PushBlock, PushField

MODES = {"distance": 0, "inside": 1}


@dataclass(frozen=True)
class Sdf2dView:
    """The frame covers the unit square; ``scale`` maps distance to grey in the distance mode."""

    mode: str = "distance"
    scale: float = 4.0


def pixel_step(width: int, height: int) -> tuple[np.float32, np.float32]:
    return np.float32(1.0) / np.float32(width), np.float32(1.0) / np.float32(height)


class Sdf2dApp(App):
    """One fused dispatch per tile: pixel -> (u, v) -> encoding -> MLP -> grey level."""

    name = "sdf2d"
    shader = str(Path(__file__).resolve().parent / "shaders" / "sdf2d.comp")
    push = PushBlock("sdf2d", (PushField("tile_origin", "ivec2", "first pixel of this tile in the frame"),
                               PushField("tile_size", "ivec2"),
                               PushField("pixel_step", "vec2", "the frame covers [0, 1]^2"),
                               PushField("scale", "float", "distance mode: grey = clamp(0.5 - scale * d, 0, 1)"),
                               PushField("mode", "int", "0 distance, 1 inside")), "the fifth app's kernel")
    n_input_dims, n_output_dims = 2, 1
    view_class, modes = Sdf2dView, MODES
    view_rules = {"scale": (lambda v: v > 0, "> 0")}

    def push_values(self, view: Sdf2dView, frame, origin, size) -> dict:
        return {"tile_origin": origin, "tile_size": size, "pixel_step": pixel_step(*frame), "scale": view.scale,
                "mode": MODES[view.mode]}


def render(model: Model, width: int, height: int, view: Sdf2dView,
           network: Network | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy reference, the registry's contract: (image (h, w, 3) uint8, network evaluations per pixel)."""
    network = network or field_network(model)
    du, dv = pixel_step(width, height)
    u = (np.arange(width, dtype=np.float32) + np.float32(0.5)) * du
    v = (np.arange(height, dtype=np.float32) + np.float32(0.5)) * dv
    uu, vv = np.meshgrid(u, v)
    d = network(np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float32))[:, 0]
    if view.mode == "distance":
        grey = np.clip(np.float32(0.5) - np.float32(view.scale) * d, np.float32(0), np.float32(1))
    else:
        grey = (d < 0).astype(np.float32)
    image = to_uint8(np.repeat(grey[:, None], 3, axis=1)).reshape(height, width, 3)
    return image, np.ones((height, width), dtype=np.int64)


SPEC = register_app(AppSpec("sdf2d", Sdf2dApp, reference=f"{__name__}:render", plane=True))
