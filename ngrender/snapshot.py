"""instant-ngp snapshots in and out: ``.ingp`` (a gzip stream of msgpack) and ``.msgpack`` (raw), version 1.

Layout (docs/instant-ngp.md, from instant-ngp's ``Testbed::save_snapshot`` and tiny-cuda-nn): the root is the
network config plus a ``snapshot`` object holding ``params_binary`` (``n_params`` fp16 or fp32 values), the
mode, the scene box, the camera and, for NeRF, the density grid. The flat parameter array holds each fully
fused MLP (no biases; inputs padded to a multiple of 16, outputs to 16; row-major ``[out][in]``) and then the
grid: NeRF's density MLP, colour MLP, grid; every other mode's MLP, grid.

ngrender keeps what it does not render with, so that export(import(s)) gives back s's parameters and density
grid bit for bit: the padded rows and columns of the MLPs and the density grid travel as ``ingp.*`` tensors of
the model file, and the config and the snapshot's other fields in the model's ``extra["ingp"]``."""
from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import validate
from .camera import c2w_from_ngp, ngp_from_c2w
from .encoding import encoding_spec, encoding_specs
from .errors import ConfigError
from .fileio import read_bytes, write_bytes
from .model import MAX_AABB_SCALE, Model, NetworkConfig, cascades_of

SUFFIXES = (".ingp", ".msgpack")
VERSION = 1
MAX_FILE_BYTES = 4 << 30   # compressed or not: the largest snapshot read
MAX_DATA_BYTES = 8 << 30   # decompressed
APP_OF_MODE = {"nerf": "nerf", "sdf": "sdf", "image": "gigapixel", "volume": "volume"}
MODE_OF_APP = {app: mode for mode, app in APP_OF_MODE.items()}
PARAMS_TYPES = {"__half": np.dtype("<f2"), "float": np.dtype("<f4")}
DENSITY_GRID_SIDE = 128
NERF_MIN_OPTICAL_THICKNESS = 0.01  # instant-ngp's occupancy threshold (the grid's mean when that is smaller)
# Config keys instant-ngp's networks read; the rest of the root (loss, optimizer, envmap, ...) is carried along.
NETWORK_KEYS = ("encoding", "network", "dir_encoding", "rgb_network")
# Snapshot fields written back on export as they were read (all but the binary blobs and the optimizer state).
DROPPED_FIELDS = ("params_binary", "density_grid_binary", "optimizer")


def pad16(n: int) -> int:
    return -(-n // 16) * 16


def is_snapshot_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


# -- the container ------------------------------------------------------------------------------------------

def decompress(data: bytes, where: str) -> bytes:
    """gzip (``.ingp``), zlib or raw msgpack, as instant-ngp's loader accepts; bounded like any other input."""
    if data[:2] == b"\x1f\x8b":
        stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif len(data) >= 2 and data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA):
        stream = zlib.decompressobj()
    else:
        return data
    try:
        out = stream.decompress(data, MAX_DATA_BYTES)
        if stream.unconsumed_tail:
            raise ConfigError(f"{where}: decompresses to more than {MAX_DATA_BYTES >> 30} GiB")
        if not stream.eof:
            raise ConfigError(f"{where}: the compressed stream is truncated")
    except zlib.error as exc:
        raise ConfigError(f"{where}: corrupt compressed data ({exc})") from None
    return out


def unpack(data: bytes, where: str) -> dict:
    import msgpack

    try:
        # ext types come back as msgpack.ExtType values: nothing in the file can name code to run
        root = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException, msgpack.ExtraData, TypeError, RecursionError) as exc:
        raise ConfigError(f"{where}: not a msgpack file ({type(exc).__name__}: {exc})") from None
    _check_depth(root, where)
    if not isinstance(root, dict) or "snapshot" not in root:
        raise ConfigError(f"{where}: not an instant-ngp snapshot (no 'snapshot' key; other tools also write "
                          ".ingp files)")
    return root


MAX_DEPTH = 64  # instant-ngp's snapshots nest about 5 deep; the reader and the model's metadata recurse


def _check_depth(root: Any, where: str) -> None:
    """Refuse data nested deeper than MAX_DEPTH (walked without recursion)."""
    stack = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where}: data nested more than {MAX_DEPTH} levels deep (not an instant-ngp snapshot)")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def pack(root: Mapping[str, Any]) -> bytes:
    import msgpack

    return msgpack.packb(root, use_bin_type=True)


