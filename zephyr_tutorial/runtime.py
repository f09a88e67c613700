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


PACKAGED_DATA = "_data"
"""The copy of the repository's ``data/`` that a built wheel carries inside the package (see ``setup.py``)."""


def _checkout_of_this_package() -> Path | None:
    """The checkout this package was imported from (an editable install or a run from the repository), if any."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "data").is_dir() else None


def data_dir() -> Path:
    """The datasets we wrote and ship: the checkout's ``data/`` when this package runs from a checkout, else the copy
    inside the installed package (``zephyr_tutorial/_data``, read through ``importlib.resources``).

    ``data/`` at the top of the repository is the one place to edit them; a wheel built from it carries a copy,
    so ``pip install "zephyr-tutorial @ git+..."`` (Colab) finds the data from any working directory.
    """
    from importlib.resources import files

    checkout = _checkout_of_this_package()
    if checkout is not None:
        return checkout / "data"
    packaged = files("zephyr_tutorial") / PACKAGED_DATA
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    raise FileNotFoundError(
        f"no data/ folder: this zephyr_tutorial ({Path(__file__).parent}) is neither in a checkout nor an install"
        f" that carries {PACKAGED_DATA}/; reinstall it from the repository (pip install 'zephyr-tutorial @ git+...')"
    )


HF_TOKEN_NAME = "HF_TOKEN"
"""The environment variable and the Colab secret that hold a Hugging Face access token."""


def _colab_secret(name: str) -> str | None:
    """A Colab secret (the key icon in Colab's left bar), or ``None`` outside Colab or when access is not granted."""
    if not in_colab():
        return None
    try:
        from google.colab import userdata

        return userdata.get(name) or None
    except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException: no usable secret
        return None


def hub_login(profile, *, interactive: bool | None = None) -> str:
    """Log in to the Hugging Face Hub when ``profile`` needs it (gated weights such as Mistral-7B-v0.1); say how.

    Does nothing on a profile that reads nothing from the Hub (``cpu``). The token comes from ``$HF_TOKEN``, else
    from the Colab secret ``HF_TOKEN``; without either, ``interactive`` (default: inside Colab) asks for it with
    ``huggingface_hub.login()``'s own prompt. The token is handed to ``huggingface_hub.login`` and never printed,
    logged or returned. Returns the line it printed.
    """
    if not profile.needs_hub:
        message = f"profile {profile.name!r} reads nothing from the Hugging Face Hub: no login needed"
        print(message)
        return message
    from huggingface_hub import get_token, login

    token, source = os.environ.get(HF_TOKEN_NAME), f"${HF_TOKEN_NAME}"
    if not token:
        token, source = _colab_secret(HF_TOKEN_NAME), f"the Colab secret {HF_TOKEN_NAME}"
    if token:
        login(token=token, add_to_git_credential=False, skip_if_logged_in=False)
        message = f"logged in to the Hugging Face Hub with the token from {source}"
    elif get_token():
        message = "already logged in to the Hugging Face Hub (a token saved by an earlier login)"
    elif interactive if interactive is not None else in_colab():
        login(add_to_git_credential=False)
        message = "logged in to the Hugging Face Hub with the token you entered"
    else:
        message = (
            f"no Hugging Face token: set ${HF_TOKEN_NAME} (or the Colab secret {HF_TOKEN_NAME}) or run"
            f" `hf auth login`; {profile.model.id} may be gated (accept its terms on its model page first)"
        )
    print(message)
    return message


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
