"""Network config (tiny-cuda-nn / instant-ngp JSON schema) and weights (safetensors).

A model file is one ``.safetensors`` holding

* ``encoding.level.{l}``  the level-l grid table, shape (entries, n_features_per_level)
* ``network.layer.{i}``   MLP layer i weight, shape (out, in) (tcnn's MLPs have no biases)
* NeRF also: ``rgb_network.layer.{i}`` (colour MLP) and ``occupancy_bits`` (the occupancy cube over [0,1]^3,
  x fastest, packed 8 cells per byte, least significant bit first, side ``occupancy_side`` in the metadata;
  older files hold ``occupancy`` as a uint8 cube; a NeRF whose scene box is ``aabb_scale`` > 1 times the unit
  cube has ``occupancy_cascades`` cubes, cascade c covering 2^c times the unit cube around its centre, as
  instant-ngp's cascades); the metadata then has ``dir_encoding`` and ``rgb_network``
  as in instant-ngp's nerf configs

and, in its metadata, ``ngrender`` = JSON ``{"format": 1, "app", "n_input_dims", "n_output_dims",
"encoding", "network", "extra"}`` with ``encoding``/``network`` in the tcnn schema, so an instant-ngp
``configs/*/base.json`` block can be used unchanged. Tensors are fp16 or fp32 on disk, fp32 in memory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .encoding import GridGeometry, grid_geometry
from . import validate
from .errors import ConfigError
from .fileio import parse_json, regular_file, write_bytes
from .limits import check_host_memory

FORMAT_VERSION = 1
MAX_AABB_SCALE = 128  # instant-ngp's largest NeRF scene box


def cascades_of(aabb_scale: int) -> int:
    """instant-ngp's occupancy cascades for a scene box: max_cascade = ceil(log2(aabb_scale)), plus cascade 0."""
    return max(0, (aabb_scale - 1).bit_length()) + 1
HIDDEN_ACTIVATIONS = ("relu",)
OUTPUT_ACTIVATIONS = ("none", "relu", "sigmoid", "exponential")
MLP_OTYPES = ("fullyfusedmlp", "cutlassmlp", "mlp")


@dataclass(frozen=True)
class NetworkConfig:
    """The MLP part of a tcnn config."""

    n_neurons: int
    n_hidden_layers: int
    activation: str  # lower-case tcnn name
    output_activation: str

    @classmethod
    def from_json(cls, network: Mapping[str, Any], where: str = "network") -> "NetworkConfig":
        network = validate.obj(network, where)
        otype = network.get("otype", "FullyFusedMLP")
        if not isinstance(otype, str) or otype.lower() not in MLP_OTYPES:
            raise ConfigError(f"network otype {otype!r} is not an MLP (FullyFusedMLP, CutlassMLP)")
        act = validate.string(network.get("activation", "ReLU"), f"{where}.activation").lower()
        out_act = validate.string(network.get("output_activation", "None"), f"{where}.output_activation").lower()
        if act not in HIDDEN_ACTIVATIONS:
            raise ConfigError(f"hidden activation {network.get('activation')!r} is not supported (ReLU)")
        if out_act not in OUTPUT_ACTIVATIONS:
            raise ConfigError(f"output activation {network.get('output_activation')!r} is not one of "
                              "None, ReLU, Sigmoid, Exponential")
        n_neurons = validate.integer(network.get("n_neurons", 64), f"{where}.n_neurons", 1, 256)
        n_hidden = validate.integer(network.get("n_hidden_layers", 2), f"{where}.n_hidden_layers", 1, 8)
        return cls(n_neurons, n_hidden, act, out_act)

    def layer_shapes(self, n_in: int, n_out: int) -> list[tuple[int, int]]:
        """(out, in) of each weight matrix: n_hidden_layers hidden layers, then the output layer."""
        widths = [n_in] + [self.n_neurons] * self.n_hidden_layers + [n_out]
        return [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]


