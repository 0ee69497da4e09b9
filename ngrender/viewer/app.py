"""``ngrender view SCENE``: a glfw window (no client API) presenting through a Vulkan swapchain. Each frame is
rendered by the same Renderer as the CLI, uploaded to a storage buffer and drawn by the overlay pass together
with the Dear ImGui panel (frame time, breakdown, NGPC projection, controls)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..apps import create_app
from ..apps.base import PIPELINES
from ..errors import ConfigError, DeviceError, NgrenderError
from ..fileio import read_json, write_json
from ..ngpc.arch import load_arch, presets
from ..pngio import PngStripWriter
from ..render import Renderer
from ..scene import load_scene, load_scene_and_model
from ..vk.device import Device
from .overlay import OverlayPass
from ..vk.present import SWAPCHAIN_EXTENSION, Surface, Swapchain
from ..vk.resources import Buffer, Semaphore
from .controls import ImageControls, OrbitControls
from .imgui_frames import ImGuiFrames

FLY_STEP = 0.03         # cube units per key press
EMA = 0.1               # weight of the newest frame in the frame-time average
HISTORY = 120           # frames in the frame-time graph
MOVING_S = 0.3          # the camera counts as moving this long after the last input
MIN_SCALE = 0.1


def no_display_message() -> str:
    return ("ngrender view needs a display (no X11/Wayland display here): render to a file instead with "
            "`ngrender render SCENE --out frame.png`, or start the viewer under Xvfb")


class Viewer:
    """One window on one scene. ``step()`` draws a frame (False once the window should close); the input
    methods (``on_key``, ``on_mouse_button``, ``on_cursor``, ``on_scroll``) are glfw's callbacks and can be
    called directly to drive the viewer."""

    def __init__(self, scene_path: str | Path, size: tuple[int, int] = (960, 540), device: str | int | None = None,
                 validation: bool | None = None, vsync: bool = True, pipeline: str = "fused",
                 resolution_scale: float | None = None) -> None:
        import glfw

        if resolution_scale is not None and not MIN_SCALE <= resolution_scale <= 1.0:
            raise ConfigError(f"resolution scale must be in [{MIN_SCALE}, 1], got {resolution_scale}")
        self.glfw = glfw
        self.scene, self.model = load_scene_and_model(scene_path)
        if self.model.app != self.scene.app:
            raise ConfigError(f"{self.scene.path}: scene is for app {self.scene.app!r} but its model is a "
                              f"{self.model.app!r} model")
        glfw.ERROR_REPORTING = "ignore"
        if not glfw.init():
            raise NgrenderError(no_display_message())
        self.window = self.device = self.render_device = self.surface = self.overlay = self.swapchain = None
        self.app = self.renderer = self.frame_buffer = self.gui = None
        self.semaphores: list[Semaphore] = []
        try:
            self._open_window(size, device, validation, vsync)
            self.pipeline, self.ngpc_preset = pipeline, "NGPC-8"
            cpu = self.device.info.is_cpu
            self.scale = self._user_scale = resolution_scale or (0.5 if cpu else 1.0)
            self.dynamic, self.target_fps, self.exposure = False, 10.0 if cpu else 60.0, 0.0
            self.show_overlay, self.last_input = True, 0.0
            self.ema_ms, self.history = None, np.zeros(HISTORY, np.float32)
            self.stats = self.image = None
            self.siblings = self._sibling_scenes()
            self._open_app()
            self._reset_view()
            self.gui = ImGuiFrames(self.swapchain.extent, self.overlay.set_texture)
            self._mouse = {"pos": (0.0, 0.0), "buttons": set()}
            self._last_time = time.perf_counter()
        except BaseException:
            self.close()
            raise

    # -- set-up ------------------------------------------------------------------------------------------
    def _open_window(self, size, device, validation, vsync) -> None:
        glfw = self.glfw
        glfw.window_hint(glfw.CLIENT_API, glfw.NO_API)
        self.window = glfw.create_window(size[0], size[1], f"ngrender - {self.scene.path.name}", None, None)
        if not self.window:
            raise NgrenderError(no_display_message())
        extensions = tuple(glfw.get_required_instance_extensions() or ())
        if not extensions:
            raise DeviceError("this Vulkan loader cannot present to windows (no surface extensions)")
        self.device = Device(device, validation=validation, instance_extensions=extensions,
                             device_extensions=(SWAPCHAIN_EXTENSION,))
        if not self.device.graphics:
            raise DeviceError(f"{self.device.info.name} has no queue that can draw")
        vk = self.device.vk
        self.surface = Surface(self.device, self.window)
        probe = Swapchain.surface_format(self.device, self.surface)
        self.overlay = OverlayPass(self.device, probe, vk.VK_IMAGE_LAYOUT_PRESENT_SRC_KHR)
        self.swapchain = Swapchain(self.device, self.surface, self.overlay.render_pass, size, vsync)
        self.semaphores = [Semaphore(self.device), Semaphore(self.device)]
        # Frames are rendered on a second device of the same GPU: on lavapipe, once a device has drawn
        # graphics, its timestamps time the binned draws instead of the dispatches, which would break the
        # per-kernel breakdown. The frame crosses over through host memory either way.
        self.render_device = Device(device, validation=validation)
        glfw.set_key_callback(self.window, self.on_key)
        glfw.set_mouse_button_callback(self.window, self.on_mouse_button)
        glfw.set_cursor_pos_callback(self.window, self.on_cursor)
        glfw.set_scroll_callback(self.window, self.on_scroll)

    def _sibling_scenes(self) -> list[Path]:
        """Scenes of the same app in the scene's folder: the model / encoding switch."""
        out = []
        for path in sorted(self.scene.path.parent.glob("*.json")):
            try:
                if load_scene(path).app == self.scene.app:
                    out.append(path)
            except NgrenderError:
                continue
        return out or [self.scene.path]

    def _open_app(self) -> None:
        for obj in (self.renderer, self.app):
            if obj is not None:
                obj.destroy()
        self.renderer = self.app = None
        arch = load_arch(self.ngpc_preset) if self.pipeline == "ngpc" else None
        self.app = create_app(self.render_device, self.model, self.scene.variant, max_tile=self.scene.tile,
                              pipeline=self.pipeline, ngpc_arch=arch)
        self.renderer = Renderer(self.render_device, self.app)
        self.base_view = self.app.make_view(self.scene.view)

    def _reset_view(self) -> None:
        if self.model.app == "gigapixel":
            source = self.model.extra.get("source_size")
            self.controls = ImageControls(self.base_view.window, tuple(source) if source else None)
        else:
            self.controls = OrbitControls(self.base_view.camera)

    def switch_scene(self, path: Path) -> None:
        self.scene, self.model = load_scene_and_model(path)
        self._open_app()
        self._reset_view()

    def set_pipeline(self, pipeline: str, preset: str | None = None) -> None:
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown pipeline {pipeline!r}")
        self.pipeline, self.ngpc_preset = pipeline, preset or self.ngpc_preset
        self._open_app()

    # -- the view ----------------------------------------------------------------------------------------
    def view(self):
        if isinstance(self.controls, ImageControls):
            return dataclasses.replace(self.base_view, window=self.controls.window)
        return dataclasses.replace(self.base_view, camera=self.controls.camera())

    def render_size(self) -> tuple[int, int]:
        w, h = self.swapchain.extent
        return max(1, round(w * self.scale)), max(1, round(h * self.scale))

    # -- one frame ---------------------------------------------------------------------------------------
    def step(self) -> bool:
        glfw = self.glfw
        glfw.poll_events()
        if glfw.window_should_close(self.window):
            return False
        fb = glfw.get_framebuffer_size(self.window)
        if fb[0] == 0 or fb[1] == 0:  # minimised: nothing to draw into
            glfw.wait_events_timeout(0.05)
            return True
        if fb != self.swapchain.extent:
            self.resize(fb)
        now = time.perf_counter()
        dt, self._last_time = now - self._last_time, now
        size = self.render_size()
        self.image, self.stats = self.renderer.render(*size, self.view())
        self._upload(self.image)
        self._record_time(self.stats.wall_ms)
        lists = self.gui.frame(self._build_panel, dt) if self.show_overlay else None
        index = self.swapchain.acquire(self.semaphores[0])
        if index is None:
            self.resize(fb)
            return True
        framebuffer = self.swapchain.framebuffers[index]
        gain = 2.0 ** self.exposure
        self.device.submit(lambda cmd: self.overlay.record(cmd, framebuffer, self.frame_buffer, size, gain, lists),
                           wait=self.semaphores[0].handle, signal=self.semaphores[1].handle)
        if not self.swapchain.present(index, self.semaphores[1]):
            self.resize(fb)
        self._adapt_resolution()
        return True

    def run(self) -> None:
        while self.step():
            pass

    def resize(self, size: tuple[int, int]) -> None:
        self.swapchain.recreate(size, self.swapchain.vsync)
        if self.gui is not None:
            self.gui.resize(self.swapchain.extent)

    def set_vsync(self, on: bool) -> None:
        self.swapchain.recreate(self.swapchain.extent, on)

    def _upload(self, image: np.ndarray) -> None:
        h, w, _ = image.shape
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = image, 255
        if self.frame_buffer is None or self.frame_buffer.size < rgba.nbytes:
            if self.frame_buffer is not None:
                self.device.wait_idle()
                self.frame_buffer.destroy()
            self.frame_buffer = Buffer(self.device, max(rgba.nbytes, 4 * 1920 * 1080), host=True)
        self.frame_buffer.write(rgba)

    def _record_time(self, ms: float) -> None:
        self.ema_ms = ms if self.ema_ms is None else (1 - EMA) * self.ema_ms + EMA * ms
        self.history = np.roll(self.history, -1)
        self.history[-1] = ms

    def _adapt_resolution(self) -> None:
        """Dynamic resolution: while the camera moves, scale the frame toward the target frame time; when it
        stops, render at the full resolution-scale setting again."""
        if not self.dynamic:
            return
        moving = time.perf_counter() - self.last_input < MOVING_S
        if not moving:
            self.scale = self.user_scale
            return
        target_ms = 1e3 / self.target_fps
        k = float(np.clip((target_ms / max(self.stats.wall_ms, 1e-3)) ** 0.5, 0.5, 1.5))
        self.scale = float(np.clip(self.scale * k, MIN_SCALE, self.user_scale))

    @property
    def user_scale(self) -> float:
        return self._user_scale

    def messages(self) -> list[str]:
        """Validation messages of both devices since the last call."""
        return self.device.take_messages() + self.render_device.take_messages()

    # -- overlay panel -------------------------------------------------------------------------------------
    def _build_panel(self) -> None:
        imgui, s = self.gui.imgui, self.stats
        imgui.set_next_window_pos((8, 8), imgui.Cond_.first_use_ever.value)
        imgui.set_next_window_bg_alpha(0.85)
        imgui.begin("ngrender", None, imgui.WindowFlags_.always_auto_resize.value)
        fps = 1e3 / max(self.ema_ms, 1e-6)
        imgui.text(f"{self.ema_ms:.1f} ms/frame (EMA), {fps:.1f} FPS")
        imgui.plot_lines("##frame ms", self.history, graph_size=(240, 40), scale_min=0.0)
        classes = s.class_ms()
        if s.pipeline == "fused":
            imgui.text(f"GPU {s.gpu_ms:.1f} ms (one fused kernel)")
        else:
            imgui.text(f"GPU {s.gpu_ms:.1f} ms: encoding {classes['encoding']:.1f}, MLP {classes['mlp']:.1f}, "
                       f"rest {classes['rest']:.1f}")
        if s.ngpc_ms is not None:
            imgui.text(f"{self.ngpc_preset} projected: {s.ngpc_ms:.2f} ms ({1e3 / s.ngpc_ms:.0f} FPS)")
        else:
            imgui.text("NGPC projection: choose the ngpc pipeline")
        w, h = s.width, s.height
        per = "samples/pixel" if s.pipeline != "fused" else "rays/pixel"
        imgui.text(f"{w}x{h} ({self.scale:.0%}), {s.samples / (w * h):.2f} {per}")
        if imgui.collapsing_header("controls"):
            self._build_controls()
        imgui.end()

    def _build_controls(self) -> None:
        imgui = self.gui.imgui
        if hasattr(self.base_view, "mode") and self.app.modes:
            modes = list(self.app.modes)
            changed, index = imgui.combo("mode", modes.index(self.base_view.mode), modes)
            if changed:
                self.base_view = dataclasses.replace(self.base_view, mode=modes[index])
        names = [p.stem for p in self.siblings]
        current = names.index(self.scene.path.stem) if self.scene.path.stem in names else 0
        changed, index = imgui.combo("model", current, names)
        if changed and index != current:
            self.switch_scene(self.siblings[index])
        pipelines = list(PIPELINES)
        changed, index = imgui.combo("pipeline", pipelines.index(self.pipeline), pipelines)
        if changed:
            self.set_pipeline(pipelines[index])
        names = presets()
        changed, index = imgui.combo("NGPC", names.index(self.ngpc_preset), names)
        if changed:
            self.set_pipeline(self.pipeline, names[index])
        changed, value = imgui.slider_float("resolution", self.user_scale, MIN_SCALE, 1.0)
        if changed:
            self._user_scale = self.scale = value
        _, self.dynamic = imgui.checkbox("dynamic resolution", self.dynamic)
        if self.dynamic:
            _, self.target_fps = imgui.slider_float("target FPS", self.target_fps, 1.0, 120.0)
        _, self.exposure = imgui.slider_float("exposure", self.exposure, -4.0, 4.0)
        changed, vsync = imgui.checkbox("vsync", self.swapchain.vsync)
        if changed:
            self.set_vsync(vsync)
        if imgui.button("screenshot (F12)"):
            self.screenshot()
        imgui.text("Tab: hide, Shift+R: reset, C: save camera, P: add to path")

    # -- input ---------------------------------------------------------------------------------------------
    def _wants_mouse(self) -> bool:
        return self.show_overlay and self.gui is not None and self.gui.io.want_capture_mouse

    def on_key(self, window, key, scancode, action, mods) -> None:
        glfw = self.glfw
        if action not in (glfw.PRESS, glfw.REPEAT):
            return
        self.last_input = time.perf_counter()
        if key == glfw.KEY_TAB:
            self.show_overlay = not self.show_overlay
        elif key == glfw.KEY_R and mods & glfw.MOD_SHIFT:
            self.controls.reset()
            self._reset_view()
        elif key == glfw.KEY_F12:
            self.screenshot()
        elif key == glfw.KEY_C:
            self.save_camera()
        elif key == glfw.KEY_P:
            self.add_camera_to_path()
        elif key == glfw.KEY_ESCAPE:
            glfw.set_window_should_close(self.window, True)
        elif isinstance(self.controls, OrbitControls):
            fly = {glfw.KEY_W: (1, 0, 0), glfw.KEY_S: (-1, 0, 0), glfw.KEY_D: (0, 1, 0), glfw.KEY_A: (0, -1, 0),
                   glfw.KEY_E: (0, 0, 1), glfw.KEY_Q: (0, 0, -1)}.get(key)
            if fly:
                self.controls.fly(*(FLY_STEP * v for v in fly))

    def on_mouse_button(self, window, button, action, mods) -> None:
        if self.gui is not None:
            self.gui.io.add_mouse_button_event(button, action == self.glfw.PRESS)
        if action == self.glfw.PRESS and not self._wants_mouse():
            self._mouse["buttons"].add(button)
        elif action == self.glfw.RELEASE:
            self._mouse["buttons"].discard(button)

    def on_cursor(self, window, x: float, y: float) -> None:
        if self.gui is not None:
            self.gui.io.add_mouse_pos_event(x, y)
        px, py = self._mouse["pos"]
        dx, dy = x - px, y - py
        self._mouse["pos"] = (x, y)
        buttons = self._mouse["buttons"]
        if not buttons:
            return
        self.last_input = time.perf_counter()
        size = self.swapchain.extent
        if isinstance(self.controls, ImageControls):
            self.controls.pan(dx, dy, size)
        elif self.glfw.MOUSE_BUTTON_LEFT in buttons:
            self.controls.rotate(dx, dy)
        else:
            self.controls.pan(dx, dy, size[0])

    def on_scroll(self, window, dx: float, dy: float) -> None:
        if self.gui is not None:
            self.gui.io.add_mouse_wheel_event(dx, dy)
        if self._wants_mouse():
            return
        self.last_input = time.perf_counter()
        if isinstance(self.controls, ImageControls):
            self.controls.zoom(dy, self._mouse["pos"], self.swapchain.extent)
        else:
            self.controls.zoom(dy)

    # -- files ---------------------------------------------------------------------------------------------
    def screenshot(self, path: str | Path | None = None) -> Path:
        """The last rendered frame, without the overlay, as a PNG (default: next to the scene)."""
        if self.image is None:
            raise NgrenderError("no frame rendered yet")
        path = Path(path or self.scene.path.with_name(f"{self.scene.path.stem}_{time.strftime('%Y%m%d-%H%M%S')}.png"))
        writer = PngStripWriter(path, self.image.shape[1], self.image.shape[0])
        writer.write(self.image)
        writer.close()
        print(f"screenshot: {path}")
        return path

    def _camera_json(self) -> dict:
        if isinstance(self.controls, ImageControls):
            return {"window": list(self.controls.window)}
        return {"camera": self.controls.camera().to_json()}

    def save_camera(self) -> Path:
        """Write the current camera (GIA: window) into the scene file; every other field is kept. A model or
        snapshot opened without a scene gets one beside it, ``<name>_scene.json``: the source is never written."""
        path = self.scene.path
        if path.suffix.lower() == ".json":
            data = read_json(path, "scene file")
        else:
            path = path.with_name(f"{path.stem}_scene.json")
            data = read_json(path, "scene file") if path.exists() else {
                "description": f"{self.scene.app} view of {self.scene.path.name}", "app": self.scene.app,
                "model": self.scene.path.name, "render": {"width": self.scene.width, "height": self.scene.height},
                "view": dict(self.scene.view)}
        data.setdefault("view", {}).update(self._camera_json())
        write_json(path, data)
        print(f"camera saved into {path}")
        return path

    def add_camera_to_path(self) -> Path:
        """Append the current camera to ``<scene>_camera_path.json`` ({"frames": [...]})."""
        path = self.scene.path.with_name(f"{self.scene.path.stem}_camera_path.json")
        data = read_json(path, "camera path") if path.exists() else {"scene": self.scene.path.name, "frames": []}
        if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
            raise NgrenderError(f"{path} is not a camera path written by the viewer (no 'frames' list)")
        data["frames"].append(self._camera_json())
        write_json(path, data)
        return path

    # -- teardown ------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.device is not None:
            self.device.wait_idle()
        if self.gui is not None:
            self.gui.destroy()
        for obj in [self.renderer, self.app, self.render_device, self.frame_buffer, *self.semaphores, self.swapchain,
                    self.overlay, self.surface, self.device]:
            if obj is not None:
                obj.destroy()
        self.renderer = self.app = self.render_device = self.frame_buffer = self.swapchain = None
        self.overlay = self.surface = None
        self.device, self.semaphores, self.gui = None, [], None
        if self.window is not None:
            self.glfw.destroy_window(self.window)
            self.window = None
        self.glfw.terminate()

    def __enter__(self) -> "Viewer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
