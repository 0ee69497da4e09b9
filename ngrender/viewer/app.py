"""``ngrender view SCENE``: a glfw window (no client API) presenting through a Vulkan swapchain. Each frame is
rendered by a RenderSession (the CLI's), uploaded to a storage buffer and drawn by the overlay pass together
with the Dear ImGui panel (panel.py); files.py writes screenshots and cameras.

While the camera moves, frames are rendered at a fraction of the window (dynamic resolution toward a target
frame rate); once it rests, the full-resolution frame is refined tile by tile from the centre (refine.py),
input polled between tiles; once refined, nothing is rendered until the view changes."""
from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Mapping
from pathlib import Path

import numpy as np

from ..apps import app_spec
from ..apps.base import PIPELINES
from ..camera_path import camera_keyframe, image_aspect_of, window_keyframe
from ..errors import ConfigError, DeviceError, NgrenderError
from ..ngpc.arch import load_arch
from ..ngpc.wavefront import pipeline_options
from ..scene import load_scene, open_scene
from ..session import RenderSession, check_scene_model
from ..vk.device import Device
from ..vk.live import Owner
from ..vk.present import SWAPCHAIN_EXTENSION, Surface, Swapchain
from ..vk.resources import Buffer, Semaphore
from . import files
from .controls import ImageControls, OrbitControls
from .imgui_frames import ImGuiFrames
from .overlay import OverlayPass
from .dynamic import DynamicResolution
from .panel import MIN_SCALE, build_panel
from .refine import Refinement

FLY_STEP = 0.03         # cube units per key press
EMA = 0.1               # weight of the newest frame in the frame-time average
HISTORY = 120           # frames in the frame-time graph
MOVING_S = 0.3          # the camera counts as moving this long after the last input
MIN_MOVING_STEPS = 32   # never coarser than this many steps along the cube's diagonal
IDLE_WAIT_S = 0.25      # a refined viewer wakes this often (or on input) to redraw the overlay
STAGES = ("render", "compose", "upload", "imgui", "record+submit", "present")


def default_target_fps(device: Device) -> float:
    """Dynamic resolution's default target: 15 FPS on CPU drivers, 60 on GPUs."""
    return 15.0 if device.info.is_cpu else 60.0


