"""Simulated NGPC (the paper's neural graphics processing cluster): architecture parameters (arch.py), the
engines' cycle model and frame projection (timing.py), and the functional dispatch path (apps/wavefront.py
with shaders/ngpc/)."""
