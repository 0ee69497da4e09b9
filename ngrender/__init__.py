"""ngrender: neural-graphics renderer (NeRF, neural SDF, gigapixel image, neural volume) on Vulkan compute."""

__version__ = "0.1.0"