@dataclass
class Model:
    """A grid encoding + MLP with its weights (fp32 in memory) and app metadata."""

    app: str
    n_input_dims: int
    n_output_dims: int
    encoding: dict
    network: dict
    grid: list[np.ndarray]
    layers: list[np.ndarray]
    extra: dict = field(default_factory=dict)
    storage_dtype: str = "float16"
    # NeRF only (instant-ngp's layout): direction encoding, colour network, occupancy grid over [0,1]^3.
    dir_encoding: dict | None = None
    rgb_network: dict | None = None
    rgb_layers: list[np.ndarray] | None = None
    occupancy: np.ndarray | None = None
    # Tensors kept for a faithful instant-ngp export, not rendered with (``ingp.*``: see snapshot.py).
    carried: dict[str, np.ndarray] = field(default_factory=dict)
    # NeRF: the scene box [0.5 - s/2, 0.5 + s/2]^3 (instant-ngp's aabb_scale); the network sees it as [0,1]^3.
    aabb_scale: int = 1

    def __post_init__(self) -> None:
        self.geometry: GridGeometry = grid_geometry(validate.obj(self.encoding, "encoding"), self.n_input_dims)
        self.net: NetworkConfig = NetworkConfig.from_json(self.network)
        self.grid = [np.ascontiguousarray(g, dtype=np.float32) for g in self.grid]
        self.layers = [np.ascontiguousarray(w, dtype=np.float32) for w in self.layers]
        self.rgb_net: NetworkConfig | None = None
        if self.rgb_network is not None:
            self.rgb_net = NetworkConfig.from_json(self.rgb_network, "rgb_network")
            self.rgb_layers = [np.ascontiguousarray(w, dtype=np.float32) for w in self.rgb_layers or []]
        if self.occupancy is not None:
            self.occupancy = np.ascontiguousarray(self.occupancy, dtype=np.uint8)
        self.validate()

    @property
    def sh_degree(self) -> int:
        """Spherical-harmonics degree of the direction encoding (0 when there is none)."""
        if self.dir_encoding is None:
            return 0
        from .netconfig import sh_degree

        return sh_degree(self.dir_encoding)

    def validate(self) -> None:
        """Shapes against the config, finite values; messages name the tensor (callers add the file)."""
        want_grid = self.geometry.level_shapes()
        if len(self.grid) != len(want_grid):
            raise ConfigError(f"{len(self.grid)} grid levels, config says {len(want_grid)}")
        for lv, (have, want) in enumerate(zip(self.grid, want_grid)):
            if tuple(have.shape) != want:
                raise ConfigError(f"grid level {lv} has shape {tuple(have.shape)}, config says {want}")
        want_mlp = self.net.layer_shapes(self.geometry.n_output_dims, self.n_output_dims)
        if len(self.layers) != len(want_mlp):
            raise ConfigError(f"{len(self.layers)} MLP layers, config says {len(want_mlp)}")
        for i, (have, want) in enumerate(zip(self.layers, want_mlp)):
            if tuple(have.shape) != want:
                raise ConfigError(f"MLP layer {i} has shape {tuple(have.shape)}, config says {want}")
        if self.rgb_net is not None:
            want_rgb = self.rgb_net.layer_shapes(self.n_output_dims + self.sh_degree ** 2, 3)
            have_rgb = [tuple(w.shape) for w in self.rgb_layers]
            if have_rgb != want_rgb:
                raise ConfigError(f"colour network layers have shapes {have_rgb}, config says {want_rgb}")
        if not isinstance(self.aabb_scale, int) or not 1 <= self.aabb_scale <= MAX_AABB_SCALE:
            raise ConfigError(f"aabb_scale must be an integer in 1..{MAX_AABB_SCALE}, got {self.aabb_scale!r}")
        if self.occupancy is not None:
            occ = self.occupancy
            if occ.ndim not in (3, 4) or len(set(occ.shape[-3:])) != 1 or not 1 <= occ.shape[-1] <= 512:
                raise ConfigError(f"occupancy grid must be a cube of side 1..512, got shape {occ.shape}")
            if self.occupancy_cascades != cascades_of(self.aabb_scale):
                raise ConfigError(f"aabb_scale {self.aabb_scale} needs {cascades_of(self.aabb_scale)} occupancy "
                                  f"cascade(s), the model has {self.occupancy_cascades}")
        arrays = [("grid", g) for g in self.grid] + [("MLP", w) for w in self.layers + (self.rgb_layers or [])]
        for name, arr in arrays:
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"{name} weights contain NaN or Inf")

    @property
    def occupancy_side(self) -> int:
        return int(self.occupancy.shape[-1])

    @property
    def occupancy_cascades(self) -> int:
        return 1 if self.occupancy is None or self.occupancy.ndim == 3 else int(self.occupancy.shape[0])

    @property
    def grid_table(self) -> np.ndarray:
        """All levels concatenated, shape (n_entries, F): the layout the shaders index with level offsets."""
        return np.concatenate(self.grid, axis=0)

    @property
    def n_params(self) -> int:
        return sum(g.size for g in self.grid) + sum(w.size for w in self.layers + (self.rgb_layers or []))

    def header(self) -> dict:
        head = {"format": FORMAT_VERSION, "app": self.app, "n_input_dims": self.n_input_dims,
                "n_output_dims": self.n_output_dims, "encoding": self.encoding, "network": self.network,
                "extra": self.extra}
        if self.rgb_network is not None:
            head.update(dir_encoding=self.dir_encoding, rgb_network=self.rgb_network)
        if self.occupancy is not None:
            head["occupancy_side"] = self.occupancy_side
            if self.occupancy.ndim == 4:
                head["occupancy_cascades"] = self.occupancy_cascades
        if self.aabb_scale != 1:
            head["aabb_scale"] = self.aabb_scale
        return head

    def save(self, path: str | Path, dtype: str | None = None) -> None:
        """Write the model file atomically."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, self.to_bytes(dtype))

    def to_bytes(self, dtype: str | None = None) -> bytes:
        """The model file's bytes (safetensors), as ``save`` writes them."""
        from safetensors.numpy import save

        dtype = dtype or self.storage_dtype
        tensors = {f"encoding.level.{i}": g.astype(dtype) for i, g in enumerate(self.grid)}
        tensors.update({f"network.layer.{i}": w.astype(dtype) for i, w in enumerate(self.layers)})
        tensors.update({f"rgb_network.layer.{i}": w.astype(dtype) for i, w in enumerate(self.rgb_layers or [])})
        tensors.update(self.carried)  # in the precision they came in
        if self.occupancy is not None:  # 1 bit per cell, as instant-ngp's density bitfield
            tensors["occupancy_bits"] = np.packbits(self.occupancy.ravel() != 0, bitorder="little")
        return save(tensors, metadata={"ngrender": json.dumps(self.header(), allow_nan=False)})


