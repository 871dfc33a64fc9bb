"""Security: only safetensors weights are loaded; the server hands out only the files it made for a
visitor; it enforces the upload limit itself; and a Hub token in its environment never leaves it.

The live tests talk to the session's ``app_server`` (``HF_TOKEN`` is set in its environment) the
way anyone on the network could: raw HTTP, ``gradio_client`` and a browser.
"""

from __future__ import annotations

import ast
import http.client
import json
import re
import shutil
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import gradio as gr
import pytest

from conftest import SERVER_TOKEN as TOKEN
from conftest import make_sentences, write_conll
from live_app import APP_DIR, CHROMIUM, make_run
from ner_core import Recognizer, cli, hub, models, runs
from studio import highlight as hl
from studio.models import model_choices

SOURCES = sorted([APP_DIR / "app.py", *(APP_DIR / "ner_core").glob("*.py"),
                  *(APP_DIR / "studio").glob("*.py")])


# Only safetensors --------------------------------------------------------------------------------

def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """Calls of ``name`` or ``something.name`` in ``tree``."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == name or getattr(node.func, "id", None) == name)]


def test_weights_are_loaded_from_safetensors_only_and_run_no_remote_code():
    model_loads = []
    for path in SOURCES:
        source = path.read_text()
        tree = ast.parse(source)
        assert "trust_remote_code" not in source, path
        for call in calls(tree, "from_pretrained"):
            owner = ast.unparse(call.func.value) if isinstance(call.func, ast.Attribute) else ""
            # Configs and tokenizers hold no weights; every model goes through one loader.
            assert owner in ("AutoConfig", "AutoTokenizer", "model_class"), \
                f"{path.name}:{call.lineno}: {ast.unparse(call)} bypasses models._from_pretrained"
            if owner == "model_class":
                keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
                assert keywords.get("use_safetensors") == "True", f"{path.name}:{call.lineno}"
                model_loads.append(path.name)
        for unsafe in ("load", "loads"):
            for call in calls(tree, unsafe):
                assert ast.unparse(call.func) not in ("torch.load", "pickle.load", "pickle.loads",
                                                      "joblib.load"), f"{path.name}:{call.lineno}"
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names}
        assert not imported & {"pickle", "dill", "joblib", "cloudpickle"}, path
    assert model_loads == ["models.py"]


@pytest.fixture
def pickled_model(tmp_path, tiny_bert) -> Path:
    """The tiny BERT with its weights as ``pytorch_model.bin`` (a pickle) and no safetensors."""
    import torch
    from safetensors.torch import load_file

    directory = tmp_path / "pickled-model"
    shutil.copytree(tiny_bert, directory)
    torch.save(load_file(directory / "model.safetensors"), directory / "pytorch_model.bin")
    (directory / "model.safetensors").unlink()
    return directory


@pytest.fixture
def no_unpickling(monkeypatch):
    import pickle

    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was loaded")

    for module, name in [(torch, "load"), (pickle, "load"), (pickle, "loads")]:
        monkeypatch.setattr(module, name, refuse)


def test_a_run_with_only_pickled_weights_is_refused_everywhere(pickled_model, runs_dir, capfd,
                                                               no_unpickling):
    run = make_run(runs_dir, "pickled", pickled_model)
    assert (run / "pytorch_model.bin").is_file() and not (run / "model.safetensors").exists()
    message = ("pickled: expected a saved run with config.json, model.safetensors, "
               "train_config.json, metrics.json, found one without model.safetensors; it holds "
               "pickled weights (pytorch_model.bin), which are never loaded")
    assert runs.list_runs() == []
    with pytest.raises(ValueError) as error:
        models.resolve("pickled")
    assert str(error.value) == message
    assert str(runs_dir) not in str(error.value)
    # The command line, by run name and by directory.
    assert cli.main(["predict", "--model", "pickled", "--text", "anna weber"]) == 2
    assert capfd.readouterr().err == f"error: {message}\n"
    assert cli.main(["predict", "--model", str(run), "--text", "anna weber"]) == 2
    assert capfd.readouterr().err == (f"error: {run}: expected safetensors weights (model.safetensors), "
                                      "found only pickled weights (pytorch_model.bin), which are "
                                      "never loaded\n")
    # The app does not offer it, and refuses it by name.
    assert "pickled" not in model_choices()
    with pytest.raises(gr.Error) as error:
        hl.highlight("anna weber", "pickled", "", 0.0)
    assert error.value.message == "expected one of the listed models, found 'pickled'"


def test_a_cached_hub_model_with_only_pickled_weights_is_refused(pickled_model, tmp_path, monkeypatch,
                                                                 no_unpickling):
    """What a Hub model without safetensors meets: the loader refuses it in one sentence."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    repository = cache / "models--owner--pickled"
    shutil.copytree(pickled_model, repository / "snapshots" / "0123abcd")
    (repository / "refs").mkdir()
    (repository / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert hub.is_cached("owner/pickled")
    with pytest.raises(ValueError, match=r"^owner/pickled: expected safetensors weights "
                                         r"\(model.safetensors\), found none; pickled weights "
                                         r"\(pytorch_model.bin\) are never loaded$"):
        Recognizer("owner/pickled", local_paths=False)


def test_beside_safetensors_a_pickle_is_never_read(pickled_model, biased_model, no_unpickling):
    # The safetensors are the biased model's (each sentence one ORG entity), the pickle the plain
    # tiny BERT's: the answers say which weights were read.
    shutil.copy(biased_model / "model.safetensors", pickled_model / "model.safetensors")
    [entity] = Recognizer(str(pickled_model)).recognize("anna weber")
    assert (entity["text"], entity["label"], entity["start"], entity["end"]) \
        == ("anna weber", "ORG", 0, 10)
    assert entity["score"] == pytest.approx(1.0)


# The live app ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(app_server) -> tuple[str, Path]:
    """The server's URL and its directory: runs (``runs/``), temporary files and its log."""
    return app_server.url, app_server.directory


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served[0], verbose=False, download_files=False)


