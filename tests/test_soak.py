"""Soak and leak tests (the reliability issue): a long viewer session under Xvfb and hundreds of renders and
sessions in one process must keep resident memory flat, return to the same live Vulkan objects and raise no
validation message.

Resident memory is read after ``gc.collect()`` and glibc's ``malloc_trim(0)``: freed heap pages that glibc keeps
cached (they show as steps of a few MiB whenever a pipeline is rebuilt at a new heap top) are handed back first,
so what is measured is memory still in use. The trend is the least-squares slope over the samples after a
warm-up in which every scene / pipeline combination has been built. Across the viewer's scene switches the trend
is that of malloc's bytes in use at each visit's lowest sample (its floor: what memory returns to): RSS floors
step by about 4 MiB either way between visits of one state (the driver's JIT code and mappings, outside malloc),
so the RSS slope over 1,200 frames swung from -2.5 to +3.1 KiB/frame between runs of the same code, while
malloc's floors moved by 20 KiB in all.
``pytest -s`` prints the figures.

Each soak runs in a fresh interpreter, so that what is measured does not depend on the heap the earlier tests
left (about 1 GiB in the full suite).

The viewer soak runs twice. With the Khronos validation layer on, it must raise no message, keep the live Vulkan
objects the same at every visit of a state, and keep RSS flat while frames are drawn; across scene and pipeline
switches RSS is not flat there, because the layer's own bookkeeping grows with every pipeline and shader module
created and destroyed (measured: 4 scenes switched 160 times in one viewer, +17 KiB per switch and slowing with
the layer on, flat at 197 MiB with it off; in the soak +2.8 to +3.9 KiB/frame overall, -0.003 to +0.04 within
visits). With the layer off, memory in use must also be flat across the switches: that is the viewer's own.
"""
from __future__ import annotations

import ctypes
import dataclasses
import gc
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ngrender.vk import live_objects

ROOT = Path(__file__).resolve().parent.parent
SCENES = ROOT / "scenes"
MIB = 2 ** 20
KIB = 2 ** 10

try:
    _malloc_trim = ctypes.CDLL(None).malloc_trim  # glibc; elsewhere RSS is read as it is
except (AttributeError, OSError):
    _malloc_trim = None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


try:
    _mallinfo2 = ctypes.CDLL(None).mallinfo2  # glibc 2.33+
    _mallinfo2.restype = _MallInfo2
except (AttributeError, OSError):
    _mallinfo2 = None


def heap_bytes() -> int | None:
    """Bytes malloc has handed out and not had back (small chunks and mmapped ones), None without glibc. Python
    objects, NumPy arrays and lavapipe's device memory all come from malloc; the driver's JIT code and mappings
    do not, which is what makes RSS step by MiBs between visits of the same state."""
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    return info.uordblks + info.hblkhd


