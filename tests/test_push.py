"""Pushing saved runs to the Hub, and checking Hub models before they download; the Hub is mocked
at huggingface_hub's boundary (HfApi), so nothing here touches the network."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from unittest import mock

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import ModelInfo, RepoUrl
from live_app import make_run

from ner_core import hub, hub_check
from ner_core.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
REPO = "someone/ner-tiny"
URL = f"https://huggingface.co/{REPO}"
RUN_FILES = {"README.md", "config.json", "metrics.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json", "train_config.json"}


@pytest.fixture
def run(runs_dir, tiny_bert, tmp_path) -> Path:
    """A complete run ``tiny`` with a card, and files a push must leave behind."""
    path = make_run(runs_dir, "tiny", tiny_bert)
    (path / "README.md").write_text("---\nlibrary_name: transformers\n---\n\n# tiny\n")
    (path / ".env").write_text("HF_TOKEN=hf_secret\n")
    (path / "pytorch_model.bin").write_bytes(b"pickled")
    (path / "optimizer.pt").write_bytes(b"pickled")
    (path / "checkpoint-2").mkdir()
    (path / "checkpoint-2" / "config.json").write_text("{}")
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (path / "link.json").symlink_to(outside)
    return path


@pytest.fixture
def hub_calls():
    """``HfApi.create_repo`` and ``HfApi.upload_folder`` mocked; yields both mocks."""
    with mock.patch.object(HfApi, "create_repo", autospec=True, return_value=RepoUrl(URL)) as create, \
            mock.patch.object(HfApi, "upload_folder", autospec=True) as upload:
        yield create, upload


def snapshot(directory: Path) -> dict:
    """Every entry under ``directory`` (hidden ones too): its bytes or link target, and mtime."""
    return {str(p.relative_to(directory)): (p.readlink() if p.is_symlink() else
                                            p.read_bytes() if p.is_file() else None,
                                            p.lstat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


def uploaded(upload: mock.Mock) -> set[str]:
    """What ``upload_folder`` would send for the call it got, by huggingface_hub's own filter."""
    kwargs = upload.call_args.kwargs
    folder = Path(kwargs["folder_path"])
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    ignore = list(kwargs.get("ignore_patterns") or []) + DEFAULT_IGNORE_PATTERNS
    return set(filter_repo_objects(files, allow_patterns=kwargs.get("allow_patterns"),
                                   ignore_patterns=ignore))


def http_error(status: int, message: str = "Client Error") -> HfHubHTTPError:
    request = httpx2.Request("POST", f"https://huggingface.co/api/repos/{REPO}")
    return HfHubHTTPError(f"{status} {message}", response=httpx2.Response(status, request=request))


def test_push_creates_a_private_repository_and_uploads_only_the_runs_files(run, online, hub_calls):
    create, upload = hub_calls
    before = snapshot(run)
    assert hub.push_run("tiny", REPO) == URL
    create.assert_called_once_with(mock.ANY, REPO, private=True, exist_ok=True, repo_type="model")
    upload.assert_called_once()
    assert upload.call_args.kwargs["repo_id"] == REPO
    assert Path(upload.call_args.kwargs["folder_path"]) == run
    assert upload.call_args.kwargs["commit_message"]
    assert uploaded(upload) == RUN_FILES, "no hidden, pickled, linked or nested files"
    assert create.call_args.args[0].token is None, "huggingface_hub reads HF_TOKEN itself"
    assert snapshot(run) == before


def test_push_by_directory_with_a_token_and_public(run, online, hub_calls):
    create, upload = hub_calls
    assert hub.push_run(str(run), REPO, token="hf_given", private=False) == URL
    create.assert_called_once_with(mock.ANY, REPO, private=False, exist_ok=True, repo_type="model")
    assert create.call_args.args[0].token == "hf_given"
    assert upload.call_args.args[0].token == "hf_given"


def test_pushed_files_of_a_real_run_layout(run):
    assert hub.pushed_files(run) == sorted(RUN_FILES)


