"""One way to build a fine-tune: ``ner_core.plan`` for the command line, the form and the API; the
base model resolved once; errors that say whose fault they are; estimates from a model's size."""

from __future__ import annotations

import logging
import signal

import gradio as gr
import pytest

from conftest import make_sentences, write_conll
from live_app import make_run
from ner_core import TrainConfig, cli, models, preset
from ner_core.errors import UserError
from ner_core.jobs import FineTuneJobs
from ner_core.plan import AUTO, plan_fine_tune
from studio import finetune as ft
from studio import training as tr
from studio.data import TrainingData
from studio.errors import shown_to_user


@pytest.fixture
def trained(runs_dir, tiny_bert):
    """A saved run that passes on capitals marked and windows of 64 sub-tokens."""
    run = make_run(runs_dir, "trained", tiny_bert)
    (run / "train_config.json").write_text(
        TrainConfig(base_model="minilm", max_length=64, case_feature=True).to_json())
    return "trained"


@pytest.mark.parametrize("preset_name, expected", [
    (None, preset("continue", base_model="trained", max_length=64, case_feature=True)),
    (AUTO, preset("continue", base_model="trained", max_length=64, case_feature=True)),
    ("short", preset("short", base_model="trained", max_length=64, case_feature=True)),
])
def test_a_trained_base_passes_on_its_input_settings_under_any_preset(trained, preset_name,
                                                                      expected):
    assert plan_fine_tune({"base_model": trained}, preset_name).config == expected


def test_what_is_given_wins_over_the_base_and_the_preset(trained):
    plan = plan_fine_tune({"base_model": trained, "max_length": 32, "epochs": 1.0})
    assert (plan.config.max_length, plan.config.epochs, plan.config.case_feature) == (32, 1.0, True)
    assert plan.inherited == {"case_feature": True, "document_context": False,
                              "context_tokens": 64, "max_length": 64}


def test_an_unknown_preset_is_refused_naming_the_choices():
    with pytest.raises(UserError, match="preset must be one of auto, recipe, short, bundled, "
                                        "continue, found 'fast'"):
        plan_fine_tune({"base_model": "minilm"}, "fast")


def test_the_form_the_api_and_the_cli_build_the_same_config(trained):
    """What the form shows for a base is what an API call that leaves everything out trains with,
    and what the command line builds with no flags."""
    shown = dict(zip(tr.FORM, tr.form_values(trained, AUTO)))
    from_form = tr.plan_from_form(trained, "", AUTO, shown).config
    from_api = tr.plan_from_form(trained, "", AUTO, {name: None for name in tr.FORM}).config
    args = cli._build_parser().parse_args(["train", "--base-model", trained, "--output", "x",
                                           "--logging-steps", str(tr.LOGGING_STEPS)])
    from_cli = plan_fine_tune({f: getattr(args, f) for f in ("base_model", "logging_steps")},
                              args.preset).config
    assert from_form == from_api == from_cli
    assert (from_api.case_feature, from_api.max_length, from_api.learning_rate) == (True, 64, 3e-5)


def test_a_preset_picked_in_the_form_sets_its_base_and_the_form(trained):
    base, *values = ft.apply_preset("short", trained)
    assert base == models.ENCODER  # the short run is of the offline encoder
    assert dict(zip(tr.FORM, values)) == {
        "learning_rate": 3e-4, "train_batch_size": 16, "epochs": 1.0, "seed": 42,
        "weight_decay": 0.01, "warmup_ratio": 0.1, "max_length": 256,
        "max_train_sentences": 2000, "document_context": False, "label_all_tokens": False,
        "case_feature": False}
    # On a trained base the bundled settings keep what that base passes on.
    assert ft.fill_form(trained, "bundled")[list(tr.FORM).index("max_length")] == 64
    # "continue" keeps a trained base, and takes default for an encoder.
    assert ft.apply_preset("continue", trained)[0] == trained
    assert ft.apply_preset("continue", models.ENCODER)[0] == models.DEFAULT
    assert ft.apply_preset(AUTO, models.ENCODER)[0] == models.ENCODER


def test_the_api_parameters_of_fine_tune_default_to_not_given():
    import app

    demo = app.build_demo()
    parameters = {p["parameter_name"]: p for p in
                  demo.get_api_info()["named_endpoints"]["/fine_tune"]["parameters"]}
    for name in tr.FORM:
        assert (parameters[name]["parameter_has_default"], parameters[name]["parameter_default"]) \
            == (True, None), name
    assert parameters["preset"]["parameter_default"] == AUTO


def test_a_start_resolves_its_base_model_once(trained, tmp_path, monkeypatch):
    """From the Start button to the saved run, the base's name goes through the resolver once."""
    resolved = []
    real = models.resolve
    monkeypatch.setattr(models, "resolve",
                        lambda name, *args, **kwargs: resolved.append(name) or real(name, *args,
                                                                                     **kwargs))
    trainer_saw = []

    def fake_fine_tune(config, data, output_dir, base=None, **kwargs):
        trainer_saw.append(base)
        raise UserError("stopped here: only the planning is under test")

    jobs = FineTuneJobs(fake_fine_tune)
    monkeypatch.setattr(ft, "JOBS", jobs)
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: False)
    tr._reference_parameters()  # the estimate's yardstick, the encoder, resolved apart
    train = write_conll(tmp_path / "train.txt", make_sentences(8, seed=1))
    command = next(ft.start_fine_tune("once", trained, "", "upload", str(train), None))
    assert "--base-model trained" in command
    jobs.wait(30)
    assert resolved.count(trained) == 1, resolved
    assert trainer_saw[0].name == trained and trainer_saw[0].kind == "run"


