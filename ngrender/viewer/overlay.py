"""The viewer's graphics pass: the rendered frame (a storage buffer of RGBA8 words) stretched over the target,
then Dear ImGui's triangles over it. Same pass for the swapchain and for an offscreen image (vk/present.py), so
the overlay is testable headless. ImGui draw data comes in as plain arrays (see ``ImGuiDrawList``), so nothing
here imports imgui. Its GLSL (shaders/overlay/) is compiled here, above vk/, which only takes SPIR-V."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..shader_interface import PUSH_BLOCKS, Slot
from ..shaders import compile_shader
from ..vk.device import Device
from ..vk.live import Handle
from ..vk.resources import Buffer, Framebuffer, Image2D, Sampler

VERTEX_BYTES = 20  # ImDrawVert: float pos[2], float uv[2], uint32 colour


@dataclass
class ImGuiCommand:
    clip: tuple[float, float, float, float]  # x0, y0, x1, y1 in target pixels
    index_offset: int
    index_count: int
    vertex_offset: int
    texture: int


@dataclass
class ImGuiDrawList:
    vertices: bytes                           # VERTEX_BYTES each
    indices: np.ndarray                       # uint32
    commands: list[ImGuiCommand] = field(default_factory=list)


class OverlayPass(Handle):
    """Render pass + the frame and ImGui pipelines for targets of ``color_format``, left in ``final_layout``
    (PRESENT_SRC for a swapchain, TRANSFER_SRC for an offscreen image that is read back)."""

    kind = "overlay_pass"
    destroy_function = "vkDestroyRenderPass"

    def _create(self, device: Device, color_format: int, final_layout: int) -> None:
        vk, dev = device.vk, device.handle
        self.device = device
        # Textures and geometry buffers are replaced while the pass lives: released from their current slots.
        self.textures: dict[int, tuple[Image2D, object]] = {}
        self.vertex_buffer = self.index_buffer = None
        self.on_release(self._release_textures_and_geometry)
        attachment = vk.VkAttachmentDescription(
            format=color_format, samples=vk.VK_SAMPLE_COUNT_1_BIT, loadOp=vk.VK_ATTACHMENT_LOAD_OP_DONT_CARE,
            storeOp=vk.VK_ATTACHMENT_STORE_OP_STORE, stencilLoadOp=vk.VK_ATTACHMENT_LOAD_OP_DONT_CARE,
            stencilStoreOp=vk.VK_ATTACHMENT_STORE_OP_DONT_CARE, initialLayout=vk.VK_IMAGE_LAYOUT_UNDEFINED,
            finalLayout=final_layout)
        ref = vk.VkAttachmentReference(attachment=0, layout=vk.VK_IMAGE_LAYOUT_COLOR_ATTACHMENT_OPTIMAL)
        subpass = vk.VkSubpassDescription(pipelineBindPoint=vk.VK_PIPELINE_BIND_POINT_GRAPHICS,
                                          colorAttachmentCount=1, pColorAttachments=[ref])
        dependency = vk.VkSubpassDependency(
            srcSubpass=vk.VK_SUBPASS_EXTERNAL, dstSubpass=0,
            srcStageMask=vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT | vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            dstStageMask=vk.VK_PIPELINE_STAGE_COLOR_ATTACHMENT_OUTPUT_BIT | vk.VK_PIPELINE_STAGE_FRAGMENT_SHADER_BIT,
            srcAccessMask=vk.VK_ACCESS_SHADER_WRITE_BIT,
            dstAccessMask=vk.VK_ACCESS_COLOR_ATTACHMENT_WRITE_BIT | vk.VK_ACCESS_SHADER_READ_BIT)
        self.render_pass = self.handle = self.keep(vk.vkCreateRenderPass(dev, vk.VkRenderPassCreateInfo(
            attachmentCount=1, pAttachments=[attachment], subpassCount=1, pSubpasses=[subpass], dependencyCount=1,
            pDependencies=[dependency]), None))

        frame_type, texture_type = vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, vk.VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER
        self.frame_set_layout = self._set_layout(frame_type, Slot.FRAME)
        self.texture_set_layout = self._set_layout(texture_type, Slot.ATLAS)
        sizes = [vk.VkDescriptorPoolSize(type=frame_type, descriptorCount=1),
                 vk.VkDescriptorPoolSize(type=texture_type, descriptorCount=8)]
        self.pool = self.keep(vk.vkCreateDescriptorPool(dev, vk.VkDescriptorPoolCreateInfo(
            flags=vk.VK_DESCRIPTOR_POOL_CREATE_FREE_DESCRIPTOR_SET_BIT, maxSets=9, poolSizeCount=2,
            pPoolSizes=sizes), None), "vkDestroyDescriptorPool")
        self.frame_set = vk.vkAllocateDescriptorSets(dev, vk.VkDescriptorSetAllocateInfo(
            descriptorPool=self.pool, descriptorSetCount=1, pSetLayouts=[self.frame_set_layout]))[0]
        self._frame_bound = None
        self.sampler = self.own(Sampler(self.device))

        self.frame_layout, self.frame_pipeline = self._pipeline("frame", self.frame_set_layout,
                                                                PUSH_BLOCKS["overlay_frame"].size, None)
        binding = vk.VkVertexInputBindingDescription(binding=0, stride=VERTEX_BYTES,
                                                     inputRate=vk.VK_VERTEX_INPUT_RATE_VERTEX)
        attributes = [vk.VkVertexInputAttributeDescription(location=0, binding=0, format=vk.VK_FORMAT_R32G32_SFLOAT,
                                                           offset=0),
                      vk.VkVertexInputAttributeDescription(location=1, binding=0, format=vk.VK_FORMAT_R32G32_SFLOAT,
                                                           offset=8),
                      vk.VkVertexInputAttributeDescription(location=2, binding=0, format=vk.VK_FORMAT_R8G8B8A8_UNORM,
                                                           offset=16)]
        vertex_input = vk.VkPipelineVertexInputStateCreateInfo(
            vertexBindingDescriptionCount=1, pVertexBindingDescriptions=[binding],
            vertexAttributeDescriptionCount=3, pVertexAttributeDescriptions=attributes)
        self.imgui_layout, self.imgui_pipeline = self._pipeline("imgui", self.texture_set_layout,
                                                                PUSH_BLOCKS["overlay_imgui"].size, vertex_input)

    def _set_layout(self, kind: int, slot: int):
        vk = self.device.vk
        binding = vk.VkDescriptorSetLayoutBinding(binding=slot, descriptorType=kind, descriptorCount=1,
                                                  stageFlags=vk.VK_SHADER_STAGE_FRAGMENT_BIT)
        return self.keep(vk.vkCreateDescriptorSetLayout(
            self.device.handle, vk.VkDescriptorSetLayoutCreateInfo(bindingCount=1, pBindings=[binding]), None),
            "vkDestroyDescriptorSetLayout")

    def _pipeline(self, name: str, set_layout, push_size: int, vertex_input):
        vk, dev = self.device.vk, self.device.handle
        stages_flags = vk.VK_SHADER_STAGE_VERTEX_BIT | vk.VK_SHADER_STAGE_FRAGMENT_BIT
        push = vk.VkPushConstantRange(stageFlags=stages_flags, offset=0, size=push_size)
        layout = self.keep(vk.vkCreatePipelineLayout(dev, vk.VkPipelineLayoutCreateInfo(
            setLayoutCount=1, pSetLayouts=[set_layout], pushConstantRangeCount=1, pPushConstantRanges=[push]), None),
            "vkDestroyPipelineLayout")
        modules = []
        for stage in ("vert", "frag"):
            spirv = compile_shader(f"overlay/{name}.{stage}", stage=stage)
            modules.append(vk.vkCreateShaderModule(dev, vk.VkShaderModuleCreateInfo(codeSize=len(spirv),
                                                                                    pCode=spirv), None))
        try:
            vert = vk.VkPipelineShaderStageCreateInfo(stage=vk.VK_SHADER_STAGE_VERTEX_BIT, module=modules[0],
                                                      pName="main")
            frag = vk.VkPipelineShaderStageCreateInfo(stage=vk.VK_SHADER_STAGE_FRAGMENT_BIT, module=modules[1],
                                                      pName="main")
            if vertex_input is None:
                vertex_input = vk.VkPipelineVertexInputStateCreateInfo()
            assembly = vk.VkPipelineInputAssemblyStateCreateInfo(topology=vk.VK_PRIMITIVE_TOPOLOGY_TRIANGLE_LIST)
            viewport = vk.VkPipelineViewportStateCreateInfo(viewportCount=1, scissorCount=1)
            raster = vk.VkPipelineRasterizationStateCreateInfo(
                polygonMode=vk.VK_POLYGON_MODE_FILL, cullMode=vk.VK_CULL_MODE_NONE,
                frontFace=vk.VK_FRONT_FACE_COUNTER_CLOCKWISE, lineWidth=1.0)
            multisample = vk.VkPipelineMultisampleStateCreateInfo(rasterizationSamples=vk.VK_SAMPLE_COUNT_1_BIT)
            blend_on = name == "imgui"
            attachment = vk.VkPipelineColorBlendAttachmentState(
                blendEnable=blend_on, srcColorBlendFactor=vk.VK_BLEND_FACTOR_SRC_ALPHA,
                dstColorBlendFactor=vk.VK_BLEND_FACTOR_ONE_MINUS_SRC_ALPHA, colorBlendOp=vk.VK_BLEND_OP_ADD,
                srcAlphaBlendFactor=vk.VK_BLEND_FACTOR_ONE, dstAlphaBlendFactor=vk.VK_BLEND_FACTOR_ONE_MINUS_SRC_ALPHA,
                alphaBlendOp=vk.VK_BLEND_OP_ADD, colorWriteMask=0xF)
            blend = vk.VkPipelineColorBlendStateCreateInfo(attachmentCount=1, pAttachments=[attachment])
            dynamic = vk.VkPipelineDynamicStateCreateInfo(
                dynamicStateCount=2, pDynamicStates=[vk.VK_DYNAMIC_STATE_VIEWPORT, vk.VK_DYNAMIC_STATE_SCISSOR])
            create = vk.VkGraphicsPipelineCreateInfo(
                stageCount=2, pStages=[vert, frag], pVertexInputState=vertex_input, pInputAssemblyState=assembly,
                pViewportState=viewport, pRasterizationState=raster, pMultisampleState=multisample,
                pColorBlendState=blend, pDynamicState=dynamic, layout=layout, renderPass=self.render_pass, subpass=0)
            pipeline = vk.vkCreateGraphicsPipelines(dev, None, 1, [create], None)[0]
        finally:
            for module in modules:
                vk.vkDestroyShaderModule(dev, module, None)
        return layout, self.keep(pipeline, "vkDestroyPipeline")

    # -- resources ---------------------------------------------------------------------------------------
    def set_texture(self, texture_id: int, rgba: np.ndarray) -> None:
        """Create or replace ImGui texture ``texture_id`` (the font atlas grows while glyphs are added)."""
        vk, dev = self.device.vk, self.device.handle
        self.device.wait_idle()
        old = self.textures.pop(texture_id, None)
        if old is not None:
            old[0].destroy()
            vk.vkFreeDescriptorSets(dev, self.pool, 1, [old[1]])
        image = Image2D(self.device, rgba.shape[1], rgba.shape[0],
                        vk.VK_IMAGE_USAGE_SAMPLED_BIT | vk.VK_IMAGE_USAGE_TRANSFER_DST_BIT)
        image.upload(rgba)
        descriptor = vk.vkAllocateDescriptorSets(dev, vk.VkDescriptorSetAllocateInfo(
            descriptorPool=self.pool, descriptorSetCount=1, pSetLayouts=[self.texture_set_layout]))[0]
        info = vk.VkDescriptorImageInfo(sampler=self.sampler.handle, imageView=image.view.handle,
                                        imageLayout=vk.VK_IMAGE_LAYOUT_SHADER_READ_ONLY_OPTIMAL)
        write = vk.VkWriteDescriptorSet(dstSet=descriptor, dstBinding=Slot.ATLAS, descriptorCount=1,
                                        descriptorType=vk.VK_DESCRIPTOR_TYPE_COMBINED_IMAGE_SAMPLER, pImageInfo=[info])
        vk.vkUpdateDescriptorSets(dev, 1, [write], 0, None)
        self.textures[texture_id] = (image, descriptor)

    def _bind_frame(self, frame: Buffer) -> None:
        if self._frame_bound is frame:
            return
        vk = self.device.vk
        self.device.wait_idle()
        info = vk.VkDescriptorBufferInfo(buffer=frame.handle, offset=0, range=frame.size)
        write = vk.VkWriteDescriptorSet(dstSet=self.frame_set, dstBinding=Slot.FRAME, descriptorCount=1,
                                        descriptorType=vk.VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, pBufferInfo=[info])
        vk.vkUpdateDescriptorSets(self.device.handle, 1, [write], 0, None)
        self._frame_bound = frame

    def _upload_geometry(self, lists: list[ImGuiDrawList]) -> tuple[list[int], list[int]]:
        vertices = b"".join(dl.vertices for dl in lists)
        indices = np.concatenate([dl.indices for dl in lists]).astype(np.uint32) if lists else np.zeros(0, np.uint32)
        for attr, data in (("vertex_buffer", vertices), ("index_buffer", indices.tobytes())):
            buf = getattr(self, attr)
            if buf is None or buf.size < len(data):
                if buf is not None:
                    self.device.wait_idle()
                    buf.destroy()
                usage = ("vertex",) if attr == "vertex_buffer" else ("index",)
                setattr(self, attr, Buffer(self.device, max(len(data) * 2, 1 << 16), usage, host=True))
            getattr(self, attr).write(np.frombuffer(data, np.uint8))
        vertex_bases, index_bases, v, i = [], [], 0, 0
        for dl in lists:
            vertex_bases.append(v)
            index_bases.append(i)
            v += len(dl.vertices) // VERTEX_BYTES
            i += len(dl.indices)
        return vertex_bases, index_bases

    # -- drawing -----------------------------------------------------------------------------------------
    def record(self, cmd, framebuffer: Framebuffer, frame: Buffer, frame_size: tuple[int, int], gain: float = 1.0,
               draw_lists: list[ImGuiDrawList] | None = None) -> None:
        """Record the pass: the frame over the whole target, then the ImGui lists (None: no overlay)."""
        vk = self.device.vk
        self._bind_frame(frame)
        width, height = framebuffer.width, framebuffer.height
        bases = self._upload_geometry(draw_lists) if draw_lists else None
        area = vk.VkRect2D(offset=vk.VkOffset2D(x=0, y=0), extent=vk.VkExtent2D(width=width, height=height))
        vk.vkCmdBeginRenderPass(cmd, vk.VkRenderPassBeginInfo(renderPass=self.render_pass,
                                                              framebuffer=framebuffer.handle, renderArea=area),
                                vk.VK_SUBPASS_CONTENTS_INLINE)
        vk.vkCmdSetViewport(cmd, 0, 1, [vk.VkViewport(x=0, y=0, width=width, height=height, minDepth=0, maxDepth=1)])
        vk.vkCmdSetScissor(cmd, 0, 1, [area])
        stages = vk.VK_SHADER_STAGE_VERTEX_BIT | vk.VK_SHADER_STAGE_FRAGMENT_BIT
        vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_GRAPHICS, self.frame_pipeline)
        vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_GRAPHICS, self.frame_layout, 0, 1, [self.frame_set],
                                   0, None)
        block = PUSH_BLOCKS["overlay_frame"]
        push = vk.ffi.new("char[]", block.pack({"frame_size": frame_size, "target_size": (width, height),
                                                "gain": gain}))
        vk.vkCmdPushConstants(cmd, self.frame_layout, stages, 0, block.size, push)
        vk.vkCmdDraw(cmd, 3, 1, 0, 0)
        if bases is not None:
            self._record_imgui(cmd, draw_lists, bases, width, height)
        vk.vkCmdEndRenderPass(cmd)

    def _record_imgui(self, cmd, draw_lists: list[ImGuiDrawList], bases, width: int, height: int) -> None:
        vk = self.device.vk
        stages = vk.VK_SHADER_STAGE_VERTEX_BIT | vk.VK_SHADER_STAGE_FRAGMENT_BIT
        vk.vkCmdBindPipeline(cmd, vk.VK_PIPELINE_BIND_POINT_GRAPHICS, self.imgui_pipeline)
        vk.vkCmdBindVertexBuffers(cmd, 0, 1, [self.vertex_buffer.handle], [0])
        vk.vkCmdBindIndexBuffer(cmd, self.index_buffer.handle, 0, vk.VK_INDEX_TYPE_UINT32)
        block = PUSH_BLOCKS["overlay_imgui"]
        push = vk.ffi.new("char[]", block.pack({"scale": (2.0 / width, 2.0 / height), "translate": (-1.0, -1.0)}))
        vk.vkCmdPushConstants(cmd, self.imgui_layout, stages, 0, block.size, push)
        for dl, vertex_base, index_base in zip(draw_lists, *bases):
            for c in dl.commands:
                if c.texture not in self.textures or c.index_count == 0:
                    continue
                x0, y0 = max(int(c.clip[0]), 0), max(int(c.clip[1]), 0)
                x1, y1 = min(int(c.clip[2]), width), min(int(c.clip[3]), height)
                if x1 <= x0 or y1 <= y0:
                    continue
                vk.vkCmdSetScissor(cmd, 0, 1, [vk.VkRect2D(offset=vk.VkOffset2D(x=x0, y=y0),
                                                           extent=vk.VkExtent2D(width=x1 - x0, height=y1 - y0))])
                vk.vkCmdBindDescriptorSets(cmd, vk.VK_PIPELINE_BIND_POINT_GRAPHICS, self.imgui_layout, 0, 1,
                                           [self.textures[c.texture][1]], 0, None)
                vk.vkCmdDrawIndexed(cmd, c.index_count, 1, index_base + c.index_offset,
                                    vertex_base + c.vertex_offset, 0)

    def _release(self) -> None:
        self.device.wait_idle()

    def _release_textures_and_geometry(self) -> None:
        for image, _ in self.textures.values():
            image.destroy()
        self.textures = {}
        for buf in (self.vertex_buffer, self.index_buffer):
            if buf is not None:
                buf.destroy()
        self.vertex_buffer = self.index_buffer = None