def rss_bytes() -> int:
    """Resident set size of this process, after a collection and with glibc's cached free pages returned."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        psutil = pytest.importorskip("psutil", reason="RSS needs /proc/self/statm or psutil")
        return psutil.Process().memory_info().rss


def run_in_fresh_process(call: str, timeout: float) -> None:
    """Run ``call`` (one of this module's functions, with its arguments) in a new interpreter with the suite's
    environment (validation layer, shader cache, DISPLAY); its assertion messages and figures come back in the
    failure, or with -s."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_soak; test_soak.{call}"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(done.stdout)
    if done.returncode != 0:
        pytest.fail(f"{call} failed in its own process (exit {done.returncode}):\n{done.stdout}{done.stderr[-4000:]}",
                    pytrace=False)


def slope(xs, ys) -> float:
    """Least-squares slope of ys over xs."""
    return float(np.polyfit(np.asarray(xs, np.float64), np.asarray(ys, np.float64), 1)[0])


def within_visit_slope(xs, ys, groups) -> float:
    """Least-squares slope with one intercept per group: growth while frames are drawn, steps between groups
    (a scene or pipeline switch in between) left out."""
    xs, ys, groups = (np.asarray(a, np.float64) for a in (xs, ys, groups))
    dx, dy = xs.copy(), ys.copy()
    for g in np.unique(groups):
        sel = groups == g
        dx[sel] -= xs[sel].mean()
        dy[sel] -= ys[sel].mean()
    return float((dx * dy).sum() / max((dx * dx).sum(), 1e-12))


def floor_slope(xs, ys, groups) -> float:
    """Least-squares slope of each group's lowest sample over the group's mean x: the level memory returns to at
    each visit of a state. Transient peaks (a frame's buffers, the allocator's caches, a busy machine delaying
    frees) fall out; memory that stays allocated across visits, as a leak does, raises every later floor."""
    xs, ys, groups = (np.asarray(a, np.float64) for a in (xs, ys, groups))
    points = [(xs[groups == g].mean(), ys[groups == g].min()) for g in np.unique(groups)]
    return slope(*zip(*points))


# -- the viewer ------------------------------------------------------------------------------------------------

VIEWER_FRAMES = 2000
VIEWER_PERIOD = 400        # frames of one period of PERIOD below, repeated 5 times
# Warm-up: the first two periods, every scene / pipeline combination built twice. On lavapipe, RSS at the same
# state still steps up during the second period (229.7 -> 238.3 -> 242.9 MiB at gigapixel / fused, the driver's
# and glibc's high-water marks) and is flat from then on (242.9, 242.5, 242.9, 243.1 MiB).
VIEWER_WARMUP = 2 * VIEWER_PERIOD
VIEWER_RSS_EVERY = 10      # frames between RSS samples
# A window of 480x270 leaves the bottom-right corner clear of the ImGui panel (about 340x175 at the top left) for
# the synthetic drags; frames are rendered at 1/6 of it, 80x45.
VIEWER_SIZE, VIEWER_SCALE = (480, 270), 1 / 6
# Bound on the RSS slope: 2 KiB/frame, i.e. 2.3 MiB over the 1,200 measured frames. A leak of one small
# buffer per frame exceeds it several times over: the 80x45 RGB frame (10.5 KiB), its RGBA upload
# (14 KiB), a 32x32 RGBA staging buffer (4 KiB) or the overlay's 64 KiB vertex buffer. (A leaked Vulkan object
# is caught exactly by the live-object counts.)
VIEWER_MAX_KIB_PER_FRAME = 2.0

# One period of the session, repeated 5 times: (scene, pipeline, frames). Mostly the cheap gigapixel scene, plus
# short visits to the three 3D apps (their low-resolution models) and pipeline toggles.
PERIOD = [
    ("gigapixel", "fused", 150),
    ("sdf_bunny_lowres", "fused", 16),
    ("sdf_bunny_lowres", "unfused", 4),
    ("nerf_bunny_lowres", "unfused", 3),
    ("nerf_bunny_lowres", "fused-rest", 3),
    ("nerf_bunny_lowres", "fused", 12),
    ("volume_head_lowres", "fused", 12),
    ("volume_head_lowres", "unfused", 3),
    ("gigapixel", "unfused", 70),
    ("gigapixel", "fused-rest", 70),
    ("gigapixel", "fused", 57),
]
assert sum(n for *_, n in PERIOD) == VIEWER_PERIOD and VIEWER_FRAMES % VIEWER_PERIOD == 0


def _inject_motion(v, glfw, i: int) -> None:
    """Synthetic input for frame ``i``: drags (pan for the image, orbit for 3D), wheel zoom in and back out, and
    fly keys for the 3D apps, all in the bottom-right corner, outside the ImGui panel. The button is held across
    the whole period of 50 frames, so every frame moves the camera: the viewer renders only views it has not
    shown (a still camera's frame is refined once, then nothing is rendered)."""
    x = 430 + 25 * math.sin(i / 7)
    y = 228 + 20 * math.cos(i / 11)
    phase = i % 50
    if phase == 0:
        v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.PRESS, 0)
    v.on_cursor(v.window, x, y)
    if phase == 49:
        v.on_mouse_button(v.window, glfw.MOUSE_BUTTON_LEFT, glfw.RELEASE, 0)
    elif phase == 20:
        v.on_scroll(v.window, 0, 1)
    elif phase == 45:
        v.on_scroll(v.window, 0, -1)
    if i % 10 == 5:
        v.on_key(v.window, glfw.KEY_W if i % 20 == 5 else glfw.KEY_S, 0, glfw.PRESS, 0)


