"""Crash safety with real processes and real files: ``python main.py ...`` killed (SIGKILL, SIGTERM, SIGINT) at
several points of a render or a training run, two renders racing for one output, cold compiles racing for one
SPIR-V cache, damaged cache entries, and outputs that are symlinks or special files.

No mocks: every case runs the CLI as a subprocess. Kill points come from polling the files the process writes
(its temporary file appearing, then growing) and, where strace can inject a signal, from a syscall: SIGKILL on
entering fsync() stops a write after its last byte but before the rename, deterministically.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ngrender.shaders import pack_entry, unpack_entry

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "main.py"
SCENES = ROOT / "scenes"
GIGAPIXEL = SCENES / "gigapixel.json"
SDF = SCENES / "sdf_bunny.json"
# a frame that takes seconds on lavapipe: 64 tiles, a strip of 8 tiles written to the PNG at a time
BIG = ["--width", "4096", "--height", "4096", "--tile", "512x512"]
SMALL = ["--width", "16", "--height", "16"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY_CONFIG = {"encoding": {"otype": "HashGrid", "n_levels": 4, "log2_hashmap_size": 8, "base_resolution": 4},
               "network": {"otype": "FullyFusedMLP", "n_neurons": 16, "n_hidden_layers": 1}}


# -- helpers -------------------------------------------------------------------------------------------------
def _child_setup() -> None:
    # A shell's background job inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # give the child the default disposition, as a terminal's foreground process has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args, prefix: list[str] | None = None) -> list[str]:
    return [*(prefix or []), sys.executable, str(MAIN), *[str(a) for a in args]]


def start(args: list[str], logs: Path, env: dict | None = None) -> subprocess.Popen:
    """A subprocess with stdout/stderr going to files under ``logs`` (no pipe can fill up and stall it)."""
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / "stdout", "wb")
    err = open(logs / "stderr", "wb")
    try:
        proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=ROOT,
                                env=env if env is not None else os.environ.copy(), preexec_fn=_child_setup)
    finally:
        out.close()
        err.close()
    proc.logs = logs
    return proc


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    out = (proc.logs / "stdout").read_text(errors="replace")
    err = (proc.logs / "stderr").read_text(errors="replace")
    assert "Traceback" not in err, err
    return code, out, err


_runs = 0


def run(args: list[str], tmp_path: Path, env: dict | None = None, timeout: float = 120) -> tuple[int, str, str]:
    global _runs
    _runs += 1
    return finish(start(args, tmp_path / "logs" / f"run{_runs}", env), timeout)


def wait_for(predicate, proc: subprocess.Popen | None, what: str, timeout: float = 90, interval: float = 0.005):
    """Poll until ``predicate()`` is truthy; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            err = (proc.logs / "stderr").read_text(errors="replace")
            raise AssertionError(f"process ended (exit {proc.returncode}) before {what}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def temps(target: Path) -> list[Path]:
    """AtomicFile's temporary files for ``target`` (``.NAME.XXXX.tmp`` beside it)."""
    folder = target.parent
    return sorted(p for p in folder.iterdir() if p.name.startswith(f".{target.name}.") and p.name.endswith(".tmp"))


def temp_size(target: Path) -> int:
    """Bytes on disk of the (one) temporary file, -1 while there is none."""
    found = temps(target)
    if not found:
        return -1
    try:
        return found[0].stat().st_size
    except FileNotFoundError:
        return -1


def check_png(data: bytes, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """One complete PNG: signature, every chunk's CRC, IHDR first, IEND last and nothing after it; decodes."""
    assert data[:8] == PNG_SIGNATURE, data[:16]
    pos, kinds = 8, []
    while pos < len(data):
        assert pos + 12 <= len(data), f"truncated chunk header at {pos} of {len(data)}"
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        assert len(body) == length and pos + 12 + length <= len(data), f"truncated {kind} chunk"
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, f"bad CRC in {kind} chunk at {pos}"
        kinds.append(kind)
        pos += 12 + length
        if kind == b"IEND":
            break
    assert kinds and kinds[0] == b"IHDR" and kinds[-1] == b"IEND", kinds[:3] + kinds[-3:]
    assert pos == len(data), f"{len(data) - pos} bytes after IEND"
    width, height = struct.unpack(">II", data[16:24])
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.size == (width, height)
    if size is not None:
        assert (width, height) == size
    return width, height


def old_png(path: Path) -> bytes:
    """A pre-existing output the user cares about: a PNG no render makes."""
    rng = np.random.default_rng(7)
    Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)).save(path)
    return path.read_bytes()


