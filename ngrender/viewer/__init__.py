"""The interactive viewer: a glfw window presenting through a Vulkan swapchain, camera controls, and the
Dear ImGui overlay with the frame-time breakdown (``ngrender view SCENE``)."""
