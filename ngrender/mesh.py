"""``ngrender mesh SCENE --out M.ply|.obj|.glb``: a 3D field's isosurface as a triangle mesh.

The field is sampled on a grid of ``resolution``^3 points over the scene box by the points kernel
(apps/points.py), a slab of z planes at a time; each slab is meshed by scikit-image's marching cubes and shares
its last plane with the next slab, whose copies of the vertices on that plane are welded to the first ones, so
the mesh is watertight across seams and equal to the mesh of the whole grid. Memory is bounded by the slab
(``SLAB_POINTS`` values), not the grid. Per app: SDF at distance 0 with normals from the network (central
differences); NeRF at instant-ngp's density threshold (its marching cubes: the raw density output, masked by the
occupancy grid), normals from the mesh, vertex colours from the colour network looking at the surface head-on;
volume at a density threshold with its colour. Written by trimesh, atomically."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConfigError, NgrenderError
from .fileio import atomic_output, check_output

MIN_RESOLUTION, MAX_RESOLUTION = 16, 1024  # grid points per axis; 1024^3 indices stay 32-bit in the kernel
DEFAULT_RESOLUTION = 256
SLAB_POINTS = 1 << 22  # grid values held at once (16 MiB): a slab is as many z planes as fit, at least 2
FORMATS = {".ply": "ply", ".obj": "obj", ".glb": "glb"}
INGP_NERF_THRESH = 2.5  # instant-ngp's m_mesh.thresh, on the density network's raw output: log density
# Default thresholds in the units the user gives them (see isosurface()); the volume's is half the bone density of
# the head CT's transfer function (train/volume.py: bone is 60 at HU >= 450), the skull.
DEFAULT_THRESHOLD = {"sdf": 0.0, "nerf": math.exp(INGP_NERF_THRESH), "volume": 30.0}


@dataclass(frozen=True)
class Isosurface:
    """Where the surface is: ``level`` in the sampled values' units (apps/points.py); ``inside_above``: the solid
    is where the values exceed the level (densities) rather than fall below it (distances). ``threshold`` is the
    level in the user's units: a sampled value v is ``exp(v)`` there when ``log`` (NeRF), else ``v * scale``."""

    level: float
    inside_above: bool
    threshold: float
    units: str
    log: bool = False
    scale: float = 1.0

    def user_value(self, value: float) -> float:
        return math.exp(min(value, 80.0)) if self.log else value * self.scale


def isosurface(app: str, threshold: float | None, density_scale: float = 1.0) -> Isosurface:
    """The isosurface of an app at ``threshold`` (None: the app's default). SDF: the distance (0, the surface);
    NeRF: the density as rendered, exp of the network's out[0] (instant-ngp's thresh 2.5 is the log of the
    default, e^2.5 = 12.18); volume: the density as rendered, the network's out[3] times the scene's
    density_scale."""
    if app not in DEFAULT_THRESHOLD:
        raise ConfigError(f"a {app} scene has no surface to mesh: mesh export takes sdf, nerf and volume scenes "
                          "(a gigapixel model is a 2D image)")
    value = DEFAULT_THRESHOLD[app] if threshold is None else float(threshold)
    if not math.isfinite(value):
        raise ConfigError(f"--threshold {threshold} must be a finite number")
    if app == "sdf":
        return Isosurface(value, False, value, "distance")
    if value <= 0:
        raise ConfigError(f"--threshold {threshold}: a {app} threshold is a density, it must be > 0")
    if app == "nerf":
        return Isosurface(math.log(value), True, value, "density", log=True)
    return Isosurface(value / density_scale, True, value, "density", scale=density_scale)


