"""The field at points on the GPU (``shaders/mesh/points.comp``), for mesh export: a grid's values a slab at a time,
and any points' values and colours (vertex normals and colours). The same grid encoding and networks as the
fused kernels, in the same kernel variants. Reference: reference/points.py.

Values: SDF the distance; NeRF the density network's raw ``out[0]`` (log density; -10000 in an empty occupancy
cell, as instant-ngp's marching cubes); volume the density ``out[3]``. Colours: NeRF the colour network looking
along the given direction; volume ``out[0:3]``; SDF none (zero)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..model import Model
from ..shader_interface import BINDINGS, PUSH_BLOCKS
from ..shaders import compile_shader
from ..vk.compute import compute_barrier, create_bound_pipeline
from ..vk.device import Device
from ..vk.live import Owner
from ..vk.resources import STORAGE, Buffer
from .field import FieldResources, choose_variant, shared_weight_bytes
from .registry import app_spec

FIELD_APPS = {"sdf": 0, "nerf": 1, "volume": 2}  # the shader's FIELD_APP
# Points per dispatch: 2^20 / 64 = 16384 workgroups, under every device's group-count limit (65535); the
# points buffers (40 MiB) are host memory on a CPU driver.
DISPATCH_POINTS = 1 << 20
WORKGROUP = 64
MAX_GRID_POINTS = 1 << 32  # grid point indices are 32-bit in the shader


class FieldPoints(Owner):
    """``grid(...)`` samples the field on a regular grid; ``at(points, directions)`` at any points. Kernels are
    compiled on first use. ``evaluations``: network evaluations so far (counted on the GPU, as the fused
    kernels do)."""

    def _create(self, device: Device, model: Model, variant: str = "auto") -> None:
        if model.app not in FIELD_APPS:
            raise ConfigError(f"a {model.app} model is not a 3D field; mesh export needs an sdf, nerf or volume "
                              "model")
        app_spec(model.app).app_class.check_model(model)
        self.device, self.model = device, model
        layers = model.layers + (model.rgb_layers or [])
        self.variant = choose_variant(device, variant, shared_weight_bytes(layers, model.storage_dtype == "float16"))
        self.field = self.own(FieldResources(device, model, self.variant))
        self.inputs = self.own(Buffer(device, DISPATCH_POINTS * 6 * 4, (STORAGE,), host=True))
        self.values = self.own(Buffer(device, DISPATCH_POINTS * 4 * 4, (STORAGE,), host=True))
        self.counter = self.own(Buffer(device, 8, (STORAGE,), host=True))
        self.counter.write(np.zeros(2, np.uint32))
        self._kernels: dict[bool, object] = {}

    def _kernel(self, grid: bool):
        if grid not in self._kernels:
            defines = {**self.field.defines(), "FIELD_APP": FIELD_APPS[self.model.app], "POINTS_GRID": int(grid)}
            if self.model.app == "nerf":  # as NerfApp: SH degree, and the scene box beyond the unit cube
                defines["SH_DEGREE"] = self.model.sh_degree
                if self.model.aabb_scale > 1:
                    defines.update(AABB_SCALE=self.model.aabb_scale, NERF_CASCADES=self.model.occupancy_cascades)
            spirv = compile_shader("mesh/points.comp", defines, self.field.generated())
            bindings = {**self.field.bindings(), **dict([BINDINGS["point_values"].bind(self.values),
                                                         BINDINGS["evaluations"].bind(self.counter)])}
            if not grid:
                bindings.update([BINDINGS["points"].bind(self.inputs)])
            label = "mesh/grid" if grid else "mesh/points"
            self._kernels[grid] = self.own(create_bound_pipeline(self.device, spirv, bindings,
                                                                 PUSH_BLOCKS["points"].size, label))
        return self._kernels[grid]

    def _run(self, grid: bool, count: int, origin=(0.0, 0.0, 0.0), spacing: float = 0.0, shape=(1, 1),
             first: int = 0) -> None:
        kernel = self._kernel(grid)
        push = PUSH_BLOCKS["points"].pack({"origin": tuple(float(v) for v in origin), "spacing": float(spacing),
                                           "grid": tuple(int(v) for v in shape), "first": int(first),
                                           "count": int(count)})

        def record(cmd):
            kernel.record(cmd, (-(-count // WORKGROUP), 1, 1), push)
            compute_barrier(self.device, cmd)

        self.device.submit(record)

    def grid(self, origin: tuple[float, float, float], spacing: float, shape: tuple[int, int, int],
             first_plane: int, n_planes: int) -> np.ndarray:
        """Values at ``origin + spacing * (x, y, z)`` for every x < shape[0], y < shape[1] and z in
        ``first_plane .. first_plane + n_planes - 1``: a (n_planes, shape[1], shape[0]) float32 array."""
        nx, ny, nz = shape
        if nx * ny * nz > MAX_GRID_POINTS or first_plane + n_planes > nz:
            raise ConfigError(f"a {nx}x{ny}x{nz} grid has over 2^32 points or no plane {first_plane + n_planes - 1}")
        out = np.empty(n_planes * ny * nx, np.float32)
        start = first_plane * ny * nx
        for done in range(0, out.size, DISPATCH_POINTS):
            count = min(DISPATCH_POINTS, out.size - done)
            self._run(True, count, origin, spacing, (nx, ny), start + done)
            out[done:done + count] = self.values.array(np.float32, count)
        return out.reshape(n_planes, ny, nx)

    def at(self, points: np.ndarray, directions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(values (N,), rgb (N, 3)) at ``points`` (N, 3); ``directions`` (N, 3): NeRF's view directions (unit)."""
        points = np.asarray(points, np.float32).reshape(-1, 3)
        rows = np.zeros((points.shape[0], 6), np.float32)
        rows[:, :3] = points
        if directions is not None:
            rows[:, 3:] = np.asarray(directions, np.float32).reshape(-1, 3)
        values = np.empty((points.shape[0], 4), np.float32)
        for done in range(0, points.shape[0], DISPATCH_POINTS):
            count = min(DISPATCH_POINTS, points.shape[0] - done)
            self.inputs.write(rows[done:done + count])
            self._run(False, count)
            values[done:done + count] = self.values.array(np.float32, count * 4).reshape(count, 4)
        return values[:, 0].copy(), values[:, 1:].copy()

    @property
    def evaluations(self) -> int:
        low, high = (int(word) for word in self.counter.read(np.uint32, 2))
        return low + (high << 32)
