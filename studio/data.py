"""Labelled data the app trains and scores on: CoNLL-2003 from ``$NER_DATA_DIR`` (else the Hub), or
labelled files a visitor uploads in any format of ``ner_core.formats``, checked as they arrive."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ner_core import tenancy, to_dataset_dict
from ner_core.data import load_data
from ner_core.errors import UserError
from ner_core.jobs import LoadedData

from .labelled import describe, read_upload
from .uploads import UPLOAD_LIMIT_BYTES as UPLOAD_LIMIT_BYTES  # where callers look for it too

CONLL_SENTENCES = 14_041  # training sentences of CoNLL-2003


def describe_upload(path: str | None) -> str:
    """The report of an uploaded labelled file as Markdown (what was read, what each change
    counted, with where), or the reason it was refused (file and line)."""
    if not path:
        return ""
    return describe(read_upload(path))


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
        self.reports = {}  # split -> the Report of reading its upload
        self.formats = {}  # split -> the format its upload was read as
        if source == "upload":
            if not train_file:
                raise UserError("upload a labelled training file (CoNLL, Label Studio, doccano, "
                                "Prodigy, spaCy, BRAT .zip, ...), or choose CoNLL-2003")
            self._splits = {}
            for split, path in (("train", train_file), ("validation", validation_file)):
                if path:
                    upload = read_upload(path)
                    self._splits[split], self.reports[split] = upload.sentences, upload.report
                    self.formats[split] = upload.format
            self.train_name = Path(train_file).name
            self.validation_name = Path(validation_file).name if validation_file else None
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
        if "train" in self.reports:  # the run's card states what reading the upload changed
            options["data_report"] = self.reports["train"]
        if self.replay:
            options.update(replay=conll2003(), replay_source=self.replay_name)
        return LoadedData(data, options)
