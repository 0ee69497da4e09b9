"""Simulated NGPC (the paper's neural graphics processing cluster): architecture parameters (arch.py), the
engines' cycle model and frame projection (timing.py), and the ngpc pipeline (wavefront.py: the fused-rest
stages with the engines' kernels, shaders/ngpc/)."""
