"""Cross-check of ngrender's own MLP-engine cycle model against SCALE-Sim 3.0.0.

One MLP layer is one GEMM: (M samples x K inputs) @ (K x N weights). SCALE-Sim's GEMM
topology mode maps it to a conv layer (ifmap M x K, N filters of 1 x K), so on an R x C
weight-stationary array it runs ceil(K/R) * ceil(N/C) folds of 2R + C + M - 2 cycles each.
"""

from __future__ import annotations

import builtins
import configparser
import contextlib
import io
import os
import tempfile

from ngrender.errors import NgrenderError

_MISSING = "the SCALE-Sim cross-check needs the [ngpc] extra: pip install scalesim==3.0.0"

# InterfaceBandwidth = CALC is SCALE-Sim's estimate-bandwidth mode: its read buffers always
# hit, so the layer is stall-free. Each SRAM (1-byte words) is twice its whole operand, as
# only half of a double buffer is active, so nothing is refetched; not bigger, because CALC
# pads its prefetch trace to the SRAM size (1 GiB SRAMs cost ~5 s a call). No custom
# layout, sparsity or ramulator traces.
def _config(rows: int, cols: int, dataflow: str, m: int, k: int, n: int) -> dict[str, dict[str, object]]:
    def kb(words: int) -> int:  # twice the operand, in kB
        return max(64, -(-2 * words // 1024))

    arch = {"ArrayHeight": rows, "ArrayWidth": cols, "IfmapSramSzkB": kb(m * k), "FilterSramSzkB": kb(k * n),
            "OfmapSramSzkB": kb(m * n), "IfmapOffset": 0, "FilterOffset": 10**8, "OfmapOffset": 2 * 10**8,
            "Dataflow": dataflow, "ReadRequestBuffer": 32, "WriteRequestBuffer": 32}
    layout = {f"{op}{key}": val for op in ("Ifmap", "Filter") for key, val in
              (("CustomLayout", False), ("SRAMBankBandwidth", 10), ("SRAMBankNum", 10), ("SRAMBankPort", 2))}
    return {"general": {"run_name": "ngpc_check"}, "architecture_presets": arch, "layout": layout,
            "run_presets": {"InterfaceBandwidth": "CALC", "UseRamulatorTrace": False},
            "sparsity": {"SparsitySupport": False}}


def _max(*args: object) -> object:
    """builtins.max, except that max(list of 1-element arrays) gives a scalar (see below)."""
    import numpy as np

    return np.max(args[0]) if len(args) == 1 else builtins.max(*args)  # type: ignore[call-overload]


def scalesim_gemm(m: int, k: int, n: int, rows: int = 64, cols: int = 64, dataflow: str = "ws") -> dict:
    """Run SCALE-Sim on one GEMM (M=m, K=k, N=n); returns {"cycles": int, "utilization_pct": float}.

    cycles is SCALE-Sim's "Total Cycles" (compute plus stalls, which are 0 here);
    utilization_pct its "Overall Util %" = 100 * m*k*n / (cycles * rows * cols).
    """
    if dataflow not in ("ws", "os", "is") or min(m, k, n, rows, cols) < 1:
        raise NgrenderError(f"bad SCALE-Sim GEMM m={m} k={k} n={n} array={rows}x{cols} dataflow={dataflow!r}")
    try:
        from scalesim.memory import double_buffered_scratchpad_mem as dbsp
        from scalesim.scale_sim import scalesim
    except ImportError as exc:
        raise NgrenderError(_MISSING) from exc
    # scalesim 3.0.0 does int(max(list of 1-element arrays)), a TypeError since NumPy 2.4
    # (upstream issue #160, fix in PR #162); shadow max() in that one module.
    dbsp.max = _max  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="ngpc_scalesim_") as tmp:
        cfg, topo, layout = (os.path.join(tmp, f) for f in ("gemm.cfg", "gemm.csv", "layout.csv"))
        parser = configparser.ConfigParser()
        parser.read_dict(_config(rows, cols, dataflow, m, k, n))
        with open(cfg, "w") as f:
            parser.write(f)
        with open(topo, "w") as f:  # SCALE-Sim's GEMM format: name, M, N, K, (trailing comma)
            f.write(f"Layer, M, N, K,\nmlp, {m}, {n}, {k},\n")
        with open(layout, "w") as f:  # a layout file is required; header only, as it is unused
            f.write("Layer name,\n")
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo,
                               layout=layout, input_type_gemm=True)
                sim.run_scale(top_path=tmp)  # reports go to tmp/ngpc_check/, no traces
                layer = sim.runner.single_layer_sim_object_list[0]
                _, cycles, _, util, _, _ = layer.get_compute_report_items()
        except (Exception, SystemExit) as exc:  # scalesim calls exit() on unreadable inputs
            raise NgrenderError(f"SCALE-Sim failed on GEMM m={m} k={k} n={n}: {exc!r}") from exc
    return {"cycles": int(cycles), "utilization_pct": float(util)}
