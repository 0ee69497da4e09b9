"""Vulkan instance, physical-device choice, compute queue, validation messages, one-shot submission."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable

from ..cache import configure_driver_cache
from ..errors import DeviceError
from .live import Handle

DEVICE_ENV = "NGRENDER_DEVICE"
VALIDATION_ENV = "NGRENDER_VALIDATION"
VALIDATION_LAYER = "VK_LAYER_KHRONOS_validation"
FLOAT16_ENV = "NGRENDER_FLOAT16"  # 0: leave shaderFloat16 off

# Preference when no device is named: real GPUs first, then the CPU driver (lavapipe).
_TYPE_RANK = {"discrete": 0, "integrated": 1, "virtual": 2, "other": 3, "cpu": 4}


def load_vulkan():
    """The `vulkan` module, or a DeviceError that says how to get a loader."""
    try:
        import vulkan
    except OSError as exc:  # cffi raises this when libvulkan.so.1 is missing
        raise DeviceError(f"no Vulkan loader found ({exc}); install libvulkan1 and a driver "
                          "(mesa-vulkan-drivers for the CPU)") from None
    return vulkan


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    type: str  # discrete | integrated | virtual | cpu | other
    api_version: str
    driver: str

    @property
    def is_cpu(self) -> bool:
        return self.type == "cpu"

    def __str__(self) -> str:
        return f"[{self.index}] {self.name} ({self.type}, Vulkan {self.api_version}, {self.driver})"


# Validation messages are routed here by the one process-wide callback the `vulkan` package allows.
_message_sinks: list[list[str]] = []


def _on_debug_message(severity, types, data, user_data) -> int:
    vk = load_vulkan()
    text = vk.ffi.string(data.pMessage).decode("utf-8", "replace")
    for sink in _message_sinks:
        sink.append(text)
    return 0


def validation_enabled_by_env() -> bool:
    return os.environ.get(VALIDATION_ENV, "").lower() in ("1", "true", "yes", "on")


class Device(Handle):
    """A Vulkan device with one compute queue; owns the instance, a command pool and a fence. Its ``vk`` is the
    `vulkan` module for the objects built on it."""

    kind = "device"

    def _create(self, selector: str | int | None = None, validation: bool | None = None,
                instance_extensions: tuple[str, ...] = (), device_extensions: tuple[str, ...] = ()) -> None:
        configure_driver_cache()
        self.vk = load_vulkan()
        self.device = self  # so that keep() releases the device's own children
        self.validation = validation_enabled_by_env() if validation is None else validation
        self.messages: list[str] = []
        self._functions: dict[str, object] = {}
        self._create_instance(instance_extensions)
        self.physical, self.info = self._choose(selector)
        self._create_device(device_extensions)

    # -- creation -------------------------------------------------------------------------------
    def _create_instance(self, extensions: tuple[str, ...]) -> None:
        vk = self.vk
        layers, exts = [], list(extensions)
        if self.validation:
            available = {p.layerName for p in vk.vkEnumerateInstanceLayerProperties()}
            if VALIDATION_LAYER not in available:
                raise DeviceError(f"validation requested but {VALIDATION_LAYER} is not installed "
                                  "(Debian: vulkan-validationlayers)")
            layers.append(VALIDATION_LAYER)
            exts.append(vk.VK_EXT_DEBUG_UTILS_EXTENSION_NAME)
        app_info = vk.VkApplicationInfo(pApplicationName="ngrender", applicationVersion=1, pEngineName="ngrender",
                                        engineVersion=1, apiVersion=instance_api_version(vk))
        create = vk.VkInstanceCreateInfo(pApplicationInfo=app_info, enabledLayerCount=len(layers),
                                         ppEnabledLayerNames=layers, enabledExtensionCount=len(exts),
                                         ppEnabledExtensionNames=exts)
        try:
            self._instance = vk.vkCreateInstance(create, None)
            self.on_release(lambda: vk.vkDestroyInstance(self._instance, None))
        except (vk.VkErrorIncompatibleDriver, vk.VkErrorInitializationFailed) as exc:
            raise DeviceError(f"no Vulkan driver found ({type(exc).__name__}); install a driver "
                              "(mesa-vulkan-drivers gives lavapipe on the CPU)") from None
        except vk.VkErrorExtensionNotPresent:
            raise DeviceError(f"Vulkan instance extensions not available: {exts}") from None
        if self.validation:
            _message_sinks.append(self.messages)
            self.on_release(lambda: _message_sinks.remove(self.messages))
            severity = (vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT
                        | vk.VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)
            types = (vk.VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT
                     | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                     | vk.VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)
            info = vk.VkDebugUtilsMessengerCreateInfoEXT(messageSeverity=severity, messageType=types,
                                                         pfnUserCallback=_on_debug_message)
            create_fn = vk.vkGetInstanceProcAddr(self._instance, "vkCreateDebugUtilsMessengerEXT")
            messenger = create_fn(self._instance, info, None)
            destroy_fn = vk.vkGetInstanceProcAddr(self._instance, "vkDestroyDebugUtilsMessengerEXT")
            self.on_release(lambda: destroy_fn(self._instance, messenger, None))

    def _choose(self, selector: str | int | None):
        vk = self.vk
        physicals = vk.vkEnumeratePhysicalDevices(self._instance)
        if not physicals:
            raise DeviceError("no Vulkan device found; install a driver (mesa-vulkan-drivers gives lavapipe)")
        infos = [describe_physical(vk, i, p) for i, p in enumerate(physicals)]
        selector = os.environ.get(DEVICE_ENV) if selector in (None, "") else selector
        if selector in (None, ""):
            best = min(infos, key=lambda d: (_TYPE_RANK.get(d.type, 9), d.index))
            return physicals[best.index], best
        chosen = select_device(infos, selector)
        return physicals[chosen.index], chosen

    def _create_device(self, extensions: tuple[str, ...]) -> None:
        vk = self.vk
        families = vk.vkGetPhysicalDeviceQueueFamilyProperties(self.physical)
        compute = [i for i, f in enumerate(families) if f.queueFlags & vk.VK_QUEUE_COMPUTE_BIT]
        if not compute:
            raise DeviceError(f"{self.info.name} has no compute queue")
        # A family that also draws (the viewer's overlay pass) when there is one: every desktop GPU has it.
        both = [i for i in compute if families[i].queueFlags & vk.VK_QUEUE_GRAPHICS_BIT]
        self.queue_family = (both or compute)[0]
        self.graphics = bool(both)
        queue_info = vk.VkDeviceQueueCreateInfo(queueFamilyIndex=self.queue_family, queueCount=1,
                                                pQueuePriorities=[1.0])
        exts = list(extensions)
        available = device_extension_names(vk, self.physical)
        self.shader_features = query_shader_features(vk, self.physical, available)
        if os.environ.get(FLOAT16_ENV, "1") == "0":  # as if the device lacked it: the fp32 forms are used
            self.shader_features = dataclasses.replace(self.shader_features, float16=False)
        if self.shader_features.subgroup_size_control:
            exts.append(SUBGROUP_SIZE_CONTROL_EXTENSION)
        self.cooperative_matrix = False
        device = None
        if COOPMAT_EXTENSION in available and os.environ.get("NGRENDER_COOPMAT", "1") != "0":
            device = self._create_with_cooperative_matrix(queue_info, exts)
        if device is None:
            device = vk.vkCreateDevice(self.physical, self._create_info(queue_info, exts), None)
        self.handle = device
        self.on_release(lambda: vk.vkDestroyDevice(device, None))
        self.queue = vk.vkGetDeviceQueue(device, self.queue_family, 0)
        pool_info = vk.VkCommandPoolCreateInfo(queueFamilyIndex=self.queue_family,
                                               flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT)
        pool = self.keep(vk.vkCreateCommandPool(device, pool_info, None), "vkDestroyCommandPool")
        alloc = vk.VkCommandBufferAllocateInfo(commandPool=pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                               commandBufferCount=1)
        self.command_buffer = vk.vkAllocateCommandBuffers(device, alloc)[0]
        self._fence = self.keep(vk.vkCreateFence(device, vk.VkFenceCreateInfo(), None), "vkDestroyFence")
        self.properties = vk.vkGetPhysicalDeviceProperties(self.physical)
        self.limits = self.properties.limits
        self.memory_properties = vk.vkGetPhysicalDeviceMemoryProperties(self.physical)
        self.timestamp_period_ns = float(self.limits.timestampPeriod)
        self.timestamps_supported = bool(families[self.queue_family].timestampValidBits) and \
            self.timestamp_period_ns > 0

    def _create_info(self, queue_info, exts: list[str], cooperative_matrix: bool = False):
        """VkDeviceCreateInfo with the optional features this device has (shader_features) switched on:
        shaderFloat16 (the shared-fp16 variant), subgroupSizeControl (the shared variants' pipelines), and for
        ``cooperative_matrix`` what shaders/coopmat/mlp.comp needs (fp16 arithmetic and storage, the memory
        model)."""
        vk = self.vk
        features = self.shader_features
        chain = None
        if features.subgroup_size_control:  # same sType as VK_EXT_subgroup_size_control's struct
            chain = vk.VkPhysicalDeviceSubgroupSizeControlFeatures(subgroupSizeControl=vk.VK_TRUE)
        if cooperative_matrix:
            chain = vk.VkPhysicalDeviceCooperativeMatrixFeaturesKHR(pNext=chain, cooperativeMatrix=vk.VK_TRUE)
            chain = vk.VkPhysicalDeviceVulkan12Features(pNext=chain, shaderFloat16=vk.VK_TRUE,
                                                        vulkanMemoryModel=vk.VK_TRUE)
            chain = vk.VkPhysicalDeviceVulkan11Features(pNext=chain, storageBuffer16BitAccess=vk.VK_TRUE)
        elif features.float16:
            chain = vk.VkPhysicalDeviceVulkan12Features(pNext=chain, shaderFloat16=vk.VK_TRUE)
        return vk.VkDeviceCreateInfo(pNext=chain, queueCreateInfoCount=1, pQueueCreateInfos=[queue_info],
                                     enabledExtensionCount=len(exts), ppEnabledExtensionNames=exts)

    def _create_with_cooperative_matrix(self, queue_info, exts: list[str]):
        """The device with VK_KHR_cooperative_matrix; None when the driver refuses, so the scalar path is used."""
        vk = self.vk
        create = self._create_info(queue_info, exts + [COOPMAT_EXTENSION], cooperative_matrix=True)
        try:
            device = vk.vkCreateDevice(self.physical, create, None)
        except vk.VkError:
            return None
        self.cooperative_matrix = True
        return device

    @property
    def float16_arithmetic(self) -> bool:
        """shaderFloat16 is enabled: shaders may compute in fp16 (the shared-fp16 variant)."""
        return self.shader_features.float16

    @property
    def subgroup_size(self) -> int:
        """The compute stage's default subgroup size (VkPhysicalDeviceSubgroupProperties)."""
        return self.shader_features.subgroup_size

    @property
    def subgroup_size_control(self) -> bool:
        """Compute pipelines may ask for a requiredSubgroupSize (VK_EXT_subgroup_size_control, enabled)."""
        return self.shader_features.subgroup_size_control

    # -- use ------------------------------------------------------------------------------------
    @property
    def instance(self):
        return self._instance

    def function(self, name: str):
        """The device-level Vulkan function ``name`` (extension functions through vkGetDeviceProcAddr)."""
        fn = self._functions.get(name)
        if fn is None:
            if name.endswith(("KHR", "EXT")):
                fn = self.vk.vkGetDeviceProcAddr(self.handle, name)
            else:
                fn = getattr(self.vk, name)
            self._functions[name] = fn
        return fn

    def submit(self, record: Callable[[object], None], wait=None, signal=None) -> None:
        """Record commands with ``record(command_buffer)``, submit them and wait for completion; ``wait`` /
        ``signal``: semaphores (the viewer's swapchain image acquire / present)."""
        vk = self.vk
        cmd = self.command_buffer
        vk.vkResetCommandBuffer(cmd, 0)
        vk.vkBeginCommandBuffer(cmd, vk.VkCommandBufferBeginInfo(
            flags=vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT))
        record(cmd)
        vk.vkEndCommandBuffer(cmd)
        waits = [wait] if wait is not None else []
        signals = [signal] if signal is not None else []
        stages = [vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT] if waits else []
        submit = vk.VkSubmitInfo(commandBufferCount=1, pCommandBuffers=[cmd], waitSemaphoreCount=len(waits),
                                 pWaitSemaphores=waits or None, pWaitDstStageMask=stages or None,
                                 signalSemaphoreCount=len(signals), pSignalSemaphores=signals or None)
        vk.vkResetFences(self.handle, 1, [self._fence])
        vk.vkQueueSubmit(self.queue, 1, [submit], self._fence)
        vk.vkWaitForFences(self.handle, 1, [self._fence], vk.VK_TRUE, 0xFFFFFFFFFFFFFFFF)

    def wait_idle(self) -> None:
        self.vk.vkDeviceWaitIdle(self.handle)

    def _release(self) -> None:
        if self.handle is not None:  # nothing in flight is destroyed
            self.vk.vkDeviceWaitIdle(self.handle)

    def take_messages(self) -> list[str]:
        """Validation messages since the last call (empty when validation is off)."""
        out, self.messages[:] = list(self.messages), []
        return out

def instance_api_version(vk) -> int:
    """Vulkan 1.2 where the loader has it (for driver properties), else 1.1."""
    try:
        loader = vk.vkEnumerateInstanceVersion()
    except Exception:  # a 1.0 loader has no vkEnumerateInstanceVersion
        loader = vk.VK_MAKE_VERSION(1, 0, 0)
    return min(loader, vk.VK_MAKE_VERSION(1, 2, 0)) if loader >= vk.VK_MAKE_VERSION(1, 1, 0) else loader


def describe_physical(vk, index: int, physical) -> DeviceInfo:
    props = vk.vkGetPhysicalDeviceProperties(physical)
    kinds = {vk.VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: "discrete",
             vk.VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: "integrated",
             vk.VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: "virtual", vk.VK_PHYSICAL_DEVICE_TYPE_CPU: "cpu"}
    api = props.apiVersion
    version = f"{vk.VK_VERSION_MAJOR(api)}.{vk.VK_VERSION_MINOR(api)}.{vk.VK_VERSION_PATCH(api)}"
    driver = f"driver 0x{props.driverVersion:x}"
    if api >= vk.VK_MAKE_VERSION(1, 2, 0) and instance_api_version(vk) >= vk.VK_MAKE_VERSION(1, 2, 0):
        # Driver name and version string (e.g. "llvmpipe: Mesa 22.3.6") are core Vulkan 1.2 properties.
        drv = vk.VkPhysicalDeviceDriverProperties()
        vk.vkGetPhysicalDeviceProperties2(physical, vk.VkPhysicalDeviceProperties2(pNext=drv))
        driver = f"{vk.ffi.string(drv.driverName).decode()}: {vk.ffi.string(drv.driverInfo).decode()}"
    return DeviceInfo(index, props.deviceName, kinds.get(props.deviceType, "other"), version, driver)


def select_device(infos: list[DeviceInfo], selector: str | int) -> DeviceInfo:
    """Pick by index or by case-insensitive name substring; a clear error lists what exists."""
    listing = "; ".join(str(d) for d in infos)
    text = str(selector).strip()
    if text.isdigit():
        idx = int(text)
        if idx < len(infos):
            return infos[idx]
        raise DeviceError(f"no Vulkan device with index {idx}; available: {listing}")
    matches = [d for d in infos if text.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(f"no Vulkan device matches {text!r}; available: {listing}")
    return matches[0]


def list_devices() -> list[DeviceInfo]:
    """All physical devices, without creating a logical device."""
    vk = load_vulkan()
    app = vk.VkApplicationInfo(pApplicationName="ngrender", apiVersion=instance_api_version(vk))
    try:
        instance = vk.vkCreateInstance(vk.VkInstanceCreateInfo(pApplicationInfo=app), None)
    except (vk.VkErrorIncompatibleDriver, vk.VkErrorInitializationFailed):
        raise DeviceError("no Vulkan driver found; install mesa-vulkan-drivers (lavapipe) or a GPU driver") from None
    try:
        return [describe_physical(vk, i, p) for i, p in enumerate(vk.vkEnumeratePhysicalDevices(instance))]
    finally:
        vk.vkDestroyInstance(instance, None)


COOPMAT_EXTENSION = "VK_KHR_cooperative_matrix"
SUBGROUP_SIZE_CONTROL_EXTENSION = "VK_EXT_subgroup_size_control"


@dataclass(frozen=True)
class ShaderFeatures:
    """What a physical device offers the kernels beyond Vulkan 1.0 (and ngrender switches on when present)."""

    float16: bool = False  # shaderFloat16: fp16 arithmetic in shaders
    subgroup_size: int = 1  # default subgroup size of the compute stage
    subgroup_size_control: bool = False  # requiredSubgroupSize in a compute pipeline's shader stage
    min_subgroup_size: int = 1
    max_subgroup_size: int = 1
    max_workgroup_subgroups: int = 0  # subgroups a workgroup may hold at a required size (0: no control)


def query_shader_features(vk, physical, extensions: set[str]) -> ShaderFeatures:
    """The physical device's ShaderFeatures (all off below Vulkan 1.2 or without the 1.2 instance)."""
    props = vk.vkGetPhysicalDeviceProperties(physical)
    if props.apiVersion < vk.VK_MAKE_VERSION(1, 2, 0) or instance_api_version(vk) < vk.VK_MAKE_VERSION(1, 2, 0):
        return ShaderFeatures()
    subgroup = vk.VkPhysicalDeviceSubgroupProperties()
    size_props = vk.VkPhysicalDeviceSubgroupSizeControlProperties(pNext=subgroup)
    has_control_ext = SUBGROUP_SIZE_CONTROL_EXTENSION in extensions
    vk.vkGetPhysicalDeviceProperties2(physical, vk.VkPhysicalDeviceProperties2(
        pNext=size_props if has_control_ext else subgroup))
    v12 = vk.VkPhysicalDeviceVulkan12Features()
    size_feats = vk.VkPhysicalDeviceSubgroupSizeControlFeatures(pNext=v12)
    vk.vkGetPhysicalDeviceFeatures2(physical, vk.VkPhysicalDeviceFeatures2(
        pNext=size_feats if has_control_ext else v12))
    control = has_control_ext and bool(size_feats.subgroupSizeControl) and \
        bool(size_props.requiredSubgroupSizeStages & vk.VK_SHADER_STAGE_COMPUTE_BIT)
    size = int(subgroup.subgroupSize)
    return ShaderFeatures(bool(v12.shaderFloat16), size, control,
                          int(size_props.minSubgroupSize) if control else size,
                          int(size_props.maxSubgroupSize) if control else size,
                          int(size_props.maxComputeWorkgroupSubgroups) if control else 0)


def device_extension_names(vk, physical) -> set[str]:
    """The device extensions a physical device offers."""
    names = set()
    for ext in vk.vkEnumerateDeviceExtensionProperties(physical, None):
        name = ext.extensionName
        names.add(name.decode() if isinstance(name, bytes) else str(name))
    return names
