"""What several test modules share: small random models, the fitted stand-in models, a scan-file writer, one
render helper, one CLI runner with its error-line check, and the Vulkan device this machine opens. Test modules
import from here (and the other non-test modules: screenshots, unit_kernel, fit_models), never from a test_*.py
(test_suite_rules.py checks)."""
from __future__ import annotations

import io
import os
import plistlib
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ngrender.model import Model
    from ngrender.vk.device import DeviceInfo

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

ENCODINGS = {
    # Small stand-ins of the three encodings the paper studies, with hashed and dense levels.
    "hash": {"otype": "HashGrid", "n_levels": 8, "n_features_per_level": 2, "log2_hashmap_size": 12,
             "base_resolution": 4, "per_level_scale": 1.6},
    "dense": {"otype": "DenseGrid", "n_levels": 4, "n_features_per_level": 2, "base_resolution": 8,
              "per_level_scale": 1.405},
    "lowres": {"otype": "DenseGrid", "n_levels": 2, "n_features_per_level": 8, "base_resolution": 16,
               "per_level_scale": 1.0},
    "simplex": {"otype": "SimplexHashGrid", "n_levels": 8, "n_features_per_level": 2, "log2_hashmap_size": 12,
                "base_resolution": 4, "per_level_scale": 1.6},
}
NETWORK = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 32,
           "n_hidden_layers": 2}

APPS = ["gigapixel", "sdf", "volume", "nerf"]

# The fitted stand-ins in tests/data (made by tests/fit_models.py): app -> file-name stem.
FITTED = {"sdf": "sdf_torus", "volume": "volume_cloud", "nerf": "nerf_blobs"}

INSTANT_NGP_BASE = {  # instant-ngp configs/nerf/base.json, as shipped
    "loss": {"otype": "Huber"},
    "optimizer": {"otype": "Ema", "decay": 0.95, "nested": {"otype": "ExponentialDecay", "decay_start": 20000,
                  "decay_interval": 10000, "decay_base": 0.33, "nested": {"otype": "Adam", "learning_rate": 1e-2,
                  "beta1": 0.9, "beta2": 0.99, "epsilon": 1e-15, "l2_reg": 1e-6}}},
    "encoding": {"otype": "HashGrid", "n_levels": 16, "n_features_per_level": 2, "log2_hashmap_size": 19,
                 "base_resolution": 16},
    "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None", "n_neurons": 64,
                "n_hidden_layers": 1},
}


# -- models ---------------------------------------------------------------------------------------------------
def make_model(encoding: str = "hash", seed: int = 0, dtype: str = "float16", app: str = "gigapixel",
               n_in: int = 2, n_out: int = 3, network: dict | None = None):
    """A random model whose weights are exactly representable in ``dtype`` (as if loaded from disk)."""
    from ngrender.encoding import grid_geometry
    from ngrender.model import Model, NetworkConfig

    rng = np.random.default_rng(seed)
    enc = ENCODINGS[encoding]
    net = network or NETWORK
    geom = grid_geometry(enc, n_in)
    grid = [rng.uniform(-1, 1, shape).astype(dtype).astype(np.float32) for shape in geom.level_shapes()]
    layers = [rng.normal(0, 1 / np.sqrt(i), (o, i)).astype(dtype).astype(np.float32)
              for o, i in NetworkConfig.from_json(net).layer_shapes(geom.n_output_dims, n_out)]
    return Model(app, n_in, n_out, enc, net, grid, layers, storage_dtype=dtype)


def fitted(app: str, encoding: str):
    """The 3D app's stand-in fitted to an analytic field (tests/data/<stem>_<encoding>.safetensors)."""
    from ngrender.model import load_model

    return load_model(DATA / f"{FITTED[app]}_{encoding}.safetensors")


def model_for(app: str, encoding: str, seed: int = 3):
    """gigapixel: a random model (any weights show whether two paths agree); 3D: the fitted stand-ins, so rays
    really march, hit, terminate early and skip empty space."""
    return make_model(encoding, seed=seed) if app == "gigapixel" else fitted(app, encoding)