def fresh_cache_env(tmp_path: Path, name: str = "cache", mesa: Path | None = None) -> dict:
    env = os.environ.copy()
    env["NGRENDER_CACHE_DIR"] = str(tmp_path / name)
    env["MESA_SHADER_CACHE_DIR"] = str(mesa or tmp_path / f"{name}-mesa")
    return env


def cache_entries(cache: Path) -> list[Path]:
    return sorted((cache / "spirv").glob("*.spv"))


def assert_cache_clean(cache: Path) -> dict[str, bytes]:
    """Every entry verifies and nothing else (no temporary file) is left in the SPIR-V folder."""
    folder = cache / "spirv"
    names = sorted(p.name for p in folder.iterdir())
    assert names and all(n.endswith(".spv") and not n.startswith(".") for n in names), names
    spirv = {}
    for name in names:
        data = (folder / name).read_bytes()
        payload = unpack_entry(data)
        assert payload is not None, f"cache entry {name} does not verify"
        # the documented layout, checked independently of the code under test
        magic, length, digest = struct.unpack_from("<8sQ32s", data)
        assert magic == b"NGRSPV1\0" and length == len(data) - 48 and hashlib.sha256(data[48:]).digest() == digest
        assert payload == data[48:]
        assert payload[:4] == struct.pack("<I", 0x07230203), f"{name} does not hold SPIR-V"
        spirv[name] = payload
    return spirv


@pytest.fixture(scope="module")
def strace() -> str:
    """strace, if it can inject SIGKILL into a child here (ptrace allowed)."""
    exe = shutil.which("strace")
    if exe is None:
        pytest.skip("strace is not installed: no syscall-exact kill points")
    probe = subprocess.run([exe, "-qqq", "-o", "/dev/null", "-e", "trace=fsync", "-e",
                            "inject=fsync:signal=SIGKILL", sys.executable, "-c", "import os; os.fsync(1)"],
                           capture_output=True, timeout=60)
    if probe.returncode not in (-9, 137):
        pytest.skip(f"strace cannot inject signals here (exit {probe.returncode}: {probe.stderr[-200:]!r})")
    return exe


def kill_at_fsync(strace: str, nth: int = 1) -> list[str]:
    """Prefix for a command: SIGKILL it on entering its nth fsync() (its main thread's; the write is complete,
    the rename not done)."""
    return [strace, "-qqq", "-o", "/dev/null", "-e", "trace=fsync", "-e",
            f"inject=fsync:signal=SIGKILL:when={nth}"]


# -- 1. a render killed part-way ------------------------------------------------------------------------------
KILL_POINTS = ("early", "temp-created", "strips-written")


def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _kill_render_at(proc: subprocess.Popen, out: Path, point: str, sig: int) -> None:
    """Send ``sig`` at a point of the render, found by watching its temporary file (or, were the output written
    in place, the output itself: then the kill comes as early and the test fails on the damage, not on a wait)."""
    target = Path(os.path.realpath(out))
    before = _stat_key(target)

    def written() -> int:
        size = max(temp_size(target), temp_size(out))  # beside the link too: a writer that replaced the link
        now = _stat_key(target)
        return size if size >= 0 or now == before else now[1]

    if point == "early":
        time.sleep(0.2)  # starting up: imports, device, pipeline
    elif point == "temp-created":
        wait_for(lambda: written() >= 0, proc, "the temporary PNG to appear")
    else:  # the first strip is on disk and the next ones are being rendered
        wait_for(lambda: written() > 0, proc, "the temporary PNG to grow")
    assert proc.poll() is None, "the render finished before it could be killed: use a bigger frame"
    proc.send_signal(sig)


