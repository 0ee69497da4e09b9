"""Read a window's pixels back from the X server (XGetImage through ctypes): what the user sees, for the
viewer's tests under Xvfb; and start a private Xvfb (the tests' and the viewer benchmark's display)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess

import numpy as np

from ..errors import NgrenderError

Z_PIXMAP = 2
ALL_PLANES = ctypes.c_ulong(0xFFFFFFFF)


class _Funcs(ctypes.Structure):
    _fields_ = [("create_image", ctypes.c_void_p), ("destroy_image", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)),
                ("get_pixel", ctypes.c_void_p), ("put_pixel", ctypes.c_void_p), ("sub_image", ctypes.c_void_p),
                ("add_pixel", ctypes.c_void_p)]


class _XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int),
                ("format", ctypes.c_int), ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int),
                ("depth", ctypes.c_int), ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int),
                ("red_mask", ctypes.c_ulong), ("green_mask", ctypes.c_ulong), ("blue_mask", ctypes.c_ulong),
                ("obdata", ctypes.c_void_p), ("f", _Funcs)]


def grab_window(glfw_window) -> np.ndarray:
    """(height, width, 3) uint8 of a glfw window's contents on an X11 display (24/32-bit TrueColor)."""
    import glfw

    lib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    lib.XGetImage.restype = ctypes.POINTER(_XImage)
    lib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                              ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    lib.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
    display, window = glfw.get_x11_display(), glfw.get_x11_window(glfw_window)
    width, height = glfw.get_framebuffer_size(glfw_window)
    lib.XSync(display, 0)
    image = lib.XGetImage(display, window, 0, 0, width, height, ALL_PLANES, Z_PIXMAP)
    if not image:
        raise RuntimeError("XGetImage failed")
    try:
        img = image.contents
        if img.bits_per_pixel != 32:
            raise RuntimeError(f"unsupported X image format: {img.bits_per_pixel} bits per pixel")
        raw = np.ctypeslib.as_array(img.data, shape=(img.height * img.bytes_per_line,)).copy()
        pixels = raw.reshape(img.height, img.bytes_per_line)[:, :img.width * 4].reshape(img.height, img.width, 4)
        return pixels[..., [2, 1, 0]].copy()  # BGRX in memory (little-endian 0x00RRGGBB)
    finally:
        image.contents.f.destroy_image(ctypes.cast(image, ctypes.c_void_p))


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """A private X server and its display name: -displayfd lets Xvfb pick a free display number itself and
    write it to the pipe once it accepts clients. The caller terminates the process."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten",
                                 "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        os.close(read_end)
        raise NgrenderError(f"cannot start Xvfb: {exc.strerror or exc} (./run.sh installs it)") from None
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        proc.wait()
        raise NgrenderError("Xvfb did not start")
    return proc, f":{number}"