# -- data files -----------------------------------------------------------------------------------------------
def cascaded(aabb_scale: int, side: int = 32, seed: int = 0) -> Model:
    """The blobs NeRF stretched over a box of aabb_scale; occupancy: every cascade's cells occupied where the
    source model's own grid is (cascade 0), plus random cells, so both kinds of skipping happen."""
    import dataclasses

    from ngrender.model import cascades_of, load_model

    model = load_model(DATA / "nerf_blobs_hash.safetensors")
    rng = np.random.default_rng(seed)
    base = model.occupancy
    k = side // base.shape[0] if side >= base.shape[0] else 1
    base = base.repeat(k, 0).repeat(k, 1).repeat(k, 2)[:side, :side, :side]
    levels = [base | (rng.random(base.shape) < 0.05)] + [
        (rng.random((side,) * 3) < 0.25).astype(np.uint8) for _ in range(cascades_of(aabb_scale) - 1)]
    occupancy = np.stack(levels) if aabb_scale > 1 else levels[0]
    return dataclasses.replace(model, aabb_scale=aabb_scale, occupancy=occupancy.astype(np.uint8))


def write_inv3(path: Path, hu: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> Path:
    """An InVesalius project as the Debian package ships it: a gzip tarball with main.plist + matrix.dat."""
    meta = {"matrix": {"dtype": "int16", "filename": "matrix.dat", "shape": list(hu.shape)},
            "spacing": list(spacing), "modality": "CT"}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("main.plist", plistlib.dumps(meta)), ("matrix.dat", hu.astype(np.int16).tobytes())):
            info = tarfile.TarInfo(f"tmpdir/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


# -- rendering ------------------------------------------------------------------------------------------------
class Rendered(NamedTuple):
    image: np.ndarray  # (height, width, 3) uint8
    stats: Any  # FrameStats
    view: Any  # the app's view the frame was drawn with


def render(device, model, variant: str = "baked", size: tuple[int, int] = (40, 32), view=None,
           settings: dict | None = None, tile: tuple[int, int] = (1024, 1024), **app_options) -> Rendered:
    """One frame of ``model`` on ``device``: ``view`` as given, else the app's view from ``settings``, else its
    default view. ``app_options`` go to create_app (pipeline, mlp_dispatch, stages, ...). The app and the
    renderer are destroyed before returning."""
    from ngrender.apps import create_app
    from ngrender.render import Renderer

    app = create_app(device, model, variant, max_tile=tile, **app_options)
    try:
        renderer = Renderer(device, app)
        try:
            if view is None:
                view = app.make_view(settings or {})
            image, stats = renderer.render(*size, view)
            return Rendered(image, stats, view)
        finally:
            renderer.destroy()
    finally:
        app.destroy()


# -- the command line -----------------------------------------------------------------------------------------
def run_cli(*args, check: bool = False, env: dict | None = None, cwd: Path = ROOT,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m ngrender ARGS`` in a fresh interpreter, as a user runs it: ``env`` is added to (or, for keys
    whose value is None, removed from) this process's environment, so PYTHONPATH and the suite's settings
    carry. ``returncode``, ``stdout``, ``stderr`` (text) come back; ``check`` fails the test on a non-zero
    exit, with its stderr."""
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = str(value)
    proc = subprocess.run([sys.executable, "-m", "ngrender", *map(str, args)], capture_output=True, text=True,
                          errors="replace", env=full_env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ngrender {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def run_in_process(*args) -> tuple[int, str, str]:
    """``ngrender ARGS`` in this process (faster than run_cli, for errors found before a device opens):
    (exit code, stdout, stderr)."""
    import contextlib

    from ngrender import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_one_error_line(result: subprocess.CompletedProcess | tuple[int, str, str], fragment: str) -> None:
    """A user error as the CLI reports it: a non-zero exit and stderr one ``ngrender: error: ...`` line that holds
    ``fragment`` (no traceback, no internal error). ``result``: run_cli's, or (code, stdout, stderr)."""
    if isinstance(result, subprocess.CompletedProcess):
        code, stderr = result.returncode, result.stderr
    else:
        code, _, stderr = result
    lines = stderr.strip().splitlines()
    assert code not in (0, None), stderr
    assert len(lines) == 1 and lines[0].startswith("ngrender: error:"), stderr
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
    assert fragment in stderr, stderr


# -- the device this machine opens ----------------------------------------------------------------------------
def default_device_info() -> DeviceInfo:
    """The DeviceInfo of the device ``Device()`` picks here (a discrete GPU if any, else lavapipe), so that
    assertions about device names and kernel variants hold on any machine."""
    from ngrender.vk.device import Device

    with Device(validation=False) as device:
        return device.info