def check_request(out: str | Path, resolution: int, force: bool) -> str:
    """Before any work: the output's format from its suffix, the file writable (an existing one only with
    ``force``), the resolution in range. Returns trimesh's file type."""
    path = Path(out)
    file_type = FORMATS.get(path.suffix.lower())
    if file_type is None:
        raise ConfigError(f"--out {out}: unknown mesh format {path.suffix or '(no suffix)'!r}; name the file "
                          f"{', '.join('*' + s for s in FORMATS)}")
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ConfigError(f"--resolution {resolution} is out of range: {MIN_RESOLUTION}..{MAX_RESOLUTION} grid points "
                          f"per axis (the default is {DEFAULT_RESOLUTION}; the time grows as the cube: 512 took about a "
                          "minute on lavapipe with 2 CPU cores)")
    check_output(path, force)
    return file_type


def slab_ranges(resolution: int, planes: int) -> list[tuple[int, int]]:
    """(first, last) z plane of each slab, ``planes`` planes at most; a slab's last plane is the next one's
    first (the cubes between planes z and z+1 belong to exactly one slab)."""
    planes = max(2, planes)
    out, first = [], 0
    while first < resolution - 1:
        last = min(first + planes - 1, resolution - 1)
        out.append((first, last))
        first = last
    return out


def _plane_keys(vertices: np.ndarray) -> np.ndarray:
    """One uint64 per vertex from its exact float32 x and y (vertices on one z plane)."""
    xy = np.ascontiguousarray(vertices[:, :2], np.float32).view(np.uint32).astype(np.uint64)
    return (xy[:, 0] << np.uint64(32)) | xy[:, 1]


class SlabMesher:
    """Marching cubes slab by slab, welding each slab's first plane to the previous slab's last: ``add(values,
    first_plane)`` with values (planes, ny, nx); ``result()`` the welded mesh in grid units (x, y, z)."""

    def __init__(self, level: float, inside_above: bool) -> None:
        self.level, self.inside_above = level, inside_above
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.n_vertices = 0
        self.seam: tuple[int, np.ndarray, np.ndarray] | None = None  # (plane, sorted keys, their vertex ids)
        self.lo, self.hi = math.inf, -math.inf

    def add(self, values: np.ndarray, first_plane: int) -> None:
        from skimage.measure import marching_cubes

        self.lo, self.hi = min(self.lo, float(values.min())), max(self.hi, float(values.max()))
        last_plane = first_plane + values.shape[0] - 1
        if not values.min() <= self.level <= values.max() or values.min() == values.max() or values.shape[0] < 2:
            self.seam = None  # no crossing edge anywhere in this slab, so none on its planes either
            return
        # (x, y, z) axes, so vertices come out as x, y, z; with the axes so ordered skimage's 'ascent' winds the
        # triangles counter-clockwise seen from the lower values: outward for a solid of high values (the tests
        # check the volume's sign for both kinds)
        verts, faces, _, _ = marching_cubes(values.transpose(2, 1, 0), self.level,
                                            gradient_direction="ascent" if self.inside_above else "descent")
        ids = np.arange(self.n_vertices, self.n_vertices + len(verts), dtype=np.int64)
        fresh = np.ones(len(verts), bool)
        if self.seam is not None and self.seam[0] == first_plane and len(self.seam[1]):
            on_seam = np.nonzero(verts[:, 2] == 0)[0]
            keys, seam_ids = self.seam[1], self.seam[2]
            at = np.minimum(np.searchsorted(keys, _plane_keys(verts[on_seam])), len(keys) - 1)
            match = keys[at] == _plane_keys(verts[on_seam])
            ids[on_seam[match]] = seam_ids[at[match]]
            fresh[on_seam[match]] = False
        ids[fresh] = np.arange(self.n_vertices, self.n_vertices + int(fresh.sum()), dtype=np.int64)
        kept = verts[fresh]
        kept[:, 2] += first_plane
        self.vertices.append(kept)
        self.faces.append(ids[faces])
        self.n_vertices += len(kept)
        top = np.nonzero(verts[:, 2] == values.shape[0] - 1)[0]
        keys = _plane_keys(verts[top])
        order = np.argsort(keys)
        self.seam = (last_plane, keys[order], ids[top][order])

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.faces:
            return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
        return np.concatenate(self.vertices), np.concatenate(self.faces)


