"""What the benchmarks share: import paths, where the data is and which machine they ran on."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A benchmark runs as ``python bench/NAME.py`` from a clean clone: importing this module first puts
# the repository root (ner_core, studio) and tests/ (the live-app helpers) on the path, and keeps
# every model load local.
for _path in (ROOT / "tests", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def default_data() -> str:
    """``$NER_DATA_DIR``, else CoNLL-2003 beside the checkout (``../shared/data/conll2003``)."""
    return os.environ.get("NER_DATA_DIR") or str(ROOT.parent / "shared" / "data" / "conll2003")


def machine() -> dict:
    """The CPU model, its cores, its instruction set (which decides bfloat16 and int8 speed), and
    the versions that decide the speed."""
    import torch
    import transformers

    from ner_core import hardware

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: platform's answer stands
    return {"cpu": cpu, "instruction_set": hardware.instruction_set(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def percentile(values: list[float], q: float) -> float:
    """The value at quantile ``q`` (0 to 1) of ``values``, nearest rank.

    >>> percentile([5, 1, 3, 2, 4], 0.5), percentile([5, 1, 3, 2, 4], 0.95)
    (3, 5)
    """
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
