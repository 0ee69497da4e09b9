"""PNG writing in strips, so a frame larger than memory can be written while it is rendered. The file is
written atomically (fileio.AtomicFile): it appears at its path complete, or not at all."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .fileio import AtomicFile


class PngStripWriter:
    """Writes an RGB8 PNG of ``width`` x ``height`` from consecutive strips of rows."""

    def __init__(self, path: str | Path, width: int, height: int) -> None:
        self.path, self.width, self.height, self.rows = Path(path), width, height, 0
        self._file = AtomicFile(self.path)
        self._zip = zlib.compressobj(6)
        self._file.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self._file.write(struct.pack(">I", len(data)) + kind + data)
        self._file.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    def write(self, strip: np.ndarray) -> None:
        """Append rows, shape (rows, width, 3) uint8."""
        if strip.shape[1:] != (self.width, 3) or strip.dtype != np.uint8:
            raise ValueError(f"strip shape {strip.shape} {strip.dtype}, expected (n, {self.width}, 3) uint8")
        filtered = np.zeros((strip.shape[0], 1 + 3 * self.width), dtype=np.uint8)  # filter byte 0: none
        filtered[:, 1:] = strip.reshape(strip.shape[0], -1)
        data = self._zip.compress(filtered.tobytes())
        if data:
            self._chunk(b"IDAT", data)
        self.rows += strip.shape[0]

    def close(self) -> None:
        """Finish the PNG and put it in place."""
        if self.rows != self.height:
            self.abort()
            raise RuntimeError(f"PNG {self.path}: {self.rows} of {self.height} rows written")
        self._chunk(b"IDAT", self._zip.flush())
        self._chunk(b"IEND", b"")
        self._file.commit()

    def abort(self) -> None:
        """Drop the partial PNG; whatever was at the path before stays."""
        self._file.discard()


def write_png(path: str | Path, image: np.ndarray) -> None:
    writer = PngStripWriter(path, image.shape[1], image.shape[0])
    writer.write(np.ascontiguousarray(image[..., :3], dtype=np.uint8))
    writer.close()
