"""int8 inference: the encoder's linear layers dynamically quantized, set for the CPU at hand.

Weights are quantized once, per output channel; activations per batch. Measured on the bundled
model's validation F1 (``bench/inference.py``): torch's defaults, activations in 7 bits
("reduce_range"), lose 0.42 points; weights alone quantized lose nothing, so the loss is in the
activations, and given all 8 bits they lose 0.13. The 7-bit default exists for CPUs without VNNI,
whose int8 kernels add pairs of u8 x s8 products in 16 bits and can saturate. There the weights
get 7 bits instead (-64 to 63, so a pair is at most 2 x 255 x 64 = 32,640, below 32,767) and the
activations keep 8: 0.25 points lost, measured with the kernels held to AVX2. The classifier stays
float32 everywhere.
"""

from __future__ import annotations

import warnings

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from . import hardware


class Int8Linear(DynamicLinear):
    """A dynamically quantized ``Linear`` whose activations use the full 8-bit range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


def weight_bits(vnni: bool) -> int:
    """Bits of each int8 weight: 8 where VNNI sums products in 32 bits, else 7 (no saturation)."""
    return 8 if vnni else 7


def quantize_int8(model: torch.nn.Module, vnni: bool | None = None) -> torch.nn.Module:
    """``model`` with every ``Linear`` but the classifier in int8 (see the module's note).

    ``vnni`` says whether the CPU sums int8 products in 32 bits; by default it is detected.
    """
    from torch.ao.quantization import (
        PerChannelMinMaxObserver,
        QConfig,
        default_dynamic_quant_observer,
        quantize_dynamic,
    )

    bits = weight_bits(hardware.cpu_vnni() if vnni is None else vnni)
    weights = PerChannelMinMaxObserver.with_args(
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
        quant_min=-(2 ** (bits - 1)), quant_max=2 ** (bits - 1) - 1)
    qconfig = QConfig(activation=default_dynamic_quant_observer, weight=weights)
    layers = {name: qconfig for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and name != "classifier"}
    with warnings.catch_warnings():
        # torch announces a move of this API to torchao; it is the one in the pinned torch.
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*deprecated.*")
        return quantize_dynamic(model, layers, dtype=torch.qint8,
                                mapping={torch.nn.Linear: Int8Linear})
