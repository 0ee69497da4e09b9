"""``ngrender data nerf-from-mesh MESH OUT``: a Blender-synthetic-style NeRF data set of a real scan, rendered
with Mitsuba 3 on the CPU (``scalar_rgb``): ``transforms_{train,val,test}.json`` (instant-ngp / Blender layout,
camera-to-world in OpenGL axes, z-up world with ``scale`` 1 and ``offset`` 0.5 so that instant-ngp and
``data.transforms`` place it exactly in ngrender's unit cube) and RGBA PNGs with a transparent background. The
mesh is placed in the unit cube as the NeRF model space, coloured per vertex from its position (so there is
colour to learn), lit by a uniform environment. Every image's pose is verified by projecting the mesh into it and
comparing the silhouette with the rendered alpha (IoU); a data set whose poses do not match fails loudly."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..camera import look_at
from ..errors import NgrenderError
from ..fileio import atomic_output, write_bytes, write_text
from .transforms import cube_to_world

CUBE_OFFSET = (0.5, 0.5, 0.5)

MIN_IOU = 0.9
SPLITS = ("train", "val", "test")


def sphere_directions(n: int, offset: float = 0.0) -> np.ndarray:
    """n well-spread unit vectors (Fibonacci sphere), shifted by ``offset`` so splits do not share views."""
    i = np.arange(n) + 0.5
    y = 1 - 2 * i / n
    r = np.sqrt(1 - y * y)
    phi = math.pi * (3 - math.sqrt(5)) * i + offset
    return np.stack([r * np.cos(phi), y, r * np.sin(phi)], axis=1)


def vertex_colours(vertices: np.ndarray) -> np.ndarray:
    """A smooth colour field over the object (position in the cube mapped to saturated RGB)."""
    p = (vertices - vertices.min(0)) / np.maximum(vertices.max(0) - vertices.min(0), 1e-9)
    return np.clip(0.15 + 0.75 * np.stack([p[:, 0], 1 - p[:, 1] * 0.7, p[:, 2]], axis=1), 0, 1)


def silhouette(vertices: np.ndarray, faces: np.ndarray, c2w: np.ndarray, fov_x_deg: float, size: int,
               supersample: int = 4) -> np.ndarray:
    """Pixels more than half covered by the mesh's projected triangles (boolean (size, size)), with ngrender's
    pinhole convention; triangles are filled at ``supersample`` x the resolution, like the renderer's alpha."""
    from PIL import Image, ImageDraw

    big = size * supersample
    w2c = np.linalg.inv(c2w)
    cam = (w2c[:3, :3] @ vertices.T).T + w2c[:3, 3]
    focal = 0.5 * big / math.tan(math.radians(fov_x_deg) / 2)
    depth = np.maximum(-cam[:, 2], 1e-6)
    px = big / 2 + focal * cam[:, 0] / depth
    py = big / 2 - focal * cam[:, 1] / depth
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    for tri in faces:
        draw.polygon([(px[i], py[i]) for i in tri], fill=255)
    coverage = (np.asarray(mask) > 127).reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return coverage > 0.5


