"""bench/default_model.py, the script that rebuilds the bundled model, run as the README runs it
(on a tiny model and invented data): lever runs, the student distilled from them, the chosen run
installed as the bundled model, and the table, every figure read from a run's own metrics.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--epochs", "1", "--max-length", "64", "--learning-rate", "1e-3",
        "--max-train-sentences", "40"]


def test_the_rebuild_script_trains_the_levers_then_installs_the_bundled_run(tiny_bert, conll_dir,
                                                                           tmp_path):
    levers, output, results = tmp_path / "levers", tmp_path / "assets" / "model", tmp_path / "t.json"
    # A table written before rows carried their machine and decoding: its row is kept as measured.
    earlier = {"lever": "document-context", "validation_f1": 0.5, "test_f1": 0.4,
               "evaluation_seconds_float32": {"validation": 1.0, "test": 1.0}}
    results.write_text(json.dumps({"machine": {"cpu": "earlier"}, "runs": [earlier]}))

    def rebuild(*chosen: str, rescore: bool = False) -> subprocess.CompletedProcess:
        argv = [sys.executable, "bench/default_model.py", "--data", str(conll_dir), "--runs",
                str(levers), "--output", str(output), "--results", str(results),
                *(["--rescore"] if rescore else []),
                "--levers", *chosen, "--", "--base-model", str(tiny_bert), *TINY]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    done = rebuild("distilled", "case-feature")
    table = json.loads(results.read_text())
    assert [r["lever"] for r in table["runs"]] == ["case-feature", "document-context", "teachers",
                                                   "distilled"]
    teacher, kept, ensemble, student = table["runs"]
    assert kept == {**earlier, "machine": {"cpu": "earlier"},
                    "decoding": "each word's most probable label"}
    assert student["teachers"] == ensemble["teachers"] == [str(levers / "case-feature")]
    assert {r["decoding"] for r in (teacher, ensemble, student)} == {"most probable IOB2 sequence"}
    # One teacher's averaged predictions are its own: scored as the run itself was.
    assert (ensemble["validation_f1"], ensemble["test_f1"]) == (teacher["validation_f1"],
                                                               teacher["test_f1"])
    for r, run in zip([teacher, student], [levers / "case-feature", levers / "distilled"]):
        metrics = json.loads((run / "metrics.json").read_text())
        assert r["test_f1"] == round(metrics["test"]["overall"]["f1"], 4)
        assert r["validation_f1"] == round(metrics["validation"]["overall"]["f1"], 4)
    assert "Distilled: 50% of the loss" in (levers / "distilled" / "README.md").read_text()
    assert f"{'distilled':<22}" in done.stdout and f"wrote {results}" in done.stdout
    assert not output.exists()  # the bundled lever was not run

    # Again with the bundled lever: the run already there is kept and scored again, the new one
    # installed.
    trained = json.loads((levers / "case-feature" / "metrics.json").read_text())
    again = rebuild("case-feature", "context-and-subtokens", rescore=True)
    assert f"case-feature: kept {levers / 'case-feature'}" in again.stderr
    assert "case-feature: scored again" in again.stderr
    rescored = json.loads((levers / "case-feature" / "metrics.json").read_text())
    assert "rescored" not in trained and "rescored" in rescored
    assert f"Scored again on {rescored['rescored']}" in (levers / "case-feature" / "README.md").read_text()
    assert (rescored["training"], rescored["history"]) == (trained["training"], trained["history"])
    bundled = levers / "context-and-subtokens"
    assert json.loads((output / "metrics.json").read_text()) == json.loads(
        (bundled / "metrics.json").read_text())
    assert (output / "model.safetensors").read_bytes() == (bundled / "model.safetensors").read_bytes()
    card = (output / "README.md").read_text()
    assert "\n# default\n" in card
    rebuild_line = card.split("## Rebuild")[1].split("```bash\n")[1].split("\n```")[0]
    assert "--document-context" in rebuild_line and "--label-all-tokens" in rebuild_line
    assert f"--output {output}" in rebuild_line
    table = json.loads(results.read_text())
    assert [r["lever"] for r in table["runs"]] == ["case-feature", "document-context",
                                                   "context-and-subtokens", "teachers", "distilled"]
    assert table["runs"][3:] == [ensemble, student] and table["bundled"] == "context-and-subtokens"
    assert table["runs"][0]["rescored"] == rescored["rescored"]
    assert table["runs"][0]["test_f1"] == round(rescored["test"]["overall"]["f1"], 4)
    assert table["runs"][2]["words_read_from"] == "every sub-token"
    assert table["runs"][0]["words_read_from"] == "the first sub-token"