@pytest.mark.parametrize("error, message", [
    (http_error(401, "Unauthorized"), f"the token may not write to {REPO}: 401 Unauthorized$"),
    (http_error(403, "Forbidden"), f"the token may not write to {REPO}: 403 Forbidden$"),
    (http_error(500, "Server Error"), f"the push to {REPO} failed: 500 Server Error; the local run is untouched$"),
    (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"),
     f"the push to {REPO} failed: \\[Errno -3\\] Temporary failure in name resolution; the local run is untouched$"),
    (httpx2.ReadTimeout("The read operation timed out"),
     f"the push to {REPO} failed: The read operation timed out; the local run is untouched$"),
    (ConnectionResetError(104, "Connection reset by peer"),
     f"the push to {REPO} failed: .*Connection reset by peer; the local run is untouched$"),
])
@pytest.mark.parametrize("failing", ["create_repo", "upload_folder"])
def test_hub_errors_become_one_sentence_and_leave_the_run_untouched(run, online, hub_calls, error,
                                                                    message, failing):
    create, upload = hub_calls
    (create if failing == "create_repo" else upload).side_effect = error
    before = snapshot(run)
    with pytest.raises(ValueError, match=message) as caught:
        hub.push_run("tiny", REPO)
    assert "\n" not in str(caught.value)
    assert snapshot(run) == before