@pytest.mark.parametrize("existing", [True, False], ids=["existing-out", "no-out"])
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_render_leaves_out_untouched(tmp_path, point, existing):
    out = tmp_path / "frame.png"
    before = old_png(out) if existing else None
    proc = start(cli("render", GIGAPIXEL, "--out", out, *BIG), tmp_path / "killed")
    _kill_render_at(proc, out, point, signal.SIGKILL)
    code, _, _ = finish(proc)
    assert code == -signal.SIGKILL
    if existing:
        assert out.read_bytes() == before, "SIGKILL changed the existing output"
    else:
        assert not out.exists(), "SIGKILL left a file at --out"
    # nothing but the output (if any) and the killed run's temporary file beside it
    assert {p for p in tmp_path.iterdir() if p.is_file()} - set(temps(out)) == ({out} if existing else set())

    code, _, err = run(cli("render", GIGAPIXEL, "--out", out, "--width", "64", "--height", "64"), tmp_path)
    assert code == 0, err
    check_png(out.read_bytes(), (64, 64))


def test_sigkill_render_after_last_byte_before_rename(tmp_path, strace):
    """Killed on entering fsync(): the temporary file holds the whole PNG, the rename has not happened."""
    args = ["render", GIGAPIXEL, "--width", "48", "--height", "32"]
    code, _, err = run(cli(*args, "--out", tmp_path / "warm.png"), tmp_path)  # SPIR-V cached: no other fsync
    assert code == 0, err
    out = tmp_path / "frame.png"
    before = old_png(out)
    code, _, _ = run(cli(*args, "--out", out, prefix=kill_at_fsync(strace)), tmp_path)
    assert code == -signal.SIGKILL
    assert out.read_bytes() == before
    (leftover,) = temps(out)
    assert leftover.read_bytes() == (tmp_path / "warm.png").read_bytes()  # complete, just not in place

    fresh = tmp_path / "new.png"
    code, _, _ = run(cli(*args, "--out", fresh, prefix=kill_at_fsync(strace)), tmp_path)
    assert code == -signal.SIGKILL
    assert not fresh.exists()


def test_sigterm_render_leaves_out_untouched(tmp_path):
    out = tmp_path / "frame.png"
    before = old_png(out)
    proc = start(cli("render", GIGAPIXEL, "--out", out, *BIG), tmp_path / "term")
    _kill_render_at(proc, out, "strips-written", signal.SIGTERM)
    code, _, err = finish(proc)
    assert code != 0
    assert code == -signal.SIGTERM or err.strip().splitlines()[-1].startswith("ngrender:"), (code, err)
    assert out.read_bytes() == before


