"""One module per app: what it uploads, which shader variant it builds, how a view becomes dispatches."""
from __future__ import annotations

from ..errors import ConfigError

APPS = ("gigapixel", "sdf", "volume", "nerf")


def create_app(device, model, variant: str = "auto", **options):
    """The app object for a model (its ``app`` field picks the module)."""
    if model.app == "gigapixel":
        from .gigapixel import GigapixelApp
        return GigapixelApp(device, model, variant, **options)
    if model.app == "sdf":
        from .sdf import SdfApp
        return SdfApp(device, model, variant, **options)
    if model.app == "volume":
        from .volume import VolumeApp
        return VolumeApp(device, model, variant, **options)
    if model.app == "nerf":
        from .nerf import NerfApp
        return NerfApp(device, model, variant, **options)
    raise ConfigError(f"model is for app {model.app!r}; this ngrender renders {', '.join(APPS)}")
