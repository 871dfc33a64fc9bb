"""``train --data`` and ``evaluate --data`` in formats other than CoNLL: the report of what reading
changed is printed, kept in the run's facts and stated in its card (README.md)."""

from __future__ import annotations

import json
import shlex
import signal
from pathlib import Path

import pytest
from conftest import make_sentences
from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

from ner_core import cli, load_data, runs
from ner_core.data import load_labelled
from ner_core.labels import spans

TRAIN = ["--epochs", "1", "--batch-size", "8", "--max-length", "64", "--learning-rate", "1e-3"]
# The ClassLabel order of the saved dataset: not the order label_list would give.
NAMES = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]


@pytest.fixture(autouse=True)
def keep_sigint_handler():
    """``train`` installs a SIGINT handler; an in-process call must not leave it to pytest."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


def task(words: list[tuple[str, str]], index: int) -> dict:
    """A Label Studio task of a sentence of ``make_sentences``: its words joined by spaces."""
    text = " ".join(word for word, _ in words)
    starts = [sum(len(w) + 1 for w, _ in words[:i]) for i in range(len(words))]
    results = []
    for kind, first, last in spans([tag for _, tag in words]):
        start, end = starts[first], starts[last - 1] + len(words[last - 1][0])
        results.append({"id": f"{index}-{first}", "from_name": "label", "to_name": "text",
                        "type": "labels", "value": {"start": start, "end": end,
                                                    "text": text[start:end], "labels": [kind]}})
    return {"id": index + 1, "data": {"text": text}, "annotations": [{"result": results}]}


@pytest.fixture
def label_studio_export(tmp_path) -> Path:
    """16 tasks; the first has a span that cuts its last letter off a word and one of a type
    outside the labels trained on."""
    tasks = [task(words, i) for i, words in enumerate(make_sentences(16, seed=4))]
    first = tasks[0]["annotations"][0]["result"]
    value = first[0]["value"]
    value["end"] -= 1
    value["text"] = value["text"][:-1]
    text = tasks[0]["data"]["text"]
    first.append({"id": "alien", "from_name": "label", "to_name": "text", "type": "labels",
                  "value": {"start": len(text) - 1, "end": len(text), "text": text[-1],
                            "labels": ["ALIEN"]}})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def saved_dataset(tmp_path) -> Path:
    """A ``save_to_disk`` DatasetDict (train, validation) with ClassLabel tags in ``NAMES`` order."""
    features = Features({"tokens": Sequence(Value("string")),
                         "ner_tags": Sequence(ClassLabel(names=NAMES))})

    def split(n: int, seed: int) -> Dataset:
        sentences = make_sentences(n, seed=seed)
        return Dataset.from_dict({"tokens": [[w for w, _ in s] for s in sentences],
                                  "ner_tags": [[NAMES.index(t) for _, t in s] for s in sentences]},
                                 features=features)

    path = tmp_path / "saved"
    DatasetDict({"train": split(16, 5), "validation": split(6, 6)}).save_to_disk(str(path))
    return path


def train(tiny_bert: Path, data: Path, output: Path, capfd, *extra: str) -> str:
    code = cli.main(["train", "--base-model", str(tiny_bert), "--data", str(data), "--output",
                     str(output), *TRAIN, *extra])
    _, err = capfd.readouterr()
    assert code == 0, err
    assert runs.is_complete(output)
    return err


def test_train_on_a_label_studio_export_states_the_report_in_the_card(
        tiny_bert, label_studio_export, tmp_path, capfd):
    output = tmp_path / "from-label-studio"
    err = train(tiny_bert, label_studio_export, output, capfd, "--labels", "PER,ORG,LOC,MISC")
    summary = "export.json (label-studio): 16 records, 16 examples, "
    assert summary in err and err.index(summary) < err.index("fine-tuning ")
    assert "    export.json:" in err and "widened to" in err

    facts = runs.read_json(output / "metrics.json")["training"]
    report = facts["data_report"]
    assert {change: c["count"] for change, c in report["changes"].items()} \
        == {"widened": 1, "unknown type": 1}
    assert report["entities_kept"] == report["entities_read"] - 1 == sum(report["types"].values())
    card = (output / "README.md").read_text()
    section = card[card.index("## Training data"):card.index("## Training\n")]
    assert (f"`export.json` (Label Studio JSON): 16 records read, 16 examples kept, "
            f"{report['entities_kept']} of {report['entities_read']} entities kept.") in section
    assert "| widened | 1 | a span that cut a word, widened to the whole word |" in section
    assert "| unknown type | 1 | a span of a type outside the label set, dropped |" in section
    for kind, n in report["types"].items():
        assert f"| {kind} | {n} |" in section
    assert "ALIEN" not in facts["labels"]
    # The rebuild command reads the data as this run did.
    rebuild = card.split("## Rebuild")[1].split("```bash\n")[1].split("\n")[0]
    again = cli._build_parser().parse_args(shlex.split(rebuild)[3:])
    assert (again.data, again.labels, again.cut) == (str(label_studio_export),
                                                     {"PER", "ORG", "LOC", "MISC"}, "widen")


def test_train_on_a_saved_dataset_states_the_report(
        tiny_bert, saved_dataset, tmp_path, capfd):
    output = tmp_path / "from-disk"
    err = train(tiny_bert, saved_dataset, output, capfd)
    assert "saved (huggingface (IOB2)): 22 records, 22 examples, " in err
    metrics = runs.read_json(output / "metrics.json")
    assert metrics["validation"]["n_sentences"] == 6
    card = (output / "README.md").read_text()
    section = card[card.index("## Training data"):card.index("## Training\n")]
    report = metrics["training"]["data_report"]
    assert "`saved` (Hugging Face dataset (IOB2)): 22 records read, 22 examples kept" in section
    assert "Every entity was kept as the data gave it." in section
    assert report["changes"] == {} and report["entities_kept"] == report["entities_read"] > 0


def test_load_labelled_of_a_saved_dataset_is_its_splits_with_their_ids(saved_dataset):
    data, report = load_labelled(saved_dataset)
    assert {split: data[split].num_rows for split in data} == {"train": 16, "validation": 6}
    assert data["train"].features["ner_tags"].feature.names == NAMES
    first = make_sentences(16, seed=5)[0]
    assert data["train"][0]["tokens"] == [w for w, _ in first]
    assert data["train"][0]["ner_tags"] == [NAMES.index(t) for _, t in first]
    assert report.records == 22 and report.examples == 22
    assert load_data(saved_dataset)["validation"]["tokens"] == data["validation"]["tokens"]


def test_evaluate_on_a_label_studio_export_prints_and_saves_the_report(
        tiny_bert, label_studio_export, tmp_path, capsys):
    output = tmp_path / "scores.json"
    assert cli.main(["evaluate", "--model", str(tiny_bert), "--data", str(label_studio_export),
                     "--split", "train", "--format", "label-studio", "--output", str(output)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("export.json (label-studio): 16 records, 16 examples, ")
    assert out[1] == "- widened: 1 (a span that cut a word, widened to the whole word)"
    assert out[2].startswith("    export.json:2: PER ") and " widened to " in out[2]
    assert any(line.startswith("overall (train, 16 sentences") for line in out)
    saved = json.loads(output.read_text())
    assert saved["data_report"]["changes"]["widened"]["count"] == 1
    assert saved["n_sentences"] == 16


@pytest.mark.parametrize("argv, message", [
    (["--data", "{data}", "--cut", "refuse"], "expected spans on whole words, found"),
    (["--data", "{data}", "--format", "doccano"],
     "the file looks like Label Studio JSON, not doccano JSONL: pass --format label-studio"),
    (["--data", "{data}", "--data-config", "en"],
     "--data-config applies to a Hub dataset id, found the path"),
])
def test_train_refuses_data_it_cannot_read_as_asked_in_one_line(
        tiny_bert, label_studio_export, tmp_path, capfd, argv, message):
    output = tmp_path / "refused"
    args = [a.replace("{data}", str(label_studio_export)) for a in argv]
    assert cli.main(["train", "--base-model", str(tiny_bert), "--output", str(output), *TRAIN,
                     *args]) == 2
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err
    assert not output.exists()
