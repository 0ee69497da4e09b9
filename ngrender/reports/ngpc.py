"""``ngrender ngpc report``: the NGPC projection for every app x encoding x scaling factor, against a baseline
profile — the paper's RTX 3090 (stored, from docs/paper.md) or this device's (measured by the unfused and fused-rest
pipelines) — with Amdahl bounds, reachable resolutions, area/power, and the SCALE-Sim cross-check of the MLP
engine. Markdown + JSON + a PNG of speed-up vs scaling factor."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .breakdown import PAPER_ENCODING_MLP_PCT, PAPER_HASH_SPLIT_PCT, PAPER_REST_FUSION, measure
from ..errors import ConfigError, NgrenderError
from ..fileio import save_figure, write_text
from ..scene import load_scene_and_model, scene_for
from ..ngpc.arch import Arch, load_arch
from ..ngpc.timing import Workload, layer_cycles, max_pixels, project

FHD, UHD = 1920 * 1080, 3840 * 2160
# The paper's frame times on the RTX 3090 (docs/paper.md): NeRF about 231 ms per 1080p frame (secondary); GIA 1.51x
# short of 4K at 60 FPS. SDF and NVR lie between; the paper gives no figure for them.
PAPER_FRAME = {"nerf": (231.0, FHD, "paper (secondary): about 231 ms per 1080p frame"),
               "gigapixel": (1.51 * 1e3 / 60, UHD, "paper: 1.51x short of 4K at 60 FPS")}


@dataclass
class BaselineProfile:
    """What the NGPC is compared with: the baseline frame (un-fused, encoding + MLP on the GPU) and the fused
    rest-of-kernels that stays on the GPU beside the NGPC, at ``pixels``, with the frame's samples per pixel."""

    name: str
    app: str
    encoding: str
    pixels: int
    frame_ms: float
    rest_ms: float
    encoding_ms: float
    mlp_ms: float
    samples_per_pixel: float
    source: str

    def at(self, pixels: int) -> "BaselineProfile":
        """The same profile at another frame size (every kernel's time scales with the pixel count)."""
        k = pixels / self.pixels
        return BaselineProfile(self.name, self.app, self.encoding, pixels, self.frame_ms * k, self.rest_ms * k,
                               self.encoding_ms * k, self.mlp_ms * k, self.samples_per_pixel, self.source)


def rtx3090_profile(app: str, encoding: str, samples_per_pixel: float, nerf_samples_per_pixel: float,
                    pixels: int = FHD) -> BaselineProfile:
    """The paper's RTX 3090 profile: encoding + MLP share per encoding (hash split 40.24 / 32.12; the dense
    grids are split in the same ratio — assumption), the rest fused at the paper's 9.94x, and the frame times
    above; SDF and NVR frames are estimated at NeRF's 3090 time per network sample (assumption)."""
    if encoding not in PAPER_ENCODING_MLP_PCT:
        raise ConfigError(f"the paper has no RTX 3090 profile for the {encoding} encoding "
                          f"(it has {', '.join(PAPER_ENCODING_MLP_PCT)})")
    share = PAPER_ENCODING_MLP_PCT[encoding] / 100
    hash_total = sum(PAPER_HASH_SPLIT_PCT.values())
    if app in PAPER_FRAME:
        frame, at_pixels, source = PAPER_FRAME[app]
        frame *= pixels / at_pixels
    else:
        nerf_ms, nerf_pixels, _ = PAPER_FRAME["nerf"]
        frame = nerf_ms / (nerf_samples_per_pixel * nerf_pixels) * samples_per_pixel * pixels
        source = "estimate: NeRF's RTX 3090 time per network sample x this app's samples (assumption)"
    rest_unfused = frame * (1 - share)
    return BaselineProfile("RTX 3090 (paper)", app, encoding, pixels, frame, rest_unfused / PAPER_REST_FUSION,
                           frame * share * PAPER_HASH_SPLIT_PCT["encoding"] / hash_total,
                           frame * share * PAPER_HASH_SPLIT_PCT["mlp"] / hash_total, samples_per_pixel, source)