def test_a_start_with_the_continue_preset_sizes_it_to_the_data(trained, tmp_path, conll_dir,
                                                              monkeypatch):
    """The app's start gives the trainer the continue preset's settings for the upload's size,
    as the command line does, and names the preset for the run's card."""
    trainer_saw = []

    def fake_fine_tune(config, data, output_dir, **kwargs):
        trainer_saw.append((config, kwargs["preset"]))
        raise UserError("stopped here: only the planning is under test")

    jobs = FineTuneJobs(fake_fine_tune)
    monkeypatch.setattr(ft, "JOBS", jobs)
    monkeypatch.setattr(ft, "_trains_on_gpu", lambda: False)
    monkeypatch.setenv("NER_DATA_DIR", str(conll_dir))  # what is replayed
    (tmp_path / "upload").mkdir()
    train = write_conll(tmp_path / "upload" / "train.txt", make_sentences(40, seed=1))
    command = next(ft.start_fine_tune("sized", trained, "", "upload", str(train), None,
                                      replay=True, preset="continue"))
    jobs.wait(30)
    config, preset_name = trainer_saw[0]
    assert (config.replay_ratio, preset_name) == (25.0, "continue")  # 1,000 replayed for 40
    assert "--replay-ratio 25.0" in command

    # Without replay there is nothing to size: the preset's settings as the form shows them.
    command = next(ft.start_fine_tune("unsized", trained, "", "upload", str(train), None,
                                      replay=False, preset="continue"))
    jobs.wait(30)
    assert trainer_saw[1][0] == tr.plan_from_form(trained, "", "continue", {}).config
    assert "--replay-ratio" not in command

    # Past 500 new sentences, two replayed per new one: the preset's own ratio, so the command
    # leaves it to the preset as the command line would size it again.
    many = write_conll(tmp_path / "upload" / "many.txt", make_sentences(600, seed=2))
    command = next(ft.start_fine_tune("many", trained, "", "upload", str(many), None,
                                      replay=True, preset="continue"))
    jobs.wait(30)
    assert (trainer_saw[2][0].replay_ratio, trainer_saw[2][1]) == (2.0, "continue")
    assert "--replay-ratio" not in command


def test_the_estimate_grows_with_what_the_base_computes(trained, tiny_bert, tmp_path):
    data = TrainingData("upload", str(write_conll(tmp_path / "t.txt", make_sentences(10))), None)
    tiny = tr.plan_from_form(trained, "", AUTO, {})
    encoder = tr.plan_from_form(models.ENCODER, "", AUTO, {"epochs": tiny.config.epochs})
    assert models.compute_parameters(tiny.base) < models.compute_parameters(encoder.base)
    assert tr.training_work(tiny, data) < tr.training_work(encoder, data) == \
        10 * tiny.config.epochs  # the encoder is the yardstick: its scale is 1


def test_a_library_error_in_a_handler_is_a_fault_of_the_studio_and_is_logged(caplog):
    @shown_to_user
    def handler():
        int("not a number")  # a ValueError from below, not the user's input

    with caplog.at_level(logging.ERROR, logger="studio"), \
            pytest.raises(gr.Error, match=r"something went wrong in the studio itself, not in "
                                          r"what you gave it.*\(ValueError\)") as caught:
        handler()
    assert "not a number" not in str(caught.value)
    assert "Traceback" in caplog.text and "invalid literal for int()" in caplog.text


def test_bad_input_in_a_handler_is_shown_as_it_is():
    @shown_to_user
    def handler():
        raise UserError("expected <b>one</b> thing, found two")

    with pytest.raises(gr.Error, match="expected &lt;b&gt;one&lt;/b&gt; thing, found two"):
        handler()


def test_the_cli_lets_a_bug_through_and_says_bad_input_in_one_line(tmp_path, monkeypatch, capfd):
    def broken(*args, **kwargs):
        raise ValueError("a bug below the CLI")

    interrupt = signal.getsignal(signal.SIGINT)  # train's handler must not stay with pytest
    try:
        with monkeypatch.context() as patch:
            patch.setattr(models, "resolve", broken)
            # Not caught: Python prints its traceback and exits with 1.
            with pytest.raises(ValueError, match="a bug below the CLI"):
                cli.main(["train", "--base-model", "minilm", "--output", str(tmp_path / "x")])
        capfd.readouterr()
        assert cli.main(["train", "--base-model", "minilm", "--epochs", "0", "--output",
                         str(tmp_path / "y")]) == 2
    finally:
        signal.signal(signal.SIGINT, interrupt)
    assert capfd.readouterr().err == "error: epochs must be in (0, 100], found 0.0\n"


def test_the_gpu_worker_logs_what_it_caught(trained, caplog, tmp_path):
    from ner_core.jobs import StopRequest
    from studio import zerogpu

    stop = StopRequest.new()
    with caplog.at_level(logging.ERROR, logger="studio"):
        reports = list(zerogpu.train_in_worker(TrainConfig(base_model="missing-model"), {},
                                               tmp_path / "out", stop, {}, 60))
    assert isinstance(reports[-1], zerogpu.Failure)
    assert "failed in the GPU worker" in caplog.text and "Traceback" in caplog.text
