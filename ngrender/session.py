"""Scene file -> model -> device -> app -> Renderer, owned together and destroyed together."""
from __future__ import annotations

from pathlib import Path

from .apps import create_app
from .apps.field import check_field_limits, choose_variant
from .errors import ConfigError, NgrenderError
from .model import Model, ModelHeader, load_model, read_header
from .render import Renderer
from .scene import Scene, open_scene
from .vk.device import Device
from .vk.live import Owner


class RenderSession(Owner):
    """Everything needed to render one model; a context manager that releases every Vulkan object it made.

    ``device``: a selector (index or name, None for the default) for a device of the session's own, or an
    existing ``Device``, lent by the caller (the viewer's), which the session uses but never destroys.
    ``switch_scene`` and ``reconfigure`` replace the model / the app's options in place; the new app is built
    before the old one is released, so a failure leaves the session as it was."""

    def _create(self, model: Model | str | Path, scene: Scene | None = None, device: Device | str | int | None = None,
                variant: str | None = None, tile: tuple[int, int] | None = None,
                validation: bool | None = None, pipeline: str = "fused", mlp_dispatch: str = "network",
                encode_invocation: str = "auto", stages=None) -> None:
        header = check_scene_model(model, scene)  # before a device is made: a mismatch is a user error
        self.device = device if isinstance(device, Device) else self.own(Device(device, validation=validation))
        self.options = {"variant": variant, "tile": tile, "pipeline": pipeline, "mlp_dispatch": mlp_dispatch,
                        "encode_invocation": encode_invocation, "stages": stages}
        self.scene = self.model = self.app = self.renderer = None
        self.on_release(self._release_app)
        self._replace(scene, *self._build(model, scene, header))

    @classmethod
    def from_scene(cls, path: str | Path, image_size: tuple[int, int] | None = None,
                   volume_resolution: int | None = None, **options) -> "RenderSession":
        """A scene file, a model file or an instant-ngp snapshot (scene.open_scene)."""
        scene, model = open_scene(path, image_size, volume_resolution)
        return cls(model, scene, **options)

    # -- replacing what is rendered ----------------------------------------------------------------------
    def switch_scene(self, path: str | Path, image_size: tuple[int, int] | None = None,
                     volume_resolution: int | None = None) -> None:
        """Render another scene (file, model or snapshot) on the same device, with the same options."""
        scene, model = open_scene(path, image_size, volume_resolution)
        header = check_scene_model(model, scene)
        self._replace(scene, *self._build(model, scene, header))

    def reconfigure(self, **options) -> None:
        """The same model with other options (``pipeline`` and ``stages``, ``variant``, ...)."""
        unknown = set(options) - set(self.options)
        if unknown:
            raise TypeError(f"unknown session options {sorted(unknown)}")
        old, self.options = self.options, {**self.options, **options}
        try:
            self._replace(self.scene, *self._build(self.model, self.scene, None))
        except BaseException:
            self.options = old
            raise

    def _build(self, model: Model | str | Path, scene: Scene | None,
               header: ModelHeader | None) -> tuple[Model, object, Renderer]:
        opts = self.options
        variant = opts["variant"] or (scene.variant if scene else "auto")
        if header is not None:  # the device's limits before the tensors are read
            weight_bytes = header.n_mlp_weights * (2 if header.half else 4)
            check_field_limits(self.device, header.geometry, header.n_mlp_weights, header.half,
                               choose_variant(self.device, variant, weight_bytes))
            model = load_model(header.path, header)
        tile = opts["tile"] or (scene.tile if scene else (1024, 1024))
        app = create_app(self.device, model, variant, max_tile=tile, pipeline=opts["pipeline"],
                         mlp_dispatch=opts["mlp_dispatch"], encode_invocation=opts["encode_invocation"],
                         stages=opts["stages"])
        try:
            return model, app, Renderer(self.device, app)
        except BaseException:
            app.destroy()
            raise

    def _replace(self, scene: Scene | None, model: Model, app, renderer: Renderer) -> None:
        self._release_app()
        self.scene, self.model, self.app, self.renderer = scene, model, app, renderer

    def _release(self) -> None:
        # Ctrl-C or SIGTERM can land between a submission and its wait: the device finishes that work before
        # the buffers and kernels it uses are destroyed (destroying them under it crashes the driver)
        device = getattr(self, "device", None)
        if device is not None and device.alive:
            device.wait_idle()

    def _release_app(self) -> None:
        for obj in (self.renderer, self.app):
            if obj is not None:
                obj.destroy()
        self.app = self.renderer = None

    # -- use -----------------------------------------------------------------------------------------------
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
        self.destroy()


def check_scene_model(model: Model | str | Path, scene: Scene | None) -> ModelHeader | None:
    """The model file's header (None for a model already in memory), after checking that the model is for the
    scene's app."""
    header = None if isinstance(model, Model) else read_header(model)
    app, name = (model.app, "its model") if header is None else (header.app, f"model {header.path.name}")
    if scene is not None and app != scene.app:
        raise ConfigError(f"{scene.path}: scene is for app {scene.app!r} but {name} is a {app!r} model")
    return header
