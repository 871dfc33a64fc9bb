"""Whether a Hub model may be loaded here, judged from the Hub's description before anything
downloads: public, ungated, safetensors weights, the right kind of model for the purpose, and every
file loading reads (``files_to_load``) within the size limit. The revision checked and those files
are what ``hub_cache.fetch_model`` then downloads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath

from . import hub
from .errors import UserError

PURPOSES = ("inference", "training")
# Pipeline tags of models that can be fine-tuned for NER: token classifiers and plain encoders.
ENCODER_PIPELINE_TAGS = frozenset({"token-classification", "fill-mask", "feature-extraction",
                                   "sentence-similarity"})
# Text encoders that transformers gives a token-classification head (no decoders, no layout models).
ENCODER_MODEL_TYPES = frozenset({
    "albert", "bert", "big_bird", "camembert", "convbert", "data2vec-text", "deberta",
    "deberta-v2", "distilbert", "electra", "ernie", "eurobert", "flaubert", "funnel", "ibert",
    "longformer", "megatron-bert", "mobilebert", "modernbert", "mpnet", "rembert", "roberta",
    "roberta-prelayernorm", "roc_bert", "roformer", "squeezebert", "xlm", "xlm-roberta",
    "xlm-roberta-xl", "xmod"})


@dataclass(frozen=True)
class HubModel:
    """A checked Hub model: the revision the Hub described (``sha``), and the size of each file
    loading it needs (``None`` where the Hub gave none)."""

    repo_id: str
    sha: str | None
    sizes: dict[str, int | None]

    @property
    def total(self) -> int:
        return sum(size or 0 for size in self.sizes.values())


def check_hub_model(repo_id: str, max_bytes: int | None, purpose: str) -> HubModel:
    """Refuse, from the Hub's description, a model not to be loaded; else what loading it takes.

    ``purpose`` is ``"inference"`` (it must be a token-classification model) or ``"training"`` (a
    token-classification model or a text encoder). The model must be public and ungated and hold
    safetensors weights, and every file loading it needs (``files_to_load``: weights,
    configuration, tokenizer) may not exceed ``max_bytes`` together when it is given. Nothing
    downloads but, for sharded weights, the index that names the shards (a few kilobytes).
    """
    if purpose not in PURPOSES:
        raise UserError(f"expected purpose 'inference' or 'training', found {purpose!r}")
    if not (isinstance(repo_id, str) and hub.is_hub_id(repo_id)):
        raise UserError(f"expected a Hub model id (owner/name), found {repo_id!r}")
    hub.require_hub(f"the model {repo_id!r}", "name 'default' or a saved run instead")
    info = _model_info(repo_id)
    if info.private:
        raise UserError(f"{repo_id} is a private model; only public models can be loaded here")
    if info.gated:
        raise UserError(f"{repo_id} is gated (its owner grants access on request); only ungated "
                        "public models can be loaded here")
    _check_kind(repo_id, info, purpose)
    model = HubModel(repo_id, info.sha, files_to_load(repo_id, info))
    if max_bytes is not None:
        unknown = [name for name, size in model.sizes.items() if size is None]
        if unknown:
            raise UserError(f"{repo_id}: the Hub did not give the size of {', '.join(unknown)}, "
                            f"so it cannot be checked against the limit of {hub._mb(max_bytes)}")
        if model.total > max_bytes:
            most, found = hub._mb(max_bytes), hub._mb(model.total)
            if most == found:  # a few bytes over: megabytes would read as equal
                most, found = f"{max_bytes:,} bytes", f"{model.total:,} bytes"
            raise UserError(f"{repo_id}: expected at most {most} of model files here, found "
                            f"{found} in the {len(model.sizes)} files that loading it needs "
                            "(weights, configuration and tokenizer)")
    return model


# What loading reads besides the weights: the configuration and the tokenizer's files.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_SUFFIX = ".safetensors.index.json"
TOKENIZER_NAMES = frozenset({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt"})
TOKENIZER_SUFFIX = ".model"  # sentencepiece: protobuf, not a pickle


def files_to_load(repo_id: str, info) -> dict[str, int | None]:
    """The files of the model ``info`` describes that ``from_pretrained`` reads, and their sizes.

    Weights: ``model.safetensors`` where there is one (transformers reads it first); else every
    top-level ``*.safetensors`` file, every ``*.safetensors.index.json`` and each shard an index
    names, wherever it is. Then ``config.json`` and the tokenizer's files, at the top level.
    Pickles never: they are neither weights here nor tokenizer files.
    """
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    top = [name for name in sizes if "/" not in name and hub._PLAIN_NAME.fullmatch(name)]
    if WEIGHTS_NAME in top:
        weights = [WEIGHTS_NAME]
    else:
        weights = [name for name in top if name.endswith(".safetensors")]
        for index in (name for name in top if name.endswith(INDEX_SUFFIX)):
            weights += [index, *_shards(repo_id, info.sha, index, sizes)]
    if not any(name.endswith(".safetensors") for name in weights):
        raise UserError(f"{repo_id}: expected safetensors weights (model.safetensors), found "
                        "none; pickled weights are never loaded")
    others = [name for name in top if name == CONFIG_NAME or name in TOKENIZER_NAMES
              or name.endswith(TOKENIZER_SUFFIX)]
    return {name: sizes[name] for name in sorted({*weights, *others})}


def _shards(repo_id: str, sha: str | None, index: str, sizes: dict) -> list[str]:
    """The shard files the index ``index`` of sharded weights names (``weight_map``)."""
    path = hub._download_small(repo_id, index, f"the index {index}", revision=sha)
    try:
        named = set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"{repo_id}: expected {index} to map each weight to a shard file "
                        "(weight_map), found no such map") from None
    odd = sorted(repr(name) for name in named if not (isinstance(name, str) and _plain_path(name)))
    if odd:
        raise UserError(f"{repo_id}: expected {index} to name shard files by relative paths, "
                        f"found {', '.join(odd)}")
    missing = sorted(named - set(sizes))
    if missing:
        raise UserError(f"{repo_id}: expected the shards that {index} names in the repository, "
                        f"found no {', '.join(missing)}")
    return sorted(named)


def _plain_path(name: str) -> bool:
    """A relative path of plain names (each also a glob pattern matching only itself)."""
    return all(hub._PLAIN_NAME.fullmatch(part) for part in PurePosixPath(name).parts)


def _model_info(repo_id: str):
    """``HfApi.model_info`` with file sizes; its errors become one sentence each."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    status_error, network_errors = hub._hub_errors()
    try:
        return HfApi().model_info(repo_id, files_metadata=True, timeout=hub.INFO_SECONDS)
    except GatedRepoError as error:
        raise UserError(f"{repo_id} is gated (its owner grants access on request); only ungated "
                        "public models can be loaded here") from error
    except RepositoryNotFoundError as error:
        raise UserError(f"expected a public model on the Hugging Face Hub, found no model "
                        f"{repo_id!r} (it does not exist, or it is private)") from error
    except status_error as error:
        raise UserError(f"the Hub did not describe {repo_id}: {hub._one_line(error)}") from error
    except network_errors as error:
        raise UserError(f"the Hub could not be asked about {repo_id}: "
                        f"{hub._one_line(error)}") from error


def _check_kind(repo_id: str, info, purpose: str) -> None:
    tag = info.pipeline_tag
    config = info.config or {}
    model_type = config.get("model_type")
    if tag and model_type:
        found = f"pipeline tag {tag!r}, model type {model_type!r}"
    else:
        found = (f"pipeline tag {tag!r}" if tag else f"model type {model_type!r}" if model_type
                 else "neither a pipeline tag nor a model type")
    if purpose == "inference":
        heads = config.get("architectures") or []
        if tag == "token-classification" or any(str(h).endswith("ForTokenClassification")
                                                for h in heads):
            return
        raise UserError(f"expected a token-classification (NER) model to highlight with, found "
                        f"{repo_id} with {found}; a model without a NER head cannot highlight: "
                        "fine-tune it first")
    if tag in ENCODER_PIPELINE_TAGS or model_type in ENCODER_MODEL_TYPES:
        return
    raise UserError(f"expected a token-classification model or a text encoder (BERT, RoBERTa, "
                    f"DeBERTa, ...) to fine-tune, found {repo_id} with {found}")

