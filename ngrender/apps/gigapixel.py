"""Gigapixel image app (GIA): a 2D grid encoding + MLP mapping image-plane coordinates to RGB."""
from __future__ import annotations

from ..shader_interface import PUSH_BLOCKS
from .base import App
from .registry import AppSpec, register_app
from .views import GigapixelView, pixel_step


class GigapixelApp(App):
    """One fused dispatch per tile: pixel -> image-plane coordinate -> encoding -> MLP -> RGBA8."""

    name = "gigapixel"
    shader = "fused/gigapixel.comp"
    push = PUSH_BLOCKS["gigapixel"]
    n_input_dims, n_output_dims = 2, 3
    view_class = GigapixelView

    def push_values(self, view: GigapixelView, frame, origin, size) -> dict:
        return {"tile_origin": origin, "tile_size": size, "window_origin": view.window[:2],
                "pixel_step": pixel_step(frame[0], frame[1], view.window), "background": view.background}


register_app(AppSpec("gigapixel", GigapixelApp, reference="ngrender.reference.gigapixel:render_view",
                     torch_network="ngrender.train.torch_field:torch_network", trainer="ngrender.train.gigapixel",
                     real_scene="gigapixel", bench_sizes=(256, 1024), plane=True))