def measured_profile(row: dict) -> BaselineProfile:
    """This device's profile from a breakdown row: the unfused frame is the baseline; the GPU keeps the
    fused-rest pipeline's rest-of-kernels time; samples per pixel are the fused-rest pipeline's."""
    unfused, rest_fused = row["unfused"], row["fused-rest"]
    pixels = row["size"] ** 2
    return BaselineProfile(f"{row['device']} (measured)", row["app"], row["encoding"], pixels, unfused["gpu_ms"],
                           rest_fused["class_ms"]["rest"], unfused["class_ms"]["encoding"],
                           unfused["class_ms"]["mlp"], rest_fused["samples"] / pixels,
                           f"measured by the unfused and fused-rest pipelines at {row['size']}x{row['size']}")


def resolution_text(pixels: int) -> str:
    """A pixel count as a 16:9 frame."""
    height = int(math.sqrt(pixels * 9 / 16))
    return f"{height * 16 // 9}x{height}"


def project_row(arch: Arch, profile: BaselineProfile, model) -> dict:
    samples = round(profile.samples_per_pixel * profile.pixels)
    work = Workload.from_model(model, samples, arch.bytes_per_value())
    p = project(arch, work, profile.frame_ms, profile.rest_ms)
    return {"profile": profile.name, "app": profile.app, "encoding": profile.encoding, "preset": arch.name,
            "n_nfp": arch.n_nfp, "pixels": profile.pixels, "samples": samples, "baseline_ms": profile.frame_ms,
            "rest_ms": profile.rest_ms, "ngpc_ms": p.ngpc_ms, "frame_ms": p.frame_ms, "speedup": p.speedup,
            "amdahl_bound": p.amdahl_bound, "mlp_utilization": p.mlp_utilization,
            "stage_ms": {"encoding": p.encoding_ms, "transfer": p.transfer_ms, "mlp": p.mlp_ms, "io": p.io_ms},
            "max_pixels": {fps: max_pixels(p, profile.pixels, fps) for fps in (30, 60, 120)},
            "area_pct": arch.n_nfp * arch.area_pct_per_nfp, "power_pct": arch.n_nfp * arch.power_pct_per_nfp}


TABLE_HEADER = ("| profile | app | encoding | NGPC | baseline ms | projected ms | speed-up | Amdahl bound "
                "| 30 FPS | 60 FPS | 120 FPS | area | power |")


def markdown_rows(rows: list[dict]) -> list[str]:
    out = [TABLE_HEADER, "|" + "---|" * (TABLE_HEADER.count("|") - 1)]
    for r in rows:
        res = " | ".join(resolution_text(r["max_pixels"][fps]) for fps in (30, 60, 120))
        out.append(f"| {r['profile']} | {r['app']} | {r['encoding']} | {r['preset']} | {r['baseline_ms']:.2f} | "
                   f"{r['frame_ms']:.3f} | {r['speedup']:.2f}x | {r['amdahl_bound']:.2f}x | {res} | "
                   f"+{r['area_pct']:.2f}% | +{r['power_pct']:.2f}% |")
    return out


def layer_shapes(models: list) -> list[tuple[int, int]]:
    shapes = []
    for model in models:
        for w in list(model.layers) + list(model.rgb_layers if model.rgb_net is not None else []):
            if tuple(w.shape[::-1]) not in shapes:
                shapes.append(tuple(w.shape[::-1]))
    return shapes


def scalesim_rows(arch: Arch, shapes: list[tuple[int, int]]) -> list[dict]:
    """The MLP engine's layer model next to SCALE-Sim for one batch (M = batch, K = in, N = out)."""
    from ..ngpc.scalesim_check import scalesim_gemm

    rows = []
    for n_in, n_out in shapes:
        ours, util = layer_cycles(arch, n_in, n_out, arch.batch_size)
        sim = scalesim_gemm(arch.batch_size, n_in, n_out, arch.mac_rows, arch.mac_cols)
        rows.append({"m": arch.batch_size, "k": n_in, "n": n_out, "ngrender_cycles": ours, "ngrender_util": util,
                     "scalesim_cycles": sim["cycles"], "scalesim_util_pct": sim["utilization_pct"],
                     "difference_pct": 100 * (ours - sim["cycles"]) / sim["cycles"]})
    return rows


