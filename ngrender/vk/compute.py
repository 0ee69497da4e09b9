"""Compute pipelines: descriptor layout from a binding list, push and specialization constants, dispatch."""
from __future__ import annotations

import struct
from typing import Mapping

from .device import Device
from .live import Handle
from .resources import STORAGE, TEXEL, UNIFORM, Buffer, TexelBufferView


class ComputePipeline(Handle):
    """One compute shader with set 0 = ``bindings`` ({binding: role}, roles storage / uniform / texel), a
    push-constant block of ``push_size`` bytes and optional specialization constants ``{constant_id: value}``."""

    kind = "compute_pipeline"
    destroy_function = "vkDestroyPipeline"

    def _create(self, device: Device, spirv: bytes, bindings: Mapping[int, str], push_size: int = 0,
                specialization: dict[int, int | float] | None = None, label: str = "kernel",
                required_subgroup_size: int | None = None) -> None:
        vk, dev = device.vk, device.handle
        self.device, self.bindings, self.push_size, self.label = device, dict(bindings), push_size, label
        specialization = specialization or {}
        types = {STORAGE: vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, UNIFORM: vk.VK_DESCRIPTOR_TYPE_UNIFORM_BUFFER,
                 TEXEL: vk.VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER}
        self._types = {b: types[role] for b, role in self.bindings.items()}
        layout_bindings = [vk.VkDescriptorSetLayoutBinding(binding=b, descriptorType=t, descriptorCount=1,
                                                           stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT)
                           for b, t in sorted(self._types.items())]
        self._set_layout = self.keep(vk.vkCreateDescriptorSetLayout(dev, vk.VkDescriptorSetLayoutCreateInfo(
            bindingCount=len(layout_bindings), pBindings=layout_bindings or None), None),
            "vkDestroyDescriptorSetLayout")
        push_range = vk.VkPushConstantRange(stageFlags=vk.VK_SHADER_STAGE_COMPUTE_BIT, offset=0,
                                            size=self.push_size)
        self._layout = self.keep(vk.vkCreatePipelineLayout(dev, vk.VkPipelineLayoutCreateInfo(
            setLayoutCount=1, pSetLayouts=[self._set_layout],
            pushConstantRangeCount=1 if self.push_size else 0,
            pPushConstantRanges=[push_range] if self.push_size else None), None), "vkDestroyPipelineLayout")
        module = self.keep(vk.vkCreateShaderModule(dev, vk.VkShaderModuleCreateInfo(
            codeSize=len(spirv), pCode=spirv), None), "vkDestroyShaderModule")
        # Keep every struct that owns pointers in a named variable (the package frees list members).
        spec_data, spec_entries = b"", []
        for cid, value in sorted(specialization.items()):
            packed = struct.pack("<f" if isinstance(value, float) else "<I", value)
            spec_entries.append(vk.VkSpecializationMapEntry(constantID=cid, offset=len(spec_data), size=4))
            spec_data += packed
        self._spec_bytes = vk.ffi.new("char[]", spec_data or b"\0")
        spec_info = vk.VkSpecializationInfo(mapEntryCount=len(spec_entries), pMapEntries=spec_entries or None,
                                            dataSize=len(spec_data), pData=self._spec_bytes) if spec_entries else None
        # requiredSubgroupSize (VK_EXT_subgroup_size_control, enabled by Device when the driver has it)
        self._subgroup = vk.VkPipelineShaderStageRequiredSubgroupSizeCreateInfo(
            requiredSubgroupSize=required_subgroup_size) if required_subgroup_size else None
        stage = vk.VkPipelineShaderStageCreateInfo(pNext=self._subgroup, stage=vk.VK_SHADER_STAGE_COMPUTE_BIT,
                                                   module=module, pName="main", pSpecializationInfo=spec_info)
        create = vk.VkComputePipelineCreateInfo(stage=stage, layout=self._layout)
        self.handle = self.keep(vk.vkCreateComputePipelines(dev, None, 1, [create], None)[0])
        kinds = list(self._types.values())
        sizes = [vk.VkDescriptorPoolSize(type=t, descriptorCount=kinds.count(t)) for t in set(kinds)]
        self._set = None
        if sizes:
            pool = self.keep(vk.vkCreateDescriptorPool(dev, vk.VkDescriptorPoolCreateInfo(
                maxSets=1, poolSizeCount=len(sizes), pPoolSizes=sizes or None), None), "vkDestroyDescriptorPool")
            alloc = vk.VkDescriptorSetAllocateInfo(descriptorPool=pool, descriptorSetCount=1,
                                                   pSetLayouts=[self._set_layout])
            self._set = vk.vkAllocateDescriptorSets(dev, alloc)[0]

    def bind(self, resources: Mapping[int, Buffer | TexelBufferView]) -> None:
        """Point set 0's bindings at ``resources`` ({binding: resource}, one for every binding)."""
        vk = self.device.vk
        if set(resources) != set(self.bindings):
            raise ValueError(f"{self.label}: resources for bindings {sorted(resources)}, "
                             f"pipeline has {sorted(self.bindings)}")
        for i, res in sorted(resources.items()):
            role = self.bindings[i]
            if role == TEXEL:
                if not isinstance(res, TexelBufferView):
                    raise TypeError(f"{self.label}: binding {i} needs a TexelBufferView")
                views = vk.ffi.new("VkBufferView[1]", [res.handle])
                write = vk.VkWriteDescriptorSet(dstSet=self._set, dstBinding=i, descriptorCount=1,
                                                descriptorType=self._types[i], pTexelBufferView=views)
                vk.vkUpdateDescriptorSets(self.device.handle, 1, [write], 0, None)
            else:
                info = vk.VkDescriptorBufferInfo(buffer=res.handle, offset=0, range=res.size)
                write = vk.VkWriteDescriptorSet(dstSet=self._set, dstBinding=i, descriptorCount=1,
                                                descriptorType=self._types[i], pBufferInfo=[info])
                vk.vkUpdateDescriptorSets(self.device.handle, 1, [write], 0, None)

    def record(self, cmd, groups: tuple[int, int, int], push: bytes = b"") -> None:
        """Record bind + push constants + dispatch into a command buffer."""
        vk = self.device.vk
        vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, self.handle)
        if self._set is not None:
            vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_COMPUTE, self._layout, 0, 1,
                                       [self._set], 0, None)
        if self.push_size:
            if len(push) != self.push_size:
                raise ValueError(f"{self.label}: push constants are {len(push)} bytes, expected {self.push_size}")
            data = vk.ffi.new("char[]", push)
            vk.vkCmdPushConstants(cmd, self._layout, vk.VK_SHADER_STAGE_COMPUTE_BIT, 0, self.push_size, data)
        vk.vkCmdDispatch(cmd, *groups)


