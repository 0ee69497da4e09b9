"""How close an exported mesh is to the scan it was trained from: the symmetric Chamfer distance between the two
surfaces, as a percentage of the scan's bounding-box diagonal (the figure ``scripts/mesh_benchmark.py`` and
tests/test_mesh.py report).

Each surface is sampled uniformly by area (a fixed seed); a sample's distance to the other surface is its
distance to the nearest of that surface's samples (a k-d tree), so each surface is sampled ``DENSE`` times as
densely as the queries to keep that approximation's bias small (it overestimates by about half the samples'
spacing). Chamfer = (mean over A of d(a, B) + mean over B of d(b, A)) / 2."""
from __future__ import annotations

import numpy as np

from .data.mesh import fit_unit_cube, load_mesh, resolve_mesh

DENSE = 8  # samples per query point on the surface queried


def scan_in_cube(name_or_path: str) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of a fetched scan (``bunny``) or mesh file placed in the unit cube as the SDF trainer and
    the NeRF data set place it (data.mesh.fit_unit_cube): the models' own space."""
    vertices, faces = load_mesh(resolve_mesh(name_or_path))
    return fit_unit_cube(vertices)[0], faces


def surface_samples(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` points uniformly distributed over the triangles' area."""
    rng = np.random.default_rng(seed)
    tri = np.asarray(vertices, np.float64)[np.asarray(faces)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(tri), size=count, p=area / area.sum())
    u, v = rng.random((2, count))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[pick]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def chamfer_percent(vertices: np.ndarray, faces: np.ndarray, ref_vertices: np.ndarray, ref_faces: np.ndarray,
                    samples: int = 100_000, seed: int = 0) -> tuple[float, float, float]:
    """(symmetric Chamfer distance, mesh -> reference half (accuracy), reference -> mesh half (completeness)),
    each in % of the reference's bounding-box diagonal."""
    from scipy.spatial import cKDTree

    def tree(points: np.ndarray) -> cKDTree:
        # unbalanced, uncompacted: the same exact nearest neighbours, 10x faster to query far points
        return cKDTree(points, balanced_tree=False, compact_nodes=False)

    a = surface_samples(vertices, faces, DENSE * samples, seed)
    b = surface_samples(ref_vertices, ref_faces, DENSE * samples, seed + 1)
    diagonal = float(np.linalg.norm(np.ptp(np.asarray(ref_vertices, np.float64), axis=0)))
    # the first `samples` of each are as uniform as all of them
    a_to_b = 100.0 * tree(b).query(a[:samples])[0].mean() / diagonal
    b_to_a = 100.0 * tree(a).query(b[:samples])[0].mean() / diagonal
    return 0.5 * (a_to_b + b_to_a), a_to_b, b_to_a
