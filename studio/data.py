"""Labelled data the app trains and scores on: CoNLL-2003 from ``$NER_DATA_DIR`` (else the Hub), or
CoNLL files a visitor uploads, checked as they arrive."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ner_core import tenancy, to_dataset_dict
from ner_core.data import load_data, read_conll
from ner_core.errors import UserError
from ner_core.jobs import LoadedData

from .uploads import UPLOAD_LIMIT_BYTES as UPLOAD_LIMIT_BYTES  # where callers look for it too
from .uploads import uploaded

CONLL_SENTENCES = 14_041  # training sentences of CoNLL-2003


def read_upload(path: str):
    """Read an uploaded CoNLL file; messages name the file as the user knows it, not its temp path."""
    with uploaded(path):
        return read_conll(path)


def describe_upload(path: str | None) -> str:
    """A line about an uploaded CoNLL file, or the reason it was refused (file and line)."""
    if not path:
        return ""
    conll = read_upload(path)
    types = sorted({t[2:] for s in conll.sentences for t in s.tags if t != "O"})
    scheme = "IOB1, converted to IOB2" if conll.scheme == "IOB1" else "IOB2"
    return (f"`{Path(path).name}`: {len(conll.sentences):,} sentences, {scheme}, "
            f"types {', '.join(types) or 'none'}")


@functools.cache
def conll2003():
    """CoNLL-2003 from ``$NER_DATA_DIR``, else the Hub; loaded once per process. On a public
    host a refusal names the variable, not the server's directory."""
    directory = os.environ.get("NER_DATA_DIR")
    try:
        return load_data(None)
    except UserError as error:
        if not (directory and tenancy.is_public()):
            raise
        said = str(error)
        for shown in {str(Path(directory).resolve()), str(Path(directory)), directory}:
            said = said.replace(shown, "$NER_DATA_DIR")
        raise UserError(said) from None


def conll2003_name() -> str:
    """How CoNLL-2003 is named on the command line here: the data directory, else the Hub's; on
    a public host always the Hub's, as visitors see names, never the server's paths."""
    directory = os.environ.get("NER_DATA_DIR")
    return str(Path(directory).resolve()) if directory and not tenancy.is_public() else "conll2003"


class TrainingData:
    """The chosen data, checked up front; loaded by ``load()`` where the fine-tune runs.

    ``source`` is ``conll2003``, ``upload`` (the files) or ``dataset`` (a dataset of accepted
    corrections, named by ``dataset`` among those of ``owner``: an owner string of
    ``ner_core.tenancy``, the visitor who starts the fine-tune). With ``replay``, CoNLL-2003's
    training sentences are mixed back in, so a trained model keeps what it knew (see
    ``ner_core.continued``).
    """

    def __init__(self, source: str, train_file: str | None, validation_file: str | None,
                 dataset: str | None = None, replay: bool = False, owner: str | None = None):
        self.source = source
        self.replay = replay
        self.train_name = self.validation_name = None  # the uploads' file names
        self.dataset = dataset
        if source == "upload":
            if not train_file:
                raise UserError("upload a training file in CoNLL format, or choose CoNLL-2003")
            self._splits = {"train": read_upload(train_file).sentences}
            self.train_name = Path(train_file).name
            if validation_file:
                self._splits["validation"] = read_upload(validation_file).sentences
                self.validation_name = Path(validation_file).name
            self.train_sentences = len(self._splits["train"])
        elif source == "dataset":
            from ner_core import dataset_export

            if not dataset:
                raise UserError("choose a dataset of accepted corrections (made in the Annotate "
                                "tab), or other data")
            sentences = dataset_export.to_sentences(dataset, owner=owner)
            if not sentences:
                raise UserError(f"the dataset {dataset!r} holds no accepted examples yet; accept "
                                "some in the Annotate tab first")
            self._splits = {"train": sentences}
            self.train_sentences = len(sentences)
        elif source == "conll2003":
            self._splits = None
            self.train_sentences = CONLL_SENTENCES
        else:
            raise UserError(f"expected the data 'conll2003', 'upload' or 'dataset', found {source!r}")
        if replay and source == "conll2003":
            raise UserError("replay mixes CoNLL-2003 back into other data; with CoNLL-2003 as "
                            "the data, turn replay off")

    @property
    def name(self) -> str:
        """Where the data came from, as the run's card and its rebuild command name it."""
        if self.source == "conll2003":
            return conll2003_name()
        return f"{self.dataset}.conll" if self.source == "dataset" else self.train_name

    @property
    def replay_name(self) -> str:
        return conll2003_name()

    def load(self) -> LoadedData:
        """The splits to train on, with where they came from and, with replay, the replayed data."""
        data = conll2003() if self._splits is None else to_dataset_dict(self._splits)
        options = {"data_source": self.name}
        if self.replay:
            options.update(replay=conll2003(), replay_source=self.replay_name)
        return LoadedData(data, options)
