"""Triangle meshes: the fetched scans by name, reading OFF / PLY / OBJ / STL (gzipped or not), and placing a mesh
in the unit cube. Used by the SDF trainer and by the NeRF data set rendered from a mesh."""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..fileio import regular_file

MESH_NAMES = {"bunny": "meshes/bunny.off", "armadillo": "meshes/armadillo.off",
              "dragon": "meshes/dragon_vrip_res2.ply.gz"}
FIT_SIDE = 0.8


def resolve_mesh(name_or_path: str) -> Path:
    """A fetched data set name (``ngrender data fetch bunny``) or a mesh file."""
    from .fetch import resolve_data_file

    return resolve_data_file(name_or_path, MESH_NAMES, "mesh")


def load_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices float64 (V, 3), faces int64 (F, 3)) of an OFF / PLY / OBJ / STL file, optionally gzipped."""
    import trimesh

    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    kind = Path(name).suffix.lstrip(".").lower()
    regular_file(path, "mesh")
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        mesh = trimesh.load(io.BytesIO(data), file_type=kind, force="mesh", process=True)
    except FileNotFoundError:
        raise ConfigError(f"mesh {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - trimesh raises many kinds for a bad file
        raise ConfigError(f"cannot read mesh {path}: {type(exc).__name__}: {exc}") from None
    vertices, faces = np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64)
    if len(faces) == 0 or len(vertices) < 3:
        raise ConfigError(f"mesh {path} has no triangles")
    if not np.all(np.isfinite(vertices)):
        raise ConfigError(f"mesh {path} has vertices that are NaN or infinite")
    if np.ptp(vertices, axis=0).max() <= 0:
        raise ConfigError(f"mesh {path} has no extent (every vertex is at one point)")
    return vertices, faces


def fit_unit_cube(vertices: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Vertices scaled into the unit cube (centred at 0.5, longest side FIT_SIDE), the scale and the offset."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    scale = FIT_SIDE / float((hi - lo).max())
    offset = 0.5 - (lo + hi) / 2 * scale
    return vertices * scale + offset, scale, offset
