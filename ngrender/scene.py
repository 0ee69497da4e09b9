"""Scene files: JSON naming the app, the model (path relative to the scene file), render settings and view."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apps import APPS
from .errors import ConfigError

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


def _positive_int(value: Any, what: str, source: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{source}: {what} must be a positive integer, got {value!r}")
    return value


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file; every problem is one ConfigError naming the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"scene file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"scene file {path} is a directory") from None
    except UnicodeDecodeError:
        raise ConfigError(f"scene file {path} is not a text file") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"scene file {path} is not valid JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scene is a JSON object")
    unknown = set(data) - SCENE_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown field(s) {sorted(unknown)}; a scene has {sorted(SCENE_KEYS)}")
    for key in ("app", "model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{path}: field '{key}' (a string) is required")
    app = data["app"]
    if app not in APPS:
        raise ConfigError(f"{path}: app {app!r} is not one of {list(APPS)}")
    render = data.get("render", {})
    view = data.get("view", {})
    if not isinstance(render, dict) or not isinstance(view, dict):
        raise ConfigError(f"{path}: 'render' and 'view' must be objects")
    if set(render) - RENDER_KEYS:
        raise ConfigError(f"{path}: unknown render field(s) {sorted(set(render) - RENDER_KEYS)}; "
                          f"allowed {sorted(RENDER_KEYS)}")
    scene = Scene(path, app, (path.parent / data["model"]).resolve(), description=str(data.get("description", "")))
    if "width" in render:
        scene.width = _positive_int(render["width"], "render.width", path)
    if "height" in render:
        scene.height = _positive_int(render["height"], "render.height", path)
    if "variant" in render:
        scene.variant = str(render["variant"])
    if "tile" in render:
        tile = render["tile"]
        if not (isinstance(tile, list) and len(tile) == 2):
            raise ConfigError(f"{path}: render.tile must be [width, height]")
        scene.tile = (_positive_int(tile[0], "render.tile[0]", path), _positive_int(tile[1], "render.tile[1]", path))
    scene.view = dict(view)  # checked field by field by the app that renders it
    return scene
