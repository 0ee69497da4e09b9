"""Trainers (extra [train], PyTorch CPU): fit each app's model to real data.

One module per app, one shape: ``train(source, preset="hash", config_path=None, **options) -> FitResult``
(loop.py): ``source`` the app's data; the network config (the tcnn "encoding" + "network" dict) from
``config_path``, else the named preset configs/<app>_<preset>.json; and ``describe(metrics) -> str``, the
result's quality figures in words."""
