"""Fuzzing the inputs a user gives ngrender: scene files, model files (metadata, tensors, bytes), training network
configs and NeRF transforms.json files, each mutated from the real files in the repo by a seeded mutator.

Every mutant must give EITHER a successful run (a valid PNG / model) OR a non-zero exit with exactly one
``ngrender: error: ...`` line on stderr (warnings count as lines), and never a traceback, an ``internal error``,
a signal, a hang past CASE_TIMEOUT, a leaked Vulkan object, a leftover temporary file or a changed pre-existing
output file (a sentinel sits at every output path). CLI cases run in-process with NGRENDER_DEBUG=1, so an
exception escaping ``main()`` (an ``internal error`` without it) comes with its traceback; a few run as real
subprocesses to catch signals and hangs. Transforms files go through ``load_split`` (ConfigError is clean).

``pytest tests/test_fuzz.py -s`` prints a summary; ``--fuzz-long`` runs 10x the cases. Every failing case is in
the assertion message and in /tmp/fuzz_failures.txt."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

from ngrender.cli import main
from ngrender.errors import ConfigError
from ngrender.vk import live_objects
from helpers import run_cli

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240917
CASE_TIMEOUT = 60.0  # seconds: longer is a hang (a valid 8x8 render takes well under one)
CASES = {"scene": 300, "model": 300, "transforms": 400, "train": 30, "subprocess": 10}
FAILURES_FILE = Path("/tmp/fuzz_failures.txt")
SENTINEL = b"fuzz sentinel: a failed run must leave this file as it was\n"
SCENES = sorted(ROOT.glob("scenes/*.json")) + sorted(ROOT.glob("scenes/standin/*.json"))
MAX_MODEL_BYTES = 1_500_000  # model mutants start from the smaller models (each case rewrites one)
ALL_FAILURES: dict[str, list[dict]] = {}


# ---------------------------------------------------------------------------------------------- JSON mutator

class Raw:
    """JSON text written as is: what json.dumps cannot produce (NaN, 1e999, nesting deeper than recursion)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text if len(self.text) < 20 else f"<{len(self.text)} chars: {self.text[:8]}...>"


DEEP = Raw("[" * 100_000 + "]" * 100_000)


def dumps(value: Any) -> str:
    raws: list[str] = []

    def default(obj: Any) -> str:
        raws.append(obj.text)
        return f"\0RAW{len(raws) - 1}\0"

    text = json.dumps(value, default=default)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\0RAW{i}\0"), raw, 1)
    return text


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def _nodes(tree: Any, path: tuple = ()):
    yield path
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for key, value in items:
        yield from _nodes(value, path + (key,))


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _replacements(value: Any) -> list:
    if isinstance(value, bool):
        return ["true", 1, 0, None, "false"]
    if isinstance(value, (int, float)):
        typed = [str(value), -value - 1, 0, value + 0.5, value * 2, value + 1, 2 ** 63, -2 ** 63 - 1, 1e308, -0.0,
                 [value], Raw("NaN"), Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), 10 ** 400]
        return typed + ([float(value)] if isinstance(value, int) else [])
    if isinstance(value, str):
        return [value.upper(), value + "_", " " + value, "x" * 5000, "a\0b", "", [value], 7, "../" * 20 + value]
    if isinstance(value, list):
        return [value[:-1], value + value[-1:], value * 2, [], [value], [str(v) for v in value],
                [Raw("NaN")] * len(value), {str(i): v for i, v in enumerate(value)}]
    if isinstance(value, dict):
        return [[value], list(value.values()), 1, "object", {}, {"": value}]
    return [0, "x", []]


COMMON = [None, True, False, "", "text", [], {}, -1, 0, 10 ** 30, Raw("NaN"), Raw("1e999"), DEEP,
          Raw("[" * 60 + "1" + "]" * 60), Raw('{"a":' * 60 + "1" + "}" * 60)]


