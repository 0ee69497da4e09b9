"""The only package that imports `vulkan`: device, resources, compute pipelines, timing."""
from .live import live_objects

__all__ = ["live_objects"]
