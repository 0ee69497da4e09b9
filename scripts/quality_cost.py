"""What the default image-quality features cost: each default scene rendered with its feature off and on, the
frames interleaved (off, on, off, on, ...) so both see the same machine, and the ratio of the medians printed.

    python scripts/quality_cost.py [--size 256] [--repeats 3] [--psnr]

Features: the SDF's ambient occlusion (``ao_samples`` 0 vs the default) on scenes/sdf_bunny.json, the volume's
jittered march start (``jitter`` false vs true) on scenes/volume_head.json. Network evaluations are counted by
the kernel (deterministic); times are GPU time from timestamps (median of the repeats, after one warm-up frame
of each).

``--psnr`` adds the head CT model's PSNR against direct volume rendering of the raw scan with the jitter off
and on (the trainer's measure: 4 views at 96 x 96, the same transfer function, marcher and jitter on both
sides; needs the [train] extra and ``ngrender data fetch head-ct``; several minutes on 2 cores).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from ngrender.session import RenderSession

ROOT = Path(__file__).resolve().parents[1]
CASES = (("sdf_bunny", "ambient occlusion", {"ao_samples": 0}, {}),
         ("volume_head", "jittered start", {"jitter": False}, {"jitter": True}))


def volume_psnr() -> None:
    from dataclasses import replace

    import numpy as np

    from ngrender.camera import orbit
    from ngrender.model import load_model
    from ngrender.reference import volume as ref
    from ngrender.reference.output import psnr_db
    from ngrender.train import volume as trainer
    from ngrender.train.torch_field import torch_network

    model = load_model(ROOT / "assets" / "volume_head_hash.safetensors")
    scan = trainer.ScanSampler(trainer.load_scan(trainer.resolve_volume("head-ct"))).network()
    for jitter in (False, True):
        psnrs = []
        for k in range(4):
            view = ref.VolumeView(density_scale=trainer.DENSITY_SCALE, jitter=jitter)
            view = replace(view, camera=orbit(360.0 * k / 4 + 15, 15.0, 1.6))
            got = ref.render(model, 96, 96, view, network=torch_network(model, "cpu"))[0].astype(np.float64)
            want = ref.render(model, 96, 96, view, network=scan)[0].astype(np.float64)
            psnrs.append(psnr_db(np.mean((got - want) ** 2) / 255.0 ** 2))
        print(f"volume_head PSNR vs the raw scan, jitter {'on' if jitter else 'off'}: {np.mean(psnrs):.2f} dB "
              f"(views {', '.join(f'{p:.2f}' for p in psnrs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--psnr", action="store_true", help="also the volume model's PSNR, jitter off and on")
    args = parser.parse_args()
    print(f"{'scene':<12} {'feature':<18} {'off ms':>9} {'on ms':>9} {'ratio':>6} {'evals off':>10} {'evals on':>10}")
    for scene, feature, off, on in CASES:
        with RenderSession.from_scene(ROOT / "scenes" / f"{scene}.json") as session:
            views = {"off": session.view(**off), "on": session.view(**on)}
            times: dict[str, list[float]] = {"off": [], "on": []}
            samples = {}
            for repeat in range(args.repeats + 1):
                for key, view in views.items():
                    _, stats = session.renderer.render(args.size, args.size, view)
                    samples[key] = stats.samples
                    if repeat:  # the first round warms the pipelines up
                        times[key].append(sum(stats.kernel_ms.values()))
        ms = {key: statistics.median(values) for key, values in times.items()}
        print(f"{scene:<12} {feature:<18} {ms['off']:9.1f} {ms['on']:9.1f} {ms['on'] / ms['off']:6.2f} "
              f"{samples['off']:10d} {samples['on']:10d}")
    if args.psnr:
        volume_psnr()


if __name__ == "__main__":
    main()
