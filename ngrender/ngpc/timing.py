"""The NGPC timing model: cycles of the input-encoding engines and of the MLP engine for a frame's work, the
encoder-to-MLP transfer, the GPU<->NGPC traffic, and the batch pipeline that overlaps the NGPC with the GPU's
fused rest-of-kernels. Inputs: the frame's work counts (samples, lookups per level, layer shapes) and a baseline
profile (the rest-of-kernels time and the baseline frame time). Every formula is in the docstrings, so the unit
tests can compute the expected cycles by hand.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..encoding import encoding_spec
from ..errors import ConfigError
from .arch import Arch


@dataclass(frozen=True)
class LevelWork:
    lookups_per_sample: int  # corners fetched per sample (2^d, or d+1 for the simplex grid)
    table_bytes: int         # the level's table at the storage precision
    n_features: int


@dataclass(frozen=True)
class Workload:
    """The encoding + MLP work of a frame, as the engines see it."""

    samples: int                                 # network input positions
    levels: tuple[LevelWork, ...]
    dense: bool                                  # dense grids are parallelised over inputs, not levels
    layers: tuple[tuple[int, int], ...]          # (inputs, outputs) of every MLP layer a sample goes through
    io_bytes_per_sample: int                     # GPU -> NGPC inputs and NGPC -> GPU results

    @classmethod
    def from_model(cls, model, samples: int, bytes_per_value: int = 2) -> "Workload":
        geom = model.geometry
        spec = encoding_spec(geom.kind)
        corners = spec.lookups(geom.n_dims)
        levels = tuple(LevelWork(corners, lv.size * geom.n_features * bytes_per_value, geom.n_features)
                       for lv in geom.levels)
        layers = [tuple(w.shape[::-1]) for w in model.layers]
        n_in = geom.n_dims * 4  # fp32 position
        n_out = model.layers[-1].shape[0]
        if model.rgb_net is not None:  # NeRF: the colour network, and the ray direction as an input
            layers += [tuple(w.shape[::-1]) for w in model.rgb_layers]
            n_in += 3 * 4
            n_out = 1 + model.rgb_layers[-1].shape[0]  # density and colour go back to the GPU
        return cls(samples, levels, not any(lv.hashed for lv in geom.levels) and spec.ngpc_engine,
                   tuple(layers), n_in + n_out * bytes_per_value)

    @property
    def macs_per_sample(self) -> int:
        return sum(i * o for i, o in self.layers)

    @property
    def lookups_per_sample(self) -> int:
        return sum(lv.lookups_per_sample for lv in self.levels)

    @property
    def encoded_values_per_sample(self) -> int:
        return sum(lv.n_features for lv in self.levels)


def _bytes_per_cycle(arch: Arch, gbps: float) -> float:
    return gbps * 1e9 / arch.clock_hz


def level_cycles(arch: Arch, level: LevelWork, samples: float, spill_gbps: float) -> float:
    """One engine on one level: ``samples * lookups / ports`` from the grid SRAM; a level whose table exceeds the
    SRAM is fetched from L2/DRAM instead, at this NFP's share of that bandwidth (``spill_gbps / n_nfp``):
    ``samples * lookups * features * bytes / bytes_per_cycle`` when that is slower."""
    sram = samples * level.lookups_per_sample / arch.grid_sram_ports
    if level.table_bytes <= arch.grid_sram_bytes:
        return sram
    fetched = samples * level.lookups_per_sample * level.n_features * arch.bytes_per_value()
    return max(sram, fetched / (_bytes_per_cycle(arch, spill_gbps) / arch.n_nfp))


def spill_bandwidth(arch: Arch, work: Workload) -> float:
    """L2 bandwidth when every spilled table fits in L2 together, else DRAM bandwidth (GB/s)."""
    spilled = sum(lv.table_bytes for lv in work.levels if lv.table_bytes > arch.grid_sram_bytes)
    return arch.l2_bandwidth_gbps if spilled <= arch.l2_bytes else arch.dram_bandwidth_gbps


def encoding_cycles(arch: Arch, work: Workload, samples: float) -> float:
    """Encoding engines of one NFP for ``samples``: multi-resolution hash grids put level l on engine
    l mod E (engines in parallel, the busiest one sets the time); dense grids split the samples over all E engines
    (every engine does every level)."""
    bandwidth = spill_bandwidth(arch, work)
    engines = arch.encoding_engines_per_nfp
    if work.dense:
        return sum(level_cycles(arch, lv, samples / engines, bandwidth) for lv in work.levels)
    busy = [0.0] * engines
    for index, lv in enumerate(work.levels):
        busy[index % engines] += level_cycles(arch, lv, samples, bandwidth)
    return max(busy)


def layer_cycles(arch: Arch, n_in: int, n_out: int, batch: int) -> tuple[float, float]:
    """(cycles, utilisation) of one layer on the R x C weight-stationary MAC array for a batch: the layer is
    ``ceil(in/R) * ceil(out/C)`` tiles; each streams the batch through the array with ``R + C - 2`` cycles of
    fill and drain, and its weights are loaded at ``weight_load_bytes_per_cycle``. Utilisation = useful MACs /
    (cycles * R * C)."""
    rows, cols = arch.mac_rows, arch.mac_cols
    tiles = math.ceil(n_in / rows) * math.ceil(n_out / cols)
    compute = tiles * (batch + rows + cols - 2)
    weights = n_in * n_out * arch.bytes_per_value() / arch.weight_load_bytes_per_cycle
    cycles = compute + weights
    return cycles, n_in * n_out * batch / (cycles * rows * cols)


def mlp_cycles(arch: Arch, work: Workload, batch: int) -> float:
    """Every layer of every network, one layer at a time, for one batch."""
    return sum(layer_cycles(arch, i, o, batch)[0] for i, o in work.layers)


def transfer_cycles(arch: Arch, work: Workload, batch: int) -> float:
    """Encoder outputs written into the MLP engine's input buffer (no DRAM round trip)."""
    return batch * work.encoded_values_per_sample / arch.encoder_to_mlp_values_per_cycle


