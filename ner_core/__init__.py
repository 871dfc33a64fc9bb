"""ner_core: fine-tune, evaluate and apply named-entity recognizers (the engine of the NER studio).

Names are imported on first use, so ``python -m ner_core --help`` and light scripts do not pay for
loading torch and the Trainer.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "PRESETS": "config", "TrainConfig": "config", "preset": "config",
    "FineTunePlan": "plan", "config_for": "plan", "plan_fine_tune": "plan",
    "ConllFile": "data", "Sentence": "data", "load_data": "data", "load_labelled": "data",
    "read_conll": "data",
    "to_dataset_dict": "data",
    "evaluate": "evaluation", "pick_split": "evaluation",
    "Recognizer": "inference",
    "per_entity_frame": "metrics", "score": "metrics", "sentence_errors": "metrics",
    "ModelSource": "models", "resolve": "models",
    "list_runs": "runs", "runs_dir": "runs",
    "TrainProgress": "training", "TrainResult": "training", "device_description": "training",
    "fine_tune": "training",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ner_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
