"""Progress of long commands: a tqdm bar on a terminal, periodic lines with rate and ETA in a log, and a
command run off a terminal really prints them (a training run used to be silent until it ended)."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli
from ngrender.progress import Progress


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a console's stderr does."""

    def isatty(self) -> bool:
        return True


LINE = re.compile(r"^video: (\d+)/48 frames \((\d+)%\)(, [\d.]+ frames/s, (ETA|took) \d+ s)?$")


def test_a_log_gets_periodic_lines_with_rate_eta_and_a_final_line():
    log = io.StringIO()
    with Progress(48, "frames", "video", initial=12, stream=log, interval=0) as bar:
        for _ in range(36):
            bar.update()
    lines = log.getvalue().splitlines()
    assert len(lines) == 36, lines  # 35 while running (every update at interval 0), one final
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].startswith("video: 13/48 frames (27%)") and "ETA" in lines[0]
    assert lines[-1].startswith("video: 48/48 frames (100%)") and "took" in lines[-1]
    assert "\r" not in log.getvalue()


def test_the_interval_spaces_the_lines_and_the_env_sets_it(monkeypatch):
    log = io.StringIO()
    with Progress(1000, "steps", "train (cpu)", stream=log, interval=3600) as bar:
        bar.set_postfix(loss="0.00123")
        bar.update(500)
    assert log.getvalue().splitlines() == [log.getvalue().strip()]  # only the final line within the hour
    assert log.getvalue().startswith("train (cpu): 500/1000 steps (50%), ") and log.getvalue().strip().endswith(
        "loss=0.00123")
    monkeypatch.setenv("NGRENDER_PROGRESS_INTERVAL", "0")
    log = io.StringIO()
    with Progress(3, "rows", "render", stream=log) as bar:
        bar.update()
        bar.update()
    assert len(log.getvalue().splitlines()) == 3


def test_a_terminal_gets_a_tqdm_bar_and_disabled_shows_nothing():
    tty = Terminal()
    with Progress(10, "frames", "video", stream=tty, interval=0) as bar:
        bar.update(4)
    text = tty.getvalue()
    assert "\r" in text and "4/10" in text and "frames/s" in text  # tqdm redraws one line in place
    quiet = io.StringIO()
    with Progress(10, "frames", "video", stream=quiet, interval=0, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_a_failure_ends_without_a_final_line():
    """The error message stays the last line (the CLI's one ``ngrender: error:`` line)."""
    log = io.StringIO()
    with pytest.raises(RuntimeError):
        with Progress(10, "frames", "video", stream=log, interval=3600) as bar:
            bar.update()
            raise RuntimeError("disk full")
    assert log.getvalue() == ""


def test_train_off_a_terminal_prints_progress_lines(tmp_path):
    """`train` with stderr captured (a pipe, as in a batch job): periodic lines with steps/s, then the result."""
    pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU); ./run.sh installs it")
    y, x = np.mgrid[0:32, 0:32]
    Image.fromarray(np.stack([x * 8, y * 8, (x * y) % 256], -1).astype(np.uint8)).save(tmp_path / "img.png")
    (tmp_path / "cfg.json").write_text(json.dumps({
        "encoding": {"otype": "HashGrid", "n_levels": 4, "log2_hashmap_size": 8, "base_resolution": 4},
        "network": {"otype": "FullyFusedMLP", "n_neurons": 16, "n_hidden_layers": 1}}))
    proc = run_cli("train", "gigapixel", "--image", tmp_path / "img.png", "--config", tmp_path / "cfg.json",
                   "--steps", "20", "--batch", "256", "--out", tmp_path / "m.safetensors",
                   env={"NGRENDER_PROGRESS_INTERVAL": "0"})
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("train (cpu): ")]
    assert len(lines) == 20, proc.stderr  # 19 periodic lines at interval 0, one final
    assert "steps/s, ETA" in lines[0] and lines[-1].startswith("train (cpu): 20/20 steps (100%)")
    assert "loss=" in lines[-1]
