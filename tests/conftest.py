"""Suite-wide setup: validation layer on, a fixed shader cache, per-test checks for validation messages and
leaked Vulkan objects, the fixtures several modules use (small random models, Xvfb, the tiny NeRF data set), and
the --regenerate-screenshots flag. Shared plain functions live in helpers.py."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("NGRENDER_VALIDATION", "1")
os.environ.setdefault("NGRENDER_CACHE_DIR", str(ROOT / ".cache" / "test"))
os.environ.pop("NGRENDER_DEVICE", None)

from ngrender.vk import live_objects  # noqa: E402
from ngrender.vk.device import Device  # noqa: E402
from helpers import make_model  # noqa: E402


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
    from ngrender.viewer.x11 import start_xvfb

    proc, display = start_xvfb()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    proc.terminate()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture
def model_factory():
    """helpers.make_model: a random model whose weights are exactly representable in its storage dtype."""
    return make_model


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    """A rendered NeRF data set of a two-box object: 8 training views at 32 x 32 (and 2 val, 2 test)."""
    trimesh = pytest.importorskip("trimesh", reason="training needs the [train] extra; ./run.sh installs it")
    pytest.importorskip("mitsuba", reason="the test data is rendered with Mitsuba 3 (extra [train]); ./run.sh "
                                          "installs it")
    from ngrender.data import nerf_from_mesh as nfm

    folder = tmp_path_factory.mktemp("nerf")
    a = trimesh.creation.box(extents=(2.0, 0.6, 0.6))
    b = trimesh.creation.box(extents=(0.6, 1.4, 0.6))
    b.apply_translation((0.7, 0.7, 0.0))
    mesh = folder / "object.ply"
    trimesh.util.concatenate([a, b]).export(mesh)
    nfm.make_dataset(str(mesh), folder / "set", views=8, size=32, spp=4, progress=False)
    return folder / "set"
