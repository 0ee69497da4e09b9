"""The MLP kernels (baked literals and uniform-buffer weights) against the NumPy reference: 1e-5 relative
(summation order differs between the GPU's dot products and NumPy's matmul)."""
from __future__ import annotations

import numpy as np
import pytest

from ngrender.reference.mlp import apply_activation, mlp_forward
from unit_kernel import run_field_stage


def test_reference_mlp_small_case():
    w0 = np.array([[1.0, -1.0], [0.5, 0.5]], np.float32)
    w1 = np.array([[2.0, 1.0]], np.float32)
    x = np.array([[1.0, 3.0], [3.0, 1.0]], np.float32)
    # hidden = relu([-2, 2]) = [0, 2] -> 2 ; relu([2, 2]) -> 6
    np.testing.assert_array_equal(mlp_forward([w0, w1], x), [[2.0], [6.0]])
    np.testing.assert_allclose(apply_activation(np.array([0.0], np.float32), "sigmoid"), [0.5])


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "exponential"])
@pytest.mark.parametrize("variant", ["baked", "buffered", "shared"])
def test_gpu_mlp_matches_reference(device, model_factory, variant, activation):
    net = {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": activation,
           "n_neurons": 64, "n_hidden_layers": 2}
    model = model_factory("hash", network=net, seed=4)
    x = np.random.default_rng(5).normal(0, 1, (1000, model.geometry.n_output_dims)).astype(np.float32)
    want = mlp_forward(model.layers, x, activation)
    got = run_field_stage(device, model, variant, "mlp", x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
