"""Dear ImGui without a window: input events in; draw lists (plain arrays for overlay.py) and texture
uploads out. imgui's font atlas grows as glyphs are first drawn, so textures are re-sent when it asks."""
from __future__ import annotations

import ctypes
from typing import Callable

import numpy as np

from .overlay import VERTEX_BYTES, ImGuiCommand, ImGuiDrawList


class ImGuiFrames:
    """One ImGui context; ``frame(build)`` runs ``build()`` between new_frame and render and returns the lists."""

    def __init__(self, size: tuple[int, int], upload_texture: Callable[[int, np.ndarray], None]) -> None:
        from imgui_bundle import imgui

        self.imgui, self.upload_texture = imgui, upload_texture
        self.context = imgui.create_context()
        imgui.set_current_context(self.context)
        io = imgui.get_io()
        io.set_ini_filename("")  # no imgui.ini in the user's folder
        io.backend_flags |= imgui.BackendFlags_.renderer_has_textures.value
        io.display_size = size
        self._next_texture = 1

    @property
    def io(self):
        return self.imgui.get_io()

    def resize(self, size: tuple[int, int]) -> None:
        self.io.display_size = size

    def frame(self, build: Callable[[], None], dt: float) -> list[ImGuiDrawList]:
        imgui = self.imgui
        imgui.set_current_context(self.context)
        self.io.delta_time = max(dt, 1e-4)
        imgui.new_frame()
        build()
        imgui.render()
        data = imgui.get_draw_data()
        self._update_textures(data)
        lists = []
        for cl in data.cmd_lists:
            vertices = ctypes.string_at(cl.vtx_buffer.data_address(), cl.vtx_buffer.size() * VERTEX_BYTES)
            indices = np.frombuffer(ctypes.string_at(cl.idx_buffer.data_address(), cl.idx_buffer.size() * 4),
                                    np.uint32).copy()
            commands = [ImGuiCommand(tuple(c.clip_rect), c.idx_offset, c.elem_count, c.vtx_offset,
                                     int(c.tex_ref.get_tex_id())) for c in cl.cmd_buffer]
            lists.append(ImGuiDrawList(vertices, indices, commands))
        return lists

    def _update_textures(self, data) -> None:
        status = self.imgui.ImTextureStatus
        for tex in data.textures or []:
            if tex.status in (status.want_create, status.want_updates):
                if tex.status == status.want_create:
                    tex.set_tex_id(self._next_texture)
                    self._next_texture += 1
                pixels = np.asarray(tex.get_pixels_array(), np.uint8).reshape(tex.height, tex.width, 4)
                self.upload_texture(int(tex.get_tex_id()), pixels)
                tex.set_status(status.ok)
            elif tex.status == status.want_destroy:
                tex.set_status(status.destroyed)

    def destroy(self) -> None:
        if self.context is not None:
            self.imgui.destroy_context(self.context)
            self.context = None
