"""Where ngrender keeps compiled SPIR-V and the driver's pipeline cache."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import NgrenderError

CACHE_ENV = "NGRENDER_CACHE_DIR"


def cache_dir() -> Path:
    """``$NGRENDER_CACHE_DIR``, else ``$XDG_CACHE_HOME/ngrender``, else ``~/.cache/ngrender``."""
    if os.environ.get(CACHE_ENV):
        root, what = Path(os.environ[CACHE_ENV]), CACHE_ENV
    else:
        root, what = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ngrender", "the cache folder"
    if root.exists() and not root.is_dir():
        raise NgrenderError(f"{what} {root} is a file, not a folder; point {CACHE_ENV} at a folder you can write")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NgrenderError(f"{what} {root} cannot be used: {exc.strerror or exc}; point {CACHE_ENV} at a folder "
                            "you can write") from None
    return root


def configure_driver_cache() -> None:
    """Point Mesa's shader cache at a fixed folder so lavapipe's first-dispatch JIT is paid once per shader.

    Must run before the Vulkan instance is created; a folder the user already chose is kept.
    """
    if "MESA_SHADER_CACHE_DIR" not in os.environ:
        path = cache_dir() / "mesa"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return  # a read-only cache: the driver compiles without one (Mesa verifies its own entries)
        os.environ["MESA_SHADER_CACHE_DIR"] = str(path)
    os.environ.setdefault("MESA_SHADER_CACHE_MAX_SIZE", "1G")
