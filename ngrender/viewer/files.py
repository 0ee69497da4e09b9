"""What the viewer writes: screenshots of the rendered frame, the camera saved into the scene file, and camera
paths (a list of cameras beside the scene)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import NgrenderError
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


def add_camera_to_path(scene: Scene, camera: dict) -> Path:
    """Append ``camera`` to ``<scene>_camera_path.json`` ({"frames": [...]})."""
    path = scene.path.with_name(f"{scene.path.stem}_camera_path.json")
    data = read_json(path, "camera path") if path.exists() else {"scene": scene.path.name, "frames": []}
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise NgrenderError(f"{path} is not a camera path written by the viewer (no 'frames' list)")
    data["frames"].append(camera)
    write_json(path, data)
    return path