# -- parameters -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mlp:
    """One fully fused MLP's place in the flat array: its name and widths as ngrender and tcnn see them."""

    name: str         # "network" | "rgb_network"
    config: NetworkConfig
    n_in: int         # the inputs ngrender feeds it
    n_out: int        # the outputs ngrender reads

    def tcnn_shapes(self) -> list[tuple[int, int]]:
        widths = [pad16(self.n_in)] + [self.config.n_neurons] * self.config.n_hidden_layers + [pad16(self.n_out)]
        return [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]

    @property
    def n_params(self) -> int:
        return sum(o * i for o, i in self.tcnn_shapes())


def mlps_of(model_like: Mapping[str, Any], mode: str, grid_outputs: int, n_outputs: int) -> list[Mlp]:
    """The MLPs of a mode in the flat array's order."""
    from .netconfig import sh_degree

    net = NetworkConfig.from_json(model_like["network"])
    if mode != "nerf":
        return [Mlp("network", net, grid_outputs, n_outputs)]
    rgb = NetworkConfig.from_json(model_like["rgb_network"], "rgb_network")
    dirs = sh_degree(model_like["dir_encoding"]) ** 2
    return [Mlp("network", net, grid_outputs, 16), Mlp("rgb_network", rgb, 16 + dirs, 3)]


def split_mlp(flat: np.ndarray, mlp: Mlp) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """ngrender's layers of one MLP and the padding it does not use (first layer's padded input columns, last
    layer's padded output rows)."""
    layers, offset = [], 0
    for out, inp in mlp.tcnn_shapes():
        layers.append(flat[offset:offset + out * inp].reshape(out, inp))
        offset += out * inp
    carried = {f"ingp.{mlp.name}.pad_columns": layers[0][:, mlp.n_in:],
               f"ingp.{mlp.name}.pad_rows": layers[-1][mlp.n_out:]}
    layers[0] = layers[0][:, :mlp.n_in]
    layers[-1] = layers[-1][:mlp.n_out]
    return layers, carried


def join_mlp(layers: list[np.ndarray], mlp: Mlp, carried: Mapping[str, np.ndarray], dtype: np.dtype) -> np.ndarray:
    """The inverse of split_mlp; padding that was not carried is zero."""
    shapes = mlp.tcnn_shapes()
    full = [np.zeros(shape, dtype) for shape in shapes]
    for k, (w, dst) in enumerate(zip(layers, full)):
        dst[:w.shape[0], :w.shape[1]] = w
    cols, rows = carried.get(f"ingp.{mlp.name}.pad_columns"), carried.get(f"ingp.{mlp.name}.pad_rows")
    if cols is not None and cols.shape == full[0][:, mlp.n_in:].shape:
        full[0][:, mlp.n_in:] = cols
    if rows is not None and rows.shape == full[-1][mlp.n_out:].shape:
        full[-1][mlp.n_out:] = rows
    return np.concatenate([w.ravel() for w in full])


# -- the NeRF density grid ------------------------------------------------------------------------------------

def _expand_bits(v: np.ndarray) -> np.ndarray:
    """Spread the low 10 bits of v to every third bit (tcnn's expand_bits)."""
    v = v.astype(np.uint32)
    v = (v * np.uint32(0x00010001)) & np.uint32(0xFF0000FF)
    v = (v * np.uint32(0x00000101)) & np.uint32(0x0F00F00F)
    v = (v * np.uint32(0x00000011)) & np.uint32(0xC30C30C3)
    v = (v * np.uint32(0x00000005)) & np.uint32(0x49249249)
    return v


def morton_of_cells(side: int = DENSITY_GRID_SIDE) -> np.ndarray:
    """Morton index of every cell in ngrender's order (x fastest, then y, then z)."""
    z, y, x = np.meshgrid(*(np.arange(side, dtype=np.uint32),) * 3, indexing="ij")
    return (_expand_bits(x) | (_expand_bits(y) << 1) | (_expand_bits(z) << 2)).ravel()