def chart(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NgrenderError("the report chart needs matplotlib (extra [bench])") from None
    profiles = list(dict.fromkeys(r["profile"] for r in rows))
    fig, axes = plt.subplots(1, len(profiles), figsize=(6.5 * len(profiles), 4.5), squeeze=False)
    for ax, profile in zip(axes[0], profiles):
        series = {}
        for r in rows:
            if r["profile"] == profile:
                series.setdefault((r["app"], r["encoding"]), []).append(r)
        for (app, encoding), items in series.items():
            items.sort(key=lambda r: r["n_nfp"])
            line = ax.plot([r["n_nfp"] for r in items], [r["speedup"] for r in items], marker="o",
                           label=f"{app} {encoding}")[0]
            ax.axhline(items[0]["amdahl_bound"], color=line.get_color(), linestyle=":", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("NFPs (scaling factor)")
        ax.set_ylabel("speed-up over the baseline")
        ax.set_title(f"{profile}\n(dotted: Amdahl bounds)", fontsize=9)
        ax.legend(fontsize=6, ncol=2, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def report(profiles: list[str], apps: list[str], encodings: list[str], presets: list[str],
           resolution: tuple[int, int] = (1920, 1080), size: int = 128, repeats: int = 3,
           out_dir: str | Path = "ngpc-report", device: str | None = None, overrides: dict | None = None,
           scalesim: bool = True) -> dict:
    """Print and write ``ngpc.md``, ``ngpc.json`` and ``ngpc.png``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {out} is a file")
    archs = [load_arch(p, **(overrides or {})) for p in presets]
    models = {(a, e): load_scene_and_model(scene_for(a, e))[1] for a in apps for e in encodings}
    print("measuring the frames' work (and this device's profile) with the unfused and fused-rest pipelines "
          f"at {size}x{size} ...", flush=True)
    measured = {key: measure(key[0], key[1], scene_for(*key), size, repeats, device, "auto") for key in models}
    spp = {key: m["fused-rest"]["samples"] / size ** 2 for key, m in measured.items()}
    nerf_spp = {e: spp.get(("nerf", e)) or measure("nerf", e, scene_for("nerf", e), size, 1, device,
                                                    "auto")["fused-rest"]["samples"] / size ** 2 for e in encodings}
    pixels = resolution[0] * resolution[1]
    rows = []
    for (app, encoding), model in models.items():
        chosen = []
        if "rtx3090" in profiles and encoding in PAPER_ENCODING_MLP_PCT:
            chosen.append(rtx3090_profile(app, encoding, spp[(app, encoding)], nerf_spp[encoding], pixels))
        if "measured" in profiles:
            chosen.append(measured_profile(measured[(app, encoding)]))
        for profile in chosen:
            for arch in archs:
                rows.append(project_row(arch, profile, model))
    lines = markdown_rows(rows)
    print("\n".join(lines))
    sim_rows = []
    if scalesim:
        sim_rows = scalesim_rows(archs[0], layer_shapes(list(models.values())))
        sim_table = ["", "| GEMM M x K x N (batch x in x out) | ngrender cycles | SCALE-Sim cycles | difference |",
                     "|---|---|---|---|"]
        sim_table += [f"| {r['m']} x {r['k']} x {r['n']} | {r['ngrender_cycles']:,.0f} | {r['scalesim_cycles']:,} | "
                      f"{r['difference_pct']:+.1f}% |" for r in sim_rows]
        print("\n".join(sim_table))
        lines += sim_table
    arch = archs[0]
    lines += ["", "Assumptions (configs/ngpc.json):"] + [f"- {a}" for a in arch.assumptions()]
    out.mkdir(parents=True, exist_ok=True)
    result = {"resolution": list(resolution), "measured_size": size, "rows": rows, "scalesim": sim_rows,
              "arch": {a.name: dict(a.values) for a in archs}, "sources": dict(arch.sources),
              "profiles": {f"{k[0]}/{k[1]}": asdict(measured_profile(m)) for k, m in measured.items()}}
    write_text(out / "ngpc.json", json.dumps(result, indent=2, default=str) + "\n")
    write_text(out / "ngpc.md", "\n".join(lines) + "\n")
    chart(rows, out / "ngpc.png")
    print(f"\nwrote {out / 'ngpc.md'}, {out / 'ngpc.json'}, {out / 'ngpc.png'}")
    return result
