"""cpu backend epilogues: the activation and residual add after a conv/gemm run in place on the kernel's fresh
output (no second buffer), with the same results as the out-of-place forms."""

from __future__ import annotations

import pytest

from lanner.engine.backends.cpu_activations import activation_fn, inplace_activation_fn
from lanner.engine.backends.cpu_conv import _apply_epilogue

torch = pytest.importorskip("torch")

ACTIVATIONS = [
    ("Relu", 0.0, 0.0),
    ("Sigmoid", 0.0, 0.0),
    ("Tanh", 0.0, 0.0),
    ("Silu", 0.0, 0.0),
    ("HardSwish", 0.0, 0.0),
    ("LeakyRelu", 0.1, 0.0),
    ("HardSigmoid", 0.2, 0.5),
    ("Clip", 0.0, 6.0),
]


def _x(channels_last: bool = True) -> torch.Tensor:
    x = torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(0)) * 4
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize(("name", "alpha", "beta"), ACTIVATIONS)
def test_inplace_activations_match_and_overwrite_their_input(name: str, alpha: float, beta: float) -> None:
    x = _x()
    expected = activation_fn(torch, name, alpha, beta)(x.clone())
    act = inplace_activation_fn(torch, name, alpha, beta)
    y = act(x)
    assert y.data_ptr() == x.data_ptr()  # no new buffer
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)


def test_inplace_table_covers_the_same_activations() -> None:
    names = [name for name, *_ in ACTIVATIONS]
    assert all(inplace_activation_fn(torch, n, 0.0, 0.0) is not None for n in names)
    assert inplace_activation_fn(torch, "Elu", 0.0, 0.0) is None and activation_fn(torch, "Elu", 0.0, 0.0) is None


@pytest.mark.parametrize("residual", ["before_activation", "after_activation", "none"])
def test_epilogue_writes_into_the_kernel_output_only(residual: str) -> None:
    y, z = _x(), _x(channels_last=False) - 1.0
    z_before = z.clone()
    out_of_place = y.clone()
    if residual == "before_activation":
        out_of_place = out_of_place + z
    out_of_place = torch.clamp(out_of_place, 0.0, 6.0)
    if residual == "after_activation":
        out_of_place = out_of_place + z
    result = _apply_epilogue(y, z if residual != "none" else None, inplace_activation_fn(torch, "Clip", 0, 6), residual)
    assert result.data_ptr() == y.data_ptr()
    torch.testing.assert_close(result, out_of_place, rtol=1e-6, atol=1e-6)
    assert torch.equal(z, z_before)  # the residual input (another node's output) is never written
