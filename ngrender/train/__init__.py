"""Trainers (extra [train], PyTorch CPU): fit each app's model to real data.

One module per app, one shape: ``train(source, encoding="hash", config_path=None, **options) -> FitResult``
(loop.py; ``source`` the app's data, the network config ``config_path`` or configs/<app>_<encoding>.json) and
``describe(metrics) -> str``, the result's quality figures in words."""
