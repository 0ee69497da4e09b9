"""Files ngrender writes and reads.

Writes are atomic: a temporary file beside the target, flushed and synced, then renamed over it, so a file
appears complete or not at all, and a failed or killed run leaves what the user had untouched. Through a
symbolic link the link's target is replaced and the link kept. Special files (a character device such as
/dev/null, a FIFO) cannot be replaced: they are written in place and never removed.

Reads of user files are bounded: only regular files, at most a stated size, so /dev/zero, a FIFO or a
symlink loop is one clear error instead of a hang or a traceback.
"""
from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import ConfigError, NgrenderError

JSON_LIMIT = 64 << 20  # scenes, configs, transforms.json: far below this


def _strerror(exc: OSError) -> str:
    return exc.strerror or str(exc)


class AtomicFile:
    """A file being written to ``path``: ``commit()`` makes it visible, ``discard()`` drops it.

    ``file`` is the open binary file. Errors become NgrenderError naming ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.tmp: str | None = None
        target = Path(os.path.realpath(self.path))  # through a link: replace what it points to
        try:
            st = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise NgrenderError(f"cannot write {self.path}: {_strerror(exc)}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise NgrenderError(f"cannot write {self.path}: it is a directory")
        try:
            if st is not None and not stat.S_ISREG(st.st_mode):
                self.file: IO[bytes] = open(target, "wb")  # a device or FIFO: in place, never removed
                return
            if not target.parent.is_dir():
                raise NgrenderError(f"cannot write {self.path}: folder {target.parent} does not exist")
            fd, self.tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        except OSError as exc:
            raise NgrenderError(f"cannot write {self.path}: {_strerror(exc)}") from None
        self.target = target
        mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
        os.fchmod(fd, mode)
        self.file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as exc:
            self.discard()
            raise NgrenderError(f"cannot write {self.path}: {_strerror(exc)}") from None

    def commit(self) -> None:
        """Flush, sync and rename into place (in place for special files)."""
        try:
            self.file.flush()
            if self.tmp is not None:
                os.fsync(self.file.fileno())
            self.file.close()
            if self.tmp is not None:
                os.replace(self.tmp, self.target)
                self.tmp = None
                _sync_folder(self.target.parent)
        except OSError as exc:
            self.discard()
            raise NgrenderError(f"cannot write {self.path}: {_strerror(exc)}") from None

    def discard(self) -> None:
        """Drop the temporary file; the target is left as it was."""
        try:
            self.file.close()
        except OSError:
            pass
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system lets a folder be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | Path) -> Iterator[IO[bytes]]:
    """``with atomic_output(p) as f: f.write(...)``: p is replaced only if the block completes."""
    out = AtomicFile(path)
    try:
        yield out.file
    except OSError as exc:
        out.discard()
        raise NgrenderError(f"cannot write {path}: {_strerror(exc)}") from None
    except BaseException:
        out.discard()
        raise
    out.commit()


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """A matplotlib figure as a PNG, atomically."""
    with atomic_output(path) as f:
        fig.savefig(f, dpi=dpi, format="png")


def check_output(path: str | Path, force: bool = False, created_here: bool = False) -> Path:
    """Check before the work starts that ``path`` can be written; an existing regular file is refused unless
    ``force`` (or ngrender created it in this run). Returns the path."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    if target.is_dir():
        raise NgrenderError(f"cannot write {path}: it is a directory")
    if not target.parent.is_dir():
        raise NgrenderError(f"cannot write {path}: folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise NgrenderError(f"cannot write {path}: permission denied")
    if target.is_file() and not (force or created_here):
        raise NgrenderError(f"{path} exists; pass --force to replace it")
    return path


def regular_file(path: str | Path, what: str, limit: int | None = None) -> int:
    """Check that ``path`` is a readable regular file of at most ``limit`` bytes; returns its size."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except OSError as exc:  # ELOOP (symlink loop), EACCES, ENAMETOOLONG ...
        raise ConfigError(f"cannot read {what} {path}: {_strerror(exc)}") from None
    except ValueError:  # a NUL byte in the name
        raise ConfigError(f"{what} path {str(path)!r} contains a NUL byte") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file (a device, FIFO or socket)")
    if limit is not None and st.st_size > limit:
        raise ConfigError(f"{what} {path} is {st.st_size:,} bytes, more than the {limit:,} allowed")
    return st.st_size


def read_bytes(path: str | Path, what: str, limit: int) -> bytes:
    regular_file(path, what, limit)
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {_strerror(exc)}") from None
    if len(data) > limit:  # grew while we read it
        raise ConfigError(f"{what} {path} is more than the {limit:,} bytes allowed")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"{text} is out of range for a number")
    return value


def parse_json(text: str | bytes, what: str) -> Any:
    """Strict JSON (no NaN/Infinity); every problem is one ConfigError naming ``what``."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ValueError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply") from None


def read_json(path: str | Path, what: str, limit: int = JSON_LIMIT) -> Any:
    """A JSON file given by the user, read with bounds and parsed strictly."""
    return parse_json(read_bytes(path, what, limit), f"{what} {path}")