def occupancy_from_grid(density_grid: np.ndarray, cascades: int = 1) -> np.ndarray:
    """ngrender's occupancy ([z, y, x] cube, or [cascade, z, y, x]) from instant-ngp's density grid (optical
    thickness per cell, cascade-major, Morton order inside a cascade), by instant-ngp's bitfield rule: occupied
    where the value exceeds min(0.01, the mean of cascade 0 with negatives counted as 0); then each cascade
    ORs the 2x2x2 blocks of the finer one into its central half (bitfield_max_pool)."""
    side = DENSITY_GRID_SIDE
    values = density_grid.astype(np.float32).reshape(cascades, side ** 3)
    threshold = min(np.float32(NERF_MIN_OPTICAL_THICKNESS), np.maximum(values[0], 0).mean(dtype=np.float32))
    cubes = (values > threshold)[:, morton_of_cells(side)].reshape(cascades, side, side, side)
    half, quarter = side // 2, side // 4
    for c in range(1, cascades):
        pooled = cubes[c - 1].reshape(half, 2, half, 2, half, 2).any(axis=(1, 3, 5))
        cubes[c, quarter:quarter + half, quarter:quarter + half, quarter:quarter + half] |= pooled
    cubes = cubes.astype(np.uint8)
    return cubes[0] if cascades == 1 else cubes


def grid_from_occupancy(occupancy: np.ndarray) -> np.ndarray:
    """A density grid (cascade-major, Morton order) for an ngrender occupancy cube or cascades: occupied cells
    hold the threshold's ceiling (0.01) plus one fp16 step, empty ones 0, so instant-ngp recomputes the same
    bits (its max-pooling adds nothing a cascade does not hold already when the cascades came from instant-ngp
    or from this rule). A side that divides 128 is refined (each cell becomes a block of equal cells)."""
    side = occupancy.shape[-1]
    if DENSITY_GRID_SIDE % side:
        raise ConfigError(f"an instant-ngp density grid is 128^3; this model's occupancy grid is {side}^3, which "
                          "does not divide it (retrain with the default occupancy resolution)")
    k = DENSITY_GRID_SIDE // side
    cubes = occupancy.reshape((-1,) + (side,) * 3).repeat(k, 1).repeat(k, 2).repeat(k, 3)
    morton = morton_of_cells()
    values = np.zeros((cubes.shape[0], DENSITY_GRID_SIDE ** 3), np.float16)
    for c, cube in enumerate(cubes):
        values[c, morton] = np.where(cube.ravel() != 0, np.nextafter(np.float16(0.01), np.float16(1)),
                                     np.float16(0))
    return values.ravel()


# -- import ---------------------------------------------------------------------------------------------------

# (inputs, outputs) of each app's network, as the app classes declare them (they live beside Vulkan code).
DIMS = {"nerf": (3, 16), "sdf": (3, 1), "gigapixel": (2, 3), "volume": (3, 4)}


@dataclass
class Imported:
    """A snapshot read into ngrender: the model, and the scene fields its snapshot gives (camera, background)."""

    model: Model
    mode: str
    render: dict
    view: dict

    def scene(self, model_file: str, description: str) -> dict:
        return {"description": description, "app": self.model.app, "model": model_file, "render": self.render,
                "view": self.view}


def _finest_resolution(mode: str, aabb_scale: int, image_size: tuple[int, int] | None,
                       volume_resolution: int | None, where: str) -> float:
    """instant-ngp's ``desired_resolution`` for per_level_scale, which a snapshot does not store."""
    from .netconfig import NERF_SDF_FINEST

    if mode in ("nerf", "sdf"):
        return NERF_SDF_FINEST * aabb_scale
    if mode == "image":
        if image_size is None:
            raise ConfigError(f"{where}: the config leaves per_level_scale out and an image snapshot does not store "
                              "the image's size it derives from: pass --image-size WIDTH,HEIGHT (of the trained image)")
        return max(image_size) / 2
    if volume_resolution is None:
        raise ConfigError(f"{where}: the config leaves per_level_scale out and a volume snapshot does not store the "
                          "volume's resolution it derives from: pass --volume-resolution N (its longest side, voxels)")
    return float(volume_resolution)


def _json_safe(value: Any) -> Any:
    """The value with what JSON cannot hold left out (binary blobs, msgpack ext types, non-finite numbers)."""
    if isinstance(value, dict):
        kept = {k: _json_safe(v) for k, v in value.items() if isinstance(k, str)}
        return {k: v for k, v in kept.items() if v is not _DROP}
    if isinstance(value, list):
        items = [_json_safe(v) for v in value]
        return _DROP if any(v is _DROP for v in items) else items
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _DROP
    return _DROP