@pytest.mark.parametrize("validation", [True, False], ids=["validation-layer", "no-layer"])
def test_viewer_soak_2000_frames(xvfb, validation):
    pytest.importorskip("glfw", reason="the viewer needs the [viewer] extra; ./run.sh installs it")
    pytest.importorskip("imgui_bundle", reason="the viewer needs the [viewer] extra; ./run.sh installs it")
    run_in_fresh_process(f"viewer_soak({validation})", timeout=900)


def viewer_soak(validation: bool) -> None:
    import glfw
    from ngrender.viewer.app import Viewer

    schedule = PERIOD * (VIEWER_FRAMES // VIEWER_PERIOD)
    objects: dict[tuple[str, str], dict[str, int]] = {}   # live objects of each combination, first visit
    mismatches, messages, samples = [], [], []
    frame = switches = 0
    moved = set()
    start = time.perf_counter()
    # Dynamic resolution off: every frame at the same 80x45, so that states compare (it is tested in test_viewer)
    with Viewer(SCENES / "gigapixel.json", size=VIEWER_SIZE, validation=validation, vsync=False,
                resolution_scale=VIEWER_SCALE, dynamic=False) as v:
        devices = (v.device, v.render_device)  # their messages at destroy (undestroyed children) count too
        for index, (scene, pipeline, frames) in enumerate(schedule):
            if v.scene.path.stem != scene:
                v.switch_scene(SCENES / f"{scene}.json")
                switches += 1
            if v.pipeline != pipeline:
                v.set_pipeline(pipeline)
                switches += 1
            if index % len(PERIOD) == 9:  # the gigapixel fused-rest visit: overlay off, then on again
                v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)
            for k in range(frames):
                _inject_motion(v, glfw, frame)
                assert v.step(), "the viewer window closed"
                frame += 1
                if k == min(1, frames - 1):  # the overlay's geometry buffers appear with the first ImGui lists
                    first = live_objects()
                if frame % VIEWER_RSS_EVERY == 0:
                    samples.append((frame, index, (scene, pipeline), rss_bytes(), heap_bytes()))
            if index % len(PERIOD) == 9:
                v.on_key(v.window, glfw.KEY_TAB, 0, glfw.PRESS, 0)
            if v.controls.moved:
                moved.add(scene)
            now = live_objects()
            key = (scene, pipeline)
            objects.setdefault(key, now)
            if now != first or now != objects[key]:
                mismatches.append((frame, key, first, now, objects[key]))
            messages += v.messages()
            assert v.stats.width == 80 and v.stats.height == 45 and v.stats.pipeline == pipeline
        rendered = v.frames_rendered
    seconds = time.perf_counter() - start
    after_close = live_objects()
    messages += [m for d in devices for m in d.take_messages()]

    # The trend is taken at one and the same state, gigapixel / fused (about 200 frames of each period): the
    # live app's own buffers (an unfused 3D app holds MiBs of per-ray state) are then the same at every sample.
    steady = [(f, visit, rss, heap) for f, visit, key, rss, heap in samples if key == ("gigapixel", "fused")]
    xs, visits, ys, heaps = zip(*[s for s in steady if s[0] > VIEWER_WARMUP])
    kib_per_frame = slope(xs, ys) / KIB
    kib_within = within_visit_slope(xs, ys, visits) / KIB
    # Across switches: the floors of malloc's bytes in use (RSS floors step by about 4 MiB either way between
    # visits, from the driver's JIT code and mappings; malloc's floors moved 20 KiB in 1,200 frames).
    kib_heap = floor_slope(xs, heaps, visits) / KIB if heaps[0] is not None else floor_slope(xs, ys, visits) / KIB
    rss_floors, heap_floors = {}, {}
    for f, visit, rss, heap in steady:
        rss_floors[visit] = min(rss_floors.get(visit, rss), rss)
        heap_floors[visit] = min(heap_floors.get(visit, heap or 0), heap or 0)
    every = [rss for *_, rss, _ in samples]
    figures = (f"viewer soak, validation layer {'on' if validation else 'off'}: {frame} frames ({switches} "
               f"scene/pipeline switches) in {seconds:.1f} s ({frame / seconds:.0f} frames/s); at gigapixel/fused, "
               f"RSS {steady[0][2] / MIB:.1f} MiB at frame {steady[0][0]}, {ys[0] / MIB:.1f} MiB after the "
               f"{VIEWER_WARMUP}-frame warm-up, {ys[-1] / MIB:.1f} MiB at frame {xs[-1]} (all states: min "
               f"{min(every) / MIB:.1f}, max {max(every) / MIB:.1f}); RSS slope {kib_per_frame:+.3f} KiB/frame over "
               f"{len(xs)} samples, {kib_within:+.3f} KiB/frame within visits; malloc's bytes in use: "
               f"{kib_heap:+.3f} KiB/frame over the {len(set(visits))} visits' floors (bound "
               f"{VIEWER_MAX_KIB_PER_FRAME}); floors of every visit, RSS MiB: "
               f"{' '.join(f'{v / MIB:.1f}' for v in rss_floors.values())}, malloc MiB: "
               f"{' '.join(f'{v / MIB:.2f}' for v in heap_floors.values())}; live objects at gigapixel/fused "
               f"{objects[('gigapixel', 'fused')]}, after close {after_close}; {len(messages)} validation messages")
    print("\n" + figures)
    assert frame == VIEWER_FRAMES and rendered == VIEWER_FRAMES, f"{rendered} frames rendered; {figures}"
    assert moved == {s for s, *_ in PERIOD}, f"the camera did not move in {set(s for s, *_ in PERIOD) - moved}"
    assert not mismatches, f"live Vulkan objects changed (frame, combination, first frame, now, first visit): " \
                           f"{mismatches[:3]}; {figures}"
    assert messages == [], f"{messages[:3]}; {figures}"
    assert after_close == {}, figures
    assert kib_within < VIEWER_MAX_KIB_PER_FRAME, f"resident memory grows while frames are drawn: {figures}"
    if not validation:  # the layer's bookkeeping grows with every pipeline created (see the module's docstring)
        assert kib_heap < VIEWER_MAX_KIB_PER_FRAME, f"memory in use grows across visits: {figures}"


