"""Stage options as dataclasses: one field per option, its help text in the field's metadata.

The CLI turns each field into a `--flag` (see cli.py); Python callers just build the dataclass.
A `list[...]` field is a list in Python and one comma-separated value on the command line, parsed
there once. `choices` (a list, or a registry's `names` so that --help needs no import) limits the
values, and --help shows them.
"""

from __future__ import annotations

from dataclasses import field, fields
from typing import Any, Callable, Sequence


def opt(default: Any, help: str, *, positional: bool = False, short: str | None = None,
        choices: Sequence[str] | Callable[[], Sequence[str]] | None = None) -> Any:
    """A stage option with its `--help` text (say units and what the default means)."""
    meta = {"help": help, "positional": positional, "short": short, "choices": choices}
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


def choices_of(f) -> list[str] | None:
    """The allowed values of a config field, if it limits them."""
    c = f.metadata.get("choices")
    return list(c() if callable(c) else c) if c is not None else None


def check_choices(config: Any) -> None:
    """Raise InputError for a value outside a field's choices (the Python API's check; the CLI's
    parser checks the same before the config is built)."""
    from noisecli.core.errors import InputError
    for f in fields(config):
        allowed, value = choices_of(f), getattr(config, f.name)
        if allowed is None or value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            if v not in allowed:
                raise InputError(f"--{f.name.replace('_', '-')}: '{v}' is not one of {', '.join(allowed)}")