def mutate_json(rng: random.Random, tree: dict, special: dict[str, list] | None = None,
                focus: tuple[tuple, ...] = ()) -> str:
    """Mutate ``tree`` in place once; returns what was done. ``special``: key -> values to try there;
    ``focus``: paths to pick half the time (where they exist); the free-form ``extra`` is left alone."""
    special = special or {}
    paths = [p for p in _nodes(tree) if p and p[0] != "extra"]
    fields = [p for p in paths if isinstance(p[-1], str)]
    focus = [p for p in focus if p in paths]
    path = rng.choice(focus if focus and rng.random() < 0.5 else fields if fields and rng.random() < 0.7 else paths)
    parent, key = _get(tree, path[:-1]), path[-1]
    where = ".".join(map(str, path))
    op = rng.choice(["retype"] * 5 + ["drop", "rename", "add", "length"])
    if op == "drop" and isinstance(parent, dict):
        del parent[key]
        return f"{where}: dropped"
    if op == "rename" and isinstance(parent, dict):
        new = rng.choice([key + "_", key.upper(), key[:-1] or "_", "_" + key])
        parent[new] = parent.pop(key)
        return f"{where}: renamed to {new!r}"
    if op == "add":
        target = rng.choice([p for p in [()] + paths if isinstance(_get(tree, p), dict)])
        new, value = rng.choice(["extra", "Model", "camera", "width", "__proto__", "x" * 100]), rng.choice(COMMON)
        _get(tree, target)[new] = value
        return f"{'.'.join(map(str, target)) or '<top>'}: added {new!r}: {show(value)}"
    if op == "length":
        lists = [p for p in paths if isinstance(_get(tree, p), list)]
        if lists:
            path = rng.choice(lists)
            old = _get(tree, path)
            new = rng.choice([old[:-1], old + old[-1:], [], old * 2])
            _get(tree, path[:-1])[path[-1]] = new
            return f"{'.'.join(map(str, path))}: list of {len(old)} -> {len(new)}"
    old = parent[key]
    if key in special and rng.random() < 0.6:
        new = rng.choice(special[key])
    else:
        new = rng.choice(_replacements(old) if rng.random() < 0.75 else COMMON)
    parent[key] = new
    return f"{where}: {show(old)} -> {show(new)}"


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """File-level damage: truncation, stray or random bytes, a BOM, invalid UTF-8."""
    k = rng.randrange(len(data) + 1)
    ops = {"truncated at byte %d" % k: data[:k],
           "byte %d replaced" % k: data[:k] + bytes([rng.randrange(256)]) + data[k + 1:],
           "invalid UTF-8 at byte %d" % k: data[:k] + b"\xff\xfe" + data[k:],
           "BOM prepended": b"\xef\xbb\xbf" + data, "empty file": b"", "garbage appended": data + b"}\x00garbage",
           "random bytes": rng.randbytes(rng.choice([1, 8, 100, 5000]))}
    name = rng.choice(sorted(ops))
    return ops[name], name


def mutate_n(rng: random.Random, tree: dict, special: dict | None = None, focus: tuple = ()) -> tuple[bytes, str]:
    """1-3 tree mutations, then (sometimes) file-level damage: the file's bytes and a description."""
    descs = [mutate_json(rng, tree, special, focus) for _ in range(rng.choice([1, 1, 1, 1, 2, 2, 3]))]
    data = dumps(tree).encode()
    if rng.random() < 0.1:
        data, desc = mutate_bytes(rng, data)
        descs.append(desc)
    return data, "; ".join(descs)


# ------------------------------------------------------------------------------------------ running a case

class Hang(BaseException):
    """Raised by SIGALRM in an in-process case (a BaseException: main() does not catch it)."""


@dataclasses.dataclass
class Result:
    rc: int | None = None
    stderr: str = ""
    traceback: str | None = None
    timed_out: bool = False


@dataclasses.dataclass
class Case:
    desc: str
    run: Callable[[], Result]
    sentinels: list[Path] = dataclasses.field(default_factory=list)
    check_success: Callable[[], None] = lambda: None


def _alarm(signum, frame):
    raise Hang()


