"""Where the viewer's frames go: a window surface + swapchain (resize, minimise, vsync on/off), or an offscreen
image for headless runs and tests. Both give framebuffers of a render pass (the viewer's overlay pass)."""
from __future__ import annotations

import numpy as np

from ..errors import DeviceError
from .device import Device
from .live import Handle
from .resources import Framebuffer, Image2D, ImageView, Semaphore

SWAPCHAIN_EXTENSION = "VK_KHR_swapchain"
UINT64_MAX = 0xFFFFFFFFFFFFFFFF


def _instance_fn(device: Device, name: str):
    return device.vk.vkGetInstanceProcAddr(device.instance, name)


class Surface(Handle):
    """A glfw window's Vulkan surface (the device must be created with glfw's instance extensions)."""

    kind = "surface"

    def _create(self, device: Device, window) -> None:
        import glfw

        vk = device.vk
        self.device = device
        pointer = vk.ffi.new("VkSurfaceKHR*")
        result = glfw.create_window_surface(device.instance, window, None, pointer)
        if result != vk.VK_SUCCESS:
            raise DeviceError(f"cannot create a Vulkan surface for the window (VkResult {result})")
        self.handle = surface = pointer[0]
        destroy = _instance_fn(device, "vkDestroySurfaceKHR")  # an instance-level function
        self.on_release(lambda: destroy(device.instance, surface, None))
        supported = _instance_fn(device, "vkGetPhysicalDeviceSurfaceSupportKHR")(
            device.physical, device.queue_family, self.handle)
        if not supported:
            raise DeviceError(f"{device.info.name} cannot present to this window from its queue")


class Swapchain(Handle):
    """The window's images; ``recreate`` after a resize. ``vsync``: FIFO, else MAILBOX or IMMEDIATE."""

    kind = "swapchain"
    destroy_function = "vkDestroySwapchainKHR"

    def _create(self, device: Device, surface: Surface, render_pass, size: tuple[int, int],
                vsync: bool = True) -> None:
        self.device, self.surface, self.render_pass = device, surface, render_pass
        self.views: list[ImageView] = []
        self.framebuffers: list[Framebuffer] = []
        # The handle and its images change on every recreate: the release reads the current ones.
        self.on_release(self._release_current)
        self.recreate(size, vsync)

    @staticmethod
    def surface_format(device: Device, surface: Surface) -> int:
        """The swapchain's format: 8-bit UNORM, so the frame's bytes (already display values) reach the screen
        unchanged."""
        return Swapchain._formats(device, surface)[0]

    @staticmethod
    def _formats(device: Device, surface: Surface) -> tuple[int, int]:
        vk = device.vk
        formats = _instance_fn(device, "vkGetPhysicalDeviceSurfaceFormatsKHR")(device.physical, surface.handle)
        for want in (vk.VK_FORMAT_B8G8R8A8_UNORM, vk.VK_FORMAT_R8G8B8A8_UNORM):
            for f in formats:
                if f.format == want:
                    return want, f.colorSpace
        raise DeviceError("the window surface offers no 8-bit UNORM format")

    def _present_mode(self, vsync: bool) -> int:
        vk = self.device.vk
        modes = _instance_fn(self.device, "vkGetPhysicalDeviceSurfacePresentModesKHR")(self.device.physical,
                                                                                     self.surface.handle)
        if not vsync:
            for mode in (vk.VK_PRESENT_MODE_MAILBOX_KHR, vk.VK_PRESENT_MODE_IMMEDIATE_KHR):
                if mode in modes:
                    return mode
        return vk.VK_PRESENT_MODE_FIFO_KHR

    def recreate(self, size: tuple[int, int], vsync: bool) -> None:
        vk, dev = self.device.vk, self.device
        dev.wait_idle()
        caps = _instance_fn(dev, "vkGetPhysicalDeviceSurfaceCapabilitiesKHR")(dev.physical, self.surface.handle)
        if caps.currentExtent.width != 0xFFFFFFFF:
            width, height = caps.currentExtent.width, caps.currentExtent.height
        else:
            width = min(max(size[0], caps.minImageExtent.width), caps.maxImageExtent.width)
            height = min(max(size[1], caps.minImageExtent.height), caps.maxImageExtent.height)
        (self.format, self.color_space), self.vsync = self._formats(dev, self.surface), vsync
        count = max(caps.minImageCount, 2)
        if caps.maxImageCount:
            count = min(count, caps.maxImageCount)
        create = vk.VkSwapchainCreateInfoKHR(
            surface=self.surface.handle, minImageCount=count, imageFormat=self.format,
            imageColorSpace=self.color_space, imageExtent=vk.VkExtent2D(width=width, height=height),
            imageArrayLayers=1, imageUsage=vk.VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT,
            imageSharingMode=vk.VK_SHARING_MODE_EXCLUSIVE, preTransform=caps.currentTransform,
            compositeAlpha=vk.VK_COMPOSITE_ALPHA_OPAQUE_BIT_KHR, presentMode=self._present_mode(vsync),
            clipped=vk.VK_TRUE, oldSwapchain=self.handle)
        old = self.handle
        self.handle = dev.function("vkCreateSwapchainKHR")(dev.handle, create, None)
        self._release_images()
        if old is not None:
            dev.function(self.destroy_function)(dev.handle, old, None)
        self.extent = (width, height)
        images = dev.function("vkGetSwapchainImagesKHR")(dev.handle, self.handle)
        self.views = [ImageView(dev, image, self.format) for image in images]
        self.framebuffers = [Framebuffer(dev, self.render_pass, view, width, height) for view in self.views]

    def acquire(self, semaphore: Semaphore) -> int | None:
        """The next image's index, or None when the swapchain is out of date (resize, then try again)."""
        vk = self.device.vk
        try:
            return self.device.function("vkAcquireNextImageKHR")(self.device.handle, self.handle, UINT64_MAX,
                                                                  semaphore.handle, None)
        except (vk.VkErrorOutOfDateKhr, vk.VkSuboptimalKhr):
            return None

    def present(self, index: int, wait: Semaphore) -> bool:
        """Queue the image for display; False when the swapchain must be recreated."""
        vk = self.device.vk
        info = vk.VkPresentInfoKHR(waitSemaphoreCount=1, pWaitSemaphores=[wait.handle], swapchainCount=1,
                                   pSwapchains=[self.handle], pImageIndices=[index])
        try:
            self.device.function("vkQueuePresentKHR")(self.device.queue, info)
        except (vk.VkErrorOutOfDateKhr, vk.VkSuboptimalKhr):
            return False
        return True

    def _release_images(self) -> None:
        for obj in self.framebuffers + self.views:
            obj.destroy()
        self.framebuffers, self.views = [], []

    def _release(self) -> None:
        self.device.wait_idle()

    def _release_current(self) -> None:
        self._release_images()
        if self.handle is not None:
            self.device.function(self.destroy_function)(self.device.handle, self.handle, None)
            self.handle = None


class OffscreenTarget(Handle):
    """An RGBA8 image + framebuffer the overlay pass draws into, read back with ``read``."""

    kind = "offscreen_target"

    def _create(self, device: Device, render_pass, size: tuple[int, int]) -> None:
        vk = device.vk
        self.device, self.extent = device, size
        self.image = self.own(Image2D(device, size[0], size[1],
                                      vk.VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT | vk.VK_IMAGE_USAGE_TRANSFER_SRC_BIT))
        self.framebuffer = self.own(Framebuffer(device, render_pass, self.image.view, size[0], size[1]))

    def read(self) -> np.ndarray:
        return self.image.read()