def request(url: str, method: str, target: str, body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    """One raw HTTP request: the target goes out exactly as written ('..' and all)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def handed_out(client) -> str:
    """The URL path of the ``entities.json`` a highlight handed out."""
    _, _, files, _ = client.predict("anna weber visited berlin.", "tiny", "", 0.0,
                                    api_name="/highlight")
    url = files[0]["url"] if isinstance(files[0], dict) else files[0]
    assert url.endswith("/entities.json")
    return urlsplit(url).path


def test_files_the_app_never_handed_out_are_refused(served, handed_out):
    url, directory = served
    uploads = directory / "server-tmp" / "gradio"
    refused = [
        "/gradio_api/file=/etc/passwd",
        "/file=/etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        f"/gradio_api/file={uploads}/../../../../../../../etc/passwd",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        f"{handed_out.rsplit('/', 1)[0]}/../../../../../../../../etc/passwd",
        "/gradio_api/file=app.py",
        f"/gradio_api/file={APP_DIR / 'app.py'}",
        "/static/../app.py",
        f"/gradio_api/file={directory / 'runs' / 'tiny' / 'model.safetensors'}",
        f"/gradio_api/file={directory / 'runs' / 'tiny' / 'train_config.json'}",
        f"/gradio_api/file={directory / 'app.log'}",
        f"/gradio_api/file={uploads}",
        "/gradio_api/file=file:///etc/passwd",
        f"/gradio_api/file={url}config",
    ]
    for target in refused:
        status, body = request(url, "GET", target)
        assert 400 <= status < 500, f"{target} was served ({status})"
        assert b"root:" not in body and TOKEN.encode() not in body
    status, body = request(url, "GET", handed_out)
    assert status == 200
    assert [e["text"] for e in json.loads(body)] == ["anna weber visited berlin."]


def test_the_server_refuses_an_upload_over_the_limit(served):
    url, directory = served
    boundary = "a7b3c9d1e5f0"

    def upload(size: int) -> tuple[int, bytes]:
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                f"filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode() \
            + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
        return request(url, "POST", "/gradio_api/upload", body,
                       {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def kept() -> set[Path]:
        return {p for p in (directory / "server-tmp").rglob("*") if p.is_file()}

    before = kept()  # the server's files so far (zipped runs among them may be large)
    status, body = upload(21 * 1024 * 1024)  # app.py: max_file_size="20mb"
    assert status == 413, body
    assert b"maximum allowed size" in body
    assert not [p for p in kept() - before if p.stat().st_size > 20 * 1024 * 1024]
    status, body = upload(1024)
    assert status == 200 and json.loads(body)[0].endswith("big.txt")


@pytest.mark.parametrize("target", ["/etc/passwd", "runs/tiny/train_config.json"])
def test_the_api_cannot_pass_a_server_file_as_an_upload(served, target):
    """A file input names a server path instead of an upload: Gradio refuses it, unread.

    Raw HTTP, because ``gradio_client`` would upload a path that exists on the client's machine.
    """
    url, directory = served
    path = target if target.startswith("/") else str(directory / target)
    data = ["tiny", "upload", {"path": path, "meta": {"_type": "gradio.FileData"}}, "default"]
    status, body = request(url, "POST", "/gradio_api/call/evaluate", json.dumps({"data": data}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200, body
    status, events = request(url, "GET", f"/gradio_api/call/evaluate/{json.loads(body)['event_id']}")
    assert events.startswith(b"event: error"), events
    assert b"root:" not in events and b"base_model" not in events


def secret_in(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return any(TOKEN.encode() in archive.read(name) for name in archive.namelist())
    return TOKEN.encode() in data


def server_environment(runs_dir: Path) -> list[str]:
    """The environment of the server process that serves ``runs_dir``, from /proc."""
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            variables = environ.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # a process that ended or is not ours
            continue
        if f"NER_RUNS_DIR={runs_dir}" in variables:
            return variables
    raise AssertionError(f"no process serves {runs_dir}")


@pytest.fixture
def open_page(request, served):
    """``open_page()``: a page of the server in the session's browser; None without Chromium."""
    from contextlib import ExitStack

    from chromium import opened

    with ExitStack() as pages:
        def open_page():
            if not CHROMIUM.exists():
                return None
            browser = request.getfixturevalue("browser")
            return pages.enter_context(opened(browser, served[0], request, ready="#text textarea"))

        yield open_page


def test_a_hub_token_in_the_environment_never_leaves_the_server(served, client, tmp_path, open_page):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    url, directory = served
    assert f"HF_TOKEN={TOKEN}" in server_environment(directory / "runs"), "the server has the token"
    answers = [client.predict("anna weber visited berlin.", "tiny", "", 0.0, api_name="/highlight")]
    # Failures that reach for the Hub (offline here) must not quote the token either.
    for hub_id in ["owner/name", "bert-base-cased"]:
        with pytest.raises(AppError) as error:
            client.predict("anna weber", "tiny", hub_id, 0.0, api_name="/highlight")
        answers.append(str(error.value))
    train = write_conll(tmp_path / "train.txt", make_sentences(40, seed=11))
    valid = write_conll(tmp_path / "valid.txt", make_sentences(10, seed=12))
    answers.append(client.predict("token-run", "tiny", "", "upload", handle_file(str(train)),
                                  handle_file(str(valid)), 3e-4, 16, 1, 42, 0.01, 0.1, 64, 0,
                                  False, False, False, api_name="/fine_tune"))
    run = directory / "runs" / "token-run"
    deadline = time.monotonic() + 180
    while not runs.is_complete(run) or not (run / "README.md").is_file():
        assert time.monotonic() < deadline, "the short fine-tune did not finish"
        time.sleep(1)
    pages = [request(url, "GET", target)[1] for target in
             ["/", "/config", "/gradio_api/info", "/gradio_api/openapi.json"]]

    page = open_page()
    if page is not None:  # what the page shows too, where a browser can show it
        sync_api = pytest.importorskip("playwright.sync_api")
        page.set_default_timeout(30_000)
        page.get_by_role("tab", name="Fine-tune").click()
        log = page.locator("#log textarea")
        sync_api.expect(log).to_have_value(re.compile("finished; saved as token-run$"))
        sync_api.expect(page.locator("a[href$='/token-run.zip']")).to_have_count(1)
        pages.append(page.content().encode())
        values = page.evaluate("Array.from(document.querySelectorAll('textarea, input'))"
                               ".map(e => e.value)")
        pages.append(json.dumps(values).encode())

    assert not [i for i, page in enumerate(pages) if TOKEN.encode() in page]
    assert not [a for a in answers if TOKEN in json.dumps(a, default=str)]
    written = [p for p in directory.rglob("*") if p.is_file()]
    assert run / "metrics.json" in written and directory / "app.log" in written
    assert [p for p in written if secret_in(p)] == []
