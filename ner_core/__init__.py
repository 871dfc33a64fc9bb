"""ner_core: fine-tune, evaluate and apply named-entity recognizers (the engine of the NER studio)."""

from .config import PRESETS, TrainConfig, preset
from .data import ConllFile, Sentence, load_data, read_conll, to_dataset_dict
from .evaluation import evaluate, pick_split
from .inference import Recognizer
from .metrics import per_entity_frame, score, sentence_errors
from .models import ModelSource, resolve
from .runs import list_runs, runs_dir
from .training import TrainProgress, TrainResult, device_description, fine_tune

__version__ = "0.1.0"

__all__ = [
    "PRESETS", "ConllFile", "ModelSource", "Recognizer", "Sentence", "TrainConfig", "TrainProgress",
    "TrainResult", "device_description", "evaluate", "fine_tune", "list_runs", "load_data",
    "per_entity_frame", "pick_split", "preset", "read_conll", "resolve", "runs_dir", "score",
    "sentence_errors", "to_dataset_dict",
]