@dataclass
class Mesh:
    vertices: np.ndarray          # (V, 3) float32, world (scene-box) units
    faces: np.ndarray             # (F, 3) int64
    normals: np.ndarray           # (V, 3) float32, unit, outward
    colours: np.ndarray | None    # (V, 3) uint8, or None (SDF)
    evaluations: int              # network evaluations (grid and vertices)
    value_range: tuple[float, float]  # the sampled values' range over the grid, in the threshold's units


def grid_box(model) -> tuple[float, float]:
    """(lo, hi) of the sampled box on every axis: the NeRF scene box, else the unit cube."""
    if model.app == "nerf":
        half = 0.5 * model.aabb_scale
        return 0.5 - half, 0.5 + half
    return 0.0, 1.0


def extract_mesh(points, model, resolution: int, surface: Isosurface, slab_points: int = SLAB_POINTS,
                 progress: Callable[[str, int, str], object] | None = None) -> Mesh:
    """The isosurface of ``model``'s field sampled by ``points`` (apps.points.FieldPoints) on a ``resolution``^3
    grid over the scene box. ``progress(desc, total, unit)`` makes a progress bar (ngrender.progress.Progress)."""
    lo, hi = grid_box(model)
    spacing = (hi - lo) / (resolution - 1)
    shape = (resolution, resolution, resolution)
    mesher = SlabMesher(surface.level, surface.inside_above)
    with _bar(progress, "mesh: sampling", resolution - 1, "planes") as bar:
        for first, last in slab_ranges(resolution, slab_points // resolution ** 2):
            mesher.add(points.grid((lo, lo, lo), spacing, shape, first, last - first + 1), first)
            bar.update(last - first)
        grid_vertices, faces = mesher.result()
        value_range = (surface.user_value(mesher.lo), surface.user_value(mesher.hi))
        if len(faces) == 0:  # inside the bar: a failure's line is the last word, no final progress line
            raise ConfigError(f"no surface at threshold {surface.threshold:g}: the {surface.units} is in "
                              f"[{value_range[0]:.4g}, {value_range[1]:.4g}] on the grid; pick a --threshold "
                              "inside that range")
    vertices = (lo + grid_vertices * spacing).astype(np.float32)
    normals, colours = vertex_attributes(points, model, vertices, faces, spacing, progress)
    return Mesh(vertices, faces, normals, colours, points.evaluations, value_range)


def vertex_attributes(points, model, vertices: np.ndarray, faces: np.ndarray, spacing: float,
                      progress=None) -> tuple[np.ndarray, np.ndarray | None]:
    """(unit outward normals, RGB uint8 or None) per vertex. SDF: the network's gradient by central differences
    (half a grid cell), no colour. NeRF and volume: the mesh's own area-weighted normals (as instant-ngp; the
    density's gradient blows up at occupancy-cell borders); NeRF's colour from the colour network looking at the
    surface head-on (direction -normal), the volume's from its network."""
    import trimesh

    n = len(vertices)
    chunk = 1 << 18
    if model.app == "sdf":
        h = np.float32(0.5 * spacing)
        offsets = np.concatenate([np.eye(3, dtype=np.float32) * h, -np.eye(3, dtype=np.float32) * h])  # +-x, y, z
        normals = np.empty((n, 3), np.float32)
        with _bar(progress, "mesh: normals", n, "vertices") as bar:
            for start in range(0, n, chunk):
                p = vertices[start:start + chunk]
                values, _ = points.at((p[None, :, :] + offsets[:, None, :]).reshape(-1, 3))
                values = values.reshape(6, -1)
                normals[start:start + chunk] = (values[:3] - values[3:]).T
                bar.update(len(p))
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = np.where(length > 0, normals / np.maximum(length, 1e-30), 0).astype(np.float32)
        return normals, None
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    normals = np.asarray(mesh.vertex_normals, np.float32)
    rgb = np.empty((n, 3), np.float32)
    with _bar(progress, "mesh: colours", n, "vertices") as bar:
        for start in range(0, n, chunk):
            sl = slice(start, start + chunk)
            _, rgb[sl] = points.at(vertices[sl], -normals[sl] if model.app == "nerf" else None)
            bar.update(len(rgb[sl]))
    colours = np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return normals, colours


def write_mesh(path: str | Path, mesh: Mesh, file_type: str) -> None:
    """PLY (binary), OBJ or GLB by trimesh, with normals and vertex colours; atomically (a temporary file renamed
    over ``path`` once complete)."""
    import trimesh
    from trimesh import exchange

    colours = None
    if mesh.colours is not None:
        colours = np.concatenate([mesh.colours, np.full((len(mesh.colours), 1), 255, np.uint8)], axis=1)
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_normals=mesh.normals, vertex_colors=colours,
                         process=False)
    if file_type == "ply":
        data = exchange.ply.export_ply(tm, encoding="binary", vertex_normal=True)
    elif file_type == "obj":
        data = exchange.obj.export_obj(tm, include_normals=True, include_color=colours is not None,
                                       include_texture=False).encode()
    else:
        data = exchange.gltf.export_glb(tm, include_normals=True)
    with atomic_output(path) as f:
        f.write(data)


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def _bar(progress, desc: str, total: int, unit: str):
    return progress(desc, total, unit) if progress is not None else _Quiet()


