"""Suite-wide setup: validation layer on, a fixed shader cache, per-test checks for validation messages and
leaked Vulkan objects, small random models, and the --regenerate-screenshots flag."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NGRENDER_VALIDATION", "1")
os.environ.setdefault("NGRENDER_CACHE_DIR", str(ROOT / ".cache" / "test"))
os.environ.pop("NGRENDER_DEVICE", None)

from ngrender.vk import live_objects  # noqa: E402
from ngrender.vk.device import Device  # noqa: E402

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


def pytest_addoption(parser):
    parser.addoption("--regenerate-screenshots", action="store_true",
                     help="rewrite tests/screenshots/*.png from this run (on lavapipe, the reference platform)")
    parser.addoption("--fuzz-long", action="store_true",
                     help="tests/test_fuzz.py: ten times as many mutants")


@pytest.fixture
def regenerate(request) -> bool:
    return request.config.getoption("--regenerate-screenshots")


@pytest.fixture(autouse=True)
def no_leaks():
    """Every test leaves no Vulkan object alive."""
    before = live_objects()
    yield
    assert live_objects() == before == {}, f"leaked Vulkan objects: {live_objects()}"


@pytest.fixture(scope="session")
def session_device():
    device = Device(validation=True)
    yield device
    device.destroy()


@pytest.fixture
def device():
    """A validation-enabled device; any validation message fails the test, including those the layer reports
    when the device is destroyed (objects left alive)."""
    dev = Device(validation=True)
    try:
        yield dev
        assert dev.take_messages() == []
    finally:
        dev.destroy()
    assert dev.take_messages() == []


@pytest.fixture(scope="module")
def xvfb():
    """A private X server for the viewer tests: -displayfd lets Xvfb pick a free display number itself and
    write it to the pipe once it accepts clients."""
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (./run.sh installs it)")
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


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


@pytest.fixture
def model_factory():
    return make_model