# -- renders and sessions --------------------------------------------------------------------------------------

RENDERS = 500
RENDER_WARMUP = 100
RENDER_SIZE = (32, 32)
# Bound: 1 KiB/render, i.e. 400 KiB over the 400 measured renders; one leaked 32x32 frame per render (3 KiB RGB,
# 4 KiB as the RGBA tile read back) exceeds it 3-4 times.
RENDER_MAX_KIB_PER_RENDER = 1.0

DEFAULT_SCENES = ("gigapixel", "sdf_bunny", "nerf_bunny", "volume_head")   # each app's default scene
CYCLES = 25
CYCLE_WARMUP = 5
# Bound: 512 KiB per cycle (one session of each of the 4 apps), 10 MiB over the 20 measured cycles. On lavapipe
# RSS climbs about 10 MiB over the first 5 cycles, then about 120 KiB/cycle and levels off near cycle 25 (malloc's
# bytes in use grow 1-5 KiB per cycle: glibc fragmentation and driver high-water marks, not live objects). One
# leaked session per cycle exceeds the bound 4-9 times with its model's weights alone (2-4.5 MiB for these
# scenes), not counting its device (instance, validation layer, lavapipe threads) and buffers.
CYCLE_MAX_KIB_PER_CYCLE = 512.0


def test_500_renders_and_sessions_opened_and_closed():
    run_in_fresh_process("renders_and_sessions()", timeout=900)


