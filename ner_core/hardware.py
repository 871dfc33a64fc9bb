"""What the machine computes natively: whether bfloat16 is fast here, and the inference precision
``auto`` picks from that.

On a CPU without AVX-512 BF16 or AMX, bfloat16 is emulated and about six times slower than
float32; where it is native it is about twice as fast at the same F1. So nothing assumes: every
choice is detected, and said in words.
"""

from __future__ import annotations

import torch

AUTO = "auto"


def _cpu_has(check: str) -> bool:
    """torch's own check ``torch.cpu._is_<check>_supported()``; False where torch lacks it."""
    return bool(getattr(torch.cpu, f"_is_{check}_supported", lambda: False)())


def cpu_bf16_native() -> bool:
    """True on a CPU with AVX-512 BF16 or AMX instructions (torch's own checks)."""
    return _cpu_has("avx512_bf16") or _cpu_has("amx_tile")


def cpu_vnni() -> bool:
    """True on a CPU with VNNI (AVX-512 VNNI or AVX-VNNI): int8 products summed straight into 32
    bits. Without it, int8 kernels add pairs of products in 16 bits, which can saturate."""
    return _cpu_has("vnni")


# The first of these the CPU has names its tier.
_TIERS = (("amx_tile", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512", "AVX-512, no BF16"),
          ("avx2", "AVX2"))


def instruction_set() -> str:
    """The CPU's vector instructions that decide bfloat16 and int8 speed, in words, as benchmark
    results name the machine: ``"AMX, VNNI"``, ``"AVX-512 BF16, VNNI"``, ``"AVX-512, no BF16,
    VNNI"``, ``"AVX2, no VNNI"`` and so on."""
    tier = next((name for check, name in _TIERS if _cpu_has(check)), "no AVX2")
    return f"{tier}, {'VNNI' if cpu_vnni() else 'no VNNI'}"


def gpu_bf16_native() -> bool:
    """True when a GPU is here and computes bfloat16 natively."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def native_bf16(device_type: str | None = None) -> bool:
    """Whether ``device_type`` (default: the GPU when there is one, else the CPU) computes
    bfloat16 natively."""
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    return gpu_bf16_native() if device_type == "cuda" else cpu_bf16_native()


def pick_precision(asked: str, device_type: str) -> tuple[str, str]:
    """The precision to compute in on ``device_type`` for ``asked``, and the choice in words.

    ``auto`` is bfloat16 where the device computes it natively, else float32; int8 is only ever
    asked for.
    """
    where = "GPU" if device_type == "cuda" else "CPU"
    if asked != AUTO:
        return asked, f"{asked}, as asked"
    if native_bf16(device_type):
        return "bfloat16", f"bfloat16, native on this {where}"
    return "float32", f"float32, as bfloat16 is not native on this {where}"
