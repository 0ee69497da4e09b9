"""Cross-check of ngrender's own MLP-engine cycle model against SCALE-Sim v3.

One MLP layer is one GEMM: (M samples x K inputs) @ (K x N weights). SCALE-Sim's GEMM
topology mode maps it to a conv layer with ifmap M x K, one 1 x K filter per output
feature, so T = M ifmap rows stream through ceil(K/rows) * ceil(N/cols) weight folds.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import tempfile

from ngrender.errors import NgrenderError

_MISSING = "the SCALE-Sim cross-check needs the [ngpc] extra: pip install scalesim==3.0.0"

# InterfaceBandwidth = CALC: SCALE-Sim's estimate-bandwidth mode, whose read buffers always
# hit, so the layer runs stall-free. Each SRAM is sized to twice its whole operand (1-byte
# words; half of each double buffer is active), so every operand fits without refetch;
# not larger, since CALC mode pads its prefetch trace to the SRAM size (1 GiB took ~5 s).
# No custom layout, no sparsity, no ramulator traces.
_CONFIG = """[general]
run_name = ngpc_check

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {ifmap_kb}
FilterSramSzkB = {filter_kb}
OfmapSramSzkB = {ofmap_kb}
IfmapOffset = 0
FilterOffset = 100000000
OfmapOffset = 200000000
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""


def _max(*args: object) -> object:
    """max() that reduces a list of 1-element numpy arrays to a scalar (see below)."""
    import numpy as np

    return np.max(args[0]) if len(args) == 1 else builtins.max(*args)


def scalesim_gemm(m: int, k: int, n: int, rows: int = 64, cols: int = 64, dataflow: str = "ws") -> dict:
    """Run SCALE-Sim on one GEMM (M=m, K=k, N=n); returns {"cycles": int, "utilization_pct": float}.

    cycles is SCALE-Sim's "Total Cycles" (compute incl. stalls, which are 0 here);
    utilization_pct is its "Overall Util %" = m*k*n / (cycles * rows * cols) * 100.
    """
    try:
        from scalesim.memory import double_buffered_scratchpad_mem as dbsp
        from scalesim.scale_sim import scalesim
    except ImportError as exc:
        raise NgrenderError(_MISSING) from exc
    # scalesim 3.0.0 does int(max(list of 1-element arrays)), a TypeError since NumPy 2.4
    # (upstream issue #160 / PR #162); shadow max() in that one module with a safe one.
    dbsp.max = _max  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="ngpc_scalesim_") as tmp:
        cfg, topo, layout = (os.path.join(tmp, f) for f in ("gemm.cfg", "gemm.csv", "layout.csv"))
        with open(cfg, "w") as f:
            kb = lambda words: max(64, -(-2 * words // 1024))  # noqa: E731
            f.write(_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow, ifmap_kb=kb(m * k),
                                   filter_kb=kb(k * n), ofmap_kb=kb(m * n)))
        with open(topo, "w") as f:  # SCALE-Sim GEMM format: name, M, N, K (trailing comma needed)
            f.write(f"Layer, M, N, K,\nmlp, {m}, {n}, {k},\n")
        with open(layout, "w") as f:  # header only: custom layouts are off
            f.write("Layer name,\n")
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                               layout=layout, input_type_gemm=True)
                sim.run_scale(top_path=tmp)
                layer = sim.runner.single_layer_sim_object_list[0]
                _, cycles, stalls, util, _, _ = layer.get_compute_report_items()
        except (Exception, SystemExit) as exc:  # scalesim calls exit() on bad input files
            raise NgrenderError(f"SCALE-Sim failed on GEMM m={m} k={k} n={n}: {exc!r}") from exc
    return {"cycles": int(cycles), "utilization_pct": float(util)}
