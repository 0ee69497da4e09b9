"""Scene file -> model -> device -> app -> Renderer, owned together and destroyed together."""
from __future__ import annotations

from pathlib import Path

from .apps import create_app
from .apps.field import check_field_limits, choose_variant
from .errors import ConfigError, NgrenderError
from .model import Model, load_model, read_header
from .render import Renderer
from .scene import Scene, open_scene
from .vk.device import Device


class RenderSession:
    """Everything needed to render one model; a context manager that releases every Vulkan object."""

    def __init__(self, model: Model | str | Path, scene: Scene | None = None, device: str | int | None = None,
                 variant: str | None = None, tile: tuple[int, int] | None = None,
                 validation: bool | None = None, pipeline: str = "fused", mlp_dispatch: str = "network",
                 encode_dispatch: str = "auto", ngpc_arch=None) -> None:
        self.scene = scene
        header = None if isinstance(model, Model) else read_header(model)
        if header is not None and scene is not None and header.app != scene.app:
            raise ConfigError(f"{scene.path}: scene is for app {scene.app!r} but model {header.path.name} "
                              f"is a {header.app!r} model")
        self.device = Device(device, validation=validation)
        self.app = self.renderer = None
        try:
            variant = variant or (scene.variant if scene else "auto")
            if header is not None:  # the device's limits before the tensors are read
                weight_bytes = header.n_mlp_weights * (2 if header.half else 4)
                check_field_limits(self.device, header.geometry, header.n_mlp_weights, header.half,
                                   choose_variant(self.device, variant, weight_bytes))
                model = load_model(header.path, header)
            self.model = model
            tile = tile or (scene.tile if scene else (1024, 1024))
            self.app = create_app(self.device, model, variant, max_tile=tile, pipeline=pipeline,
                                  mlp_dispatch=mlp_dispatch, encode_dispatch=encode_dispatch, ngpc_arch=ngpc_arch)
            self.renderer = Renderer(self.device, self.app)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_scene(cls, path: str | Path, image_size: tuple[int, int] | None = None,
                   volume_resolution: int | None = None, **options) -> "RenderSession":
        """A scene file, a model file or an instant-ngp snapshot (scene.open_scene)."""
        scene, model = open_scene(path, image_size, volume_resolution)
        return cls(model, scene, **options)

    def view(self, **overrides):
        """The scene's view with overrides (fields of the app's view; None means keep the scene's)."""
        settings = dict(self.scene.view) if self.scene else {}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return self.app.make_view(settings)

    def check_validation(self) -> None:
        messages = self.device.take_messages()
        if messages:
            raise NgrenderError("Vulkan validation reported:\n" + "\n".join(messages[:5]))

    def close(self) -> None:
        for obj in (self.renderer, self.app, self.device):
            if obj is not None:
                obj.destroy()

    def __enter__(self) -> "RenderSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