_DROP = object()


def _camera_view(snap: dict, where: str) -> dict:
    """ngrender's camera from the snapshot's: NGP space is ngrender's cube space with the camera's y and z axes
    flipped (y down, looking along +z); the field of view along ``fov_axis`` with the zoom applied."""
    camera = validate.obj(snap.get("camera", {}), f"{where}: snapshot.camera")
    if "matrix" not in camera:
        return {}
    c2w = c2w_from_ngp(validate.matrix(camera["matrix"], f"{where}: snapshot.camera.matrix", 3, 4))
    axis = validate.integer(camera.get("fov_axis", 1), f"{where}: snapshot.camera.fov_axis", 0, 1)
    focal = validate.numbers(camera.get("relative_focal_length", [1.0, 1.0]),
                             f"{where}: snapshot.camera.relative_focal_length", 2, 1e-3, 1e3)[axis]
    zoom = validate.number(camera.get("zoom", 1.0), f"{where}: snapshot.camera.zoom", 1e-3, 1e3)
    fov = math.degrees(2 * math.atan(1 / (2 * focal * zoom)))  # square frames: the same along x and y
    return {"camera": {"transform_matrix": c2w.tolist(), "fov_x": min(max(fov, 1.0), 170.0)}}


def import_snapshot(path: str | Path, image_size: tuple[int, int] | None = None,
                    volume_resolution: int | None = None) -> Imported:
    """Read an instant-ngp snapshot; every problem is one ConfigError naming the file."""
    from .encoding import grid_geometry
    from .netconfig import tcnn_param_count, with_per_level_scale

    path = Path(path)
    where = str(path)
    root = unpack(decompress(read_bytes(path, "instant-ngp snapshot", MAX_FILE_BYTES), where), where)
    snap = validate.obj(root["snapshot"], f"{where}: snapshot", required=("version", "mode", "params_binary"))
    if snap["version"] != VERSION:
        raise ConfigError(f"{where}: snapshot version {snap['version']!r}; ngrender reads version {VERSION} "
                          "(instant-ngp since July 2022: load and save it in a current instant-ngp)")
    mode = validate.string(snap["mode"], f"{where}: snapshot.mode", APP_OF_MODE)
    app = APP_OF_MODE[mode]
    n_in, n_out = DIMS[app]
    config = {k: v for k, v in root.items() if k != "snapshot"}
    for key in ("encoding", "network") + (("dir_encoding", "rgb_network") if mode == "nerf" else ()):
        if key not in config:
            raise ConfigError(f"{where}: the snapshot's config has no {key!r}")
        validate.obj(config[key], f"{where}: {key}")
    aabb_scale = 1
    if mode == "nerf":
        nerf = validate.obj(snap.get("nerf", {}), f"{where}: snapshot.nerf")
        aabb_scale = validate.integer(nerf.get("aabb_scale", 1), f"{where}: snapshot.nerf.aabb_scale", 1,
                                      MAX_AABB_SCALE)
    try:
        if "per_level_scale" not in config["encoding"]:
            config_full = with_per_level_scale(config, _finest_resolution(mode, aabb_scale, image_size,
                                                                          volume_resolution, where))
        else:
            config_full = dict(config)
        geometry = grid_geometry(config_full["encoding"], n_in)
        expected = tcnn_param_count(config_full, mode, n_in, n_out)
        mlps = mlps_of(config_full, mode, geometry.n_output_dims, n_out)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None

    dtype = PARAMS_TYPES.get(snap.get("params_type", "__half"))
    if dtype is None:
        raise validate.fail(f"{where}: snapshot.params_type", "'__half' or 'float'", snap.get("params_type"))
    n_params = validate.integer(snap.get("n_params", -1), f"{where}: snapshot.n_params", 0)
    blob = snap["params_binary"]
    if not isinstance(blob, bytes):
        raise validate.fail(f"{where}: snapshot.params_binary", "binary data", type(blob).__name__)
    if n_params != expected:
        raise ConfigError(f"{where}: the snapshot holds {n_params:,} parameters, its config describes {expected:,} "
                          "(another per_level_scale, or a network ngrender does not map)")
    if len(blob) != n_params * dtype.itemsize:
        raise ConfigError(f"{where}: params_binary holds {len(blob):,} bytes, {n_params:,} {dtype.name} parameters "
                          f"need {n_params * dtype.itemsize:,}")
    flat = np.frombuffer(blob, dtype)
    layers: dict[str, list[np.ndarray]] = {}
    carried: dict[str, np.ndarray] = {}
    offset = 0
    for mlp in mlps:
        layers[mlp.name], pads = split_mlp(flat[offset:offset + mlp.n_params], mlp)
        carried.update({k: v for k, v in pads.items() if v.size})
        offset += mlp.n_params
    grid = []
    for entries, features in geometry.level_shapes():
        grid.append(flat[offset:offset + entries * features].reshape(entries, features))
        offset += entries * features

    occupancy = None
    if mode == "nerf":
        occupancy, carried["ingp.density_grid"] = _density_grid(snap, cascades_of(aabb_scale), where)
        if occupancy is None:
            del carried["ingp.density_grid"]
    encoding, network = config_full["encoding"], dict(config["network"])
    rgb_network = None
    if mode == "nerf":  # instant-ngp applies the colour sigmoid itself; ngrender's config names it
        rgb_network = dict(config["rgb_network"])
        if str(rgb_network.get("output_activation", "None")).lower() != "none":
            raise ConfigError(f"{where}: rgb_network.output_activation {rgb_network['output_activation']!r}: "
                              "instant-ngp applies a sigmoid after it, ngrender maps only None")
        rgb_network["output_activation"] = "Sigmoid"
    kept = {k: v for k, v in snap.items() if k not in DROPPED_FIELDS + ("ngrender",)}
    extra = {"ingp": {"config": _json_safe(config), "snapshot": _json_safe(kept)}}
    try:
        model = Model(app, n_in, n_out, encoding, network, grid, layers["network"], extra,
                      "float16" if dtype.itemsize == 2 else "float32", config.get("dir_encoding"), rgb_network,
                      layers.get("rgb_network"), occupancy, carried, aabb_scale)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    saved = validate.obj(snap.get("ngrender", {}), f"{where}: snapshot.ngrender", ("render", "view"))
    view = dict(validate.obj(saved.get("view", {}), f"{where}: snapshot.ngrender.view"))
    if mode != "image":
        view.update(_camera_view(snap, where))
    if mode == "nerf" and "background_color" in snap:
        r, g, b, a = validate.numbers(snap["background_color"], f"{where}: snapshot.background_color", 4, 0.0, 1e3)
        view["background"] = [min(c * a, 1.0) for c in (r, g, b)]
    render = {"width": 1024, "height": 1024} if mode == "image" else {"width": 512, "height": 512}
    if image_size is not None and mode == "image":
        render = {"width": image_size[0], "height": image_size[1]}
    render.update(validate.obj(saved.get("render", {}), f"{where}: snapshot.ngrender.render"))
    return Imported(model, mode, render, view)