def _frozen(value: Any) -> Any:
    """A hashable, exact image of a view (dataclasses, cameras' matrices): equal iff the views are equal."""
    if dataclasses.is_dataclass(value):
        return tuple((f.name, _frozen(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, np.ndarray):
        return value.shape, value.dtype.str, value.tobytes()
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def no_display_message() -> str:
    return ("ngrender view needs a display (no X11/Wayland display here): render to a file instead with "
            "`ngrender render SCENE --out frame.png`, or start the viewer under Xvfb")


class Viewer(Owner):
    """One window on one scene. ``step()`` draws a frame (False once the window should close); the input
    methods (``on_key``, ``on_mouse_button``, ``on_cursor``, ``on_scroll``) are glfw's callbacks and can be
    called directly to drive the viewer."""

    def _create(self, scene_path: str | Path, size: tuple[int, int] = (960, 540), device: str | int | None = None,
                validation: bool | None = None, vsync: bool = True, pipeline: str = "fused",
                resolution_scale: float | None = None, ngpc_preset: str = "NGPC-8",
                ngpc_overrides: Mapping[str, Any] | None = None, dynamic: bool = True,
                target_fps: float | None = None, accumulate: int = 1) -> None:
        import glfw

        if resolution_scale is not None and not MIN_SCALE <= resolution_scale <= 1.0:
            raise ConfigError(f"resolution scale must be in [{MIN_SCALE}, 1], got {resolution_scale}")
        if target_fps is not None and not 1.0 <= target_fps <= 1000.0:
            raise ConfigError(f"target FPS must be in [1, 1000], got {target_fps}")
        if not 1 <= accumulate <= 256:
            raise ConfigError(f"accumulate must be 1..256 frames, got {accumulate}")
        self.glfw = glfw
        # the NGPC's preset and overrides apply whenever the ngpc pipeline runs (now or picked in the panel);
        # a bad one is an error before a window opens
        self.ngpc_preset, self.ngpc_overrides = ngpc_preset, dict(ngpc_overrides or {})
        load_arch(ngpc_preset, **self.ngpc_overrides)
        scene, model = open_scene(scene_path)
        check_scene_model(model, scene)  # before a window opens
        glfw.ERROR_REPORTING = "ignore"
        if not glfw.init():
            raise NgrenderError(no_display_message())
        self.on_release(glfw.terminate)
        self.gui = self.frame_buffer = None
        self._open_window(scene, size, device, validation, vsync)
        # Frames are rendered on a second device of the same GPU: on lavapipe, once a device has drawn
        # graphics, its timestamps time the binned draws instead of the dispatches, which would break the
        # per-kernel breakdown. The frame crosses over through host memory either way.
        self.render_device = self.own(Device(device, validation=validation))
        self.session = self.own(RenderSession(model, scene, device=self.render_device,
                                              **self._pipeline(pipeline, self.ngpc_preset)))
        self._user_scale = resolution_scale or 1.0  # the rest resolution: the full window by default
        self.dynamic, self.accumulate, self.exposure = dynamic, accumulate, 0.0
        self.target_fps = target_fps or default_target_fps(self.device)
        # the moving frames' scale, carried from one motion to the next; it starts low on CPU drivers
        self.dynamic_resolution = DynamicResolution(0.25 if self.device.info.is_cpu else 1.0)
        self.scale = self._user_scale  # of the frame shown
        self.show_overlay, self.last_input = True, 0.0
        self.ema_ms, self.history = None, np.zeros(HISTORY, np.float32)
        self.stats = None  # the last moving frame's
        self.shown: np.ndarray | None = None  # the RGBA frame the frame buffer holds (what the window shows)
        self.moving_frame: np.ndarray | None = None  # the last moving frame (RGBA)
        self.refinement: Refinement | None = None
        self.state = "moving"  # of the frame shown: moving, refining, refined
        self.generation = 0    # bumped when the app is replaced (scene, pipeline): a new view
        self._shown_key = None
        self._dirty_rows: tuple[int, int] | None = None  # rows of ``shown`` not uploaded yet
        self.moving_divisor = 1.0  # n_steps of the view / of the last moving frame
        self.stage_ms = dict.fromkeys(STAGES, 0.0)  # the last step's, per stage
        self.frames_rendered = 0  # steps that rendered (a moving frame or refinement tiles)
        self.siblings = self._sibling_scenes()
        self.base_view = self.app.make_view(self.scene.view)
        self._reset_view()
        self.gui = self.own(ImGuiFrames(self.swapchain.extent, self.overlay.set_texture))
        self._mouse = {"pos": (0.0, 0.0), "buttons": set()}
        self._last_time = time.perf_counter()

    # -- set-up ------------------------------------------------------------------------------------------
    def _open_window(self, scene, size, device, validation, vsync) -> None:
        glfw = self.glfw
        glfw.window_hint(glfw.CLIENT_API, glfw.NO_API)
        window = glfw.create_window(size[0], size[1], f"ngrender - {scene.path.name}", None, None)
        if not window:
            raise NgrenderError(no_display_message())
        self.window = window
        self.on_release(lambda: glfw.destroy_window(window))
        extensions = tuple(glfw.get_required_instance_extensions() or ())
        if not extensions:
            raise DeviceError("this Vulkan loader cannot present to windows (no surface extensions)")
        self.device = self.own(Device(device, validation=validation, instance_extensions=extensions,
                                      device_extensions=(SWAPCHAIN_EXTENSION,)))
        if not self.device.graphics:
            raise DeviceError(f"{self.device.info.name} has no queue that can draw")
        vk = self.device.vk
        self.surface = self.own(Surface(self.device, self.window))
        probe = Swapchain.surface_format(self.device, self.surface)
        self.overlay = self.own(OverlayPass(self.device, probe, vk.VK_IMAGE_LAYOUT_PRESENT_SRC_KHR))
        self.swapchain = self.own(Swapchain(self.device, self.surface, self.overlay.render_pass, size, vsync))
        self.semaphores = [self.own(Semaphore(self.device)), self.own(Semaphore(self.device))]
        self.on_release(self._release_frame_buffer)  # replaced as frames grow: released from its slot
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

    def _pipeline(self, pipeline: str, preset: str) -> dict:
        """The session's pipeline options: the NGPC's stages on ``preset`` (with the viewer's overrides) for
        the ngpc pipeline."""
        return pipeline_options(pipeline, load_arch(preset, **self.ngpc_overrides) if pipeline == "ngpc" else None)

    # What is rendered lives in the session.
    @property
    def scene(self):
        return self.session.scene

    @property
    def model(self):
        return self.session.model

    @property
    def app(self):
        return self.session.app

    @property
    def renderer(self):
        return self.session.renderer

    @property
    def pipeline(self) -> str:
        return self.session.options["pipeline"]

    def _reset_view(self) -> None:
        if app_spec(self.model.app).plane:  # a window on the image plane: pan and zoom
            source = self.model.extra.get("source_size")
            self.controls = ImageControls(self.base_view.window, tuple(source) if source else None)
        else:
            self.controls = OrbitControls(self.base_view.camera)

    def switch_scene(self, path: Path) -> None:
        """Show another scene of the same app; on an error (its model is for another app, it is over this
        device's limits) the viewer stays on the scene it shows."""
        self.session.switch_scene(path)
        self.generation += 1
        self.base_view = self.app.make_view(self.scene.view)
        self._reset_view()

    def set_pipeline(self, pipeline: str, preset: str | None = None) -> None:
        if pipeline not in PIPELINES:
            raise ConfigError(f"unknown pipeline {pipeline!r}")
        preset = preset or self.ngpc_preset
        self.session.reconfigure(**self._pipeline(pipeline, preset))
        self.generation += 1
        self.ngpc_preset = preset
        self.base_view = self.app.make_view(self.scene.view)

    # -- the view ----------------------------------------------------------------------------------------
    def view(self):
        if isinstance(self.controls, ImageControls):
            return dataclasses.replace(self.base_view, window=self.controls.window)
        return dataclasses.replace(self.base_view, camera=self.controls.camera())

    def render_size(self) -> tuple[int, int]:
        """The rest resolution: the window times the resolution setting (what refinement reaches)."""
        return self._scaled(self.user_scale)

    def _scaled(self, scale: float) -> tuple[int, int]:
        w, h = self.swapchain.extent
        return max(1, round(w * scale)), max(1, round(h * scale))

    def view_key(self):
        """Everything that decides the rest frame's pixels: a change abandons a refinement."""
        return (self.swapchain.extent, self.user_scale, self.generation, _frozen(self.view()))

    @property
    def image(self) -> np.ndarray | None:
        """The frame shown, without the overlay, as (height, width, 3) uint8."""
        return None if self.shown is None else self.shown[..., :3]

    @property
    def refined(self) -> bool:
        """The frame shown is the current view's complete rest frame (and its accumulation, when asked)."""
        return self.state == "refined" and self._shown_key == self.view_key()

    def progress(self) -> str:
        """The overlay's refinement line: moving, refining 42%, accumulating 3/8, refined."""
        if self.state == "refined":
            return self.refinement.progress() if self.refinement is not None else "refined"
        if time.perf_counter() - self.last_input < MOVING_S or self.refinement is None:
            return "moving"
        return self.refinement.progress()

    # -- one frame ---------------------------------------------------------------------------------------
    def _has_work(self, now: float) -> bool:
        if self._shown_key != self.view_key():
            return True
        return self.state == "refining" and now - self.last_input >= MOVING_S

    def step(self) -> bool:
        """One frame: a moving frame when the view changed, refinement tiles when the camera rests, else (the
        frame is complete) a wait for input of at most IDLE_WAIT_S and a redraw of the overlay only."""
        glfw = self.glfw
        start = time.perf_counter()
        if self.shown is None or self._has_work(start):
            glfw.poll_events()
        else:
            resting = start - self.last_input
            glfw.wait_events_timeout(IDLE_WAIT_S if resting >= MOVING_S else max(MOVING_S - resting, 1e-3))
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
        self.stage_ms = dict.fromkeys(STAGES, 0.0)
        rendered = moving = False
        key = self.view_key()
        if key != self._shown_key:
            self._render_moving_frame(key)
            rendered = moving = True
        elif self.state == "refining" and now - self.last_input >= MOVING_S:
            self._refine(key)
            rendered = True
        upload = time.perf_counter()
        self._upload()
        self.stage_ms["upload"] = (time.perf_counter() - upload) * 1e3
        if not self._draw(fb, dt):
            return True
        if rendered:
            self.frames_rendered += 1
            frame_ms = (time.perf_counter() - start) * 1e3
            self._record_time(frame_ms)
            if moving and self.dynamic:
                w, h = self.swapchain.extent
                marches = isinstance(getattr(self.base_view, "n_steps", None), int)
                self.dynamic_resolution.update(frame_ms, self.stage_ms["render"], self.stats.width * self.stats.height,
                                               w * h, self.target_fps, can_coarsen=marches, limit=self.user_scale)
        return True

    def _render_moving_frame(self, key) -> None:
        """The whole frame at the moving scale (dynamic resolution), or at the rest resolution without it."""
        self.refinement = None
        self.scale = self.dynamic_scale if self.dynamic else self.user_scale
        self.scale = min(self.scale, self.user_scale)
        size = self._scaled(self.scale)
        begin = time.perf_counter()
        view = self.view()
        moving_view = self._coarsened(view) if self.dynamic else view
        self.moving_divisor = view.n_steps / moving_view.n_steps if moving_view is not view else 1.0
        rgba, self.stats = self.renderer.render_region(*size, (0, 0), size, moving_view, rgba=True)
        self.stage_ms["render"] = (time.perf_counter() - begin) * 1e3
        self.shown = self.moving_frame = rgba
        self._shown_key, self._dirty_rows = key, (0, size[1])
        # already the rest frame (no dynamic resolution, or it reached the setting): refined unless accumulating
        self.refinement = Refinement(key, view, self.render_size(), rgba, self.accumulate,
                                     exact=moving_view is view)
        self.state = "refined" if self.refinement.done else "refining"

    def _coarsened(self, view):
        """The moving frame's view: fewer march steps when dynamic resolution asked for it (the 3D apps' n_steps;
        what it costs a frame is roughly proportional to them)."""
        steps = getattr(view, "n_steps", None)
        coarsen = self.dynamic_resolution.coarsen
        if coarsen == 1 or not isinstance(steps, int) or steps <= MIN_MOVING_STEPS:
            return view
        return dataclasses.replace(view, n_steps=max(steps // coarsen, MIN_MOVING_STEPS))

    def _refine(self, key) -> None:
        """Refinement tiles until the frame time's budget is spent (at least one), input polled between them;
        a change of the view abandons the refinement (the next frame is a moving one)."""
        glfw, refinement = self.glfw, self.refinement
        budget_ms = 1e3 / self.target_fps - self.dynamic_resolution.overhead
        budget_ms = max(budget_ms, 0.3e3 / self.target_fps)
        begin = time.perf_counter()
        render_ms = compose_ms = 0.0
        if self.shown is not refinement.shown:  # the first tiles: the moving frame scaled up under them
            self.shown, self._dirty_rows = refinement.shown, (0, refinement.size[1])
            self.scale = self.user_scale
        while not refinement.done:
            view, origin, size = refinement.next_tile()
            t0 = time.perf_counter()
            rgba, _ = self.renderer.render_region(*refinement.size, origin, size, view, rgba=True)
            t1 = time.perf_counter()
            rows = refinement.paste(rgba)
            self._dirty_rows = rows if self._dirty_rows is None else (min(self._dirty_rows[0], rows[0]),
                                                                      max(self._dirty_rows[1], rows[1]))
            render_ms += (t1 - t0) * 1e3
            compose_ms += (time.perf_counter() - t1) * 1e3
            if refinement.done or (time.perf_counter() - begin) * 1e3 >= budget_ms:
                break
            glfw.poll_events()
            if glfw.window_should_close(self.window) or glfw.get_framebuffer_size(self.window) != \
                    self.swapchain.extent or self.view_key() != key:
                break  # abandoned: the caller draws what is there, the next step renders a moving frame
        self.stage_ms["render"], self.stage_ms["compose"] = render_ms, compose_ms
        if refinement.done:
            self.state = "refined"

    def _draw(self, fb, dt: float) -> bool:
        """The overlay pass over the frame buffer, presented; False when the swapchain had to be recreated."""
        t0 = time.perf_counter()
        lists = self.gui.frame(lambda: build_panel(self), dt) if self.show_overlay else None
        t1 = time.perf_counter()
        index = self.swapchain.acquire(self.semaphores[0])
        if index is None:
            self.resize(fb)
            return False
        framebuffer = self.swapchain.framebuffers[index]
        gain = 2.0 ** self.exposure
        size = (self.shown.shape[1], self.shown.shape[0])
        self.device.submit(lambda cmd: self.overlay.record(cmd, framebuffer, self.frame_buffer, size, gain, lists),
                           wait=self.semaphores[0].handle, signal=self.semaphores[1].handle)
        t2 = time.perf_counter()
        presented = self.swapchain.present(index, self.semaphores[1])
        t3 = time.perf_counter()
        self.stage_ms.update({"imgui": (t1 - t0) * 1e3, "record+submit": (t2 - t1) * 1e3,
                              "present": (t3 - t2) * 1e3})
        if not presented:
            self.resize(fb)
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

    def _upload(self) -> None:
        """The rows of the shown frame that changed since the last upload (none: nothing is copied)."""
        if self._dirty_rows is None:
            return
        h, w, _ = self.shown.shape
        if self.frame_buffer is None or self.frame_buffer.size < self.shown.nbytes:
            if self.frame_buffer is not None:
                self.device.wait_idle()
            self._release_frame_buffer()
            self.frame_buffer = Buffer(self.device, max(self.shown.nbytes, 4 * 1920 * 1080), host=True)
            y0, y1 = 0, h
        else:
            y0, y1 = self._dirty_rows
        self.frame_buffer.write(self.shown[y0:y1], offset=y0 * w * 4)
        self._dirty_rows = None

    def _release_frame_buffer(self) -> None:
        if self.frame_buffer is not None:
            self.frame_buffer.destroy()
            self.frame_buffer = None

    def _record_time(self, ms: float) -> None:
        self.ema_ms = ms if self.ema_ms is None else (1 - EMA) * self.ema_ms + EMA * ms
        self.history = np.roll(self.history, -1)
        self.history[-1] = ms

    @property
    def dynamic_scale(self) -> float:
        """The next moving frame's scale (dynamic.py)."""
        return self.dynamic_resolution.scale

    @property
    def user_scale(self) -> float:
        return self._user_scale

    def set_user_scale(self, value: float) -> None:
        self._user_scale = value

    def set_accumulate(self, frames: int) -> None:
        """Accumulate this many jittered frames at rest (views with a seed); a new value refines again."""
        self.accumulate = frames
        self.generation += 1

    def messages(self) -> list[str]:
        """Validation messages of both devices since the last call."""
        return self.device.take_messages() + self.render_device.take_messages()

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
        elif key in (glfw.KEY_F12, glfw.KEY_C, glfw.KEY_P):
            action = {glfw.KEY_F12: self.screenshot, glfw.KEY_C: self.save_camera,
                      glfw.KEY_P: self.add_camera_to_path}[key]
            try:
                action()
            except NgrenderError as exc:  # a file the viewer will not touch: one line, the viewer carries on
                print(f"ngrender: error: {exc}", file=sys.stderr)
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
        path = files.write_screenshot(self.image, self.scene, path)
        print(f"screenshot: {path}")
        return path

    def _camera_json(self) -> dict:
        if isinstance(self.controls, ImageControls):
            return {"window": list(self.controls.window)}
        return {"camera": self.controls.camera().to_json()}

    def save_camera(self) -> Path:
        """Write the current camera (GIA: window) into the scene file (see files.save_camera)."""
        path = files.save_camera(self.scene, self._camera_json())
        print(f"camera saved into {path}")
        return path

    def add_camera_to_path(self) -> Path:
        """Append the current camera as a keyframe to ``<scene>_base_cam.json`` (instant-ngp's camera path; GIA:
        its image-mode camera over the window)."""
        if isinstance(self.controls, ImageControls):
            keyframe = window_keyframe(self.controls.window, image_aspect_of(self.scene))
        else:
            width, height = self.swapchain.extent
            keyframe = camera_keyframe(self.controls.camera(), width, height, scale=self.controls.radius)
        path, count = files.add_camera_to_path(self.scene, keyframe)
        print(f"camera path: keyframe {count} added to {path}")
        return path

    # -- teardown ------------------------------------------------------------------------------------------
    def _release(self) -> None:
        if getattr(self, "device", None) is not None and self.device.alive:
            self.device.wait_idle()

    def close(self) -> None:
        self.destroy()
