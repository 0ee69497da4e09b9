"""What the viewer writes: screenshots of the rendered frame, the camera saved into the scene file, and camera
paths (instant-ngp's base_cam.json beside the scene, so a path made here opens in instant-ngp)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..camera_path import INGP, append_keyframe, load_camera_path
from ..errors import ConfigError, NgrenderError
from ..fileio import read_json, write_json
from ..pngio import PngStripWriter
from ..scene import Scene


def write_screenshot(image: np.ndarray, scene: Scene, path: str | Path | None = None) -> Path:
    """``image`` (the frame without the overlay) as a PNG; default: next to the scene, named by the time."""
    path = Path(path or scene.path.with_name(f"{scene.path.stem}_{time.strftime('%Y%m%d-%H%M%S')}.png"))
    writer = PngStripWriter(path, image.shape[1], image.shape[0])
    writer.write(image)
    writer.close()
    return path


def save_camera(scene: Scene, camera: dict) -> Path:
    """Write ``camera`` (view fields: ``camera``, or ``window`` for GIA) into the scene file; every other field
    is kept. A model or snapshot opened without a scene gets one beside it, ``<name>_scene.json``: the source
    is never written."""
    path = scene.path
    if path.suffix.lower() == ".json":
        data = read_json(path, "scene file")
    else:
        path = path.with_name(f"{path.stem}_scene.json")
        data = read_json(path, "scene file") if path.exists() else {
            "description": f"{scene.app} view of {scene.path.name}", "app": scene.app,
            "model": scene.path.name, "render": {"width": scene.width, "height": scene.height},
            "view": dict(scene.view)}
    data.setdefault("view", {}).update(camera)
    write_json(path, data)
    return path


def base_cam_path(scene: Scene) -> Path:
    return scene.path.with_name(f"{scene.path.stem}_base_cam.json")


def add_camera_to_path(scene: Scene, keyframe: dict) -> tuple[Path, int]:
    """Append ``keyframe`` (camera_path.camera_keyframe / window_keyframe) to ``<scene>_base_cam.json``; returns
    the file and its keyframe count. An existing file that is not an instant-ngp camera path for this scene's app
    is left as it is (a NgrenderError says why)."""
    path = base_cam_path(scene)
    data = None
    if path.exists():
        try:
            kind = load_camera_path(path, scene.app).format
        except ConfigError as exc:
            raise NgrenderError(f"{path.name} is left as it is: it is not a camera path the viewer can extend "
                                f"({exc})") from None
        if kind != INGP:
            raise NgrenderError(f"{path.name} is left as it is: it is a {kind}, not an {INGP}")
        data = read_json(path, "camera path")
    doc = append_keyframe(data, keyframe)
    write_json(path, doc)
    return path, len(doc["path"])