def _density_grid(snap: dict, cascades: int, where: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(occupancy or None when the snapshot has no grid, the fp16 grid as stored)."""
    blob = snap.get("density_grid_binary", b"")
    if not isinstance(blob, bytes):
        raise validate.fail(f"{where}: snapshot.density_grid_binary", "binary data", type(blob).__name__)
    side = validate.integer(snap.get("density_grid_size", DENSITY_GRID_SIDE), f"{where}: snapshot.density_grid_size")
    if not blob:
        return None, np.zeros(0, np.float16)
    want = 2 * cascades * DENSITY_GRID_SIDE ** 3
    if side != DENSITY_GRID_SIDE or len(blob) != want:
        raise ConfigError(f"{where}: density_grid_binary holds {len(blob):,} bytes; {cascades} cascade(s) of "
                          f"{DENSITY_GRID_SIDE}^3 fp16 values (the snapshot's aabb_scale) need {want:,}")
    grid = np.frombuffer(blob, "<f2").copy()
    if not np.all(np.isfinite(grid)):
        raise ConfigError(f"{where}: density_grid_binary holds NaN or infinite values")
    return occupancy_from_grid(grid, cascades), grid


# -- export ---------------------------------------------------------------------------------------------------

def _ngp_camera(view: Mapping[str, Any]) -> dict:
    """The snapshot's camera for an ngrender camera (inverse of _camera_view), fov along x."""
    camera = view["camera"]
    m = ngp_from_c2w(camera.c2w)
    focal = 0.5 / math.tan(math.radians(camera.fov_x_deg) / 2)
    return {"matrix": m.tolist(), "fov_axis": 0, "relative_focal_length": [focal, focal],
            "screen_center": [0.5, 0.5], "zoom": 1.0, "scale": 1.0}


def snapshot_root(model: Model, camera=None, background: tuple[float, float, float] | None = None,
                  scene: Mapping[str, Any] | None = None) -> dict:
    """The msgpack root of a version-1 snapshot of ``model``: the config, parameters in tiny-cuda-nn's order and
    padding (in the model's precision), mode, box, camera and, for NeRF, the density grid. ``scene``'s
    ``render`` and ``view`` settings ride along under ``snapshot.ngrender`` (instant-ngp reads named keys only),
    so that a scene exported and imported renders as it did."""
    mode = MODE_OF_APP.get(model.app)
    if mode is None:
        raise ConfigError(f"a {model.app!r} model has no instant-ngp mode")
    if not encoding_spec(model.geometry.kind).instant_ngp:
        exportable = " and ".join(s.kind for s in encoding_specs() if s.instant_ngp)
        raise ConfigError(f"instant-ngp has no {model.geometry.kind} grid encoding: only {exportable} grid models "
                          "export")
    ingp = model.extra.get("ingp", {}) if isinstance(model.extra.get("ingp"), dict) else {}
    config = dict(ingp.get("config") or {})
    config.update(encoding=model.encoding, network=model.network)
    if model.rgb_net is not None:
        rgb = dict(model.rgb_network)
        if model.rgb_net.output_activation != "sigmoid":
            raise ConfigError("instant-ngp applies a sigmoid to the colour network's outputs; this model's colour "
                              f"network ends in {model.rgb_net.output_activation}")
        rgb["output_activation"] = "None"
        config.update(dir_encoding=model.dir_encoding, rgb_network=rgb)
    dtype = np.dtype("<f2") if model.storage_dtype == "float16" else np.dtype("<f4")
    mlps = mlps_of(config, mode, model.geometry.n_output_dims, model.n_output_dims)
    parts = [join_mlp(layers, mlp, model.carried, dtype)
             for mlp, layers in zip(mlps, [model.layers, model.rgb_layers])]
    parts += [g.astype(dtype).ravel() for g in model.grid]
    params = np.concatenate(parts).astype(dtype)
    snapshot = dict(ingp.get("snapshot") or {})
    snapshot.update(version=VERSION, mode=mode, n_params=int(params.size),
                    params_type="__half" if dtype.itemsize == 2 else "float", params_binary=params.tobytes())
    lo, hi = 0.5 - 0.5 * model.aabb_scale, 0.5 + 0.5 * model.aabb_scale
    box = {"min": [lo] * 3, "max": [hi] * 3}
    snapshot.setdefault("aabb", box)
    snapshot.setdefault("render_aabb", box)
    if camera is not None:
        snapshot["camera"] = {**snapshot.get("camera", {}), **_ngp_camera({"camera": camera})}
    if background is not None:
        snapshot["background_color"] = [*map(float, background), 1.0]
    if scene is not None:
        snapshot["ngrender"] = {"render": dict(scene.get("render", {})), "view": dict(scene.get("view", {}))}
    if mode == "nerf":
        grid = model.carried.get("ingp.density_grid")
        if grid is None or grid.size == 0:
            grid = grid_from_occupancy(model.occupancy) if model.occupancy is not None else np.zeros(0, np.float16)
        snapshot.update(density_grid_size=DENSITY_GRID_SIDE, density_grid_binary=grid.astype("<f2").tobytes())
        snapshot["nerf"] = {**(snapshot.get("nerf") or {}), "aabb_scale": model.aabb_scale}
    return {**config, "snapshot": snapshot}


def export_snapshot(model: Model, path: str | Path, camera=None, background: tuple[float, float, float] | None = None,
                    scene: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """Write ``model`` as an instant-ngp snapshot (gzip for .ingp, raw for .msgpack), atomically; returns
    (parameters in the snapshot, bytes written)."""
    root = snapshot_root(model, camera, background, scene)
    data = pack(root)
    if Path(path).suffix.lower() == ".ingp":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    write_bytes(path, data)
    return root["snapshot"]["n_params"], len(data)