def compute_barrier(device: Device, cmd) -> None:
    """Make one dispatch's storage writes visible to the next dispatch and to host reads."""
    vk = device.vk
    barrier = vk.VkMemoryBarrier(srcAccessMask=vk.VK_ACCESS_SHADER_WRITE_BIT,
                                 dstAccessMask=vk.VK_ACCESS_SHADER_READ_BIT | vk.VK_ACCESS_HOST_READ_BIT
                                 | vk.VK_ACCESS_TRANSFER_READ_BIT)
    vk.vkCmdPipelineBarrier(cmd, vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                            vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | vk.VK_PIPELINE_STAGE_HOST_BIT
                            | vk.VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, [barrier], 0, None, 0, None)


def create_bound_pipeline(device: Device, spirv: bytes, bindings: Mapping[int, tuple[str, object]],
                          push_size: int = 0, label: str = "kernel",
                          required_subgroup_size: int | None = None) -> ComputePipeline:
    """A pipeline whose set 0 is laid out from, and bound to, ``{binding: (role, resource)}``;
    ``required_subgroup_size`` only where ``device.subgroup_size_control``."""
    pipeline = ComputePipeline(device, spirv, {b: role for b, (role, _) in bindings.items()}, push_size,
                               label=label, required_subgroup_size=required_subgroup_size)
    try:
        pipeline.bind({b: res for b, (_, res) in bindings.items()})
    except BaseException:
        pipeline.destroy()
        raise
    return pipeline
