"""The head CT's ring banding before and after the jittered march start: docs/volume_banding.png.

Renders the default volume scene at 512x512 three ways — jitter off (fixed steps from the box entry: the old
default), jitter on (seed 0: the default now) and the mean of seeds 0..7 (the viewer's accumulation) — and saves
the same crop of each side by side, magnified, left to right in that order.

    python scripts/banding_crop.py [--scene scenes/volume_head.json] [--out docs/volume_banding.png]
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ngrender.fileio import write_bytes
from ngrender.session import RenderSession

ROOT = Path(__file__).resolve().parents[1]
SIZE = 512
CROP = (176, 136, 336, 296)  # x0, y0, x1, y1 of the 512x512 frame: the skull's rim, where the rings show
ZOOM = 2
SEEDS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default=str(ROOT / "scenes" / "volume_head.json"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "volume_banding.png"))
    args = parser.parse_args()
    with RenderSession.from_scene(args.scene) as session:
        def frame(**overrides) -> np.ndarray:
            return session.renderer.render(SIZE, SIZE, session.view(**overrides))[0].astype(np.float64)

        fixed = frame(jitter=False)
        seeds = [frame(jitter=True, seed=s) for s in range(SEEDS)]
    x0, y0, x1, y1 = CROP
    panels = [np.rint(image[y0:y1, x0:x1]).astype(np.uint8) for image in (fixed, seeds[0], np.mean(seeds, axis=0))]
    gap = np.full((y1 - y0, 4, 3), 255, np.uint8)
    row = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    row = row.repeat(ZOOM, axis=0).repeat(ZOOM, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(row).save(buffer, format="PNG")
    write_bytes(args.out, buffer.getvalue())
    print(f"{args.out}: crop {CROP} of {SIZE}x{SIZE}, x{ZOOM}: jitter off | jitter on (seed 0) | mean of seeds "
          f"0..{SEEDS - 1}")


if __name__ == "__main__":
    main()
