"""The Vulkan core: buffers, texel views, timestamps, device choice, validation messenger, object counts."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ngrender.errors import DeviceError
from ngrender.vk import live_objects
from ngrender.vk.device import Device, DeviceInfo, select_device
from ngrender.vk.resources import STORAGE, TEXEL, Buffer, TexelBufferView
from ngrender.vk.timing import TimestampPool


def test_buffer_roundtrip_host_and_device(device):
    data = np.arange(1000, dtype=np.float32)
    for host in (True, False):
        with Buffer(device, data.nbytes, (STORAGE,), host=host) as buf:
            buf.write(data)
            np.testing.assert_array_equal(buf.read(np.float32), data)
    with pytest.raises(ValueError, match="overflows"):
        with Buffer(device, 16) as small:
            small.write(np.zeros(5, np.float32))


def test_texel_view_and_counts(device):
    assert live_objects() == {"device": 1}
    buf = Buffer(device, 64, (TEXEL,))
    view = TexelBufferView(buf, "rg16f")
    assert view.elements == 16
    assert live_objects() == {"device": 1, "buffer": 1, "buffer_view": 1}
    view.destroy()
    view.destroy()  # idempotent
    buf.destroy()
    assert live_objects() == {"device": 1}


def test_failed_construction_releases_what_was_built(device, monkeypatch):
    """One lifetime idiom (vk/live.py): a buffer whose memory cannot be allocated releases its VkBuffer (the
    device fixture's validation layer reports any handle left at destroy), counts nothing and says why."""
    from ngrender.vk.resources import OutOfDeviceMemory

    vk = device.vk

    def refuse(*args):
        raise vk.VkErrorOutOfDeviceMemory()

    monkeypatch.setattr(vk, "vkAllocateMemory", refuse)
    with pytest.raises(OutOfDeviceMemory, match="cannot allocate a 1.0 MiB buffer"):
        Buffer(device, 1 << 20)
    monkeypatch.undo()
    assert live_objects() == {"device": 1}


def test_timestamps_measure_a_copy(device):
    assert device.timestamps_supported
    with TimestampPool(device, 4) as pool, Buffer(device, 1 << 20) as a, Buffer(device, 1 << 20) as b:
        vk = device.vk

        def record(cmd):
            pool.reset(cmd)
            pool.begin(cmd, "copy")
            vk.vkCmdCopyBuffer(cmd, a.handle, b.handle, 1, [vk.VkBufferCopy(size=1 << 20)])
            pool.end(cmd)

        start = time.perf_counter()
        device.submit(record)
        wall_ms = (time.perf_counter() - start) * 1e3
        (label, ms), = pool.results()
        assert label == "copy" and 0.0 < ms <= wall_ms, (ms, wall_ms)  # a real copy, within the submission


def test_validation_layer_reports_misuse():
    """The messenger really delivers messages (so a silent suite means a clean suite)."""
    dev = Device(validation=True)
    try:
        vk = dev.vk
        info = vk.VkBufferCreateInfo(size=0, usage=vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
                                     sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
        try:
            handle = vk.vkCreateBuffer(dev.handle, info, None)  # size 0 is invalid usage
            vk.vkDestroyBuffer(dev.handle, handle, None)
        except vk.VkError:
            pass
        messages = dev.take_messages()
        assert any("size" in m for m in messages), messages
    finally:
        dev.destroy()


def test_select_device_by_index_and_name():
    infos = [DeviceInfo(0, "llvmpipe (LLVM 15)", "cpu", "1.3", ""),
             DeviceInfo(1, "NVIDIA GeForce RTX 3090", "discrete", "1.3", "")]
    assert select_device(infos, "1").index == 1
    assert select_device(infos, "rtx").index == 1
    assert select_device(infos, "LLVMPIPE").index == 0
    with pytest.raises(DeviceError, match="no Vulkan device matches 'radeon'; available"):
        select_device(infos, "radeon")
    with pytest.raises(DeviceError, match="index 7"):
        select_device(infos, 7)


def test_environment_selects_device(monkeypatch):
    monkeypatch.setenv("NGRENDER_DEVICE", "nonexistent-gpu")
    with pytest.raises(DeviceError, match="nonexistent-gpu"):
        Device()
    assert live_objects() == {}


SPEC_SHADER = """#version 450
layout(local_size_x = 8) in;
layout(constant_id = 0) const uint FACTOR = 1u;
layout(constant_id = 1) const float OFFSET = 0.0;
layout(std430, binding = 0) buffer Data { float values[]; };
layout(push_constant) uniform Push { float scale; } pc;
void main() { values[gl_GlobalInvocationID.x] = values[gl_GlobalInvocationID.x] * float(FACTOR) * pc.scale + OFFSET; }
"""


def test_compute_pipeline_push_and_specialization_constants(device, tmp_path):
    import struct

    from ngrender.shaders import compile_shader
    from ngrender.vk.compute import compute_barrier, create_bound_pipeline

    (tmp_path / "spec.comp").write_text(SPEC_SHADER)
    spirv = compile_shader(tmp_path / "spec.comp")
    data = np.arange(16, dtype=np.float32)
    with Buffer(device, data.nbytes) as buf:
        buf.write(data)
        pipe = create_bound_pipeline(device, spirv, {0: (STORAGE, buf)}, push_size=4, label="spec")
        pipe.destroy()
        from ngrender.vk.compute import ComputePipeline
        with ComputePipeline(device, spirv, {0: STORAGE}, push_size=4, specialization={0: 3, 1: 0.5}) as pipe:
            pipe.bind({0: buf})

            def record(cmd):
                pipe.record(cmd, (2, 1, 1), struct.pack("<f", 2.0))
                compute_barrier(device, cmd)

            device.submit(record)
            np.testing.assert_array_equal(buf.read(np.float32), data * 3 * 2 + 0.5)
            with pytest.raises(ValueError, match="push constants"):
                device.submit(lambda cmd: pipe.record(cmd, (1, 1, 1), b"12345678"))
