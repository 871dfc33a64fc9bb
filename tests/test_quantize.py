"""int8 inference: activations in all 8 bits, weights in 8 bits where VNNI sums products in 32
bits and in 7 where 16-bit pair sums could saturate; and the instruction set named in words."""

from __future__ import annotations

import pytest
import torch

from ner_core import hardware
from ner_core.quantize import Int8Linear, quantize_int8


def two_layers() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.encoder = torch.nn.Linear(64, 32)
    model.classifier = torch.nn.Linear(32, 5)
    return model


def fake_quantized(x: torch.Tensor, levels: int) -> torch.Tensor:
    """``x`` through an asymmetric per-tensor quantizer of ``levels`` steps that keeps zero exact,
    as dynamic quantization computes its parameters from the batch."""
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    scale = (high - low) / (levels - 1)
    zero = round(-low / scale)
    return ((x / scale).round() + zero).clamp(0, levels - 1).sub(zero).mul(scale)


@pytest.mark.parametrize("vnni, lowest, highest", [(True, -128, 127), (False, -64, 63)])
def test_weights_take_8_bits_with_vnni_and_7_without(vnni, lowest, highest):
    model = quantize_int8(two_layers(), vnni=vnni)
    assert type(model.classifier) is torch.nn.Linear  # the classifier stays float32
    assert isinstance(model.encoder, Int8Linear)
    ints = model.encoder.weight().int_repr().int()
    # Per output channel, symmetric: each channel's largest weight takes the top of the range.
    assert ints.min().item() >= lowest and ints.max().item() <= highest
    assert ints.abs().amax(1).min().item() >= highest - 1


def test_detected_vnni_decides_the_weight_range(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_vnni", lambda: False)
    assert quantize_int8(two_layers()).encoder.weight().int_repr().int().abs().max().item() <= 64


def test_activations_use_all_256_levels():
    torch.manual_seed(1)
    layer = two_layers().encoder
    x = torch.randn(40, 64) * 3
    x[0, 5] = 40.0  # an outlier widens the range, as BERT's hidden states have them
    quantized = quantize_int8(torch.nn.Sequential(layer), vnni=True)[0]
    weights = quantized.weight().dequantize()
    got = quantized(x)
    full = fake_quantized(x, 256) @ weights.T + layer.bias
    reduced = fake_quantized(x, 128) @ weights.T + layer.bias
    assert (got - full).abs().max().item() < 1e-3
    # The 7-bit activations torch uses by default are measurably further away.
    assert (got - reduced).abs().max().item() > 10 * (got - full).abs().max().item()


@pytest.mark.parametrize("checks, said", [
    ({"_is_amx_tile_supported": True, "_is_vnni_supported": True}, "AMX, VNNI"),
    ({"_is_avx512_bf16_supported": True, "_is_avx512_supported": True,
      "_is_vnni_supported": True}, "AVX-512 BF16, VNNI"),
    ({"_is_avx512_supported": True, "_is_avx2_supported": True}, "AVX-512, no BF16, no VNNI"),
    ({"_is_avx2_supported": True}, "AVX2, no VNNI"),
    ({"_is_avx2_supported": True, "_is_vnni_supported": True}, "AVX2, VNNI"),
    ({}, "no AVX2, no VNNI"),
])
def test_instruction_set_is_named_from_torchs_checks(monkeypatch, checks, said):
    for check in ("_is_amx_tile_supported", "_is_avx512_bf16_supported", "_is_avx512_supported",
                  "_is_avx2_supported", "_is_vnni_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda value=checks.get(check, False): value)
    assert hardware.instruction_set() == said