def in_process(fn: Callable[[], int]) -> Result:
    """Run ``fn`` with stdout/stderr captured, warnings recorded as stderr lines and a time bound."""
    res, out, err = Result(), io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_TIMEOUT)
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("default")  # as a command line run shows them
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                res.rc = fn()
            except SystemExit as exc:  # argparse
                res.rc = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Hang:
                res.timed_out = True
            except Exception:  # noqa: BLE001 - what the fuzzing is looking for
                res.traceback = traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    res.stderr = err.getvalue() + "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
                                          for w in caught)
    return res


def cli(argv: list[str]) -> Callable[[], Result]:
    return lambda: in_process(lambda: main(argv))


def cli_subprocess(argv: list[str]) -> Callable[[], Result]:
    def run() -> Result:
        try:
            proc = run_cli(*argv, env={"NGRENDER_DEBUG": None}, timeout=CASE_TIMEOUT)
        except subprocess.TimeoutExpired:
            return Result(timed_out=True)
        return Result(proc.returncode, proc.stderr)
    return run


def judge(case: Case, res: Result, live_before: dict[str, int]) -> list[str]:
    """The problems with one case's outcome (none: a success or a clean error)."""
    problems = []
    if res.timed_out:
        problems.append(f"no result within {CASE_TIMEOUT:.0f} s (hang)")
    elif res.traceback:
        problems.append("exception escaped (an internal error)")
    elif res.rc is None or res.rc < 0:
        problems.append(f"killed by signal {-res.rc if res.rc else '?'}")
    elif res.rc == 0:
        try:
            case.check_success()
        except Exception as exc:  # noqa: BLE001
            problems.append(f"exit 0 but the output is wrong: {type(exc).__name__}: {exc}")
    else:
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        if len(lines) != 1 or not lines[0].startswith("ngrender: error: "):
            problems.append(f"exit {res.rc} without exactly one 'ngrender: error:' line on stderr")
        elif "internal error" in lines[0] or "validation reported" in lines[0]:
            problems.append(lines[0][:200])
    if res.rc != 0:
        changed = [p.name for p in case.sentinels if not p.is_file() or p.read_bytes() != SENTINEL]
        if changed:
            problems.append(f"failed but changed pre-existing output(s) {changed}")
    leftovers = [p.name for s in case.sentinels for p in s.parent.glob(".*.tmp")]
    if leftovers:
        problems.append(f"left temporary files {leftovers}")
    if live_objects() != live_before:
        problems.append(f"leaked Vulkan objects: {live_before} before, {live_objects()} after")
    return problems


def cause(res: Result, problems: list[str]) -> str:
    """A failure's group: exception type and the innermost ngrender frame that raised it."""
    if res.traceback:
        frames = re.findall(r'File "[^"]*/(ngrender/[^"]+)", line (\d+), in (\S+)', res.traceback)
        exc = res.traceback.strip().splitlines()[-1].split(":")[0]
        return f"{exc} at {':'.join(frames[-1]) if frames else '(outside ngrender)'}"
    warning = re.search(r"(ngrender/[\w/]+\.py:\d+): (\w+): ", res.stderr)
    if warning:
        return f"{warning.group(2)} at {warning.group(1)} (printed beside the error line)"
    internal = re.search(r"internal error \((\w+)", res.stderr)
    return f"{internal.group(1)} (subprocess internal error)" if internal else problems[0].split(":")[0][:80]


def sentinel_case(desc: str, argv: list[str], outputs: list[Path], check: Callable[[], None],
                  run: Callable[[list[str]], Callable[[], Result]] = cli) -> Case:
    for path in outputs:
        path.write_bytes(SENTINEL)
    return Case(desc, run(argv), outputs, check)


def png_check(path: Path, size: tuple[int, int] = (8, 8)) -> Callable[[], None]:
    def check() -> None:
        with Image.open(path) as img:
            img.load()
            assert img.size == size, f"PNG is {img.size}, not {size}"
    return check


# ------------------------------------------------------------------------------------------ the inputs