def mesh_scene(source: str | Path, out: str | Path, resolution: int = DEFAULT_RESOLUTION,
               threshold: float | None = None, device=None, variant: str | None = None, force: bool = False,
               validation: bool | None = None, slab_points: int = SLAB_POINTS, progress=None) -> tuple[Mesh, str]:
    """``ngrender mesh``: checks everything it can before work starts, then samples, meshes and writes.
    Returns the mesh and a one-line summary."""
    from . import validate
    from .apps.field import check_field_limits, choose_variant
    from .apps.points import FieldPoints
    from .model import load_model
    from .scene import open_scene
    from .session import check_scene_model
    from .vk.device import Device

    file_type = check_request(out, resolution, force)
    scene, model = open_scene(source)
    density_scale = 1.0
    if scene.app == "volume":
        density_scale = validate.number(scene.view.get("density_scale", 1.0), f"{scene.path}: density_scale",
                                        0.0, lo_open=True)
    surface = isosurface(scene.app, threshold, density_scale)
    header = check_scene_model(model, scene)
    start = time.perf_counter()
    with Device(device, validation=validation) as dev:
        if header is not None:  # the device's limits before the tensors are read
            wanted = variant or scene.variant
            check_field_limits(dev, header.geometry, header.n_mlp_weights, header.half,
                               choose_variant(dev, wanted, header.n_mlp_weights * (2 if header.half else 4)))
            model = load_model(header.path, header)
        with FieldPoints(dev, model, variant or scene.variant) as points:
            mesh = extract_mesh(points, model, resolution, surface, slab_points, progress)
            kernel_variant = points.variant
        messages = dev.take_messages()
        if messages:
            raise NgrenderError("Vulkan validation reported:\n" + "\n".join(messages[:5]))
        name = dev.info.name
    write_mesh(out, mesh, file_type)
    seconds = time.perf_counter() - start
    summary = (f"{out}: {len(mesh.vertices):,} vertices, {len(mesh.faces):,} triangles from a {resolution}^3 grid at "
               f"{surface.units} {surface.threshold:g} in {seconds:.1f} s ({mesh.evaluations:,} network evaluations) "
               f"[{name}, {kernel_variant} variant]")
    return mesh, summary