def test_sigterm_render_removes_its_temporary_file(tmp_path):
    """SIGTERM (kill, timeout(1), systemd) unwinds like Ctrl-C: exit 143, one line, the partial file dropped."""
    out = tmp_path / "frame.png"
    proc = start(cli("render", GIGAPIXEL, "--out", out, *BIG), tmp_path / "term")
    _kill_render_at(proc, out, "strips-written", signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 143 and err.strip().splitlines() == ["ngrender: terminated"], (code, err)
    assert not out.exists() and temps(out) == []


@pytest.mark.parametrize("kind", ["plain", "symlink", "devnull"])
def test_sigint_render(tmp_path, kind):
    """Ctrl-C: exit 130, one 'ngrender: interrupted' line, the temporary file gone, the old output intact."""
    real = tmp_path / "real" / "frame.png"
    real.parent.mkdir()
    out, before = real, None
    if kind == "plain":
        before = old_png(real)
    elif kind == "symlink":  # the link in another folder than its target: the temp file goes beside the target
        before = old_png(real)
        out = tmp_path / "links" / "frame.png"
        out.parent.mkdir()
        out.symlink_to(real)
    else:
        out = Path(os.devnull)
    proc = start(cli("render", GIGAPIXEL, "--out", out, *BIG), tmp_path / "int")
    if kind == "devnull":
        time.sleep(2.5)  # nothing to poll: well into the render
    else:
        _kill_render_at(proc, out, "strips-written", signal.SIGINT)
    if kind == "devnull":
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
    code, stdout, err = finish(proc)
    assert code == 130, err
    assert err.strip().splitlines() == ["ngrender: interrupted"], err
    assert stdout == ""
    if kind == "devnull":
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null is no longer a character device"
        return
    assert real.read_bytes() == before
    assert temps(real) == [] and sorted(p.name for p in real.parent.iterdir()) == ["frame.png"]
    if kind == "symlink":
        assert out.is_symlink() and os.readlink(out) == str(real)
        assert sorted(p.name for p in out.parent.iterdir()) == ["frame.png"]


def test_sigint_while_starting_up(tmp_path, strace):
    """SIGINT delivered, via strace, when the interpreter looks up ngrender/render.py during its imports."""
    out = tmp_path / "frame.png"
    prefix = [strace, "-qqq", "-o", "/dev/null", "-P", str(ROOT / "ngrender" / "render.py"), "-e", "trace=%file",
              "-e", "inject=%file:signal=SIGINT:when=1"]
    proc = start(cli("render", GIGAPIXEL, "--out", out, *SMALL, prefix=prefix), tmp_path / "startup")
    code = proc.wait(120)
    err = (proc.logs / "stderr").read_text(errors="replace")
    if code == 0:
        pytest.skip("the import of ngrender/render.py was not seen: no SIGINT sent")
    assert not out.exists() and temps(out) == []
    assert code == 130 and "Traceback" not in err, (code, err[-400:])
    assert err.strip().splitlines() == ["ngrender: interrupted"], err


# -- 2. two renders to one path -------------------------------------------------------------------------------
def test_two_renders_race_for_one_out(tmp_path):
    out = tmp_path / "frame.png"
    frame = ["--width", "1024", "--height", "1024", "--tile", "256x256"]
    windows = ["0,0,0.5,0.5", "0.25,0.5,1,1"]
    procs = [start(cli("render", GIGAPIXEL, "--out", out, "--window", w, *frame), tmp_path / f"race{i}")
             for i, w in enumerate(windows)]
    overlapped = False
    while any(p.poll() is None for p in procs):
        overlapped |= len(temps(out)) == 2
        time.sleep(0.01)
    for proc in procs:
        code, _, err = finish(proc)
        assert code == 0, err
    final = out.read_bytes()
    check_png(final, (1024, 1024))
    assert temps(out) == []
    refs = []
    for i, w in enumerate(windows):
        ref = tmp_path / f"ref{i}.png"
        code, _, err = run(cli("render", GIGAPIXEL, "--out", ref, "--window", w, *frame), tmp_path)
        assert code == 0, err
        refs.append(ref.read_bytes())
    assert refs[0] != refs[1]
    assert final in refs, "the raced output is neither render"
    print(f"both temporary files coexisted: {overlapped}")


# -- 3. cold compiles into one cache --------------------------------------------------------------------------
def test_cold_compiles_share_one_cache(tmp_path):
    env = fresh_cache_env(tmp_path)
    scenes = ["gigapixel", "gigapixel", "gigapixel_dense", "sdf_bunny", "volume_head"]  # one pair: the same entry
    procs = [start(cli("render", SCENES / f"{s}.json", "--out", tmp_path / f"{i}-{s}.png", *SMALL),
                   tmp_path / f"cold{i}", env) for i, s in enumerate(scenes)]
    for proc in procs:
        code, _, err = finish(proc)
        assert code == 0, err
    for i, s in enumerate(scenes):
        check_png((tmp_path / f"{i}-{s}.png").read_bytes(), (16, 16))
    assert (tmp_path / "0-gigapixel.png").read_bytes() == (tmp_path / "1-gigapixel.png").read_bytes()
    spirv = assert_cache_clean(tmp_path / "cache")
    assert len(spirv) >= len(set(scenes)), sorted(spirv)
    # the entries the race left are the ones a warm run uses, with the same result
    code, _, err = run(cli("render", GIGAPIXEL, "--out", tmp_path / "warm.png", *SMALL), tmp_path, env)
    assert code == 0, err
    assert (tmp_path / "warm.png").read_bytes() == (tmp_path / "0-gigapixel.png").read_bytes()
    assert assert_cache_clean(tmp_path / "cache") == spirv


# -- 4. damaged cache entries ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clean_cache(tmp_path_factory):
    """A gigapixel render with a fresh cache: (cache folder, the PNG, Mesa's cache folder to share)."""
    base = tmp_path_factory.mktemp("clean-cache")
    env = fresh_cache_env(base)
    code, _, err = run(cli("render", GIGAPIXEL, "--out", base / "clean.png", *SMALL), base, env)
    assert code == 0, err
    assert len(assert_cache_clean(base / "cache")) >= 1
    return base / "cache", (base / "clean.png").read_bytes(), base / "cache-mesa"


def _damage(kind: str, entry: bytes, rng: np.random.Generator) -> bytes:
    spirv = unpack_entry(entry)
    if kind == "truncated":
        return entry[:len(entry) // 2]
    if kind == "random-bytes":
        return rng.integers(0, 256, len(entry), dtype=np.uint8).tobytes()
    if kind == "wrong-hash":
        head = pack_entry(spirv)[:16]
        return head + bytes(32) + spirv
    if kind == "wrong-length":
        return pack_entry(spirv) + b"\0\0\0\0"
    if kind == "zero-length":
        return b""
    if kind == "old-format":  # what the cache held before entries had a header: the bare SPIR-V
        return spirv
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["truncated", "random-bytes", "wrong-hash", "wrong-length", "zero-length",
                                  "old-format"])
def test_damaged_cache_entry_is_replaced(tmp_path, clean_cache, kind):
    cache, clean_png, mesa = clean_cache
    shutil.copytree(cache / "spirv", tmp_path / "cache" / "spirv")
    good = {p.name: p.read_bytes() for p in cache_entries(tmp_path / "cache")}
    rng = np.random.default_rng(1)
    for name, data in good.items():
        (tmp_path / "cache" / "spirv" / name).write_bytes(_damage(kind, data, rng))
    env = fresh_cache_env(tmp_path, mesa=mesa)
    code, _, err = run(cli("render", GIGAPIXEL, "--out", tmp_path / "out.png", *SMALL), tmp_path, env)
    assert code == 0, err
    assert (tmp_path / "out.png").read_bytes() == clean_png
    spirv = assert_cache_clean(tmp_path / "cache")
    assert spirv == {name: unpack_entry(data) for name, data in good.items()}, "the bad entry was not replaced"


def test_cache_entry_that_is_a_folder(tmp_path, clean_cache):
    cache, clean_png, mesa = clean_cache
    for entry in cache_entries(cache):
        (tmp_path / "cache" / "spirv" / entry.name).mkdir(parents=True)
    env = fresh_cache_env(tmp_path, mesa=mesa)
    code, _, err = run(cli("render", GIGAPIXEL, "--out", tmp_path / "out.png", *SMALL), tmp_path, env)
    assert code == 0, err
    assert (tmp_path / "out.png").read_bytes() == clean_png


def test_cache_dir_is_a_regular_file(tmp_path):
    env = fresh_cache_env(tmp_path)
    (tmp_path / "cache").write_bytes(b"not a folder")
    out = tmp_path / "out.png"
    code, _, err = run(cli("render", GIGAPIXEL, "--out", out, *SMALL), tmp_path, env)
    if code == 0:
        check_png(out.read_bytes(), (16, 16))
    else:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ngrender: error:") and "internal error" not in err, err
        assert "NGRENDER_CACHE_DIR" in err, err
        assert not out.exists()
    assert (tmp_path / "cache").read_bytes() == b"not a folder"


@pytest.mark.parametrize("contents", ["empty", "damaged-entry"])
def test_read_only_cache_dir(tmp_path, clean_cache, contents):
    """A cache the user cannot write: the render works (compiling each time), nothing in it changes. As root,
    mode 0o555 stops nothing, so the render runs as the unprivileged user nobody (setpriv)."""
    cache, clean_png, _ = clean_cache
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, where chmod 0o555 does not stop writes, and no setpriv to drop root")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        # pytest's tmp_path is under a 0o700 folder of root's: the unprivileged run needs a folder it can reach
        base = Path(tempfile.mkdtemp(prefix="ngr-ro-", dir="/tmp"))
        os.chmod(base, 0o755)
    else:
        base = tmp_path
    try:
        ro, out_dir = base / "cache", base / "out"
        (ro / "spirv").mkdir(parents=True)
        out_dir.mkdir()
        if contents == "damaged-entry":
            for entry in cache_entries(cache):
                (ro / "spirv" / entry.name).write_bytes(entry.read_bytes()[:40])
        if prefix:
            os.chown(out_dir, 65534, 65534)
        os.chmod(ro / "spirv", 0o555)
        os.chmod(ro, 0o555)
        snapshot = {p.name: p.read_bytes() for p in (ro / "spirv").iterdir()}
        env = os.environ.copy()
        env["NGRENDER_CACHE_DIR"] = str(ro)
        env.pop("MESA_SHADER_CACHE_DIR", None)  # ngrender's own choice, cache/mesa, cannot be made either
        env["HOME"] = str(out_dir)
        out = out_dir / "out.png"
        code, _, err = run(cli("render", GIGAPIXEL, "--out", out, *SMALL, prefix=prefix), tmp_path, env)
        if prefix and code != 0 and "ngrender:" not in err:
            pytest.skip(f"cannot run ngrender as nobody here: {err[-300:]}")
        if code == 0:
            assert out.read_bytes() == clean_png
        else:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("ngrender: error:") and "internal" not in err, err
        assert sorted(p.name for p in ro.iterdir()) == ["spirv"]
        assert {p.name: p.read_bytes() for p in (ro / "spirv").iterdir()} == snapshot
    finally:
        if base != tmp_path:
            os.chmod(base / "cache", 0o755)
            if (base / "cache" / "spirv").exists():
                os.chmod(base / "cache" / "spirv", 0o755)
            shutil.rmtree(base, ignore_errors=True)


# -- 5. training killed part-way ------------------------------------------------------------------------------
@pytest.fixture
def tiny_training(tmp_path):
    """A 64x64 image, a tiny config, and the train command line writing model.{safetensors,ckpt,json}."""
    y, x = np.mgrid[0:64, 0:64]
    image = np.stack([x * 4, y * 4, (x * y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "image.png")
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    out = tmp_path / "model.safetensors"
    args = ["train", "gigapixel", "--image", tmp_path / "image.png", "--config", tmp_path / "config.json",
            "--out", out, "--batch", "256"]
    return args, out


def _finals(out: Path) -> dict[str, bool]:
    return {p.name: p.exists() for p in (out, out.with_suffix(".ckpt"), out.with_suffix(".json"))}


def _load_checkpoint(path: Path) -> dict:
    import torch

    data = torch.load(path, weights_only=True, map_location="cpu")
    assert {"module", "optimizer", "step", "elapsed", "losses", "rng", "torch_rng", "meta"} <= set(data)
    assert data["step"] > 0 and len(data["losses"]) == data["step"]
    return data


def _resume(tmp_path: Path, args: list, out: Path, step: int) -> None:
    """``--resume`` the checkpoint a little further: all three outputs, the checkpoint at the new step."""
    ckpt = out.with_suffix(".ckpt")
    code, stdout, err = run(cli(*args, "--resume", ckpt, "--steps", step + 20), tmp_path)
    assert code == 0, err
    assert f"{step + 20} steps" in stdout, stdout
    assert all(_finals(out).values())
    assert _load_checkpoint(ckpt)["step"] == step + 20
    from ngrender.model import load_model
    assert load_model(out).extra["train_steps"] == step + 20
    json.loads(out.with_suffix(".json").read_text())


def test_sigkill_training(tmp_path, tiny_training):
    args, out = tiny_training
    ckpt = out.with_suffix(".ckpt")
    long_run = [*args, "--steps", "100000", "--time-budget", "30"]

    # killed while starting up: nothing under any of the final names
    proc = start(cli(*long_run), tmp_path / "early")
    time.sleep(1.0)
    assert proc.poll() is None
    proc.kill()
    assert finish(proc)[0] == -signal.SIGKILL
    assert not any(_finals(out).values()), _finals(out)

    # killed as soon as the first checkpoint is in place: it is whole, the model and scene are not there
    proc = start(cli(*long_run), tmp_path / "mid")
    wait_for(ckpt.exists, proc, "the first checkpoint", timeout=120, interval=0.01)
    proc.kill()
    assert finish(proc)[0] == -signal.SIGKILL
    assert _finals(out) == {"model.safetensors": False, "model.ckpt": True, "model.json": False}
    step = _load_checkpoint(ckpt)["step"]
    assert step % 500 == 0

    # a fresh run refuses to replace the checkpoint; resuming it works
    code, _, err = run(cli(*args, "--steps", "10"), tmp_path)
    assert code != 0 and err.startswith("ngrender: error:") and "--force" in err, err
    _resume(tmp_path, args, out, step)


def test_sigkill_training_during_checkpoint_write(tmp_path, tiny_training, strace):
    """SIGKILL on the second checkpoint's fsync: the first checkpoint (step 500) stays whole and loadable.
    Each atomic write syncs the file, then its folder: the second checkpoint's file is the third fsync."""
    args, out = tiny_training
    ckpt = out.with_suffix(".ckpt")
    code, _, _ = run(cli(*args, "--steps", "100000", "--time-budget", "30", prefix=kill_at_fsync(strace, 3)),
                     tmp_path)
    assert code == -signal.SIGKILL
    assert _finals(out) == {"model.safetensors": False, "model.ckpt": True, "model.json": False}
    assert len(temps(ckpt)) == 1, "not killed while a checkpoint was being written"
    assert _load_checkpoint(ckpt)["step"] == 500
    _resume(tmp_path, args, out, 500)


# -- 6. --out through a symlink, and special files ------------------------------------------------------------
@pytest.mark.parametrize("failure", [["--mode", "nonsense"], ["--window", "1,1,0,0"], ["--window", "0,0,1"]],
                         ids=["bad-mode", "empty-window", "malformed-window"])
def test_failing_render_through_symlink(tmp_path, failure):
    real = tmp_path / "real" / "kept.png"
    real.parent.mkdir()
    before = old_png(real)
    link = tmp_path / "out.png"
    link.symlink_to(real)
    scene = SDF if failure[0] == "--mode" else GIGAPIXEL
    code, _, err = run(cli("render", scene, "--out", link, *failure, *SMALL), tmp_path)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ngrender: error:"), err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == before
    assert temps(real) == [] and temps(link) == []


def test_successful_render_through_symlink(tmp_path):
    real = tmp_path / "real" / "replaced.png"
    real.parent.mkdir()
    old_png(real)
    os.chmod(real, 0o640)
    link = tmp_path / "out.png"
    link.symlink_to(real)
    code, _, err = run(cli("render", GIGAPIXEL, "--out", link, *SMALL), tmp_path)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    check_png(real.read_bytes(), (16, 16))
    assert stat.S_IMODE(real.stat().st_mode) == 0o640, "the replaced file lost its permissions"
    assert temps(real) == [] and sorted(p.name for p in real.parent.iterdir()) == ["replaced.png"]

    dangling = tmp_path / "dangling.png"  # a link to a file not made yet: the file is made, the link kept
    dangling.symlink_to(real.parent / "new.png")
    code, _, err = run(cli("render", GIGAPIXEL, "--out", dangling, *SMALL), tmp_path)
    assert code == 0, err
    assert dangling.is_symlink()
    check_png((real.parent / "new.png").read_bytes(), (16, 16))


def test_dev_null_out(tmp_path):
    for extra, ok in ((["--mode", "nonsense"], False), ([], True)):
        scene = SDF if extra else GIGAPIXEL
        code, _, err = run(cli("render", scene, "--out", os.devnull, *extra, *SMALL), tmp_path)
        assert (code == 0) == ok, err
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null is no longer a character device"


def test_fifo_out(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    code, _, err = run(cli("render", GIGAPIXEL, "--out", fifo, *SMALL), tmp_path)
    if thread.is_alive() and not got:  # the render never opened it: let the reader go
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    thread.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"
    check_png(got[0], (16, 16))
    assert temps(fifo) == []
