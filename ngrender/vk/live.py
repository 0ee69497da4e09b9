"""One lifetime idiom for Vulkan objects, and the live-object counts that prove every one is destroyed.

A ``Handle`` subclass declares its ``kind`` (the counter's key) and ``destroy_function`` (the device-level
``vkDestroy*`` that releases its ``handle``), and builds itself in ``_create``. Everything it creates there is
registered the moment it exists (``keep`` for the object's own handle or a raw child handle, ``own`` for a
child object, ``on_release`` for any other undo step) and is released in reverse order by ``destroy()``, which
runs exactly once. A ``_create`` that raises releases what it had built before the error propagates, so no
class writes its own try/destroy (the pattern of wgpu-py's ``_release_function``). An ``Owner`` is the same
without a handle of its own: a composite (a render session, the viewer) that owns Handles."""
from __future__ import annotations

from collections import Counter
from typing import Callable, TypeVar

_live: Counter = Counter()

O = TypeVar("O", bound="Owner")


def live_objects() -> dict[str, int]:
    """Kinds of Vulkan objects still alive, with their counts (empty when everything was destroyed)."""
    return {kind: n for kind, n in _live.items() if n}


class Owner:
    """Owns Vulkan objects: builds them in ``_create`` (registering each as it appears) and releases them in
    reverse order, once, on ``destroy()`` or when ``_create`` raises. Not counted itself (see ``Handle``)."""

    def __init__(self, *args, **kwargs) -> None:
        self._releases: list[Callable[[], None]] = []
        self._alive = True
        try:
            self._create(*args, **kwargs)
        except BaseException:
            self.destroy()
            raise

    def _create(self, *args, **kwargs) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def own(self, child: O) -> O:
        """Make ``child`` (a Handle or Owner) part of this object: destroyed with it, before what was
        created earlier."""
        self._releases.append(child.destroy)
        return child

    def on_release(self, step: Callable[[], None]) -> None:
        """Any other undo step (unmap, unregister, release what a slot holds then), run in reverse order with
        the rest."""
        self._releases.append(step)

    @property
    def alive(self) -> bool:
        return self._alive

    def destroy(self) -> None:
        if not self._alive:
            return
        self._alive = False
        self._release()
        releases, self._releases = self._releases, []
        for release in reversed(releases):
            release()

    def _release(self) -> None:
        """What must happen before the registered releases (e.g. waiting for the device); default nothing."""

    def __enter__(self: O) -> O:
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


class Handle(Owner):
    """Base of every Vulkan object class: counted while alive; ``keep`` registers its own handle (released
    with the class's declared ``destroy_function``) and any raw child handle."""

    kind = "object"
    destroy_function = ""  # vkDestroy* / vkFree* of ``handle``, called as fn(device, handle, None)

    def __init__(self, *args, **kwargs) -> None:
        self.handle = None
        _live[self.kind] += 1
        super().__init__(*args, **kwargs)

    def keep(self, raw, destroy_function: str | None = None):
        """Register ``raw`` (a handle of ``self.device``) for release with ``destroy_function`` (default: the
        class's own); returns ``raw``."""
        destroy = self.device.function(destroy_function or self.destroy_function)
        device = self.device.handle
        self._releases.append(lambda: destroy(device, raw, None))
        return raw

    def destroy(self) -> None:
        if self._alive:
            _live[self.kind] -= 1
        super().destroy()
