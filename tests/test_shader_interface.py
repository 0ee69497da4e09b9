"""The declared shader interface (ngrender/shader_interface.py): its generated GLSL, its push layouts as the
compiler lays them out, that no binding number or push offset is typed anywhere else, and the GPU-side count
of network evaluations against the NumPy references."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ngrender import shader_interface as si
from ngrender.shaders import compile_shader, expand

ROOT = Path(__file__).resolve().parent.parent
# Tests of the Vulkan layer itself compile throwaway shaders with their own bindings and pushes.
OWN_SHADERS = ("tests/test_vk.py:", "tests/test_shaders.py:")


def test_generated_binding_declarations():
    assert si.BINDINGS["out_rgba"].glsl().splitlines()[1] == \
        "layout(std430, set = 0, binding = 1) writeonly restrict buffer Frame { uint out_rgba[]; };"
    assert si.BINDINGS["occupancy"].glsl().splitlines()[1] == \
        "layout(set = 0, binding = 3) uniform usamplerBuffer occupancy;"
    assert si.BINDINGS["mlp_w4"].glsl().splitlines()[1] == \
        "layout(std140, set = 0, binding = 2) uniform MlpWeights { vec4 mlp_w4[MLP_VEC4S]; };"
    control = si.BINDINGS["ctl"].glsl()
    assert "restrict buffer Control {" in control and control.rstrip().endswith("} ctl;")
    assert [line.split()[1].rstrip(";") for line in control.splitlines()[2:-1]] == \
        [name for name, _ in si.CONTROL_FIELDS]
    assert si.BINDINGS["evaluations"].glsl().splitlines()[1] == \
        "layout(std430, set = 0, binding = 14) restrict buffer Evaluations { uint evaluations[2]; };"
    # a slot's declarations differ in kind only where the field's kernel variants differ
    kinds: dict[int, set[str]] = {}
    for b in si.BINDINGS.values():
        kinds.setdefault(b.slot, set()).add(b.kind)
    assert {s for s, k in kinds.items() if len(k) > 1} == {si.Slot.GRID, si.Slot.WEIGHTS}
    assert si.BINDINGS["in_a"].bind("buffer") == (9, (si.STORAGE, "buffer"))


def test_roles_match_vk_resources():
    from ngrender.vk import resources

    assert (si.STORAGE, si.UNIFORM, si.TEXEL) == (resources.STORAGE, resources.UNIFORM, resources.TEXEL)


def test_generated_push_block():
    nerf = si.PUSH_BLOCKS["nerf"]
    glsl = nerf.glsl().splitlines()
    assert glsl[1] == "layout(push_constant) uniform Push {" and glsl[-1] == "} pc;"
    assert "    vec3 cam_x;  // camera x axis" in glsl and "    float dt;" in glsl
    assert nerf.size == 128 and nerf.offsets["depth_far"] == 12 and nerf.offsets["background"] == 112
    # the 3D blocks keep the byte layout of the vec4-slot struct they replace
    assert struct.calcsize(nerf.format) == struct.calcsize("<4f4f4f4f2i2i2iffii8x4f") == 128
    assert si.PUSH_BLOCKS["gigapixel"].format == "<2i2i2f2ff"
    values = {f.name: tuple(range(f.size // 4)) if f.size > 4 else 3 for f in nerf.fields}
    data = nerf.pack(values)
    assert len(data) == 128
    assert struct.unpack_from("<f", data, nerf.offsets["dt"])[0] == 3.0
    assert struct.unpack_from("<3f", data, nerf.offsets["cam_o"]) == (0.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="missing"):
        nerf.pack({"dt": 1.0})
    with pytest.raises(ValueError, match="over 128"):
        si.PushBlock("big", tuple(si.PushField(f"v{i}", "vec4") for i in range(9)))


def _member_offsets(spirv: bytes) -> list[list[int]]:
    """The member offsets the compiler gave each block of a SPIR-V module."""
    words = np.frombuffer(spirv, np.uint32)
    blocks: dict[int, dict[int, int]] = {}
    i = 5
    while i < len(words):
        count, opcode = int(words[i]) >> 16, int(words[i]) & 0xFFFF
        if opcode == 72 and int(words[i + 3]) == 35:  # OpMemberDecorate struct member Offset value
            blocks.setdefault(int(words[i + 1]), {})[int(words[i + 2])] = int(words[i + 4])
        i += count
    return [[members[k] for k in sorted(members)] for members in blocks.values()]


@pytest.mark.parametrize("block", list(si.PUSH_BLOCKS))
def test_push_offsets_as_the_compiler_lays_them_out(block, tmp_path):
    """The Python offsets (and so the packing) are the ones glslang assigns to the generated block."""
    push = si.PUSH_BLOCKS[block]
    reads = " + ".join(f"float(pc.{f.name}{'.x' if f.size > 4 else ''})" for f in push.fields)
    shader = tmp_path / "push.comp"
    shader.write_text(f'#version 450\nlayout(local_size_x = 1) in;\n#include "{push.include}"\n'
                      f'#include "{si.BINDINGS["outputs"].include}"\n'
                      f"void main() {{ outputs[0] = floatBitsToUint({reads}); }}\n")
    assert list(push.offsets.values()) in _member_offsets(compile_shader(shader))


def test_every_generated_include_compiles(tmp_path):
    for name, binding in si.BINDINGS.items():
        if binding.element.startswith("float16_t"):
            continue  # needs the coopmat extensions: compiled by the coopmat kernel on devices that have them
        prefix = "struct Ray { vec4 a; };\n" if name == "rays" else ""
        source = (f"#version 450\nlayout(local_size_x = 1) in;\n#define MLP_VEC4S 4\n{prefix}"
                  f'#include "{binding.include}"\nvoid main() {{}}\n')
        path = tmp_path / f"{name}.comp"
        path.write_text(source)
        compile_shader(path)


def test_constants_are_the_hosts():
    from ngrender.encoding import HASH_PRIMES
    from ngrender.reference import nerf as nerf_ref
    from ngrender.reference import sdf as sdf_ref

    text = si.constants_glsl()
    assert f"const uint HASH_PRIME_1 = {HASH_PRIMES[1]}u;" in text
    assert "const float SH_C0 = 0.282094806;" in text
    assert "float act_sigmoid(float v) { return 1.0 / (1.0 + exp(-v)); }" in text
    assert np.array_equal(sdf_ref.LIGHT, np.float32(si.SDF_LIGHT)) and sdf_ref.AMBIENT == np.float32(si.SDF_AMBIENT)
    sh = nerf_ref.sh_encode(np.array([[0.0, 0.0, 1.0]], np.float32))[0]
    assert sh[0] == np.float32(si.SH_COEFFICIENTS["SH_C0"]) and sh[2] == np.float32(si.SH_COEFFICIENTS["SH_C1"])
    # the expanded fused SDF kernel takes its shading constants from the generated header, nowhere else
    text = expand("fused/sdf.comp", generated={"generated/grid_levels.glsl": "", "generated/variant.glsl": ""}).text
    assert text.count("const vec3 SDF_LIGHT") == 1 and "0.48" not in text.replace(si.constants_glsl(), "")


def _git_grep(pattern: str) -> list[str]:
    out = subprocess.run(["git", "grep", "-nE", pattern, "--", "ngrender", "shaders", "tests", "scripts"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if not line.startswith(("ngrender/shader_interface.py:", "tests/test_shader_interface.py:",
                                    *OWN_SHADERS))
            and "VkVertexInput" not in line]  # the overlay's vertex-buffer binding is no descriptor


def test_no_hand_typed_binding_or_push_offset():
    """Binding numbers and push layouts come from shader_interface.py only. The same check by hand:
    git grep -nE 'binding\\s*=\\s*[0-9]|push_constant\\)' -- ngrender shaders tests scripts"""
    assert _git_grep(r"binding\s*=\s*[0-9]") == []
    assert _git_grep(r"push_constant\)") == []                         # GLSL push blocks: generated only
    assert _git_grep(r"offset\s*=\s*[0-9]+\)\s*(uniform|in|out)") == []  # explicit GLSL member offsets
    assert _git_grep(r"push_size\s*=\s*[0-9]") == []
    assert _git_grep(r"bindings(\(\))?\[[0-9]|\{[0-9]+: \((STORAGE|UNIFORM|TEXEL)") == []  # slots by number
    packed = _git_grep(r"struct\.(Struct|pack)\(")  # a push packed by hand
    assert [line for line in packed if line.startswith(("ngrender/apps/", "tests/unit_kernel.py:"))] == []
    assert _git_grep(r"\b(GRID|MLP|OUTPUT)_BINDING\b") == []


@pytest.mark.parametrize("app", ["sdf", "volume", "nerf"])
def test_fused_kernels_count_network_evaluations(device, app):
    """FrameStats.samples of the fused 3D kernels is the GPU's count of network evaluations, summed over tiles
    (the counter is reset per tile), and equals the evaluations of the NumPy reference march."""
    from ngrender.apps import create_app
    from ngrender.model import load_model
    from ngrender.reference import nerf as nerf_ref
    from ngrender.reference import sdf as sdf_ref
    from ngrender.reference import volume as volume_ref
    from ngrender.render import Renderer

    names = {"sdf": ("sdf_torus", sdf_ref), "volume": ("volume_cloud", volume_ref), "nerf": ("nerf_blobs", nerf_ref)}
    stem, ref = names[app]
    model = load_model(ROOT / "tests" / "data" / f"{stem}_hash.safetensors")
    instance = create_app(device, model, "baked", max_tile=(16, 16))
    renderer = Renderer(device, instance)
    try:
        view = instance.default_view()
        _, stats = renderer.render(40, 30, view)
    finally:
        renderer.destroy()
        instance.destroy()
    _, per_pixel = ref.render(model, 40, 30, view)
    assert stats.tiles == 6 and stats.samples == int(per_pixel.sum()) > 40 * 30


def test_gigapixel_counts_on_image_pixels(device, model_factory):
    from ngrender.apps import create_app
    from ngrender.reference import gigapixel as ref
    from ngrender.render import Renderer

    instance = create_app(device, model_factory("hash"), "baked", max_tile=(32, 32))
    renderer = Renderer(device, instance)
    window = (-0.2, 0.1, 1.1, 0.8)
    try:
        _, stats = renderer.render(50, 40, instance.make_view({"window": window}))
    finally:
        renderer.destroy()
        instance.destroy()
    assert stats.tiles == 4 and stats.samples == ref.evaluations(50, 40, window) < 50 * 40


def test_evaluation_counter_carries_into_its_high_word(device, tmp_path):
    """The counter is 64 bits in two words: adds that wrap the low word carry into the high one, so a big tile
    of long marches (past 2^32 evaluations) still counts exactly."""
    from ngrender.vk.compute import create_bound_pipeline
    from ngrender.vk.resources import STORAGE, Buffer

    shader = tmp_path / "count.comp"
    shader.write_text('#version 450\nlayout(local_size_x = 64) in;\n#include "evaluations.glsl"\n'
                      "void main() { count_evaluations(gl_LocalInvocationIndex + 1u); }\n")
    counter = Buffer(device, 8, (STORAGE,), host=True)
    try:
        start = np.array([0xFFFFFF00, 5], np.uint32)
        counter.write(start)
        kernel = create_bound_pipeline(device, compile_shader(shader), dict([si.BINDINGS["evaluations"].bind(counter)]),
                                       0, "count")
        try:
            device.submit(lambda cmd: kernel.record(cmd, (3, 1, 1), b""))
        finally:
            kernel.destroy()
        low, high = (int(word) for word in counter.read(np.uint32, 2))
    finally:
        counter.destroy()
    assert low + (high << 32) == 0xFFFFFF00 + (5 << 32) + 3 * sum(range(1, 65)) and high == 6


def test_ngpc_layer_table():
    from ngrender import glslgen

    layers = [np.zeros((16, 32), np.float32), np.zeros((3, 16), np.float32)]
    assert glslgen.ngpc_layers(layers, "sigmoid").splitlines() == [
        "#define N_LAYERS 2", "#define NET_WIDTH 32", "const int LAYER_IN[2] = int[](32, 16);",
        "const int LAYER_OUT[2] = int[](16, 3);", "const int LAYER_OFFSET[2] = int[](0, 512);",
        "float output_act(float v) { return act_sigmoid(v); }"]
    with pytest.raises(ValueError, match="unknown output activation"):
        glslgen.ngpc_layers(layers, "tanh")


def test_one_psnr():
    from ngrender.reference.output import psnr_db
    from ngrender.train import loop

    assert loop.psnr_db is psnr_db
    assert psnr_db(0.01) == pytest.approx(20.0) and psnr_db(0.0) == float("inf")
    assert psnr_db(255.0 ** 2 / 100.0, 255.0) == pytest.approx(20.0)


def test_activation_names_agree():
    from ngrender import glslgen
    from ngrender.model import OUTPUT_ACTIVATIONS

    assert tuple(si.OUTPUT_ACTIVATIONS) == OUTPUT_ACTIVATIONS == glslgen.ACTIVATIONS  # model.py may not import this


def test_torch_sh_is_the_references():
    torch = pytest.importorskip("torch", reason="the PyTorch side needs the [train] extra; ./run.sh installs it")
    from ngrender.reference.nerf import sh_encode
    from ngrender.train.torch_field import torch_sh

    d = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    assert np.array_equal(torch_sh(torch.from_numpy(d), 4).numpy(), sh_encode(d, 4))
