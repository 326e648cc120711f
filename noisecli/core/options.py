"""Stage options as dataclasses: one field per option, its help text in the field's metadata.

The CLI turns each field into a `--flag` (see cli.py); Python callers just build the dataclass.
"""

from __future__ import annotations

from dataclasses import field, fields
from typing import Any


def opt(default: Any, help: str, *, positional: bool = False, short: str | None = None) -> Any:
    """A stage option with its `--help` text (say units and what the default means)."""
    meta = {"help": help, "positional": positional, "short": short}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def as_dict(config: Any) -> dict[str, Any]:
    """A config as JSON-ready values (paths as strings), for manifests."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        plain = lambda v: v if v is None or isinstance(v, (int, float, str, bool)) else str(v)  # noqa: E731
        out[f.name] = [plain(v) for v in value] if isinstance(value, list) else plain(value)
    return out
