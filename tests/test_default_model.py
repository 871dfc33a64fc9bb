"""bench/default_model.py, the script that rebuilds the bundled model, run as the README runs it
(on a tiny model and invented data): lever runs, then the student distilled from them, then the
table, every figure read from a run's own metrics.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_rebuild_script_trains_the_levers_then_the_student_from_them(tiny_bert, conll_dir,
                                                                        tmp_path):
    levers, output, results = tmp_path / "levers", tmp_path / "assets" / "model", tmp_path / "t.json"
    argv = [sys.executable, "bench/default_model.py", "--data", str(conll_dir), "--runs",
            str(levers), "--output", str(output), "--results", str(results),
            "--levers", "distilled", "case-feature",
            "--", "--base-model", str(tiny_bert), "--epochs", "1", "--max-length", "64",
            "--learning-rate", "1e-3", "--max-train-sentences", "40"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads(results.read_text())
    assert [r["lever"] for r in table["runs"]] == ["case-feature", "teachers", "distilled"]
    teacher, ensemble, student = table["runs"]
    assert student["teachers"] == ensemble["teachers"] == [str(levers / "case-feature")]
    # One teacher's averaged predictions are its own: scored as the run itself was.
    assert (ensemble["validation_f1"], ensemble["test_f1"]) == (teacher["validation_f1"],
                                                               teacher["test_f1"])
    for r, run in zip([teacher, student], [levers / "case-feature", output]):
        metrics = json.loads((run / "metrics.json").read_text())
        assert r["test_f1"] == round(metrics["test"]["overall"]["f1"], 4)
        assert r["validation_f1"] == round(metrics["validation"]["overall"]["f1"], 4)
    assert "Distilled: 50% of the loss" in (output / "README.md").read_text()
    assert f"{'distilled':<18}" in done.stdout and f"wrote {results}" in done.stdout
    # Run again, the lever runs are kept and only the student is trained.
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"case-feature: kept {levers / 'case-feature'}" in again.stderr
    assert "distilled: " in again.stderr and "--teacher" in again.stderr