class Inputs:
    """The seeds (real scenes, models, a tiny image, config and NeRF set) and awkward files to point at."""

    def __init__(self, tmp: Path) -> None:
        from safetensors.numpy import load_file, safe_open

        self.originals = {p: p.read_bytes() for p in SCENES}
        self.scenes: dict[str, dict] = {}
        for path in SCENES:
            data = json.loads(self.originals[path])
            data["model"] = str((path.parent / data["model"]).resolve())
            self.scenes[str(path.relative_to(ROOT))] = data
        self.scenes.update(self._full_views())
        self.models = []  # (name, tensors, metadata dict, scene)
        for name, scene in self.scenes.items():
            model = Path(scene["model"])
            if model.stat().st_size <= MAX_MODEL_BYTES and all(m[0] != model.name for m in self.models):
                self.originals[model] = model.read_bytes()
                with safe_open(str(model), "numpy") as f:
                    head = json.loads(f.metadata()["ngrender"])
                self.models.append((model.name, load_file(model), head, scene))
        odd = tmp / "odd"
        (odd / "folder").mkdir(parents=True)
        (odd / "empty").write_bytes(b"")
        (odd / "text.json").write_text('{"not": "this"}')
        (odd / "loop_a").symlink_to(odd / "loop_b")
        (odd / "loop_b").symlink_to(odd / "loop_a")
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)).save(odd / "image.png")
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(odd / "tiny.png")
        (odd / "truncated.png").write_bytes((odd / "image.png").read_bytes()[:60])
        (odd / "random.png").write_bytes(random.Random(0).randbytes(300))
        self.image = odd / "image.png"
        self.awkward = [str(odd / n) for n in ("missing", "folder", "empty", "text.json", "loop_a", "image.png",
                                               "truncated.png", "random.png")] + \
            ["/dev/zero", "/dev/null", "/", "a\0b", "x" * 5000, "", str(ROOT / "assets/sdf_bunny_dense.safetensors")]
        self.config = {"encoding": {"otype": "HashGrid", "n_levels": 2, "n_features_per_level": 2,
                                    "log2_hashmap_size": 8, "base_resolution": 4, "per_level_scale": 1.5},
                       "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None",
                                   "n_neurons": 16, "n_hidden_layers": 1}}
        self.nerf_dir, self.transforms = self._nerf_set(tmp / "nerf")

    @staticmethod
    def _full_views() -> dict[str, dict]:
        """One scene per app whose view spells out every field (the camera as a transform_matrix)."""
        from ngrender.apps.gigapixel import GigapixelApp
        from ngrender.apps.nerf import NerfApp
        from ngrender.apps.sdf import SdfApp
        from ngrender.apps.volume import VolumeApp

        out = {}
        for app_cls, model in ((GigapixelApp, "assets/gigapixel_dense"), (SdfApp, "tests/data/sdf_torus_dense"),
                               (VolumeApp, "tests/data/volume_cloud_dense"), (NerfApp, "tests/data/nerf_blobs_dense")):
            view = {}
            for f in dataclasses.fields(app_cls.view_class):
                value = getattr(app_cls.view_class(), f.name)
                view[f.name] = value.to_json() if f.name == "camera" else list(value) if isinstance(value, tuple) \
                    else value
            out[f"{app_cls.name} (every view field)"] = {
                "app": app_cls.name, "model": str(ROOT / f"{model}.safetensors"), "description": "fuzz seed",
                "render": {"width": 8, "height": 8, "variant": "auto", "tile": [4, 8]}, "view": view}
        return out

    @staticmethod
    def _nerf_set(folder: Path) -> tuple[Path, dict]:
        """Two 4x4 RGBA views (Blender layout: file paths without the extension)."""
        from ngrender.camera import look_at

        folder.mkdir()
        frames = []
        for k, eye in enumerate([(0.0, -4.0, 1.0), (3.0, 2.0, 1.5)]):
            Image.fromarray(np.full((4, 4, 4), 60 * k + 50, np.uint8), "RGBA").save(folder / f"r_{k}.png")
            c2w = look_at(eye, (0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)).c2w
            frames.append({"file_path": f"./r_{k}", "transform_matrix": c2w.tolist()})
        Image.fromarray(np.zeros((5, 5, 4), np.uint8), "RGBA").save(folder / "other_size.png")
        return folder, {"camera_angle_x": 0.69, "scale": 0.33, "offset": [0.5, 0.5, 0.5], "frames": frames}


# ------------------------------------------------------------------------------------------ case generators

