"""Network config files as instant-ngp reads them: ``//`` and ``/* */`` comments, ``"parent"`` files merged
(objects recursively, the child wins), and the parts of its schema ngrender maps onto its own: ``Composite``
direction encodings (spherical harmonics + Identity), ``TiledGrid`` (a dense grid: tiling is a memory layout,
the values are the same), and tiny-cuda-nn's parameter count with its padded widths.

Keys ngrender does not use (``loss``, ``optimizer``, ``distortion_map``, ``envmap``, ...) are carried along."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from . import validate
from .errors import ConfigError
from .fileio import JSON_LIMIT, parse_json, read_bytes

MAX_PARENTS = 16


def strip_comments(text: str) -> str:
    """JSON text without ``//`` line comments and ``/* */`` block comments (outside strings); newlines are kept
    so parse errors still name the right line."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':  # a string: copy it whole, escapes included
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("a /* comment is not closed")
            out.append("\n" * text.count("\n", i, j))
            i = j + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict:
    """instant-ngp's merge: objects merged key by key, recursively; anything else in the child replaces."""
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A config file with comments, its ``parent`` chain resolved relative to each file and merged."""
    path = Path(path)
    if len(_chain) > MAX_PARENTS:
        raise ConfigError(f"network config {path}: more than {MAX_PARENTS} parents")
    resolved = path.resolve() if path.exists() else path
    if resolved in _chain:
        raise ConfigError(f"network config {path}: its parents loop back to it")
    text = read_bytes(path, "network config", JSON_LIMIT)
    try:
        text = strip_comments(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"network config {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise ConfigError(f"network config {path}: {exc}") from None
    config = dict(validate.obj(parse_json(text, f"network config {path}"), f"network config {path}"))
    parent = config.pop("parent", None)
    if parent is None:
        return config
    parent = validate.string(parent, f"network config {path}: parent")
    return merge(load_config(path.parent / parent, _chain + (resolved,)), config)


def sh_degree(dir_encoding: Mapping[str, Any], where: str = "dir_encoding") -> int:
    """The spherical-harmonics degree of a NeRF direction encoding: ``SphericalHarmonics``, or instant-ngp's
    ``Composite`` of SH on the 3 direction dims and ``Identity`` on the rest (extra learnable dims: none in
    ngrender's NeRF)."""
    encoding = validate.obj(dir_encoding, where)
    otype = validate.string(encoding.get("otype", ""), f"{where}.otype").lower()
    if otype == "sphericalharmonics":
        return validate.integer(encoding.get("degree", 4), f"{where}.degree", 1, 4)
    if otype != "composite":
        raise ConfigError(f"{where}.otype must be SphericalHarmonics or Composite, got {encoding.get('otype')!r}")
    nested = encoding.get("nested")
    if not isinstance(nested, list) or not nested:
        raise validate.fail(f"{where}.nested", "a list of encodings", nested)
    degree = None
    for k, part in enumerate(nested):
        part = validate.obj(part, f"{where}.nested[{k}]")
        kind = validate.string(part.get("otype", ""), f"{where}.nested[{k}].otype").lower()
        if kind == "sphericalharmonics" and degree is None:
            dims = part.get("n_dims_to_encode", 3)
            if dims != 3:
                raise validate.fail(f"{where}.nested[{k}].n_dims_to_encode", "3 (the direction)", dims)
            degree = validate.integer(part.get("degree", 4), f"{where}.nested[{k}].degree", 1, 4)
        elif kind != "identity":
            raise ConfigError(f"{where}.nested[{k}]: {part.get('otype')!r} is not supported in a NeRF direction "
                              "encoding (spherical harmonics on the direction, Identity on extra dims)")
    if degree is None:
        raise ConfigError(f"{where}: a Composite direction encoding needs a SphericalHarmonics part")
    return degree


# instant-ngp's finest grid resolution when a config leaves per_level_scale out: 2048 for NeRF and SDF (times
# aabb_scale), max(width, height) / 2 for images, the volume's voxel resolution for volumes.
NERF_SDF_FINEST = 2048


def with_per_level_scale(config: Mapping[str, Any], finest_resolution: float) -> dict:
    """The config with ``encoding.per_level_scale`` filled in as instant-ngp derives it (float32
    ``exp(log(finest / N_min) / (L - 1))``) when the file leaves it out; a given value is kept."""
    import numpy as np

    encoding = dict(validate.obj(config.get("encoding"), "encoding"))
    if "per_level_scale" not in encoding:
        levels = validate.integer(encoding.get("n_levels", 16), "encoding.n_levels", 1, 32)
        base = validate.integer(encoding.get("base_resolution", 16), "encoding.base_resolution", 1, 1 << 20)
        if levels == 1:
            encoding["per_level_scale"] = 1.0
        else:
            ratio = np.float32(finest_resolution) / np.float32(base)
            scale = np.exp(np.log(ratio, dtype=np.float32) / np.float32(levels - 1), dtype=np.float32)
            encoding["per_level_scale"] = float(max(scale, np.float32(1.0)))
    return {**config, "encoding": encoding}


def _pad16(n: int) -> int:
    return -(-n // 16) * 16


def tcnn_param_count(config: Mapping[str, Any], mode: str, n_input_dims: int, n_output_dims: int) -> int:
    """How many parameters instant-ngp allocates for a (complete: per_level_scale filled in) config: fully
    fused MLPs without biases, inputs padded to a multiple of 16, outputs to 16 (NeRF: the density network's
    16 outputs feed the colour network), then the grid."""
    from .encoding import grid_geometry
    from .model import NetworkConfig

    def mlp(network: Mapping[str, Any], n_in: int, n_out: int) -> int:
        net = NetworkConfig.from_json(network)
        widths = [_pad16(n_in)] + [net.n_neurons] * net.n_hidden_layers + [_pad16(n_out)]
        return sum(widths[i] * widths[i + 1] for i in range(len(widths) - 1))

    geometry = grid_geometry(config["encoding"], n_input_dims)
    grid = geometry.n_entries * geometry.n_features
    if mode == "nerf":
        dirs = sh_degree(config["dir_encoding"]) ** 2
        return mlp(config["network"], geometry.n_output_dims, 16) + mlp(config["rgb_network"], 16 + dirs, 3) + grid
    return mlp(config["network"], geometry.n_output_dims, n_output_dims) + grid
