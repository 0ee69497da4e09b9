"""Live Vulkan object counting: every handle class registers here; tests assert the count returns to zero."""
from __future__ import annotations

from collections import Counter

_live: Counter = Counter()


def live_objects() -> dict[str, int]:
    """Kinds of Vulkan objects still alive, with their counts (empty when everything was destroyed)."""
    return {kind: n for kind, n in _live.items() if n}


class Handle:
    """Base of every owned Vulkan object: counted on creation, released exactly once by destroy()."""

    kind = "object"

    def __init__(self) -> None:
        self._alive = True
        _live[self.kind] += 1

    @property
    def alive(self) -> bool:
        return self._alive

    def destroy(self) -> None:
        if self._alive:
            self._alive = False
            _live[self.kind] -= 1
            self._release()

    def _release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()