def load_network_config(path: str | Path) -> dict:
    """A tcnn/instant-ngp config file as instant-ngp reads it (comments, ``parent`` files merged; see
    netconfig.py) with ``encoding`` and ``network`` objects; other keys are carried along."""
    from .netconfig import load_config

    cfg = load_config(path)
    validate.obj(cfg, f"network config {path}", required=("encoding", "network"))
    validate.obj(cfg["encoding"], f"network config {path}: encoding")
    validate.obj(cfg["network"], f"network config {path}: network")
    return cfg


STORED_DTYPES = ("F16", "F32")
CARRIED_PREFIX = "ingp."


@dataclass
class ModelHeader:
    """What a model file says about itself, read without its tensors (sizes are checked before loading)."""

    path: Path
    head: dict
    geometry: GridGeometry
    dtypes: dict[str, str]  # tensor name -> safetensors dtype

    @property
    def app(self) -> str:
        return self.head["app"]

    @property
    def extra(self) -> dict:
        return self.head.get("extra", {})

    @property
    def half(self) -> bool:
        return {d for k, d in self.dtypes.items() if not k.startswith(("occupancy", CARRIED_PREFIX))} == {"F16"}

    @property
    def n_mlp_weights(self) -> int:
        """Weights of every network the config declares (the colour network's input with SH degree 4)."""
        head, where = self.head, f"{self.path}: metadata"
        shapes = NetworkConfig.from_json(head["network"], f"{where} network").layer_shapes(
            self.geometry.n_output_dims, head["n_output_dims"])
        if "rgb_network" in head:
            shapes += NetworkConfig.from_json(head["rgb_network"], f"{where} rgb_network").layer_shapes(
                head["n_output_dims"] + 16, 3)
        return sum(o * i for o, i in shapes)