def test_push_without_any_token_says_how_to_give_one(run, online, hub_calls, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(ValueError, match=f"^pushing to {REPO} needs a Hugging Face token with write "
                                         "access: sign in, or set HF_TOKEN$"):
        hub.push_run("tiny", REPO)
    hub_calls[0].assert_not_called()


def test_push_offline_is_refused_before_any_hub_call(run, hub_calls, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    with pytest.raises(ValueError, match=f"^cannot push to {REPO}: the Hugging Face Hub cannot be "
                                         "reached from here"):
        hub.push_run("tiny", REPO, token="hf_given")
    hub_calls[0].assert_not_called()


@pytest.mark.parametrize("repo_id", ["ner-tiny", "a/b/c", "../x", "someone/ner tiny", "", "/x"])
def test_push_refuses_a_repository_id_that_is_not_owner_name(run, online, hub_calls, repo_id):
    with pytest.raises(ValueError, match=f"^expected a Hub repository id owner/name to push to, "
                                         f"found {re.escape(repr(repo_id))}$"):
        hub.push_run("tiny", repo_id)
    hub_calls[0].assert_not_called()


def test_push_refuses_what_is_not_a_complete_run(run, online, hub_calls, runs_dir, tmp_path):
    with pytest.raises(ValueError, match="^expected the name or directory of a saved run, found "
                                         "'nothing', which is neither$"):
        hub.push_run("nothing", REPO)
    (run / "metrics.json").unlink()
    for name in ("tiny", str(run)):
        with pytest.raises(ValueError, match=f"^{re.escape(name)}: expected a complete saved run "
                                             "with .*, found one without metrics.json$"):
            hub.push_run(name, REPO)
    staging = runs_dir / ".partial-half-123"
    staging.mkdir()
    with pytest.raises(ValueError, match="which is neither$"):
        hub.push_run(str(staging), REPO)
    hub_calls[0].assert_not_called()


def test_cli_push_prints_the_url(run, online, hub_calls, capsys):
    create, _ = hub_calls
    assert main(["push", "tiny", "--repo", REPO, "--public"]) == 0
    assert capsys.readouterr().out == URL + "\n"
    create.assert_called_once_with(mock.ANY, REPO, private=False, exist_ok=True, repo_type="model")


def test_cli_push_offline_prints_one_line_and_exits_2(run, hub_calls, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.hub_reachable.cache_clear()
    try:
        assert main(["push", "tiny", "--repo", REPO]) == 2
    finally:
        hub.hub_reachable.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot push to {REPO}: the Hugging Face Hub")
    hub_calls[0].assert_not_called()


@pytest.mark.parametrize("argv", [["push", "tiny"], ["push", "tiny", "--repo", REPO, "--private", "--public"]])
def test_cli_push_usage_mistakes_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_readme_push_command_runs(runs_dir, tiny_bert, online, hub_calls, monkeypatch, capsys):
    commands = [line for line in README.read_text().splitlines()
                if line.startswith("python -m ner_core push ")]
    assert len(commands) == 1, "the README shows one push command"
    argv = shlex.split(commands[0])
    run = make_run(runs_dir, "smoke", tiny_bert)
    monkeypatch.chdir(runs_dir.parent)  # the command names runs/smoke
    assert argv[4] == f"{runs_dir.name}/smoke"
    create, upload = hub_calls
    assert main(argv[3:]) == 0
    repo = argv[argv.index("--repo") + 1]
    create.assert_called_once_with(mock.ANY, repo, private=True, exist_ok=True, repo_type="model")
    assert Path(upload.call_args.kwargs["folder_path"]).resolve() == run.resolve()
    assert capsys.readouterr().out == URL + "\n"


# --- check_hub_model ---------------------------------------------------------------------------

MB = 1_000_000


def model(pipeline_tag: str | None = "token-classification", model_type: str | None = "bert",
          files: dict | None = None, architectures: list[str] | None = None, **fields) -> ModelInfo:
    """A ``ModelInfo`` as ``model_info(..., files_metadata=True)`` returns it."""
    files = {"config.json": 700, "model.safetensors": 400 * MB} if files is None else files
    config = {"model_type": model_type} if model_type else {}
    if architectures:
        config["architectures"] = architectures
    return ModelInfo(id="someone/model", pipeline_tag=pipeline_tag, config=config,
                     private=fields.get("private", False), gated=fields.get("gated", False),
                     siblings=[{"rfilename": name, "size": size} for name, size in files.items()])


@pytest.fixture
def hub_api(monkeypatch):
    """``HfApi`` replaced by a spec'd mock, and every download function made to fail."""
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    with mock.patch("huggingface_hub.HfApi", autospec=True) as api_class, \
            mock.patch("huggingface_hub.hf_hub_download", side_effect=AssertionError("download")) as one, \
            mock.patch("huggingface_hub.snapshot_download", side_effect=AssertionError("download")) as every:
        yield api_class.return_value
        one.assert_not_called()
        every.assert_not_called()


def check(api, info_or_error, repo="someone/model", max_bytes=500 * MB, purpose="training"):
    if isinstance(info_or_error, BaseException):
        api.model_info.side_effect = info_or_error
    else:
        api.model_info.return_value = info_or_error
    hub_check.check_hub_model(repo, max_bytes, purpose)
    # Only the description was asked for: no other Hub call, so nothing downloaded.
    assert api.method_calls == [mock.call.model_info(repo, files_metadata=True,
                                                     timeout=hub.INFO_SECONDS)]


@pytest.mark.parametrize("info, purpose, max_bytes", [
    (model(), "inference", 500 * MB),
    (model(), "inference", 400 * MB + 700),  # exactly the limit: weights and configuration
    (model(), "training", None),
    (model("fill-mask"), "training", 500 * MB),
    (model("feature-extraction", "mpnet"), "training", 500 * MB),
    (model("sentence-similarity", "bert"), "training", 500 * MB),
    (model(None, "xlm-roberta"), "training", 500 * MB),
    (model("text-classification", "deberta-v2"), "training", 500 * MB),  # an encoder; head replaced
    (model(None, "bert", architectures=["BertForTokenClassification"]), "inference", 500 * MB),
    (model(files={"model-00001-of-00002.safetensors": 200 * MB,
                  "model-00002-of-00002.safetensors": 200 * MB,
                  "onnx/model.safetensors": 400 * MB}), "inference", 400 * MB),
])
def test_hub_models_that_may_load(hub_api, info, purpose, max_bytes):
    check(hub_api, info, purpose=purpose, max_bytes=max_bytes)


def not_found() -> RepositoryNotFoundError:
    request = httpx2.Request("GET", "https://huggingface.co/api/models/someone/model")
    return RepositoryNotFoundError("401 Repository Not Found", response=httpx2.Response(401, request=request))


def gated_error() -> GatedRepoError:
    request = httpx2.Request("GET", "https://huggingface.co/api/models/someone/model")
    return GatedRepoError("403 gated", response=httpx2.Response(403, request=request))


@pytest.mark.parametrize("info, purpose, message", [
    (not_found(), "inference", "^expected a public model on the Hugging Face Hub, found no model "
                               "'someone/model' \\(it does not exist, or it is private\\)$"),
    (gated_error(), "training", "^someone/model is gated \\(its owner grants access on request\\)"),
    (model(gated="manual"), "training", "^someone/model is gated"),
    (model(private=True), "inference", "^someone/model is a private model; only public models"),
    (http_error(500, "Server Error"), "training", "^the Hub did not describe someone/model: 500 Server Error$"),
    (httpx2.ConnectError("connection refused"), "training",
     "^the Hub could not be asked about someone/model: connection refused$"),
    (model(files={"config.json": 700, "pytorch_model.bin": 400 * MB}), "inference",
     "^someone/model: expected safetensors weights \\(model.safetensors\\), found none; pickled "
     "weights are never loaded$"),
    (model(files={"pytorch_model.bin": 400 * MB, "onnx/model.safetensors": 100 * MB}), "training",
     "pickled weights are never loaded$"),
    (model(files={"model-1.safetensors": 300 * MB, "model-2.safetensors": 250 * MB}), "training",
     "^someone/model: expected at most 500.0 MB of model files here, found 550.0 MB in the 2 "
     "files that loading it needs \\(weights, configuration and tokenizer\\)$"),
    (model(files={"config.json": 700, "model.safetensors": 500 * MB}), "training",
     "^someone/model: expected at most 500,000,000 bytes of model files here, found 500,000,700 "
     "bytes in the 2 files"),
    (model(files={"model.safetensors": None}), "training",
     "^someone/model: the Hub did not give the size of model.safetensors, so it cannot be checked "
     "against the limit of 500.0 MB$"),
    (model("text-generation", "gpt2"), "training",
     "^expected a token-classification model or a text encoder .* to fine-tune, found "
     "someone/model with pipeline tag 'text-generation', model type 'gpt2'$"),
    (model("text-generation", None), "training", "found someone/model with pipeline tag 'text-generation'$"),
    (model(None, "llama"), "training", "found someone/model with model type 'llama'$"),
    (model(None, None), "training", "found someone/model with neither a pipeline tag nor a model type$"),
    (model("fill-mask", "bert"), "inference",
     "^expected a token-classification \\(NER\\) model to highlight with, found someone/model with "
     "pipeline tag 'fill-mask', model type 'bert'; a model without a NER head cannot highlight"),
])
def test_hub_models_that_are_refused_in_one_sentence(hub_api, info, purpose, message):
    with pytest.raises(ValueError, match=message) as caught:
        check(hub_api, info, purpose=purpose)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("repo, purpose, message", [
    ("../etc", "training", "^expected a Hub model id \\(owner/name\\), found '../etc'$"),
    ("a/b/c", "inference", "^expected a Hub model id"),
    ("someone/model", "highlight", "^expected purpose 'inference' or 'training', found 'highlight'$"),
])
def test_check_refuses_bad_arguments_before_asking_the_hub(hub_api, repo, purpose, message):
    with pytest.raises(ValueError, match=message):
        hub_check.check_hub_model(repo, None, purpose)
    hub_api.model_info.assert_not_called()


def test_check_offline_says_so_without_asking_the_hub(hub_api, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    with pytest.raises(ValueError, match="^the model 'someone/model' must come from the Hugging Face "
                                         "Hub, which cannot be reached from here"):
        hub_check.check_hub_model("someone/model", None, "inference")
    hub_api.model_info.assert_not_called()


def test_encoder_types_all_have_a_token_classification_head():
    from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES

    assert hub_check.ENCODER_MODEL_TYPES <= set(MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES)
