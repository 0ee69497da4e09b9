"""The app registry: each app module registers an AppSpec when imported; scene files, the CLI's choices, bench,
sessions and the viewer ask here instead of naming apps (docs/extending.md: adding an app).

The built-in app modules are imported on the first question, so that asking costs nothing until an app is
needed; a module elsewhere (a test, a plugin) registers by being imported before it is asked for."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import ConfigError

BUILTIN_APP_MODULES = ("ngrender.apps.gigapixel", "ngrender.apps.sdf", "ngrender.apps.volume", "ngrender.apps.nerf")


def _resolve(target: str) -> Any:
    """``"package.module:name"`` -> the object (imported now: references and trainers are imported on use)."""
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    return getattr(obj, name) if name else obj


@dataclass(frozen=True)
class AppSpec:
    """What the rest of ngrender knows of an app. ``app_class`` (an apps.base.App subclass) holds the GPU side: its
    shader, push layout, view type, modes and view rules; the rest are named as ``"module:name"`` so that asking
    for the spec imports no NumPy reference or PyTorch trainer."""

    name: str
    app_class: type
    reference: str  # "module:function": (model, width, height, view, network=None) -> (RGB uint8, evaluations)
    torch_network: str | None = None  # "module:function": model -> the PyTorch peer of the reference's network
    trainer: str | None = None  # module with train(source, preset, config_path, ...) -> FitResult and describe(metrics)
    real_scene: str | None = None  # stem of scenes/<stem>.json (bench's default scene; <stem>_<preset>.json)
    stand_in: str | None = None  # stem of tests/data/<stem>_<kind>.safetensors (bench --compare-encodings)
    bench_sizes: tuple[int, ...] = (256, 512)
    plane: bool = False  # a 2D app: its view is a window on the image plane, not a camera

    @property
    def view_class(self) -> type:
        return self.app_class.view_class

    @property
    def modes(self) -> Mapping[str, int]:
        return self.app_class.modes

    def reference_render(self) -> Callable:
        return _resolve(self.reference)

    def peer_network(self, model) -> Any:
        """The PyTorch peer of the reference's network for ``model``, or None without PyTorch or a peer."""
        if self.torch_network is None:
            return None
        try:
            return _resolve(self.torch_network)(model)
        except ImportError:
            return None


_APPS: dict[str, AppSpec] = {}
_builtins_loaded = False


def register_app(spec: AppSpec) -> AppSpec:
    """Make an app known; a second spec under the same name is an error (re-registering the same one is not)."""
    known = _APPS.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"an app named {spec.name!r} is registered already ({known.app_class.__module__})")
    _APPS[spec.name] = spec
    return spec


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_APP_MODULES:
            importlib.import_module(module)


def app_names() -> tuple[str, ...]:
    """The registered apps, built-ins first (the CLI's and scene files' choices)."""
    _load_builtins()

    def rank(name: str) -> int:
        module = _APPS[name].app_class.__module__
        return BUILTIN_APP_MODULES.index(module) if module in BUILTIN_APP_MODULES else len(BUILTIN_APP_MODULES)

    return tuple(sorted(_APPS, key=rank))  # stable: others in the order they registered


def app_spec(name: str) -> AppSpec:
    _load_builtins()
    spec = _APPS.get(name)
    if spec is None:
        raise ConfigError(f"model is for app {name!r}; this ngrender renders {', '.join(app_names())}")
    return spec


def trainable_apps() -> tuple[str, ...]:
    """Apps with a trainer (``ngrender train``'s choices)."""
    return tuple(name for name in app_names() if _APPS[name].trainer is not None)


def create_app(device, model, variant: str = "auto", **options):
    """The app object for a model (its ``app`` field names the registered app)."""
    return app_spec(model.app).app_class(device, model, variant, **options)
