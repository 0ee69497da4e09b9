"""The shader interface, declared once: every descriptor binding (slot, kind, element format, access), every
push-constant block (named, typed fields; offsets and the Python packing follow from the declaration), and the
constants host and device share. The GLSL declarations are generated from these tables: shaders
``#include "generated/bind_<name>.glsl"``, ``"generated/push_<block>.glsl"`` or ``"generated/constants.glsl"``
(shaders.expand resolves them), and Python binds resources by ``Slot`` and packs pushes by field name. No
binding number or push offset is typed anywhere else (tests/test_shader_interface.py greps for them).

``python -m ngrender.shader_interface`` prints the tables as markdown.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Iterable, Mapping

import numpy as np

from .encoding import HASH_PRIMES

# The descriptor kinds, spelled as vk.resources' roles (STORAGE, UNIFORM, TEXEL): that module loads Vulkan,
# this one must not (the NumPy references and the generator import it).
STORAGE, UNIFORM, TEXEL = "storage", "uniform", "texel"
SAMPLER = "sampler"  # a combined image sampler (the viewer overlay's font atlas)
MAX_PUSH_BYTES = 128  # the smallest maxPushConstantsSize Vulkan guarantees


class Slot(IntEnum):
    """Descriptor-set 0 binding numbers. One number, one buffer role; a slot with several declarations
    (``BINDINGS``) holds the same data read in different ways by different kernels."""

    GRID = 0           # grid table
    FRAME = 1          # tile output, RGBA8 words
    WEIGHTS = 2        # MLP weights of the field (buffered / shared variants, coopmat MLP)
    OCCUPANCY = 3      # NeRF occupancy bit field
    CONTROL = 4        # unfused: what the host tells the stages
    RAYS = 5           # unfused: per-ray state
    RAY_FLAGS = 6      # unfused: per-ray pending-sample count and flags
    LISTS = 7          # unfused: live-ray lists (ping-pong)
    SAMPLES = 8        # unfused: sample records (ping-pong)
    IN_A = 9           # unfused: encoded features, first network input
    IN_B = 10          # unfused: second network input (NeRF's SH encoding)
    NET_OUT = 11       # unfused: network output
    NET_DENSITY = 12   # unfused: NeRF density-network output
    NGPC_WEIGHTS = 13  # NGPC MLP engine weights
    EVALUATIONS = 14   # network-evaluation counter
    UNIT_INPUTS = 15   # tests' unit kernel
    UNIT_OUTPUTS = 16
    ATLAS = 17         # viewer overlay: the ImGui font atlas (graphics pipelines: FRAME is the frame shown)
    POINTS = 18        # field points kernel: positions and view directions
    POINT_VALUES = 19  # field points kernel: the field's values there


@dataclass(frozen=True)
class Binding:
    """One GLSL declaration of a descriptor: ``name`` is the GLSL variable (buffer member or texel buffer).

    ``element``: GLSL element type of a buffer (``[]`` runtime array, ``[N]`` sized array, none: one value), or
    the sampler type of a texel buffer; ``fields``: members of a struct-like block instead of one ``element``
    (with ``instance``, the block's GLSL instance name)."""

    name: str
    slot: Slot
    kind: str
    element: str = ""
    block: str = ""
    access: str = ""           # "readonly", "writeonly" or "" (read-write)
    fields: tuple[tuple[str, str, str], ...] = ()   # (type, name, comment) of a struct-like block
    instance: str = ""
    doc: str = ""
    variable: str = ""         # the GLSL variable when it differs from ``name`` (alternative declarations)

    @property
    def include(self) -> str:
        return f"generated/bind_{self.name}.glsl"

    @property
    def glsl_name(self) -> str:
        return self.variable or self.name

    def glsl(self) -> str:
        """The declaration, with a comment naming its slot."""
        head = f"// {self.slot.name} ({self.kind}): {self.doc}\n"
        if self.kind in (TEXEL, SAMPLER):
            return head + f"layout(set = 0, binding = {int(self.slot)}) uniform {self.element} {self.glsl_name};\n"
        if self.kind == UNIFORM:
            layout, qualifiers = "std140", "uniform"
        else:
            layout, qualifiers = "std430", " ".join(q for q in (self.access, "restrict buffer") if q)
        if self.fields:
            body = "".join(f"    {t} {n};" + (f"  // {c}" if c else "") + "\n" for t, n, c in self.fields)
            body = "{\n" + body + "}" + (f" {self.instance}" if self.instance else "")
        else:
            element, _, array = self.element.partition("[")
            body = f"{{ {element} {self.glsl_name}{'[' + array if array else ''}; }}"
        return head + f"layout({layout}, set = 0, binding = {int(self.slot)}) {qualifiers} {self.block} {body};\n"

    def bind(self, resource: object) -> tuple[int, tuple[str, object]]:
        """``(slot, (kind, resource))``: one entry of create_bound_pipeline's bindings."""
        return int(self.slot), (self.kind, resource)


# What the host tells the unfused / fused-rest stages (one uint each; n_out is counted on the GPU).
CONTROL_FIELDS = (
    ("n_in", "rays in the input list (pixels when initialising)"),
    ("n_out", "rays appended to the output list (atomic)"),
    ("k_in", "sample slots per input ray"),
    ("k_out", "sample slots per output ray"),
    ("samples_in", "first sample of the batch being consumed (0 or SAMPLE_CAPACITY)"),
    ("samples_out", "first sample of the batch being generated"),
    ("list_in", "first entry of the input ray list (0 or SAMPLE_CAPACITY)"),
    ("list_out", ""),
    ("n_samples", "samples in the batch the encoding and MLP stages process"),
    ("first", "fused-rest: this pass initialises the rays"),
)

_BINDINGS = (
    Binding("grid_tex", Slot.GRID, TEXEL, "samplerBuffer", doc="baked variant: one texel per entry (two for F=8)"),
    Binding("grid_words", Slot.GRID, STORAGE, "uint[]", "GridTable", "readonly",
            doc="buffered / shared variants: fp32, or fp16 pairs"),
    Binding("out_rgba", Slot.FRAME, STORAGE, "uint[]", "Frame", "writeonly", doc="tile pixels, RGBA8"),
    Binding("mlp_w4", Slot.WEIGHTS, UNIFORM, "vec4[MLP_VEC4S]", "MlpWeights", doc="buffered variant: vec4 rows"),
    Binding("mlp_g_half", Slot.WEIGHTS, STORAGE, "uvec2[]", "MlpWeights", "readonly",
            doc="shared variant, fp16: four halves per uvec2", variable="mlp_g"),
    Binding("mlp_g_float", Slot.WEIGHTS, STORAGE, "vec4[]", "MlpWeights", "readonly", doc="shared variant, fp32",
            variable="mlp_g"),
    Binding("w16", Slot.WEIGHTS, STORAGE, "float16_t[]", "Weights", "readonly",
            doc="coopmat MLP: W^T tiles, fp16"),
    Binding("w_words", Slot.WEIGHTS, STORAGE, "uint[]", "Weights", "readonly",
            doc="coopmat MLP without the extension: the same fp16 pairs"),
    Binding("occupancy", Slot.OCCUPANCY, TEXEL, "usamplerBuffer",
            doc="NERF_CASCADES x OCCUPANCY_RES^3, x fastest"),
    Binding("ctl", Slot.CONTROL, STORAGE, block="Control", instance="ctl",
            fields=tuple(("uint", name, doc) for name, doc in CONTROL_FIELDS), doc="host -> stages, per submission"),
    Binding("rays", Slot.RAYS, STORAGE, "Ray[]", "Rays", doc="the app's Ray (ray_<app>.glsl)"),
    Binding("ray_flags", Slot.RAY_FLAGS, STORAGE, "uint[]", "RayFlags", doc="pending samples | EXHAUSTED | ALIVE"),
    Binding("lists", Slot.LISTS, STORAGE, "uint[]", "Lists", doc="two halves of SAMPLE_CAPACITY ray ids"),
    Binding("samples", Slot.SAMPLES, STORAGE, "vec4[]", "Samples", doc="SAMPLE_VEC4S vec4s per sample, two halves"),
    Binding("samples_in", Slot.SAMPLES, STORAGE, "vec4[]", "Samples", "readonly", doc="the same, read by encoders",
            variable="samples"),
    Binding("features", Slot.IN_A, STORAGE, "float[]", "Features", "writeonly", doc="encoder output, level-major"),
    Binding("in_a", Slot.IN_A, STORAGE, "float[]", "InA", "readonly", doc="network input rows 0..NET_IN_A"),
    Binding("encoded", Slot.IN_B, STORAGE, "float[]", "Encoded", "writeonly", doc="SH encoder output"),
    Binding("in_b", Slot.IN_B, STORAGE, "float[]", "InB", "readonly", doc="network input rows after NET_IN_A"),
    Binding("net_y", Slot.NET_OUT, STORAGE, "float[]", "Out", "writeonly", doc="network output, feature-major"),
    Binding("net_out", Slot.NET_OUT, STORAGE, "float[]", "NetOut", "readonly", doc="the same, read by the stages"),
    Binding("net_density", Slot.NET_DENSITY, STORAGE, "float[]", "NetDensity", "readonly",
            doc="NeRF: density-network output"),
    Binding("weights", Slot.NGPC_WEIGHTS, STORAGE, "float[]", "Weights", "readonly",
            doc="NGPC MLP engine: out x in, row-major"),
    Binding("evaluations", Slot.EVALUATIONS, STORAGE, "uint[2]", "Evaluations",
            doc="network evaluations of the tile: low, high word (lib/evaluations.glsl)"),
    Binding("frame_rgba", Slot.FRAME, STORAGE, "uint[]", "Frame", "readonly", doc="viewer overlay: the frame shown"),
    Binding("atlas", Slot.ATLAS, SAMPLER, "sampler2D", doc="viewer overlay: ImGui font atlas"),
    Binding("inputs", Slot.UNIT_INPUTS, STORAGE, "uint[]", "Inputs", "readonly", doc="unit kernel inputs"),
    Binding("outputs", Slot.UNIT_OUTPUTS, STORAGE, "uint[]", "Outputs", "writeonly", doc="unit kernel outputs"),
    Binding("points", Slot.POINTS, STORAGE, "float[]", "Points", "readonly",
            doc="field points: x, y, z, then the view direction dx, dy, dz (NeRF colour)"),
    Binding("point_values", Slot.POINT_VALUES, STORAGE, "float[]", "PointValues", "writeonly",
            doc="field points: the value (grid), or value, r, g, b per point"),
)
BINDINGS: dict[str, Binding] = {b.name: b for b in _BINDINGS}


# -- push constants ---------------------------------------------------------------------------------------
# GLSL type -> (struct code, components, base alignment and size in bytes) under the push-constant (std430) rules
_TYPES = {"float": ("f", 1, 4), "int": ("i", 1, 4), "uint": ("I", 1, 4), "vec2": ("f", 2, 8),
          "ivec2": ("i", 2, 8), "vec3": ("f", 3, 16), "vec4": ("f", 4, 16)}


@dataclass(frozen=True)
class PushField:
    name: str
    type: str
    doc: str = ""

    @property
    def size(self) -> int:
        return 4 * _TYPES[self.type][1]

    @property
    def align(self) -> int:
        return _TYPES[self.type][2]


@dataclass(frozen=True)
class PushBlock:
    """A ``layout(push_constant)`` block: offsets by std430 rules (a vec3 aligns to 16 and a scalar may follow
    in its last 4 bytes), at most MAX_PUSH_BYTES."""

    name: str
    fields: tuple[PushField, ...]
    doc: str = ""

    def __post_init__(self) -> None:
        if self.size > MAX_PUSH_BYTES:
            raise ValueError(f"push block {self.name} takes {self.size} bytes, over {MAX_PUSH_BYTES}")

    @property
    def offsets(self) -> dict[str, int]:
        out, offset = {}, 0
        for f in self.fields:
            offset = -(-offset // f.align) * f.align
            out[f.name] = offset
            offset += f.size
        return out

    @property
    def size(self) -> int:
        """Bytes pushed: the last field's end rounded to 4 (the struct's trailing padding is not needed)."""
        if not self.fields:
            return 0
        last = self.fields[-1]
        return self.offsets[last.name] + last.size

    @property
    def format(self) -> str:
        """The ``struct`` format of the block, padding as ``x``."""
        parts, end = ["<"], 0
        for f in self.fields:
            offset = self.offsets[f.name]
            if offset > end:
                parts.append(f"{offset - end}x")
            code, n, _ = _TYPES[f.type]
            parts.append(f"{n}{code}" if n > 1 else code)
            end = offset + f.size
        return "".join(parts)

    def pack(self, values: Mapping[str, Any]) -> bytes:
        """The push bytes from every field's value by name (vectors as sequences)."""
        names = [f.name for f in self.fields]
        if set(values) != set(names):
            raise ValueError(f"push block {self.name}: missing {sorted(set(names) - set(values))}, "
                             f"unknown {sorted(set(values) - set(names))}")
        flat: list = []
        for f in self.fields:
            v = values[f.name]
            flat.extend(v if _TYPES[f.type][1] > 1 else (v,))
        return struct.pack(self.format, *flat)

    @property
    def include(self) -> str:
        return f"generated/push_{self.name}.glsl"

    def glsl(self) -> str:
        lines = [f"// push block {self.name}: {self.doc}", "layout(push_constant) uniform Push {"]
        for f in self.fields:
            comment = f"  // {f.doc}" if f.doc else ""
            lines.append(f"    {f.type} {f.name};{comment}")
        lines.append("} pc;")
        return "\n".join(lines) + "\n"


def _f(name: str, type_: str, doc: str = "") -> PushField:
    return PushField(name, type_, doc)


def _march_block(name: str, camera_w: tuple[str | None, ...], params: Iterable[PushField], doc: str) -> PushBlock:
    """A 3D app's block: camera axes and origin (vec3, world space), each followed by the app's scalar for
    that vec3's spare 4 bytes (None: unused), the frame and tile, focal length, the app's parameters, and the
    background colour."""
    camera: list[PushField] = []
    for axis, scalar in zip(("cam_x", "cam_y", "cam_z", "cam_o"), camera_w):
        camera.append(_f(axis, "vec3", "camera origin" if axis == "cam_o" else f"camera {axis[-1]} axis"))
        if scalar:
            camera.append(_f(scalar, "float"))
    return PushBlock(name, (*camera, _f("frame", "ivec2", "frame size in pixels"),
                            _f("tile_origin", "ivec2", "first pixel of this tile in the frame"),
                            _f("tile_size", "ivec2"), _f("focal", "float", "in pixels"), *params,
                            _f("background", "vec4")), doc)


PUSH_BLOCKS: dict[str, PushBlock] = {b.name: b for b in (
    PushBlock("gigapixel", (_f("tile_origin", "ivec2", "first pixel of this tile in the frame"),
                            _f("tile_size", "ivec2"),
                            _f("window_origin", "vec2", "image-plane coordinate of the frame's top-left corner"),
                            _f("pixel_step", "vec2", "image-plane size of one pixel"), _f("background", "float")),
              "the gigapixel app's kernels"),
    _march_block("sdf", ("normal_h", "ao_step", "ao_scale", "depth_far"),
                 (_f("epsilon", "float", "hit when sdf < epsilon"), _f("max_steps", "int"),
                  _f("mode", "int", "0 shaded, 1 normals, 2 depth, 3 steps, 4 ao"),
                  _f("ao_samples", "int", "occlusion samples along the normal (shaded and ao modes); 0: none")),
                 "the SDF app's kernels"),
    _march_block("volume", ("density_scale", "min_transmittance", "dt", None),
                 (_f("n_steps", "int"), _f("mode", "int", "0 rgb, 1 opacity, 2 steps"),
                  _f("jitter", "int", "1: first sample at a per-pixel hash of (pixel, seed) times dt, 0: dt / 2"),
                  _f("seed", "uint", "the jitter hash's seed")), "the volume app's kernels"),
    _march_block("nerf", ("depth_far", "min_transmittance", "dt", "use_occupancy"),
                 (_f("cone_angle", "float", "0: fixed steps of dt (else dt is the smallest step)"),
                  _f("n_steps", "int"),
                  _f("mode", "int", "0 rgb, 1 depth, 2 opacity, 3 samples")), "the NeRF app's kernels"),
    PushBlock("unit", (_f("count", "uint", "invocations with work"),), "tests' unit kernel"),
    PushBlock("points", (_f("origin", "vec3", "grid: position of grid point (0, 0, 0)"),
                         _f("spacing", "float", "grid: distance between neighbouring grid points"),
                         _f("grid", "ivec2", "grid: points per row (x), rows per plane (y)"),
                         _f("first", "uint", "grid: index of this dispatch's first point, x fastest"),
                         _f("count", "uint", "points in this dispatch")),
              "the field points kernel (mesh export)"),
    PushBlock("overlay_frame", (_f("frame_size", "ivec2"), _f("target_size", "ivec2"),
                                _f("gain", "float", "2^exposure")), "viewer: the frame over the target"),
    PushBlock("overlay_imgui", (_f("scale", "vec2", "pixels to clip space"), _f("translate", "vec2")),
              "viewer: ImGui vertices to clip space"),
)}


# -- shared constants -------------------------------------------------------------------------------------
# tcnn's SphericalHarmonics coefficients (sh.glsl, reference/nerf.py): SH_<degree>_<term>
SH_COEFFICIENTS = {
    "SH_C0": 0.28209479177387814, "SH_C1": 0.48860251190291987, "SH_C2_XY": 1.0925484305920792,
    "SH_C2_ZZ": 0.94617469575755997, "SH_C2_0": 0.31539156525251999, "SH_C2_XX": 0.54627421529603959,
    "SH_C3_A": 0.59004358992664352, "SH_C3_B": 2.8906114426405538, "SH_C3_C": 0.45704579946446572,
    "SH_C3_D": 0.3731763325901154, "SH_C3_E": 1.4453057213202769,
}
# tcnn output activations: GLSL body of act_<name>(float v) (reference: reference/mlp.py)
OUTPUT_ACTIVATIONS = {"none": "v", "relu": "max(v, 0.0)", "sigmoid": "1.0 / (1.0 + exp(-v))",
                      "exponential": "exp(v)"}
# SDF shading (ray_sdf.glsl, reference/sdf.py): normal-sample offsets, Lambert + ambient
SDF_TETRA = ((1, -1, -1), (-1, -1, 1), (-1, 1, -1), (1, 1, 1))
SDF_LIGHT = (0.48, 0.8, 0.36)  # unit vector, world space
SDF_ALBEDO = (0.85, 0.78, 0.68)
SDF_AMBIENT = 0.15
SDF_STEP_SCALE = 0.95  # sphere-tracing step: t += SDF_STEP_SCALE * sdf


def glsl_float(value: float) -> str:
    """A GLSL float literal that reads back as the same float32."""
    text = f"{float(np.float32(value)):.9g}"
    return text if any(ch in text for ch in ".en") else text + ".0"


def _vec3(values: Iterable[float]) -> str:
    return "vec3(" + ", ".join(glsl_float(v) for v in values) + ")"


def constants_glsl() -> str:
    """``generated/constants.glsl``: the constants above as GLSL."""
    lines = ["// Shared with the host (ngrender/shader_interface.py)."]
    lines += [f"const float {name} = {glsl_float(v)};" for name, v in SH_COEFFICIENTS.items()]
    lines += [f"const uint HASH_PRIME_{i} = {p}u;" for i, p in enumerate(HASH_PRIMES)]
    lines += [f"float act_{name}(float v) {{ return {body}; }}" for name, body in OUTPUT_ACTIVATIONS.items()]
    lines += [f"const vec3 SDF_TETRA[{len(SDF_TETRA)}] = vec3[]({', '.join(_vec3(t) for t in SDF_TETRA)});",
              f"const vec3 SDF_LIGHT = {_vec3(SDF_LIGHT)};", f"const vec3 SDF_ALBEDO = {_vec3(SDF_ALBEDO)};",
              f"const float SDF_AMBIENT = {glsl_float(SDF_AMBIENT)};",
              f"const float SDF_STEP_SCALE = {glsl_float(SDF_STEP_SCALE)};"]
    return "\n".join(lines) + "\n"


def generated_includes() -> dict[str, str]:
    """Every generated declaration by include name (shaders.expand looks them up)."""
    out = {b.include: b.glsl() for b in BINDINGS.values()}
    out.update({p.include: p.glsl() for p in PUSH_BLOCKS.values()})
    out["generated/constants.glsl"] = constants_glsl()
    return out


def markdown() -> str:
    """The interface as markdown tables (for docs and reports)."""
    lines = ["| slot | binding (GLSL name) | kind | element | access | block |", "|---|---|---|---|---|---|"]
    for b in sorted(BINDINGS.values(), key=lambda b: (b.slot, b.name)):
        element = b.element or "{" + ", ".join(n for _, n, _ in b.fields) + "}"
        access = b.access or ("read" if b.kind in (TEXEL, SAMPLER, UNIFORM) else "read-write")
        lines.append(f"| {int(b.slot)} {b.slot.name} | {b.name} | {b.kind} | {element} | {access} | {b.block or '-'} |")
    for p in PUSH_BLOCKS.values():
        lines += ["", f"push `{p.name}` ({p.size} bytes, struct `{p.format}`): " +
                  ", ".join(f"{f.name} {f.type} @{off}" for f, off in zip(p.fields, p.offsets.values()))]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