def scene_case(rng: random.Random, case_dir: Path, inp: Inputs, run=cli) -> Case:
    name = rng.choice(sorted(inp.scenes))
    tree = json.loads(json.dumps(inp.scenes[name]))
    paths = inp.awkward + ["scene.json", str(case_dir)]
    if rng.random() < 0.1:
        tree["model"] = rng.choice(paths)
        data, desc = dumps(tree).encode(), f"model: {show(tree['model'])}"
    else:
        data, desc = mutate_n(rng, tree, {"model": paths})
    (case_dir / "scene.json").write_bytes(data)
    out = case_dir / "out.png"
    return sentinel_case(f"scene {name}: {desc}", ["render", str(case_dir / "scene.json"), "--out", str(out),
                                                   "--width", "8", "--height", "8"], [out], png_check(out), run)


def _patch_header(data: bytes, edit: Callable[[dict], str]) -> tuple[bytes, str]:
    """Edit a safetensors file's JSON header (what save_file cannot write: BF16, bad offsets, odd metadata)."""
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    desc = edit(head)
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n:], desc


def _header_edit(rng: random.Random) -> Callable[[dict], str]:
    def edit(head: dict) -> str:
        name = rng.choice(sorted(k for k in head if k != "__metadata__"))
        entry, op = head[name], rng.choice(["bf16", "bf16", "dtype", "offsets", "shape", "metadata"])
        if op == "bf16" and entry["dtype"] == "F16":
            entry["dtype"] = "BF16"
        elif op in ("bf16", "dtype"):
            entry["dtype"] = rng.choice(["I16", "F64", "XYZ", "BOOL"])
        elif op == "offsets":
            entry["data_offsets"] = rng.choice([[0, 1 << 40], [5, 3], [-1, 2], [0, 0]])
        elif op == "shape":
            entry["shape"] = rng.choice([[1 << 40, 2], [-1], [], [0, 2]])
        else:
            head["__metadata__"] = rng.choice([{"ngrender": 5}, [], {"ngrender": None}, {"other": "x"}])
            return f"header __metadata__ -> {show(head['__metadata__'])}"
        return f"header {name} -> {show(entry)}"
    return edit


def _mutate_tensors(rng: random.Random, tensors: dict) -> str:
    name = rng.choice(sorted(tensors))
    t = tensors[name]
    ops = {"transposed": lambda: t.T, "one row fewer": lambda: t[:-1],
           "one row more": lambda: np.concatenate([t, t[:1]]), "flattened": lambda: t.reshape(-1),
           "extra axis": lambda: t[None], "empty": lambda: t[:0],
           "scalar": lambda: np.array(t.flat[0]), "float64": lambda: t.astype(np.float64),
           "int8": lambda: t.astype(np.int8), "int32": lambda: t.astype(np.int32), "uint8": lambda: t.astype(np.uint8),
           "float32": lambda: t.astype(np.float32), "float16": lambda: t.astype(np.float16),
           "bool": lambda: t.astype(bool)}
    for bad in ("nan", "inf", "-inf"):
        ops[f"a {bad} value"] = lambda bad=bad: _poke(rng, t, float(bad))
    op = rng.choice(sorted(ops) + ["missing", "renamed", "extra tensor"])
    if op == "missing":
        del tensors[name]
    elif op == "renamed":
        new = rng.choice(["encoding.level.99", "network.layer.x", name + ".bak", "network.layer.-1",
                          "encoding.level.01"])
        tensors[new] = tensors.pop(name)
        return f"tensor {name} renamed to {new}"
    elif op == "extra tensor":
        new = rng.choice(["extra", "network.layer.9", "encoding.level.40", "rgb_network.layer.0", "occupancy"])
        tensors[new] = np.ones((2, 2), np.float16)
        return f"extra tensor {new} (2x2 float16)"
    else:
        tensors[name] = np.ascontiguousarray(ops[op]())
    return f"tensor {name} {t.dtype}{list(t.shape)}: {op}"


def _poke(rng: random.Random, t: np.ndarray, value: float) -> np.ndarray:
    out = t.astype(np.float32) if t.dtype.kind != "f" else t.copy()
    if out.size:
        out.flat[rng.randrange(out.size)] = value
    return out


