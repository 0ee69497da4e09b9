"""Buffers and texel-buffer views: one small class per handle, explicit destroy()."""
from __future__ import annotations

import numpy as np

from ..errors import NgrenderError
from .device import Device
from .live import Handle

# Buffer usages by the role a shader gives them.
STORAGE = "storage"
UNIFORM = "uniform"
TEXEL = "texel"


class OutOfDeviceMemory(NgrenderError):
    """An allocation the device cannot satisfy (the caller may tile and retry)."""


class Buffer(Handle):
    """A buffer with its own memory. ``host=True`` keeps it mapped (numpy view via ``array``); otherwise it
    lives in device-local memory and is filled through a staging buffer when that memory is not mappable."""

    kind = "buffer"

    def __init__(self, device: Device, size: int, usages: tuple[str, ...] = (STORAGE,), host: bool = True) -> None:
        vk = device.vk
        self.device, self.size = device, int(size)
        self._buffer = self._memory = self._mapped = None
        super().__init__()
        usage = vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
        for role in usages:
            usage |= {STORAGE: vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                      UNIFORM: vk.VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT,
                      TEXEL: vk.VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT}[role]
        try:
            self._buffer = vk.vkCreateBuffer(device.handle, vk.VkBufferCreateInfo(
                size=max(self.size, 4), usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE), None)
            req = vk.vkGetBufferMemoryRequirements(device.handle, self._buffer)
            host_bits = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
            wanted = [host_bits | vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT, host_bits] if host else \
                [vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0]
            type_index, flags = _memory_type(device, req.memoryTypeBits, wanted)
            self.mappable = bool(flags & vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) and \
                bool(flags & vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
            self.alloc_size = int(req.size)
            self._memory = vk.vkAllocateMemory(device.handle, vk.VkMemoryAllocateInfo(
                allocationSize=req.size, memoryTypeIndex=type_index), None)
            vk.vkBindBufferMemory(device.handle, self._buffer, self._memory, 0)
            if self.mappable:
                # Map with the real size, never WHOLE_SIZE (the `vulkan` package sizes the view from it).
                self._mapped = vk.vkMapMemory(device.handle, self._memory, 0, self.alloc_size, 0)
        except (vk.VkErrorOutOfDeviceMemory, vk.VkErrorOutOfHostMemory):
            self.destroy()
            raise OutOfDeviceMemory(f"cannot allocate a {self.size / 2**20:.1f} MiB buffer on "
                                    f"{device.info.name}") from None
        except BaseException:
            self.destroy()
            raise

    @property
    def handle(self):
        return self._buffer

    def array(self, dtype=np.uint8, count: int | None = None) -> np.ndarray:
        """A numpy view of the mapped memory (only for mappable buffers)."""
        if self._mapped is None:
            raise RuntimeError("buffer memory is not host-visible")
        dtype = np.dtype(dtype)
        count = self.size // dtype.itemsize if count is None else count
        return np.frombuffer(self._mapped, dtype=dtype, count=count)

    def write(self, data: np.ndarray, offset: int = 0) -> None:
        raw = np.ascontiguousarray(data).view(np.uint8).ravel()
        if offset + raw.size > self.size:
            raise ValueError(f"write of {raw.size} bytes at {offset} overflows a {self.size}-byte buffer")
        if self._mapped is not None:
            self.array(np.uint8)[offset:offset + raw.size] = raw
            return
        with Buffer(self.device, raw.size, host=True) as staging:
            staging.write(raw)
            self._copy(staging, self, raw.size, 0, offset)

    def read(self, dtype=np.uint8, count: int | None = None) -> np.ndarray:
        """A copy of the contents."""
        if self._mapped is not None:
            return self.array(dtype, count).copy()
        nbytes = self.size if count is None else count * np.dtype(dtype).itemsize
        with Buffer(self.device, nbytes, host=True) as staging:
            self._copy(self, staging, nbytes, 0, 0)
            return staging.array(dtype, count).copy()

    def _copy(self, src: "Buffer", dst: "Buffer", size: int, src_offset: int, dst_offset: int) -> None:
        vk = self.device.vk
        region = vk.VkBufferCopy(srcOffset=src_offset, dstOffset=dst_offset, size=size)
        self.device.submit(lambda cmd: vk.vkCmdCopyBuffer(cmd, src.handle, dst.handle, 1, [region]))

    def _release(self) -> None:
        vk, dev = self.device.vk, self.device.handle
        if self._mapped is not None:
            vk.vkUnmapMemory(dev, self._memory)
            self._mapped = None
        if self._buffer is not None:
            vk.vkDestroyBuffer(dev, self._buffer, None)
        if self._memory is not None:
            vk.vkFreeMemory(dev, self._memory, None)


def _memory_type(device: Device, type_bits: int, wanted: list[int]) -> tuple[int, int]:
    """First memory type allowed by type_bits whose flags include one of ``wanted`` (in order)."""
    props = device.memory_properties
    for want in wanted:
        for i in range(props.memoryTypeCount):
            flags = props.memoryTypes[i].propertyFlags
            if type_bits & (1 << i) and (flags & want) == want:
                return i, flags
    raise NgrenderError(f"{device.info.name} has no suitable memory type")


class TexelBufferView(Handle):
    """A uniform texel buffer view (``samplerBuffer`` / ``usamplerBuffer`` in GLSL) over a buffer."""

    kind = "buffer_view"

    FORMATS = {"r32f": "VK_FORMAT_R32_SFLOAT", "rg32f": "VK_FORMAT_R32G32_SFLOAT",
               "rgba32f": "VK_FORMAT_R32G32B32A32_SFLOAT", "r16f": "VK_FORMAT_R16_SFLOAT",
               "rg16f": "VK_FORMAT_R16G16_SFLOAT", "rgba16f": "VK_FORMAT_R16G16B16A16_SFLOAT",
               "r8ui": "VK_FORMAT_R8_UINT"}

    def __init__(self, buffer: Buffer, fmt: str) -> None:
        vk = buffer.device.vk
        self.device, self.buffer, self.format = buffer.device, buffer, fmt
        vk_format = getattr(vk, self.FORMATS[fmt])
        texel = {"r32f": 4, "rg32f": 8, "rgba32f": 16, "r16f": 2, "rg16f": 4, "rgba16f": 8, "r8ui": 1}[fmt]
        self.elements = buffer.size // texel
        limit = int(self.device.limits.maxTexelBufferElements)
        if self.elements > limit:
            raise NgrenderError(f"grid table of {self.elements:,} texels exceeds this device's texel-buffer "
                                f"limit of {limit:,}; use the buffered kernel variant")
        self._view = vk.vkCreateBufferView(self.device.handle, vk.VkBufferViewCreateInfo(
            buffer=buffer.handle, format=vk_format, offset=0, range=self.elements * texel), None)
        super().__init__()

    @property
    def handle(self):
        return self._view

    def _release(self) -> None:
        self.device.vk.vkDestroyBufferView(self.device.handle, self._view, None)
