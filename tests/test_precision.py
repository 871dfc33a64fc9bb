"""``precision="auto"``: bfloat16 where the device computes it natively, float32 elsewhere, said
in words; the default of the Recognizer, the CLI and every tab's loaded models."""

from __future__ import annotations

import json

import pytest
import torch

from ner_core import cli, hardware
from ner_core.inference import Recognizer


def cpu(monkeypatch, *, avx512_bf16: bool, amx: bool) -> None:
    """This CPU, as torch's instruction checks see it."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize("avx512_bf16, amx, picked, said", [
    (False, False, "float32", "float32, as bfloat16 is not native on this CPU"),
    (True, False, "bfloat16", "bfloat16, native on this CPU"),
    (False, True, "bfloat16", "bfloat16, native on this CPU"),
])
def test_auto_picks_bfloat16_only_where_the_cpu_computes_it(monkeypatch, avx512_bf16, amx,
                                                            picked, said):
    cpu(monkeypatch, avx512_bf16=avx512_bf16, amx=amx)
    assert hardware.pick_precision("auto", "cpu") == (picked, said)


@pytest.mark.parametrize("native, picked", [(True, "bfloat16"), (False, "float32")])
def test_auto_on_a_gpu_asks_the_gpu(monkeypatch, native, picked):
    cpu(monkeypatch, avx512_bf16=not native, amx=False)  # the CPU's answer must not matter
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: native)
    assert hardware.pick_precision("auto", "cuda")[0] == picked


@pytest.mark.parametrize("asked", ["float32", "bfloat16", "int8"])
def test_a_precision_asked_for_is_kept_whatever_the_machine(monkeypatch, asked):
    cpu(monkeypatch, avx512_bf16=True, amx=True)
    assert hardware.pick_precision(asked, "cpu") == (asked, f"{asked}, as asked")


@pytest.mark.parametrize("native, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_the_recognizer_computes_in_what_auto_picked(monkeypatch, tiny_bert, native, dtype):
    cpu(monkeypatch, avx512_bf16=native, amx=False)
    recognizer = Recognizer(str(tiny_bert))  # auto is the default
    assert recognizer.precision == ("bfloat16" if native else "float32")
    assert next(recognizer.model.parameters()).dtype == dtype
    assert isinstance(recognizer.recognize("Anna Weber visited Berlin."), list)


def test_the_cli_defaults_to_auto_and_says_the_choice(monkeypatch, tiny_bert, capsys):
    cpu(monkeypatch, avx512_bf16=False, amx=False)
    assert cli._build_parser().parse_args(["predict", "--model", "m", "--text", "t"]).precision \
        == "auto"
    assert cli.main(["predict", "--model", str(tiny_bert), "--text", "Anna Weber"]) == 0
    out, err = capsys.readouterr()
    assert isinstance(json.loads(out), list)  # stdout stays the JSON; the choice goes to stderr
    assert err.endswith("computes in float32, as bfloat16 is not native on this CPU\n")


def test_every_tab_loads_its_models_in_auto(monkeypatch, biased):
    from studio import models

    cpu(monkeypatch, avx512_bf16=True, amx=False)
    models.LOADED._loaded.clear()
    try:
        assert models.recognizer(biased).precision == "bfloat16"
        assert models.recognizer(biased, int8=True).precision == "int8"
        _, timing = models.recognize("Anna Weber visited Berlin.", biased, "")
        assert timing.endswith("(bfloat16, native on this CPU)")
    finally:
        models.LOADED._loaded.clear()  # the next tests load for the real machine again
