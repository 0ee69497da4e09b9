"""The paper's first result on this device: the per-kernel profile of every app x encoding (input encoding, MLP,
rest of kernels) from the unfused pipeline's timestamps, the fused kernel's frame time next to it, and how much
fusing the rest of the kernels saves (fused-rest vs unfused rest). Medians of several runs, measured side by side
in one run; written as JSON, a Markdown table and a PNG chart."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..encoding import encoding_presets
from ..errors import ConfigError, NgrenderError
from ..fileio import save_figure, write_text
from ..scene import ROOT, scene_for
from ..session import RenderSession

PIPELINES = ("fused", "unfused", "fused-rest")
# The paper's RTX 3090 profile (docs/paper.md): share of encoding + MLP in application time, per encoding, and the
# speed-up of fusing the rest of the kernels.
PAPER_ENCODING_MLP_PCT = {"hash": 72.37, "dense": 60.0, "lowres": 59.96}
PAPER_HASH_SPLIT_PCT = {"encoding": 40.24, "mlp": 32.12}
PAPER_REST_FUSION = 9.94


def _median_stats(session: RenderSession, size: int, repeats: int) -> dict:
    view = session.view()
    session.renderer.render(size, size, view)  # warm-up: pipeline JIT, caches
    runs = [session.renderer.render(size, size, view)[1] for _ in range(repeats)]
    classes = {c: statistics.median(r.class_ms()[c] for r in runs) for c in ("encoding", "mlp", "rest", "fused")}
    return {"gpu_ms": statistics.median(r.gpu_ms for r in runs), "wall_ms": statistics.median(r.wall_ms for r in runs),
            "class_ms": classes, "samples": runs[-1].samples, "iterations": runs[-1].iterations,
            "dispatches": len(runs[-1].dispatches)}


def measure(app: str, encoding: str, source: Path, size: int, repeats: int, device: str | None,
            variant: str) -> dict:
    """One app x encoding in the three pipelines; ``source`` is a scene (its view) or a model file."""
    if not source.is_file():
        raise NgrenderError(f"no {app} scene or model for the {encoding} encoding at {source}")
    shown = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source
    row = {"app": app, "encoding": encoding, "model": str(shown), "size": size}
    for pipeline in PIPELINES:
        with RenderSession.from_scene(source, device=device, variant=variant, pipeline=pipeline) as session:
            if session.model.app != app:
                raise NgrenderError(f"{source} is a {session.model.app} model, not {app}")
            row[pipeline] = _median_stats(session, size, repeats)
            row["device"] = session.device.info.name
    unfused, rest_fused = row["unfused"], row["fused-rest"]
    total = sum(unfused["class_ms"][c] for c in ("encoding", "mlp", "rest"))  # of the per-class medians
    row["pct"] = {c: 100 * unfused["class_ms"][c] / total for c in ("encoding", "mlp", "rest")}
    row["encoding_mlp_pct"] = row["pct"]["encoding"] + row["pct"]["mlp"]
    row["fused_speedup"] = unfused["gpu_ms"] / row["fused"]["gpu_ms"]
    row["fused_speedup_wall"] = unfused["wall_ms"] / row["fused"]["wall_ms"]  # with the host round trips
    row["rest_fusion_speedup"] = unfused["class_ms"]["rest"] / rest_fused["class_ms"]["rest"]
    row["paper_encoding_mlp_pct"] = PAPER_ENCODING_MLP_PCT.get(encoding)
    return row


HEADER = ("| app | encoding | enc % | MLP % | rest % | enc+MLP % (paper) | unfused ms | fused-rest ms | fused ms "
          "| unfused / fused (GPU, wall) | rest: unfused / fused-rest (paper 9.94x) |")


def markdown(rows: list[dict]) -> str:
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for r in rows:
        paper = f"{r['paper_encoding_mlp_pct']:.2f}" if r["paper_encoding_mlp_pct"] is not None else "-"
        lines.append(f"| {r['app']} | {r['encoding']} | {r['pct']['encoding']:.1f} | {r['pct']['mlp']:.1f} | "
                     f"{r['pct']['rest']:.1f} | {r['encoding_mlp_pct']:.1f} ({paper}) | {r['unfused']['gpu_ms']:.1f} | "
                     f"{r['fused-rest']['gpu_ms']:.1f} | {r['fused']['gpu_ms']:.1f} | {r['fused_speedup']:.2f}x, "
                     f"{r['fused_speedup_wall']:.2f}x | "
                     f"{r['rest_fusion_speedup']:.2f}x |")
    return "\n".join(lines) + "\n"


def chart(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NgrenderError("the breakdown chart needs matplotlib (extra [bench]): pip install 'ngrender[bench]'") \
            from None
    labels = [f"{r['app']}\n{r['encoding']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4.5))
    bottom = [0.0] * len(rows)
    for part, colour in (("encoding", "#4c72b0"), ("mlp", "#dd8452"), ("rest", "#8c8c8c")):
        values = [r["pct"][part] for r in rows]
        ax.bar(labels, values, bottom=bottom, color=colour, label=part)
        bottom = [b + v for b, v in zip(bottom, values)]
    paper = [r["paper_encoding_mlp_pct"] for r in rows]
    ax.scatter([lb for lb, p in zip(labels, paper) if p is not None], [p for p in paper if p is not None],
               marker="_", s=600, color="black", zorder=3, label="paper enc+MLP (RTX 3090)")
    ax.set_ylabel("% of unfused GPU time")
    ax.set_ylim(0, 100)
    ax.set_title(f"Kernel breakdown on {rows[0]['device']} ({rows[0]['size']}x{rows[0]['size']})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def breakdown(apps: list[str], encodings: list[str] | None = None, size: int = 256, repeats: int = 3,
              out_dir: str | Path = "breakdown", device: str | None = None, variant: str = "auto",
              models: dict[tuple[str, str], Path] | None = None) -> list[dict]:
    """Measure, print and write ``breakdown.json``, ``breakdown.md`` and ``breakdown.png`` into ``out_dir``."""
    encodings = list(encodings or encoding_presets())
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    print(f"kernel breakdown at {size}x{size}, median of {repeats} runs per pipeline; % of the unfused pipeline's "
          "GPU time (sum of its dispatches' timestamps)\n")
    print(HEADER)
    rows = []
    for app in apps:
        for encoding in encodings:
            path = (models or {}).get((app, encoding)) or scene_for(app, encoding)
            row = measure(app, encoding, Path(path), size, repeats, device, variant)
            rows.append(row)
            print(markdown([row]).splitlines()[-1], flush=True)
    report = {"device": rows[0]["device"] if rows else None, "size": size, "repeats": repeats,
              "paper": {"encoding_mlp_pct": PAPER_ENCODING_MLP_PCT, "hash_split_pct": PAPER_HASH_SPLIT_PCT,
                        "rest_fusion_speedup": PAPER_REST_FUSION, "device": "RTX 3090 (instant-ngp)"},
              "rows": rows}
    write_text(out / "breakdown.json", json.dumps(report, indent=2) + "\n")
    write_text(out / "breakdown.md", markdown(rows))
    chart(rows, out / "breakdown.png")
    print(f"\nwrote {out / 'breakdown.json'}, {out / 'breakdown.md'}, {out / 'breakdown.png'}")
    return rows
