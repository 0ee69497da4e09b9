"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class NgrenderError(Exception):
    """A problem the user can fix (bad input, missing file, no device); never a bug."""

    exit_code = 2


class ConfigError(NgrenderError):
    """A scene file, network config or weights file that is malformed or inconsistent."""


class DeviceError(NgrenderError):
    """No usable Vulkan driver or device, or the requested device does not exist."""

    exit_code = 3


class OutOfDeviceMemory(NgrenderError):
    """An allocation the device cannot satisfy. Nothing retries it: the user gets one line naming the buffer's
    size and the device, and can ask for less (a smaller --tile, a smaller model or another variant)."""


class ShaderCompileError(NgrenderError):
    """GLSL that does not compile; the message names file:line and shows the source line."""

    exit_code = 4