def write_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray) -> None:
    """Binary PLY with per-vertex RGB in [0, 1] (Mitsuba's ``vertex_color`` attribute; 3 channels, no alpha)."""
    header = (f"ply\nformat binary_little_endian 1.0\nelement vertex {len(vertices)}\n"
              "property float x\nproperty float y\nproperty float z\n"
              "property float red\nproperty float green\nproperty float blue\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    vtype = np.dtype([("p", "<f4", 3), ("c", "<f4", 3)])
    vdata = np.empty(len(vertices), vtype)
    vdata["p"], vdata["c"] = vertices, colours
    ftype = np.dtype([("n", "u1"), ("i", "<i4", 3)])
    fdata = np.empty(len(faces), ftype)
    fdata["n"], fdata["i"] = 3, faces
    write_bytes(path, header.encode() + vdata.tobytes() + fdata.tobytes())


def render_view(mesh_file: Path, c2w: np.ndarray, fov_x_deg: float, size: int, spp: int) -> np.ndarray:
    """(size, size, 4) uint8 sRGB + alpha."""
    import mitsuba as mi

    mi.set_variant("scalar_rgb")
    to_world = mi.ScalarTransform4f((c2w @ np.diag([-1.0, 1.0, -1.0, 1.0])).tolist())
    scene = mi.load_dict({
        "type": "scene",
        "integrator": {"type": "path", "max_depth": 4, "hide_emitters": True},  # background alpha 0
        "sensor": {"type": "perspective", "fov": fov_x_deg, "fov_axis": "x", "to_world": to_world,
                   "sampler": {"type": "independent", "sample_count": spp},
                   "film": {"type": "hdrfilm", "width": size, "height": size, "pixel_format": "rgba",
                            "rfilter": {"type": "box"}}},
        "object": {"type": "ply", "filename": str(mesh_file),
                   "bsdf": {"type": "diffuse", "reflectance": {"type": "mesh_attribute", "name": "vertex_color"}}},
        "light": {"type": "constant", "radiance": {"type": "rgb", "value": [1.0, 1.0, 1.0]}},
    })
    image = mi.render(scene)
    bitmap = mi.Bitmap(image, pixel_format=mi.Bitmap.PixelFormat.RGBA)
    srgb = bitmap.convert(mi.Bitmap.PixelFormat.RGBA, mi.Struct.Type.UInt8, srgb_gamma=True)
    return np.array(srgb, copy=True)


def make_dataset(mesh: str, out: str | Path, views: int = 100, size: int = 100, spp: int = 16,
                 fov_x_deg: float = 40.0, radius: float = 1.5, progress: bool = True) -> dict:
    """Render ``views`` training views and views / 4 validation and test views; returns the IoU summary."""
    from ..progress import Progress
    from .mesh import fit_unit_cube, load_mesh, resolve_mesh

    try:
        import mitsuba  # noqa: F401
    except ImportError:
        raise NgrenderError("nerf-from-mesh needs Mitsuba 3 (extra [train]: pip install mitsuba)") from None
    out = Path(out)
    raw_vertices, faces = load_mesh(resolve_mesh(mesh))
    vertices, _, _ = fit_unit_cube(raw_vertices)
    out.mkdir(parents=True, exist_ok=True)
    mesh_file = out / "mesh_in_unit_cube.ply"
    colours = vertex_colours(vertices)
    write_ply(mesh_file, vertices, faces, colours)
    counts = {"train": views, "val": max(1, views // 4), "test": max(1, views // 4)}
    ious: dict[str, list[float]] = {}
    total = sum(counts.values())
    bar = Progress(total, "views", "nerf-from-mesh", enabled=progress)
    for split_index, split in enumerate(SPLITS):
        (out / split).mkdir(exist_ok=True)
        frames = []
        for k, direction in enumerate(sphere_directions(counts[split], offset=1.3 * split_index)):
            camera = look_at(0.5 + radius * direction, (0.5, 0.5, 0.5),
                             up=(0.0, 1.0, 0.0) if abs(direction[1]) < 0.99 else (0.0, 0.0, 1.0), fov_x_deg=fov_x_deg)
            rgba = render_view(mesh_file, camera.c2w, fov_x_deg, size, spp)
            projected = silhouette(vertices, faces, camera.c2w, fov_x_deg, size)
            rendered = rgba[..., 3] > 127
            iou = float((projected & rendered).sum() / max((projected | rendered).sum(), 1))
            ious.setdefault(split, []).append(iou)
            if iou < MIN_IOU:
                raise NgrenderError(f"{split} view {k}: the mesh projected with the written pose covers the rendered "
                                    f"silhouette with IoU {iou:.3f} < {MIN_IOU}: the poses do not match the images")
            from PIL import Image

            with atomic_output(out / split / f"r_{k}.png") as f:
                Image.fromarray(rgba, "RGBA").save(f, format="PNG")
            frames.append({"file_path": f"./{split}/r_{k}",
                           "transform_matrix": cube_to_world(camera.c2w, 1.0, CUBE_OFFSET).tolist()})
            bar.update(1)
        write_text(out / f"transforms_{split}.json", json.dumps(
            {"camera_angle_x": math.radians(fov_x_deg), "scale": 1.0, "offset": list(CUBE_OFFSET), "frames": frames},
            indent=1) + "\n")
    bar.close()
    summary = {split: {"views": len(v), "min_iou": min(v), "mean_iou": float(np.mean(v))} for split, v in ious.items()}
    write_text(out / "dataset.json", json.dumps({"mesh": str(mesh), "size": size, "spp": spp,
                                                "pose_check": summary}, indent=1) + "\n")
    return summary
