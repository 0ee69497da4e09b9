"""Buffers, texel-buffer views, images, image views, samplers, framebuffers and semaphores: one small class per
handle (see live.py for their common lifetime)."""
from __future__ import annotations

import numpy as np

from ..errors import NgrenderError, OutOfDeviceMemory
from .device import Device
from .live import Handle

# Buffer usages by the role a shader gives them.
STORAGE = "storage"
UNIFORM = "uniform"
TEXEL = "texel"
VERTEX = "vertex"
INDEX = "index"


class Buffer(Handle):
    """A buffer with its own memory. ``host=True`` keeps it mapped (numpy view via ``array``); otherwise it
    lives in device-local memory and is filled through a staging buffer when that memory is not mappable."""

    kind = "buffer"
    destroy_function = "vkDestroyBuffer"

    def _create(self, device: Device, size: int, usages: tuple[str, ...] = (STORAGE,), host: bool = True) -> None:
        vk = device.vk
        self.device, self.size = device, int(size)
        self._mapped = None
        usage = vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT
        for role in usages:
            usage |= {STORAGE: vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                      UNIFORM: vk.VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT,
                      TEXEL: vk.VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT,
                      VERTEX: vk.VK_BUFFER_USAGE_VERTEX_BUFFER_BIT,
                      INDEX: vk.VK_BUFFER_USAGE_INDEX_BUFFER_BIT}[role]
        try:
            self.handle = self.keep(vk.vkCreateBuffer(device.handle, vk.VkBufferCreateInfo(
                size=max(self.size, 4), usage=usage, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE), None))
            req = vk.vkGetBufferMemoryRequirements(device.handle, self.handle)
            host_bits = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
            wanted = [host_bits | vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT, host_bits] if host else \
                [vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0]
            type_index, flags = _memory_type(device, req.memoryTypeBits, wanted)
            self.mappable = bool(flags & vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) and \
                bool(flags & vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
            self.alloc_size = int(req.size)
            self._memory = self.keep(vk.vkAllocateMemory(device.handle, vk.VkMemoryAllocateInfo(
                allocationSize=req.size, memoryTypeIndex=type_index), None), "vkFreeMemory")
            vk.vkBindBufferMemory(device.handle, self.handle, self._memory, 0)
            if self.mappable:
                # Map with the real size, never WHOLE_SIZE (the `vulkan` package sizes the view from it).
                self._mapped = vk.vkMapMemory(device.handle, self._memory, 0, self.alloc_size, 0)
                self.on_release(self._unmap)
        except (vk.VkErrorOutOfDeviceMemory, vk.VkErrorOutOfHostMemory):
            raise OutOfDeviceMemory(f"cannot allocate a {self.size / 2**20:.1f} MiB buffer on "
                                    f"{device.info.name}") from None

    def _unmap(self) -> None:
        self.device.vk.vkUnmapMemory(self.device.handle, self._memory)
        self._mapped = None

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
    destroy_function = "vkDestroyBufferView"

    FORMATS = {"r32f": "VK_FORMAT_R32_SFLOAT", "rg32f": "VK_FORMAT_R32G32_SFLOAT",
               "rgba32f": "VK_FORMAT_R32G32B32A32_SFLOAT", "r16f": "VK_FORMAT_R16_SFLOAT",
               "rg16f": "VK_FORMAT_R16G16_SFLOAT", "rgba16f": "VK_FORMAT_R16G16B16A16_SFLOAT",
               "r8ui": "VK_FORMAT_R8_UINT"}

    def _create(self, buffer: Buffer, fmt: str) -> None:
        vk = buffer.device.vk
        self.device, self.buffer, self.format = buffer.device, buffer, fmt
        vk_format = getattr(vk, self.FORMATS[fmt])
        texel = {"r32f": 4, "rg32f": 8, "rgba32f": 16, "r16f": 2, "rg16f": 4, "rgba16f": 8, "r8ui": 1}[fmt]
        self.elements = buffer.size // texel
        limit = int(self.device.limits.maxTexelBufferElements)
        if self.elements > limit:
            raise NgrenderError(f"grid table of {self.elements:,} texels exceeds this device's texel-buffer "
                                f"limit of {limit:,}; use the buffered kernel variant")
        self.handle = self.keep(vk.vkCreateBufferView(self.device.handle, vk.VkBufferViewCreateInfo(
            buffer=buffer.handle, format=vk_format, offset=0, range=self.elements * texel), None))


def image_barrier(device: Device, cmd, image, old_layout: int, new_layout: int, src_access: int, dst_access: int,
                  src_stage: int, dst_stage: int) -> None:
    """A layout transition of a whole single-mip colour image."""
    vk = device.vk
    barrier = vk.VkImageMemoryBarrier(
        srcAccessMask=src_access, dstAccessMask=dst_access, oldLayout=old_layout, newLayout=new_layout,
        srcQueueFamilyIndex=vk.VK_QUEUE_FAMILY_IGNORED, dstQueueFamilyIndex=vk.VK_QUEUE_FAMILY_IGNORED, image=image,
        subresourceRange=vk.VkImageSubresourceRange(aspectMask=vk.VK_IMAGE_ASPECT_COLOR_BIT, baseMipLevel=0,
                                                    levelCount=1, baseArrayLayer=0, layerCount=1))
    vk.vkCmdPipelineBarrier(cmd, src_stage, dst_stage, 0, 0, None, 0, None, 1, [barrier])


class ImageView(Handle):
    """A 2D colour view of an image (ours or a swapchain's)."""

    kind = "image_view"
    destroy_function = "vkDestroyImageView"

    def _create(self, device: Device, image, fmt: int) -> None:
        vk = device.vk
        self.device = device
        create = vk.VkImageViewCreateInfo(
            image=image, viewType=vk.VK_IMAGE_VIEW_TYPE_2D, format=fmt,
            subresourceRange=vk.VkImageSubresourceRange(aspectMask=vk.VK_IMAGE_ASPECT_COLOR_BIT, baseMipLevel=0,
                                                        levelCount=1, baseArrayLayer=0, layerCount=1))
        self.handle = self.keep(vk.vkCreateImageView(device.handle, create, None))


class Image2D(Handle):
    """A device-local 2D RGBA8 image with its view: a texture (``upload``) or a render target (``read``)."""

    kind = "image"
    destroy_function = "vkDestroyImage"

    def _create(self, device: Device, width: int, height: int, usage: int, fmt: int | None = None) -> None:
        vk = device.vk
        self.device, self.width, self.height = device, int(width), int(height)
        self.format = vk.VK_FORMAT_R8G8B8A8_UNORM if fmt is None else fmt
        create = vk.VkImageCreateInfo(
            imageType=vk.VK_IMAGE_TYPE_2D, format=self.format,
            extent=vk.VkExtent3D(width=self.width, height=self.height, depth=1), mipLevels=1, arrayLayers=1,
            samples=vk.VK_SAMPLE_COUNT_1_BIT, tiling=vk.VK_IMAGE_TILING_OPTIMAL, usage=usage,
            sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE, initialLayout=vk.VK_IMAGE_LAYOUT_UNDEFINED)
        self.handle = self.keep(vk.vkCreateImage(device.handle, create, None))
        req = vk.vkGetImageMemoryRequirements(device.handle, self.handle)
        index, _ = _memory_type(device, req.memoryTypeBits, [vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0])
        memory = self.keep(vk.vkAllocateMemory(device.handle, vk.VkMemoryAllocateInfo(
            allocationSize=req.size, memoryTypeIndex=index), None), "vkFreeMemory")
        vk.vkBindImageMemory(device.handle, self.handle, memory, 0)
        self.view = self.own(ImageView(device, self.handle, self.format))

    def _region(self):
        vk = self.device.vk
        return vk.VkBufferImageCopy(
            bufferOffset=0, bufferRowLength=0, bufferImageHeight=0,
            imageSubresource=vk.VkImageSubresourceLayers(aspectMask=vk.VK_IMAGE_ASPECT_COLOR_BIT, mipLevel=0,
                                                         baseArrayLayer=0, layerCount=1),
            imageOffset=vk.VkOffset3D(x=0, y=0, z=0),
            imageExtent=vk.VkExtent3D(width=self.width, height=self.height, depth=1))

    def upload(self, rgba: np.ndarray) -> None:
        """Fill the image with (height, width, 4) uint8 and leave it ready for sampling in fragment shaders."""
        vk, dev = self.device.vk, self.device
        if rgba.shape != (self.height, self.width, 4):
            raise ValueError(f"texture data {rgba.shape} does not match the image {self.height}x{self.width}x4")
        with Buffer(dev, rgba.nbytes, host=True) as staging:
            staging.write(rgba)
            region = self._region()

            def record(cmd) -> None:
                image_barrier(dev, cmd, self.handle, vk.VK_IMAGE_LAYOUT_UNDEFINED,
                              vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL, 0, vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                              vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk.VK_PIPELINE_STAGE_TRANSFER_BIT)
                vk.vkCmdCopyBufferToImage(cmd, staging.handle, self.handle, vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                                          1, [region])
                image_barrier(dev, cmd, self.handle, vk.VK_IMAGE_LAYOUT_TRANSFER_DST_OPTIMAL,
                              vk.VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL, vk.VK_ACCESS_TRANSFER_WRITE_BIT,
                              vk.VK_ACCESS_SHADER_READ_BIT, vk.VK_PIPELINE_STAGE_TRANSFER_BIT,
                              vk.VK_PIPELINE_STAGE_FRAGMENT_SHADER_BIT)

            dev.submit(record)

    def read(self) -> np.ndarray:
        """(height, width, 4) uint8 of a render target left in TRANSFER_SRC_OPTIMAL layout."""
        vk = self.device.vk
        with Buffer(self.device, self.width * self.height * 4, host=True) as staging:
            region = self._region()
            self.device.submit(lambda cmd: vk.vkCmdCopyImageToBuffer(
                cmd, self.handle, vk.VK_IMAGE_LAYOUT_TRANSFER_SRC_OPTIMAL, staging.handle, 1, [region]))
            return staging.array(np.uint8).reshape(self.height, self.width, 4).copy()


class Sampler(Handle):
    kind = "sampler"
    destroy_function = "vkDestroySampler"

    def _create(self, device: Device, linear: bool = True) -> None:
        vk = device.vk
        self.device = device
        flt = vk.VK_FILTER_LINEAR if linear else vk.VK_FILTER_NEAREST
        clamp = vk.VK_SAMPLER_ADDRESS_MODE_CLAMP_TO_EDGE
        self.handle = self.keep(vk.vkCreateSampler(device.handle, vk.VkSamplerCreateInfo(
            magFilter=flt, minFilter=flt, mipmapMode=vk.VK_SAMPLER_MIPMAP_MODE_NEAREST, addressModeU=clamp,
            addressModeV=clamp, addressModeW=clamp, maxLod=0.0), None))


class Framebuffer(Handle):
    """A framebuffer of one colour attachment (``view``) for ``render_pass``."""

    kind = "framebuffer"
    destroy_function = "vkDestroyFramebuffer"

    def _create(self, device: Device, render_pass, view: ImageView, width: int, height: int) -> None:
        vk = device.vk
        self.device, self.width, self.height = device, width, height
        self.handle = self.keep(vk.vkCreateFramebuffer(device.handle, vk.VkFramebufferCreateInfo(
            renderPass=render_pass, attachmentCount=1, pAttachments=[view.handle], width=width, height=height,
            layers=1), None))


class Semaphore(Handle):
    kind = "semaphore"
    destroy_function = "vkDestroySemaphore"

    def _create(self, device: Device) -> None:
        self.device = device
        self.handle = self.keep(device.vk.vkCreateSemaphore(device.handle, device.vk.VkSemaphoreCreateInfo(), None))
