"""Gigapixel image app (GIA): a 2D grid encoding + MLP mapping image-plane coordinates to RGB."""
from __future__ import annotations

import struct

from .base import App
from .registry import AppSpec, register_app
from .views import GigapixelView, pixel_step


class GigapixelApp(App):
    """One fused dispatch per tile: pixel -> image-plane coordinate -> encoding -> MLP -> RGBA8."""

    name = "gigapixel"
    shader = "fused/gigapixel.comp"
    push = struct.Struct("<2i2i2f2ff")  # matches `Push` in the shader
    n_input_dims, n_output_dims = 2, 3
    view_class = GigapixelView

    def push_values(self, view: GigapixelView, frame, origin, size) -> tuple:
        du, dv = pixel_step(frame[0], frame[1], view.window)
        return (*origin, *size, view.window[0], view.window[1], du, dv, view.background)


register_app(AppSpec("gigapixel", GigapixelApp, reference="ngrender.reference.gigapixel:render_view",
                     torch_network="ngrender.train.torch_field:torch_network", trainer="ngrender.train.gigapixel",
                     real_scene="gigapixel", bench_sizes=(256, 1024), plane=True))
