"""Small runtime helpers the notebooks share: seeds, output folder, environment facts, timing."""

from __future__ import annotations

import os
import platform
import random
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OUTPUT_ENV_VAR = "ZEPHYR_OUTPUT_DIR"


def in_colab() -> bool:
    """True inside Google Colab (the notebooks' install cells run only there)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so sampling and initialisation repeat run to run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def project_root(start: Path | None = None) -> Path | None:
    """The checkout holding this project (a folder with ``pyproject.toml`` and ``notebooks/``), if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir():
            return folder
    return None


def output_dir(*parts: str) -> Path:
    """The folder for artifacts (datasets, adapters, figures): ``$ZEPHYR_OUTPUT_DIR`` or ``<checkout>/outputs``.

    Sub-folders named by ``parts`` are created on demand.
    """
    base = os.environ.get(OUTPUT_ENV_VAR)
    if base:
        root = Path(base).expanduser()
    else:
        checkout = project_root()
        root = (checkout or Path.cwd()) / "outputs"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """The ``data/`` folder of the checkout (the datasets we wrote and ship)."""
    checkout = project_root() or project_root(Path(__file__).parent)
    if checkout is None:
        raise FileNotFoundError(
            "could not find the project's data/ folder; run from inside the zephyr-tutorial checkout"
        )
    return checkout / "data"


@dataclass
class EnvironmentReport:
    python: str
    platform: str
    torch: str
    transformers: str
    trl: str
    peft: str
    bitsandbytes: str
    device: str
    cpu_threads: int

    def as_rows(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.__dict__.items()]


def describe_environment() -> EnvironmentReport:
    """Versions and the compute device, for the top of every notebook."""
    import bitsandbytes
    import peft
    import torch
    import transformers
    import trl

    if torch.cuda.is_available():
        device = f"cuda: {torch.cuda.get_device_name(0)}"
    else:
        device = "cpu"
    return EnvironmentReport(
        python=platform.python_version(),
        platform=platform.platform(terse=True),
        torch=torch.__version__,
        transformers=transformers.__version__,
        trl=trl.__version__,
        peft=peft.__version__,
        bitsandbytes=bitsandbytes.__version__,
        device=device,
        cpu_threads=torch.get_num_threads(),
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Resident memory right now, in MiB (from /proc on Linux, else the peak)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError):
        return peak_rss_mb()


@dataclass
class Measurement:
    seconds: float = 0.0
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0

    @property
    def rss_added_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


@contextmanager
def measure():
    """Time a block and record resident memory before and after it."""
    result = Measurement(rss_before_mb=current_rss_mb())
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        result.rss_after_mb = current_rss_mb()