def renders_and_sessions() -> None:
    from ngrender.session import RenderSession

    messages = []
    start = time.perf_counter()
    samples, counts = [], []
    with RenderSession.from_scene(SCENES / "gigapixel.json", validation=True) as session:
        base = session.view()
        for i in range(RENDERS):
            # A moving, zooming window over the image, as a client re-rendering a view would ask for.
            k = 0.25 + 0.2 * math.sin(i / 17)
            cx, cy = 0.5 + 0.2 * math.cos(i / 23), 0.5 + 0.2 * math.sin(i / 29)
            view = dataclasses.replace(base, window=(cx - k, cy - k, cx + k, cy + k))
            image, _ = session.renderer.render(*RENDER_SIZE, view)
            assert image.shape == (RENDER_SIZE[1], RENDER_SIZE[0], 3)
            counts.append(live_objects())
            if (i + 1) % 10 == 0:
                samples.append((i + 1, rss_bytes()))
    messages += session.device.take_messages()  # including any at destroy
    render_s = time.perf_counter() - start
    after_renders = live_objects()
    xs, ys = zip(*[(n, r) for n, r in samples if n > RENDER_WARMUP])
    kib_per_render = slope(xs, ys) / KIB
    render_figures = (f"{RENDERS} renders of {RENDER_SIZE[0]}x{RENDER_SIZE[1]} in {render_s:.1f} s; RSS "
                      f"{samples[0][1] / MIB:.1f} MiB after {samples[0][0]}, {ys[0] / MIB:.1f} MiB after the "
                      f"{RENDER_WARMUP}-render warm-up, {ys[-1] / MIB:.1f} MiB at the end; slope "
                      f"{kib_per_render:+.3f} KiB/render (bound {RENDER_MAX_KIB_PER_RENDER}); live objects "
                      f"while rendering {counts[0]}, after close {after_renders}; {len(messages)} validation messages")
    print("\n" + render_figures)

    start = time.perf_counter()
    cycle_samples, leftovers, cycle_messages = [], [], []
    for cycle in range(CYCLES):
        for scene in DEFAULT_SCENES:
            with RenderSession.from_scene(SCENES / f"{scene}.json", validation=True) as session:
                image, _ = session.renderer.render(16, 16, session.view())
                assert image.shape == (16, 16, 3)
            cycle_messages += session.device.take_messages()  # including any at destroy
            if live_objects():
                leftovers.append((cycle, scene, live_objects()))
        cycle_samples.append((cycle + 1, rss_bytes()))
    cycle_s = time.perf_counter() - start
    cxs, cys = zip(*[(n, r) for n, r in cycle_samples if n > CYCLE_WARMUP])
    kib_per_cycle = slope(cxs, cys) / KIB
    cycle_figures = (f"{CYCLES} cycles of {len(DEFAULT_SCENES)} sessions ({', '.join(DEFAULT_SCENES)}) opened, "
                     f"rendered 16x16 and closed in {cycle_s:.1f} s ({cycle_s / CYCLES / len(DEFAULT_SCENES):.2f} s "
                     f"per session); RSS {cycle_samples[0][1] / MIB:.1f} MiB after the first cycle, "
                     f"{cys[0] / MIB:.1f} MiB after the {CYCLE_WARMUP}-cycle warm-up, {cys[-1] / MIB:.1f} MiB at "
                     f"the end; slope {kib_per_cycle:+.1f} KiB/cycle (bound {CYCLE_MAX_KIB_PER_CYCLE}); live objects "
                     f"left after a close: {leftovers[:3] or 'none'}; {len(cycle_messages)} validation messages")
    print(cycle_figures)

    assert all(c == counts[0] for c in counts), f"live objects changed while rendering; {render_figures}"
    assert after_renders == {}, render_figures
    assert messages == [], f"{messages[:3]}; {render_figures}"
    assert kib_per_render < RENDER_MAX_KIB_PER_RENDER, f"resident memory grows: {render_figures}"
    assert not leftovers, cycle_figures
    assert cycle_messages == [], f"{cycle_messages[:3]}; {cycle_figures}"
    assert kib_per_cycle < CYCLE_MAX_KIB_PER_CYCLE, f"resident memory grows: {cycle_figures}"
