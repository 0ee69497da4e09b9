"""The training loop the trainers share: Adam with instant-ngp's settings, a progress bar with the loss and
samples/s, a time budget, periodic checkpoints, and resume from a checkpoint; and the training device (``cpu``,
the default, or ``cuda`` / ``cuda:N`` with a CUDA build of torch).

Device rules the trainers follow: the modules are built on the CPU (so their initial weights come from the CPU
torch generator whatever the device) and then moved; the random samples are drawn on the CPU NumPy generator, so
a CPU and a CUDA run see the same samples; checkpoints hold CPU tensors only and load onto any device; the
trained weights come back to the CPU before the Model is made, so a model from a CUDA run has the same format."""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import validate
from ..errors import ConfigError, DeviceError
from ..fileio import atomic_output, regular_file
from ..reference.output import psnr_db  # noqa: F401 - the trainers' PSNR, one function for every image metric

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def config_file(app: str, preset: str, given: str | Path | None = None) -> Path:
    """The network config to train with: ``given``, else the named one, configs/<app>_<preset>.json."""
    return Path(given) if given else CONFIG_DIR / f"{app}_{preset}.json"


_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


def resolve_device(spec="cpu"):
    """``cpu`` (the default), ``cuda`` (the current CUDA device) or ``cuda:N`` as a torch.device, checked before
    any work: an unknown name, a torch without CUDA or an index past the last GPU is one clear DeviceError."""
    import torch

    text = str("cpu" if spec is None else spec).strip().lower()
    match = _DEVICE.fullmatch(text)
    if not match or (match[1] == "cpu" and match[2] is not None):
        raise DeviceError(f"--device {spec!r}: expected cpu, cuda or cuda:N (N the index of a CUDA GPU)")
    if match[1] == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if torch.version.cuda is None:
            raise DeviceError(f"--device {text}: the installed torch {torch.__version__} has no CUDA (a CPU-only "
                              "wheel; ngrender pins the CPU wheel): to train on an NVIDIA GPU, install a CUDA build of "
                              "torch (https://pytorch.org/get-started/locally/) on a machine with an NVIDIA GPU, or "
                              "use --device cpu")
        raise DeviceError(f"--device {text}: torch {torch.__version__} is built for CUDA {torch.version.cuda} but "
                          "finds no usable NVIDIA GPU (check the driver with nvidia-smi and CUDA_VISIBLE_DEVICES), or "
                          "use --device cpu")
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if match[2] is None else int(match[2])
    if index >= count:
        raise DeviceError(f"--device {text}: there {'is' if count == 1 else 'are'} only {count} CUDA "
                          f"device{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", index)


def device_label(device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    index = torch.cuda.current_device() if device.index is None else device.index
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def module_device(module):
    """The device of a module's parameters (and buffers); the CPU for one without any."""
    import torch

    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_cpu(value):
    """A state dict (nested dicts, lists, tuples) with every tensor on the CPU: a checkpoint's format is the
    same whatever device trained it."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return type(value)((k, to_cpu(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


@dataclass
class FitResult:
    """A trained model with its quality figures (``metrics``, also stored in ``model.extra``)."""

    model: object
    steps: int
    seconds: float
    metrics: dict
    losses: list[float]
    device: str = "cpu"  # where it trained, in words: cpu, or cuda:0 (NVIDIA H200)


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


def save_checkpoint(path: Path, module, optimizer, state: LoopState, rng: np.random.Generator, meta: dict,
                    device=None) -> None:
    """All tensors on the CPU (the torch RNG state is the CPU generator's); a CUDA run also stores its CUDA
    generator's state (a CPU byte tensor) under ``torch_cuda_rng``."""
    import torch

    device = module_device(module) if device is None else torch.device(device)
    data = {"module": to_cpu(module.state_dict()), "optimizer": to_cpu(optimizer.state_dict()), "step": state.step,
            "elapsed": state.elapsed, "losses": state.losses, "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(), "meta": meta}
    if device.type == "cuda":
        data["torch_cuda_rng"] = torch.cuda.get_rng_state(device)
    with atomic_output(path) as f:
        torch.save(data, f)


def load_checkpoint(path: Path, module, optimizer, rng: np.random.Generator, meta: dict,
                    device=None) -> LoopState:
    """Restore a run; the checkpoint must come from the same trainer and configuration, from any device: it is
    read onto the CPU and copied into the module's and the optimiser's tensors wherever they live.

    ``weights_only=True``: torch's restricted unpickler admits only tensors, containers and plain values, so
    nothing in the file can run code (a crafted checkpoint is refused, not executed)."""
    import torch

    device = module_device(module) if device is None else torch.device(device)

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
        if device.type == "cuda" and "torch_cuda_rng" in data:
            torch.cuda.set_rng_state(data["torch_cuda_rng"], device)
        return LoopState(validate.integer(data["step"], "step", 0), validate.number(data["elapsed"], "elapsed", 0),
                         [float(v) for v in data["losses"]])
    except (RuntimeError, ValueError, TypeError, KeyError, ConfigError) as exc:
        raise ConfigError(f"checkpoint {path} does not fit this model: {str(exc).splitlines()[0][:200]}") from None


def run(step_fn: Callable[[], float | tuple[float, int]], steps: int, batch: int, module, optimizer,
        rng: np.random.Generator, meta: dict, time_budget: float | None = None, checkpoint: Path | None = None,
        checkpoint_every: int = 500, resume: Path | None = None, progress: bool = True, device=None) -> LoopState:
    """Call ``step_fn`` (one optimiser step, returns its loss, or (loss, samples) when a step's sample count
    varies; otherwise it is ``batch``) until ``steps`` or the time budget (counted over resumed runs too); write
    ``checkpoint`` every ``checkpoint_every`` steps and at the end. ``device``: where ``module`` lives (default:
    where its parameters are); the progress bar names it."""
    import torch

    from ..progress import Progress

    device = module_device(module) if device is None else torch.device(device)
    state = load_checkpoint(resume, module, optimizer, rng, meta, device) if resume else LoopState()
    start = time.perf_counter() - state.elapsed
    session_start, session_samples = time.perf_counter(), 0
    bar = Progress(steps, "steps", f"train ({device_label(device)})", initial=state.step, enabled=progress)
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
            figures = {"loss": f"{state.losses[-1]:.5f}", "samples_s": f"{rate / 1e6:.3f}M"}
            if time_budget is not None:  # the run ends at the budget if that comes before the last step
                figures["budget_left"] = f"{max(time_budget - state.elapsed, 0):.0f}s"
            bar.set_postfix(**figures)
        bar.update(1)
        if checkpoint is not None and state.step % checkpoint_every == 0:
            save_checkpoint(checkpoint, module, optimizer, state, rng, meta, device)
    bar.close()
    if checkpoint is not None:
        save_checkpoint(checkpoint, module, optimizer, state, rng, meta, device)
    return state
