"""Pushing a dataset of accepted examples to the Hub as a Hugging Face dataset; the Hub is mocked
at huggingface_hub's boundary (HfApi), as in test_push, and what would be uploaded is read back."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import httpx2
import pytest
from datasets import ClassLabel, Dataset
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import RepoUrl

from ner_core import annotations, hub
from ner_core.cli import main
from ner_core.dataset_export import HUB_PARQUET
from ner_core.labels import spans

REPO = "someone/corrections"
URL = f"https://huggingface.co/datasets/{REPO}"
EXAMPLES = [
    ("Anna Weber met Li in Berlin. Then Acme Corp left.",
     [(0, 10, "PER"), (15, 17, "PER"), (21, 27, "LOC"), (34, 43, "ORG")]),
    ("Oslo is cold.", [(0, 4, "LOC")]),
]


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "datasets-home"
    monkeypatch.setenv("NER_DATA_HOME", str(home))
    return home


@pytest.fixture
def corrections(data_home) -> Path:
    """The dataset ``corrections`` of ``EXAMPLES``; its file."""
    for text, entities in EXAMPLES:
        annotations.append("corrections", text, [{"start": a, "end": b, "label": label}
                                                 for a, b, label in entities], "tiny")
    return next(data_home.rglob("corrections.jsonl"))


@pytest.fixture
def hub_calls():
    """``HfApi.create_repo`` and ``HfApi.upload_folder`` mocked; the files each upload would send
    are kept (the folder is temporary) in ``upload.sent``."""
    sent: dict[str, bytes] = {}

    def keep(api, *, folder_path, **kwargs):
        folder = Path(folder_path)
        sent.update({p.relative_to(folder).as_posix(): p.read_bytes()
                     for p in folder.rglob("*") if p.is_file()})

    with mock.patch.object(HfApi, "create_repo", autospec=True, return_value=RepoUrl(URL)) as create, \
            mock.patch.object(HfApi, "upload_folder", autospec=True, side_effect=keep) as upload:
        upload.sent = sent
        yield create, upload


def read_back(parquet: bytes, tmp_path: Path) -> Dataset:
    path = tmp_path / "read-back.parquet"
    path.write_bytes(parquet)
    return Dataset.from_parquet(str(path))


def test_push_uploads_a_parquet_dataset_and_its_card_to_a_private_repository(
        corrections, online, hub_calls, tmp_path):
    create, upload = hub_calls
    before = corrections.read_bytes()
    assert hub.push_dataset("corrections", REPO, owner=None) == URL
    create.assert_called_once_with(mock.ANY, REPO, private=True, exist_ok=True, repo_type="dataset")
    assert upload.call_args.kwargs["repo_id"] == REPO
    assert upload.call_args.kwargs["repo_type"] == "dataset"
    assert create.call_args.args[0].token is None, "huggingface_hub reads HF_TOKEN itself"
    assert set(upload.sent) == {"README.md", HUB_PARQUET}
    assert corrections.read_bytes() == before

    rows = read_back(upload.sent[HUB_PARQUET], tmp_path)
    assert rows.column_names == ["tokens", "ner_tags", "doc_id"]
    tags = rows.features["ner_tags"].feature
    assert isinstance(tags, ClassLabel)
    found = [(" ".join(tokens[a:b]), kind, doc)
             for tokens, ids, doc in zip(rows["tokens"], rows["ner_tags"], rows["doc_id"])
             for kind, a, b in spans([tags.names[i] for i in ids])]
    assert found == [("Anna Weber", "PER", 0), ("Li", "PER", 0), ("Berlin", "LOC", 0),
                     ("Acme Corp", "ORG", 0), ("Oslo", "LOC", 1)]
    assert rows["tokens"][0] == ["Anna", "Weber", "met", "Li", "in", "Berlin", "."]

    card = upload.sent["README.md"].decode()
    assert card.startswith("---\ntask_categories:\n- token-classification\n")
    assert "# corrections" in card
    assert "| train | 3 | 5 |" in card  # sentences, entities
    for kind, n in {"LOC": 2, "ORG": 1, "PER": 2}.items():
        assert f"| {kind} | {n} |" in card


def test_push_with_a_given_token_and_public(corrections, online, hub_calls):
    create, upload = hub_calls
    assert hub.push_dataset("corrections", REPO, owner=None, token="hf_given", private=False) == URL
    create.assert_called_once_with(mock.ANY, REPO, private=False, exist_ok=True, repo_type="dataset")
    assert create.call_args.args[0].token == "hf_given"
    assert upload.call_args.args[0].token == "hf_given"


def http_error(status: int, message: str) -> HfHubHTTPError:
    request = httpx2.Request("POST", f"https://huggingface.co/api/repos/{REPO}")
    return HfHubHTTPError(f"{status} {message}", response=httpx2.Response(status, request=request))


@pytest.mark.parametrize("error, message", [
    (http_error(403, "Forbidden"), f"^the token may not write to {REPO}: 403 Forbidden$"),
    (http_error(500, "Server Error"),
     f"^the push to {REPO} failed: 500 Server Error; the local dataset is untouched$"),
    (httpx2.ConnectError("connection refused"),
     f"^the push to {REPO} failed: connection refused; the local dataset is untouched$"),
])
@pytest.mark.parametrize("failing", ["create_repo", "upload_folder"])
def test_hub_errors_become_one_sentence(corrections, online, hub_calls, error, message, failing):
    create, upload = hub_calls
    (create if failing == "create_repo" else upload).side_effect = error
    before = corrections.read_bytes()
    with pytest.raises(ValueError, match=message):
        hub.push_dataset("corrections", REPO, owner=None)
    assert corrections.read_bytes() == before


def test_push_without_any_token_says_how_to_give_one(corrections, online, hub_calls, monkeypatch,
                                                     tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(ValueError, match=f"^pushing to {REPO} needs a Hugging Face token with write "
                                         "access: sign in, or set HF_TOKEN$"):
        hub.push_dataset("corrections", REPO, owner=None)
    hub_calls[0].assert_not_called()


def test_push_offline_is_refused_before_any_hub_call(corrections, hub_calls, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    with pytest.raises(ValueError, match=f"^cannot push to {REPO}: the Hugging Face Hub cannot be "
                                         "reached from here .*; the local dataset is untouched$"):
        hub.push_dataset("corrections", REPO, owner=None, token="hf_given")
    hub_calls[0].assert_not_called()


@pytest.mark.parametrize("repo_id", ["corrections", "a/b/c", "../x", ""])
def test_push_refuses_a_repository_id_that_is_not_owner_name(corrections, online, hub_calls,
                                                             repo_id):
    with pytest.raises(ValueError, match=f"^expected a Hub repository id owner/name to push to, "
                                         f"found {re.escape(repr(repo_id))}$"):
        hub.push_dataset("corrections", repo_id, owner=None)
    hub_calls[0].assert_not_called()


def test_push_of_a_dataset_without_examples_is_refused(online, hub_calls):
    with pytest.raises(ValueError, match="^expected accepted examples in the dataset 'nothing' to "
                                         "push, found none$"):
        hub.push_dataset("nothing", REPO, owner=None)
    hub_calls[0].assert_not_called()


def test_push_reaches_only_the_owners_datasets(data_home, online, hub_calls, monkeypatch):
    monkeypatch.setenv("NER_PUBLIC", "1")
    monkeypatch.delenv("SPACE_ID", raising=False)
    annotations.append("corrections", "Oslo is cold.", [{"start": 0, "end": 4, "label": "LOC"}],
                       owner="alice")
    with pytest.raises(ValueError, match="only an admin of this server names another visitor's "
                                         "dataset$"):
        hub.push_dataset("u-alice/corrections", REPO, owner="session:bob-tab")
    hub_calls[0].assert_not_called()
    assert hub.push_dataset("corrections", REPO, owner="alice") == URL


def test_pushing_a_run_still_goes_to_a_model_repository(runs_dir, tiny_bert, online, hub_calls):
    from live_app import make_run

    make_run(runs_dir, "tiny", tiny_bert)
    create, _ = hub_calls
    assert main(["push", "tiny", "--repo", REPO]) == 0
    create.assert_called_once_with(mock.ANY, REPO, private=True, exist_ok=True, repo_type="model")
