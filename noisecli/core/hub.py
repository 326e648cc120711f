"""Whether the Hugging Face hub can be used: one check for every stage that loads from it."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


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