METADATA_FOCUS = (("encoding",), ("network",), ("rgb_network",), ("dir_encoding",), ("encoding", "n_levels"),
                  ("encoding", "per_level_scale"), ("encoding", "log2_hashmap_size"), ("occupancy_side",),
                  ("dir_encoding", "degree"), ("network", "n_neurons"), ("n_output_dims",), ("app",))


def model_case(rng: random.Random, case_dir: Path, inp: Inputs, run=cli) -> Case:
    from safetensors.numpy import save

    name, tensors, head, scene = rng.choice(inp.models)
    tensors, head = dict(tensors), json.loads(json.dumps(head))
    kind = rng.choice(["metadata"] * 8 + ["tensors"] * 7 + ["header"] * 2 + ["bytes"] * 3)
    meta_text, desc = dumps(head), ""
    if kind == "metadata":
        if rng.random() < 0.15:
            meta_text, desc = rng.choice([("[1, 2]", "metadata a JSON list"), ("{", "metadata not JSON"),
                                          (None, "no 'ngrender' metadata"), ('"text"', "metadata a JSON string")])
        else:
            data, desc = mutate_n(rng, head, focus=METADATA_FOCUS)
            meta_text = data.decode("utf-8", "replace")
    elif kind == "tensors":
        desc = "; ".join(_mutate_tensors(rng, tensors) for _ in range(rng.choice([1, 1, 2])))
    data = save(tensors, metadata=None if meta_text is None else {"ngrender": meta_text})
    if kind == "header":
        data, desc = _patch_header(data, _header_edit(rng))
    elif kind == "bytes":
        if rng.random() < 0.3:
            data, desc = struct.pack("<Q", rng.choice([1 << 62, len(data), 7, 0])) + data[8:], "header length damaged"
        else:
            data, desc = mutate_bytes(rng, data)
    (case_dir / "model.safetensors").write_bytes(data)
    (case_dir / "scene.json").write_text(dumps(dict(scene, model="model.safetensors")))
    out = case_dir / "out.png"
    return sentinel_case(f"model {name} {kind}: {desc}", ["render", str(case_dir / "scene.json"), "--out", str(out),
                                                          "--width", "8", "--height", "8"], [out], png_check(out),
                         run)


def transforms_case(rng: random.Random, case_dir: Path, inp: Inputs) -> Case:
    from ngrender.data.transforms import load_split

    folder = inp.nerf_dir
    pool = inp.awkward + ["./other_size", "./other_size.png", str(folder / "r_1.png"), "./r_9", str(folder)]
    data, desc = mutate_n(rng, json.loads(json.dumps(inp.transforms)), {"file_path": pool})
    path = case_dir / "transforms.json"
    path.write_bytes(data)
    for image in folder.iterdir():  # file paths are relative to the transforms file
        (case_dir / image.name).symlink_to(image)

    def call() -> int:
        try:
            load_split(path)
        except ConfigError as exc:
            print(f"ngrender: error: {exc}", file=sys.stderr)
            return 2
        return 0
    return Case(f"transforms.json: {desc}", lambda: in_process(call))


def train_case(rng: random.Random, case_dir: Path, inp: Inputs) -> Case:
    from ngrender.model import load_model

    config, image = case_dir / "config.json", inp.image
    if rng.random() < 0.25:
        image = rng.choice(inp.awkward[:9] + [str(inp.image.parent / "tiny.png"), str(config)])
        config.write_text(json.dumps(inp.config))
        desc = f"--image {show(image)}"
    else:
        data, desc = mutate_n(rng, json.loads(json.dumps(inp.config)))
        config.write_bytes(data)
    out = case_dir / "m.safetensors"
    outputs = [out, out.with_suffix(".ckpt"), out.with_suffix(".json")]
    argv = ["train", "gigapixel", "--config", str(config), "--image", str(image), "--steps", "2", "--batch", "256",
            "--out", str(out), "--force"]
    return sentinel_case(f"train gigapixel config: {desc}", argv, outputs, lambda: load_model(out))


