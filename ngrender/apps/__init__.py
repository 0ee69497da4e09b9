"""One module per app: what it uploads, which shader variant it builds, how a view becomes dispatches. Each
registers itself (registry.py); this package's own namespace stays Vulkan-free."""
from __future__ import annotations

from .registry import AppSpec, app_names, app_spec, create_app, register_app

__all__ = ["AppSpec", "app_names", "app_spec", "create_app", "register_app"]
