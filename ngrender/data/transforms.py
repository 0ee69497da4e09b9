"""NeRF data sets in the Blender-synthetic / instant-ngp ``transforms.json`` layout, read into ngrender's model
space (the unit cube, y up, OpenGL camera axes).

A data set is a folder with ``transforms_{train,val,test}.json`` (Blender) or one ``transforms.json``
(instant-ngp; then every split reads it). Each file has the intrinsics (``camera_angle_x``, or ``fl_x`` with
``w``; optional ``fl_y``, ``cx``, ``cy``) and ``frames`` of ``{"file_path", "transform_matrix"}`` with
camera-to-world matrices in OpenGL axes in a z-up world. As instant-ngp does (``nerf_matrix_to_ngp``), the world
is scaled by ``scale`` (default 0.33), shifted by ``offset`` (default 0.5) and its axes cycled x,y,z -> z,x,y so
that z up becomes y up. Images are RGBA (transparent background) or RGB."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import validate
from ..errors import ConfigError
from ..fileio import read_json
from .images import read_image

NGP_SCALE, NGP_OFFSET = 0.33, (0.5, 0.5, 0.5)
# Rows: the cube's x, y, z are the world's y, z, x (instant-ngp's cycle: world z up -> cube y up).
WORLD_TO_CUBE_AXES = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


@dataclass
class NerfSplit:
    """One split's images and cameras in the unit cube."""

    rgba: np.ndarray    # (V, H, W, 4) float32 in [0, 1], straight (not premultiplied) alpha
    c2w: np.ndarray     # (V, 4, 4) float64, cube space, OpenGL camera axes
    focal: tuple[float, float]      # pixels (fx, fy)
    centre: tuple[float, float]     # principal point (cx, cy) in pixels
    files: list[str]

    @property
    def size(self) -> tuple[int, int]:
        return self.rgba.shape[2], self.rgba.shape[1]

    @property
    def fov_x_deg(self) -> float:
        return math.degrees(2 * math.atan(0.5 * self.size[0] / self.focal[0]))


def world_to_cube(c2w: np.ndarray, scale: float, offset) -> np.ndarray:
    """instant-ngp's placement of a world-space camera-to-world matrix in the unit cube."""
    out = np.eye(4)
    out[:3, :3] = WORLD_TO_CUBE_AXES @ c2w[:3, :3]
    out[:3, 3] = WORLD_TO_CUBE_AXES @ c2w[:3, 3] * scale + np.asarray(offset, np.float64)
    return out


def cube_to_world(c2w: np.ndarray, scale: float, offset) -> np.ndarray:
    """The inverse of world_to_cube (how ``nerf-from-mesh`` writes its cube-space cameras)."""
    out = np.eye(4)
    out[:3, :3] = WORLD_TO_CUBE_AXES.T @ c2w[:3, :3]
    out[:3, 3] = WORLD_TO_CUBE_AXES.T @ ((c2w[:3, 3] - np.asarray(offset, np.float64)) / scale)
    return out


def transforms_file(data: str | Path, split: str) -> Path:
    data = Path(data)
    if data.is_file():
        return data
    for name in (f"transforms_{split}.json", "transforms.json"):
        if (data / name).is_file():
            return data / name
    raise ConfigError(f"NeRF data {data}: no transforms_{split}.json or transforms.json "
                      "(make one with `ngrender data nerf-from-mesh MESH OUT`)")


def _image_path(base: Path, file_path: str, where: str) -> Path:
    try:
        path = base / file_path
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".exr"):
            return path
        for ext in (".png", ".jpg", ".jpeg"):  # Blender's files name the image without its extension
            if path.with_name(path.name + ext).is_file():
                return path.with_name(path.name + ext)
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, "/"
        raise ConfigError(f"{where}: file_path {file_path[:80]!r} is not a usable file name ({exc})") from None
    return path


def _number(meta: dict, key: str, where: str) -> float:
    return validate.number(meta[key], f"{where}: {key}", 0.0, lo_open=True)


def load_split(data: str | Path, split: str = "train", max_views: int | None = None) -> NerfSplit:
    """Read one split; every problem with the file or its images is one ConfigError naming it."""
    path = transforms_file(data, split)
    meta = validate.obj(read_json(path, "NeRF data set file"), f"{path}")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ConfigError(f"{path}: missing or empty 'frames' list")
    if "camera_angle_x" not in meta and "fl_x" not in meta:
        raise ConfigError(f"{path}: missing the intrinsics ('camera_angle_x', or 'fl_x' with 'w')")
    scale = validate.number(meta.get("scale", NGP_SCALE), f"{path}: scale", 0.0, lo_open=True)
    offset = validate.numbers(meta.get("offset", list(NGP_OFFSET)), f"{path}: offset", 3)
    images, poses, files = [], [], []
    for k, frame in enumerate(frames[:max_views]):
        where = f"{path} frame {k}"
        if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
            raise ConfigError(f"{where}: needs 'file_path' and 'transform_matrix'")
        m = np.asarray(validate.matrix(frame["transform_matrix"], f"{where}: transform_matrix", 4, 4))
        if not np.allclose(m[3], (0.0, 0.0, 0.0, 1.0), atol=1e-6):
            raise ConfigError(f"{where}: transform_matrix's last row must be [0, 0, 0, 1], got {m[3].tolist()}")
        image_path = _image_path(path.parent, validate.string(frame["file_path"], f"{where}: file_path"), where)
        rgba = read_image(image_path, "RGBA", f"{where}: image").astype(np.float32) / 255.0
        if images and rgba.shape != images[0].shape:
            raise ConfigError(f"{where}: image {image_path} is {rgba.shape[1]}x{rgba.shape[0]}, the first one "
                              f"{images[0].shape[1]}x{images[0].shape[0]}")
        rot = world_to_cube(m, scale, offset)
        if not np.allclose(rot[:3, :3].T @ rot[:3, :3], np.eye(3), atol=1e-3):
            raise ConfigError(f"{where}: 'transform_matrix' has a scaled or sheared rotation")
        images.append(rgba)
        poses.append(rot)
        files.append(str(image_path))
    height, width = images[0].shape[:2]
    if "fl_x" in meta:
        fx = _number(meta, "fl_x", str(path))
        fy = _number(meta, "fl_y", str(path)) if "fl_y" in meta else fx
    else:
        angle = validate.number(meta["camera_angle_x"], f"{path}: camera_angle_x", 0.0, math.pi,
                                lo_open=True, hi_open=True)
        fx = fy = 0.5 * width / math.tan(0.5 * angle)
    centre = (validate.number(meta.get("cx", width / 2), f"{path}: cx"),
              validate.number(meta.get("cy", height / 2), f"{path}: cy"))
    return NerfSplit(np.stack(images), np.stack(poses), (fx, fy), centre, files)


def pixel_rays(split: NerfSplit, view: np.ndarray, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (cube) origins and unit directions (N, 3) through image points (px, py) in pixels (the pixel
    centre is +0.5), as reference.camera.camera_rays computes them for a centred principal point."""
    c2w = split.c2w[view]
    u = (px - split.centre[0]) / split.focal[0]
    v = -(py - split.centre[1]) / split.focal[1]
    d = c2w[:, :3, 0] * u[:, None] + c2w[:, :3, 1] * v[:, None] - c2w[:, :3, 2]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return c2w[:, :3, 3].astype(np.float32), d.astype(np.float32)