def subprocess_case(rng: random.Random, case_dir: Path, inp: Inputs) -> Case:
    """Real processes (signals, hangs): a FIFO as the model and as the scene, then scene and model mutants."""
    index = int(case_dir.name[4:])
    if index < 2:
        fifo = case_dir / "fifo"
        os.mkfifo(fifo)
        scene = case_dir / "scene.json"
        scene.write_text(json.dumps(dict(inp.scenes["scenes/gigapixel.json"], model=str(fifo))))
        out = case_dir / "out.png"
        argv = ["render", str(scene if index == 0 else fifo), "--out", str(out), "--width", "8", "--height", "8"]
        return sentinel_case(f"subprocess: {'model' if index == 0 else 'scene'} is a FIFO", argv, [out],
                             png_check(out), cli_subprocess)
    case = rng.choice([scene_case, model_case])(rng, case_dir, inp, cli_subprocess)
    case.desc = "subprocess " + case.desc
    return case


GENERATORS = {"scene": scene_case, "model": model_case, "transforms": transforms_case, "train": train_case,
              "subprocess": subprocess_case}


# ------------------------------------------------------------------------------------------ the test

def _normalise(line: str, tmp: Path) -> str:
    return re.sub(r"\d+", "#", line.replace(str(tmp), "<tmp>").replace(str(ROOT), "<repo>"))


def _write_failures() -> None:
    blocks = [f"[{f['kind']} #{f['index']}] {f['cause']}\n  case: {f['desc']}\n  files: {f['dir']}\n  problems: "
              f"{'; '.join(f['problems'])}\n" + "".join(f"    | {line}\n" for line in f["tail"])
              for fs in ALL_FAILURES.values() for f in fs]
    FAILURES_FILE.write_text(f"fuzz failures (seed {SEED}): {len(blocks)}\n\n" + "\n".join(blocks))


@pytest.mark.parametrize("kind", list(GENERATORS))
def test_fuzz(kind, request, tmp_path, monkeypatch):
    if kind == "train":
        pytest.importorskip("torch", reason="training needs the [train] extra (PyTorch CPU)")
    monkeypatch.setenv("NGRENDER_DEBUG", "1")  # in-process: an escaping exception comes with its traceback
    n = CASES[kind] * (10 if request.config.getoption("--fuzz-long") else 1)
    rng = random.Random(f"{SEED}:{kind}")
    inp = Inputs(tmp_path)
    outcomes, messages, failures, causes = Counter(), set(), [], Counter()
    start = time.perf_counter()
    for i in range(n):
        case_dir = tmp_path / f"case{i:04d}"
        case_dir.mkdir()
        case = GENERATORS[kind](rng, case_dir, inp)
        live_before = live_objects()
        res = case.run()
        problems = judge(case, res, live_before)
        if problems:
            outcomes["FAILED"] += 1
            tail = [line[:300] for line in (res.traceback or res.stderr or "(no stderr)").strip().splitlines()[-8:]]
            failures.append({"kind": kind, "index": i, "desc": case.desc, "dir": str(case_dir), "problems": problems,
                             "tail": tail, "cause": cause(res, problems)})
            causes[failures[-1]["cause"]] += 1
            continue
        outcomes["ok" if res.rc == 0 else "clean error"] += 1
        if res.rc:
            messages.add(_normalise(res.stderr.strip(), tmp_path))
        shutil.rmtree(case_dir)
    for path, data in inp.originals.items():
        assert path.read_bytes() == data, f"fuzzing changed {path}"
    ALL_FAILURES[kind] = failures
    _write_failures()
    print(f"\nfuzz {kind}: seed {SEED}, {n} cases in {time.perf_counter() - start:.1f} s: "
          f"{outcomes['ok']} ok, {outcomes['clean error']} clean errors ({len(messages)} distinct messages), "
          f"{outcomes['FAILED']} FAILED" + "".join(f"\n  {c} x{k}" for c, k in causes.most_common()))
    assert not failures, f"{len(failures)} of {n} {kind} mutants failed (also in {FAILURES_FILE}):\n" + "\n".join(
        f"- #{f['index']} {f['desc']}\n  {'; '.join(f['problems'])}\n    " + "\n    ".join(f["tail"][-4:])
        for f in failures)
