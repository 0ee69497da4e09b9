"""PNG writing in strips, so a frame larger than memory can be written while it is rendered. The file is
written atomically (fileio.AtomicFile): it appears at its path complete, or not at all.

Each strip is deflated on its own (a raw deflate stream ended by a full flush, so the next strip's stream can
follow it byte-aligned, as pigz does), with the Adler-32 of its bytes beside it. A strip can therefore be
compressed anywhere, by whoever rendered it (a farm worker), and the writer only appends it: the file is the
same bytes whichever process compressed which strip."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .fileio import AtomicFile

LEVEL = 6
ZLIB_HEADER = b"\x78\x9c"       # deflate, 32 KiB window, default level: the stream's first two bytes
FINAL_BLOCK = b"\x03\x00"       # an empty final (BFINAL) fixed-Huffman block: ends the deflate stream
ADLER_BASE = 65521


class DeflatedRows(NamedTuple):
    """A strip's PNG scanlines (filter byte + RGB), deflated on their own."""

    data: bytes      # raw deflate blocks, ending byte-aligned (full flush), not final
    adler32: int     # Adler-32 of the scanline bytes
    size: int        # scanline bytes
    rows: int
    width: int


def deflate_rows(strip: np.ndarray) -> DeflatedRows:
    """Scanlines of rows, shape (rows, width, 3) uint8, filtered (filter 0: none) and deflated."""
    if strip.ndim != 3 or strip.shape[2] != 3 or strip.dtype != np.uint8:
        raise ValueError(f"strip shape {strip.shape} {strip.dtype}, expected (n, width, 3) uint8")
    filtered = np.zeros((strip.shape[0], 1 + 3 * strip.shape[1]), dtype=np.uint8)
    filtered[:, 1:] = strip.reshape(strip.shape[0], -1)
    raw = filtered.tobytes()
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    data = deflate.compress(raw) + deflate.flush(zlib.Z_FULL_FLUSH)
    return DeflatedRows(data, zlib.adler32(raw), len(raw), strip.shape[0], strip.shape[1])


def adler32_combine(first: int, second: int, second_size: int) -> int:
    """The Adler-32 of A + B from those of A and B and B's length (zlib's adler32_combine)."""
    rem = second_size % ADLER_BASE
    s1 = first & 0xFFFF
    s2 = (rem * s1) % ADLER_BASE
    s1 = (s1 + (second & 0xFFFF) + ADLER_BASE - 1) % ADLER_BASE
    s2 = (s2 + ((first >> 16) & 0xFFFF) + ((second >> 16) & 0xFFFF) + ADLER_BASE - rem) % ADLER_BASE
    return s1 | (s2 << 16)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


class PngStripWriter:
    """Writes an RGB8 PNG of ``width`` x ``height`` from consecutive strips of rows (``path`` None: in memory,
    ``png_bytes()`` after ``close()``)."""

    def __init__(self, path: str | Path | None, width: int, height: int) -> None:
        self.path, self.width, self.height, self.rows = path and Path(path), width, height, 0
        self._file = AtomicFile(self.path) if path is not None else None
        self._memory = io.BytesIO()
        self._adler = 1  # Adler-32 of nothing
        self._write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))

    def _write(self, data: bytes) -> None:
        (self._file or self._memory).write(data)

    def write(self, strip: np.ndarray) -> None:
        """Append rows, shape (rows, width, 3) uint8."""
        if strip.shape[1:] != (self.width, 3) or strip.dtype != np.uint8:
            raise ValueError(f"strip shape {strip.shape} {strip.dtype}, expected (n, {self.width}, 3) uint8")
        self.write_deflated(deflate_rows(strip))

    def write_deflated(self, rows: DeflatedRows) -> None:
        """Append rows already deflated (by ``deflate_rows``, here or in another process)."""
        if rows.width != self.width or self.rows + rows.rows > self.height:
            raise ValueError(f"{rows.rows} rows of width {rows.width} do not fit a {self.width}x{self.height} PNG "
                             f"after {self.rows} rows")
        self._write(_chunk(b"IDAT", (ZLIB_HEADER if self.rows == 0 else b"") + rows.data))
        self._adler = adler32_combine(self._adler, rows.adler32, rows.size)
        self.rows += rows.rows

    def close(self) -> None:
        """Finish the PNG and put it in place."""
        if self.rows != self.height:
            self.abort()
            raise RuntimeError(f"PNG {self.path}: {self.rows} of {self.height} rows written")
        self._write(_chunk(b"IDAT", FINAL_BLOCK + struct.pack(">I", self._adler)) + _chunk(b"IEND", b""))
        if self._file is not None:
            self._file.commit()

    def abort(self) -> None:
        """Drop the partial PNG; whatever was at the path before stays."""
        if self._file is not None:
            self._file.discard()

    def png_bytes(self) -> bytes:
        return self._memory.getvalue()


def write_png(path: str | Path, image: np.ndarray) -> None:
    writer = PngStripWriter(path, image.shape[1], image.shape[0])
    writer.write(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    writer.close()
