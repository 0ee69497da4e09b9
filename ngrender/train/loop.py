"""The training loop the trainers share: Adam with instant-ngp's settings, a progress bar with the loss and
samples/s, a time budget, periodic checkpoints, and resume from a checkpoint."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import validate
from ..errors import ConfigError
from ..fileio import atomic_output, regular_file

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def config_file(app: str, encoding: str, given: str | Path | None = None) -> Path:
    """The network config to train with: ``given``, else configs/<app>_<encoding>.json."""
    return Path(given) if given else CONFIG_DIR / f"{app}_{encoding}.json"


def psnr_db(mse: float) -> float:
    """PSNR in dB of a mean squared error of values in [0, 1]."""
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


@dataclass
class FitResult:
    """A trained model with its quality figures (``metrics``, also stored in ``model.extra``)."""

    model: object
    steps: int
    seconds: float
    metrics: dict
    losses: list[float]


@dataclass
class LoopState:
    step: int = 0
    elapsed: float = 0.0
    losses: list[float] = field(default_factory=list)


def adam(module, lr: float = 1e-2):
    """instant-ngp's optimiser for a TorchField."""
    return adam_groups(module.grid.parameters(), module.layers.parameters(), lr)


def adam_groups(grid_params, mlp_params, lr: float = 1e-2):
    """instant-ngp's optimiser: Adam (0.9, 0.99, eps 1e-15); weight decay 1e-6 on the MLP only."""
    import torch

    return torch.optim.Adam([{"params": list(grid_params), "weight_decay": 0.0},
                             {"params": list(mlp_params), "weight_decay": 1e-6}],
                            lr=lr, betas=(0.9, 0.99), eps=1e-15)


def save_checkpoint(path: Path, module, optimizer, state: LoopState, rng: np.random.Generator, meta: dict) -> None:
    import torch

    with atomic_output(path) as f:
        torch.save({"module": module.state_dict(), "optimizer": optimizer.state_dict(), "step": state.step,
                    "elapsed": state.elapsed, "losses": state.losses, "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "meta": meta}, f)


def load_checkpoint(path: Path, module, optimizer, rng: np.random.Generator, meta: dict) -> LoopState:
    """Restore a run; the checkpoint must come from the same trainer and configuration.

    ``weights_only=True``: torch's restricted unpickler admits only tensors, containers and plain values, so
    nothing in the file can run code (a crafted checkpoint is refused, not executed)."""
    import torch

    regular_file(path, "checkpoint")
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
        if "Weights only load failed" in str(exc):
            raise ConfigError(f"checkpoint {path} holds objects other than tensors and plain values; refused "
                              "(loading it could run code)") from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot read checkpoint {path}: {reason[:200]}") from None
    keys = ("module", "optimizer", "step", "elapsed", "losses", "rng", "torch_rng", "meta")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise ConfigError(f"{path} is not an ngrender checkpoint (it needs {', '.join(keys)})")
    if data.get("meta") != meta:
        raise ConfigError(f"checkpoint {path} is from another training set-up ({data.get('meta')}), not {meta}")
    try:
        module.load_state_dict(data["module"])
        optimizer.load_state_dict(data["optimizer"])
        rng.bit_generator.state = data["rng"]
        torch.set_rng_state(data["torch_rng"])
        return LoopState(validate.integer(data["step"], "step", 0), validate.number(data["elapsed"], "elapsed", 0),
                         [float(v) for v in data["losses"]])
    except (RuntimeError, ValueError, TypeError, KeyError, ConfigError) as exc:
        raise ConfigError(f"checkpoint {path} does not fit this model: {str(exc).splitlines()[0][:200]}") from None


def run(step_fn: Callable[[], float | tuple[float, int]], steps: int, batch: int, module, optimizer,
        rng: np.random.Generator, meta: dict, time_budget: float | None = None, checkpoint: Path | None = None,
        checkpoint_every: int = 500, resume: Path | None = None, progress: bool = True) -> LoopState:
    """Call ``step_fn`` (one optimiser step, returns its loss, or (loss, samples) when a step's sample count
    varies; otherwise it is ``batch``) until ``steps`` or the time budget (counted over resumed runs too); write
    ``checkpoint`` every ``checkpoint_every`` steps and at the end."""
    from tqdm import tqdm

    state = load_checkpoint(resume, module, optimizer, rng, meta) if resume else LoopState()
    start = time.perf_counter() - state.elapsed
    session_start, session_samples = time.perf_counter(), 0
    bar = tqdm(total=steps, initial=state.step, disable=not progress, unit="step", dynamic_ncols=True)
    first_step = state.step
    while state.step < steps:
        # the budget is checked after a step, so every run saves a model that has trained at least once
        if time_budget is not None and state.step > first_step and time.perf_counter() - start > time_budget:
            break
        out = step_fn()
        loss, samples = out if isinstance(out, tuple) else (out, batch)
        state.losses.append(float(loss))
        session_samples += samples
        state.step += 1
        state.elapsed = time.perf_counter() - start
        if state.step % 10 == 0 or state.step == steps:
            rate = session_samples / max(time.perf_counter() - session_start, 1e-9)
            bar.set_postfix(loss=f"{state.losses[-1]:.5f}", samples_s=f"{rate / 1e6:.3f}M")
        bar.update(1)
        if checkpoint is not None and state.step % checkpoint_every == 0:
            save_checkpoint(checkpoint, module, optimizer, state, rng, meta)
    bar.close()
    if checkpoint is not None:
        save_checkpoint(checkpoint, module, optimizer, state, rng, meta)
    return state