def read_header(path: str | Path) -> ModelHeader:
    """The metadata of a model file, validated; every problem is a ConfigError naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import safe_open

    path = Path(path)
    regular_file(path, "weights file")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            dtypes = {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable safetensors file: {exc}") from None
    if "ngrender" not in meta:
        raise ConfigError(f"{path} has no 'ngrender' metadata (not an ngrender model file)")
    head = validate.obj(parse_json(meta["ngrender"], f"{path}: 'ngrender' metadata"), f"{path}: metadata",
                        required=("app", "n_input_dims", "n_output_dims", "encoding", "network"))
    if head.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{path}: model format {head.get('format')!r}, this ngrender reads {FORMAT_VERSION}")
    where = f"{path}: metadata"
    validate.string(head["app"], f"{where} app")
    validate.integer(head["n_input_dims"], f"{where} n_input_dims", 1, 3)
    validate.integer(head["n_output_dims"], f"{where} n_output_dims", 1, 64)
    for key in ("encoding", "network", "dir_encoding", "rgb_network", "extra"):
        if key in head:
            validate.obj(head[key], f"{where} {key}")
    if "occupancy_side" in head:
        validate.integer(head["occupancy_side"], f"{where} occupancy_side", 1, 512)
    if "occupancy_cascades" in head:
        validate.integer(head["occupancy_cascades"], f"{where} occupancy_cascades", 1, cascades_of(MAX_AABB_SCALE))
    if "aabb_scale" in head:
        validate.integer(head["aabb_scale"], f"{where} aabb_scale", 1, MAX_AABB_SCALE)
    for name, dtype in dtypes.items():
        allowed = ("U8",) if name.startswith("occupancy") else STORED_DTYPES
        if dtype not in allowed:
            raise ConfigError(f"{path}: tensor {name} is {dtype}; ngrender stores {' or '.join(allowed)}")
    try:
        geometry = grid_geometry(head["encoding"], head["n_input_dims"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return ModelHeader(path, head, geometry, dtypes)


def load_model(path: str | Path, header: ModelHeader | None = None) -> Model:
    """Read and validate a model file; every problem is a ConfigError naming the file."""
    from safetensors import SafetensorError
    from safetensors.numpy import safe_open

    header = header or read_header(path)
    path, head = header.path, header.head
    check_host_memory(header.geometry.n_entries * header.geometry.n_features * 4 * 2, f"model {path}",
                      "a smaller model")
    try:
        with safe_open(str(path), framework="numpy") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable safetensors file: {exc}") from None
    grid = _numbered(tensors, "encoding.level.", path)
    layers = _numbered(tensors, "network.layer.", path)
    rgb_layers = _numbered(tensors, "rgb_network.layer.", path) if "rgb_network" in head else None
    try:
        return Model(head["app"], head["n_input_dims"], head["n_output_dims"], head["encoding"], head["network"],
                     grid, layers, head.get("extra", {}), "float16" if header.half else "float32",
                     head.get("dir_encoding"), head.get("rgb_network"), rgb_layers, _occupancy(tensors, head),
                     {k: v for k, v in tensors.items() if k.startswith(CARRIED_PREFIX)}, head.get("aabb_scale", 1))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _occupancy(tensors: dict, head: dict) -> np.ndarray | None:
    """The occupancy cube from its packed bits (or an older file's uint8 cube)."""
    if "occupancy_bits" not in tensors:
        return tensors.get("occupancy")
    side, cascades = head.get("occupancy_side", 0), head.get("occupancy_cascades")
    bits = tensors["occupancy_bits"]
    cells = side ** 3 * (cascades or 1)
    if not 1 <= side <= 512 or bits.ndim != 1 or bits.size != (cells + 7) // 8:
        what = f"{cascades} cubes" if cascades else "a cube"
        raise ConfigError(f"occupancy_bits holds {bits.size} bytes, not {what} of side {side}")
    shape = (side,) * 3 if cascades is None else (cascades,) + (side,) * 3
    return np.unpackbits(bits, count=cells, bitorder="little").reshape(shape)


def _numbered(tensors: dict, prefix: str, path: Path) -> list[np.ndarray]:
    keys = [k for k in tensors if k.startswith(prefix)]
    try:
        order = sorted(int(k[len(prefix):]) for k in keys)
    except ValueError:
        raise ConfigError(f"{path}: unexpected tensor name among {sorted(keys)}") from None
    if order != list(range(len(order))):
        raise ConfigError(f"{path}: tensors {prefix}* are not numbered 0..{len(order) - 1}")
    return [tensors[f"{prefix}{i}"] for i in order]
