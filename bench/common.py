"""What the benchmarks share: where the data is and which machine they ran on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def default_data() -> str:
    """``$NER_DATA_DIR``, else CoNLL-2003 beside the checkout (``../shared/data/conll2003``)."""
    return os.environ.get("NER_DATA_DIR") or str(ROOT.parent / "shared" / "data" / "conll2003")


def machine() -> dict:
    """The CPU model, its cores, and the versions that decide the speed."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: platform's answer stands
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
