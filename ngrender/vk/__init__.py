"""The only package that imports `vulkan`: device, resources, compute pipelines, timing, presentation. Every
object follows one lifetime (live.py: ``Handle`` / ``Owner``); it takes SPIR-V, never GLSL (shaders.py is above
it)."""
from .live import live_objects

__all__ = ["live_objects"]
