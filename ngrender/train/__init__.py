"""Trainers (extra [train], PyTorch CPU): fit each app's model to real data."""