@dataclass
class Projection:
    """The projected NGPC frame next to the baseline; times in ms."""

    baseline_ms: float
    rest_ms: float
    ngpc_ms: float
    frame_ms: float
    encoding_ms: float
    transfer_ms: float
    mlp_ms: float
    io_ms: float
    batches: int
    mlp_utilization: float
    stages: dict = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.frame_ms

    @property
    def amdahl_bound(self) -> float:
        """The speed-up if encoding and MLP took no time: only the GPU's rest-of-kernels remain."""
        return self.baseline_ms / self.rest_ms if self.rest_ms > 0 else math.inf


def project(arch: Arch, work: Workload, baseline_ms: float, rest_ms: float) -> Projection:
    """The NGPC frame: each NFP takes ``samples / n_nfp`` samples in batches of ``batch_size``; inside an NFP the
    encoding, transfer and MLP stages are pipelined over batches (``n * max(stage) + sum(stages) - max(stage)``);
    GPU<->NGPC traffic goes through L2 (all NFPs share its bandwidth). The NGPC overlaps the GPU's fused
    rest-of-kernels batch by batch, so the frame takes the longer of the two plus one batch of the shorter
    (the pipeline's fill): ``max(rest, ngpc) + min(rest, ngpc) / batches``."""
    if baseline_ms <= 0 or rest_ms < 0 or rest_ms > baseline_ms * (1 + 1e-9):
        raise ConfigError(f"baseline profile needs 0 <= rest ({rest_ms} ms) <= frame ({baseline_ms} ms)")
    if work.samples <= 0:
        raise ConfigError("the workload has no samples")
    per_nfp = work.samples / arch.n_nfp
    batch = min(arch.batch_size, max(1, math.ceil(per_nfp)))
    batches = max(1, math.ceil(per_nfp / batch))
    stages = {"encoding": encoding_cycles(arch, work, batch), "transfer": transfer_cycles(arch, work, batch),
              "mlp": mlp_cycles(arch, work, batch)}
    pipeline = batches * max(stages.values()) + sum(stages.values()) - max(stages.values())
    to_ms = 1e3 / arch.clock_hz
    io_ms = work.samples * work.io_bytes_per_sample / (arch.l2_bandwidth_gbps * 1e9) * 1e3
    ngpc_ms = max(pipeline * to_ms, io_ms)
    total_batches = batches * arch.n_nfp
    frame = max(rest_ms, ngpc_ms) + min(rest_ms, ngpc_ms) / total_batches
    useful = work.macs_per_sample * batch
    mlp_util = useful / (stages["mlp"] * arch.mac_rows * arch.mac_cols) if stages["mlp"] else 0.0
    return Projection(baseline_ms, rest_ms, ngpc_ms, frame, batches * stages["encoding"] * to_ms,
                      batches * stages["transfer"] * to_ms, batches * stages["mlp"] * to_ms, io_ms, batches,
                      mlp_util, {k: v for k, v in stages.items()})


def max_pixels(projection: Projection, pixels: int, fps: float) -> int:
    """The largest frame reachable at ``fps``: every term of the projection scales with the pixel count."""
    return int(pixels * (1e3 / fps) / projection.frame_ms)
