"""``python app.py`` as a Space serves it (``SPACE_ID`` set), driven through ``gradio_client``:
nobody is signed in, so fine-tuning is refused by default, and a public host's limits hold."""

from __future__ import annotations

import re

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from conftest import make_sentences, write_conll


def form(train, **changes) -> dict:
    values = dict(name="", base="tiny", base_hub="", source="upload",
                  train_file=handle_file(str(train)), validation_file=None, learning_rate=1e-3,
                  train_batch_size=4, epochs=1, seed=42, weight_decay=0.0, warmup_ratio=0.0,
                  max_length=64, max_train_sentences=0, document_context=False,
                  label_all_tokens=False, case_feature=False)
    return {**values, **changes}


@pytest.mark.parametrize("server, changes, message", [
    # The Space's default: only signed-in visitors fine-tune.
    ("space_server", {}, "sign in with Hugging Face (the button at the top of the page) to "
                         "fine-tune on this Space"),
    # A Space open to anyone (the ZeroGPU one) still holds its default limits.
    ("zerogpu_server", {"epochs": 100},
     "epochs must be at most 10 on this server (NER_MAX_EPOCHS), found 100"),
], ids=["nobody signed in", "100 epochs"])
def test_a_space_refuses_fine_tunes_it_should_not_run(request, tmp_path, server, changes, message):
    served = request.getfixturevalue(server)
    train = write_conll(tmp_path / "train.txt", make_sentences(20, seed=1))
    before = sorted(p.name for p in served.runs_dir.iterdir())
    client = Client(served.url, verbose=False, download_files=False)
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(**form(train, name="refused", **changes), api_name="/fine_tune")
    assert sorted(p.name for p in served.runs_dir.iterdir()) == before  # no job, no directory
    # Everyone may still use the models.
    _, table, _, _ = client.predict("anna weber visited berlin.", "tiny", "", 0.0,
                                    api_name="/highlight")
    assert table["data"][0][1] == "ORG"
