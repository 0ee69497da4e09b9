"""Scene files: JSON naming the app, the model (path relative to the scene file), render settings and view."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import validate
from .apps.registry import app_names, app_spec
from .apps.views import VARIANTS
from .errors import ConfigError
from .fileio import read_json
from .limits import MAX_SIDE

ROOT = Path(__file__).resolve().parent.parent
MAX_TILE_SIDE = 8192  # a tile is one dispatch's output buffer: 8192^2 RGBA8 is 256 MiB

SCENE_KEYS = {"app", "model", "render", "view", "description"}
RENDER_KEYS = {"width", "height", "variant", "tile"}


@dataclass
class Scene:
    path: Path
    app: str
    model_path: Path
    width: int = 1024
    height: int = 1024
    variant: str = "auto"
    tile: tuple[int, int] = (1024, 1024)
    view: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file; every problem is one ConfigError naming the file and the field."""
    path = Path(path)
    return scene_from_data(read_json(path, "scene file"), path)


def scene_from_data(data: Any, path: Path) -> Scene:
    """A scene from its JSON data; ``path`` is where it lives (the model path is relative to its folder)."""
    data = validate.obj(data, f"scene file {path}", SCENE_KEYS, ("app", "model"))
    where = str(path)
    app = validate.string(data["app"], f"{where}: app", app_names())
    model = validate.string(data["model"], f"{where}: model")
    render = validate.obj(data.get("render", {}), f"{where}: render", RENDER_KEYS)
    view = validate.obj(data.get("view", {}), f"{where}: view")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise validate.fail(f"{where}: description", "a string", description)
    # abspath, not resolve(): a symlink loop is reported when the model is read, not raised here
    scene = Scene(path, app, Path(os.path.abspath(path.parent / model)), description=description)
    if "width" in render:
        scene.width = validate.integer(render["width"], f"{where}: render.width", 1, MAX_SIDE)
    if "height" in render:
        scene.height = validate.integer(render["height"], f"{where}: render.height", 1, MAX_SIDE)
    if "variant" in render:
        scene.variant = validate.string(render["variant"], f"{where}: render.variant", VARIANTS)
    if "tile" in render:
        tile = render["tile"]
        if not (isinstance(tile, list) and len(tile) == 2):
            raise validate.fail(f"{where}: render.tile", "[width, height]", tile)
        scene.tile = (validate.integer(tile[0], f"{where}: render.tile[0]", 1, MAX_TILE_SIDE),
                      validate.integer(tile[1], f"{where}: render.tile[1]", 1, MAX_TILE_SIDE))
    scene.view = dict(view)  # checked field by field by the app that renders it
    return scene


def default_scene(model, model_file: str) -> dict:
    """The scene a trainer writes beside its model: the app's default view at a size that suits the app
    (``model``: a Model, or the ModelHeader of a model file)."""
    if "source_size" in model.extra:  # a model fitted to an image: its aspect, longest side <= 1024
        w, h = model.extra["source_size"]
        scale = min(1.0, 1024 / max(w, h))
        width, height = max(1, round(w * scale)), max(1, round(h * scale))
    else:
        width = height = 512
    return {"description": f"{model.app} model {model_file} ({model.geometry.describe()})", "app": model.app,
            "model": model_file, "render": {"width": width, "height": height}}


def open_scene(path: str | Path, image_size: tuple[int, int] | None = None,
               volume_resolution: int | None = None) -> tuple[Scene, Any]:
    """(scene, model or model path) for what a user may name: a scene file (whose model may be a snapshot too),
    a model file (rendered with its app's default view) or an instant-ngp snapshot (``.ingp`` / ``.msgpack``,
    imported in memory; the two options stand in for what such a snapshot does not store, see snapshot.py)."""
    from .snapshot import import_snapshot, is_snapshot_path

    path = Path(path)
    if is_snapshot_path(path):
        imported = import_snapshot(path, image_size, volume_resolution)
        data = imported.scene(path.name, f"instant-ngp {imported.mode} snapshot {path.name}")
        return scene_from_data(data, path), imported.model
    if path.suffix.lower() == ".safetensors":
        from .model import read_header

        header = read_header(path)
        return scene_from_data(default_scene(header, path.name), path), path
    scene = load_scene(path)
    if is_snapshot_path(scene.model_path):  # a scene may name a snapshot as its model
        return scene, import_snapshot(scene.model_path, image_size, volume_resolution).model
    return scene, scene.model_path


def load_scene_and_model(path: str | Path) -> tuple[Scene, Any]:
    """open_scene with the model read (for callers that check no device limits first)."""
    from .model import Model, load_model

    scene, model = open_scene(path)
    return scene, model if isinstance(model, Model) else load_model(model)


def scene_for(app: str, preset: str = "hash") -> Path:
    """The scene of an app's model trained on real data (its registered ``real_scene``): scenes/<stem>.json for
    the hash grid, scenes/<stem>_<preset>.json for the other encoding presets."""
    stem = app_spec(app).real_scene
    if stem is None:
        raise ConfigError(f"app {app!r} has no real-data scene; name a scene or model file")
    return ROOT / "scenes" / (f"{stem}.json" if preset == "hash" else f"{stem}_{preset}.json")
