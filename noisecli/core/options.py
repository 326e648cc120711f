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


DTYPES = ["auto", "bfloat16", "float16", "float32"]


def device_opt(note: str = "") -> Any:
    """`--device`, declared once for every stage: the same values, default and help."""
    return opt("auto", "cpu, cuda, cuda:N or auto (cuda when available)" + (f"; {note}" if note else "") + ".")


def dtype_opt() -> Any:
    """`--dtype`, declared once for every stage that runs a model under autocast."""
    return opt("auto", "Autocast dtype: bfloat16, float16 or float32; auto = bfloat16 where the device supports "
               "it, else float32.", choices=DTYPES)


SEED_DATA, SEED_DOWNSTREAM = 1337, 0   # nanoGPT's seed for data and pre-training; 0 for the downstream stages


def seed_opt(default: int, what: str) -> Any:
    """`--seed`, declared once: a whole number >= 0 (LIMITS), and what it seeds in this stage. Two defaults on
    purpose: SEED_DATA where the paper's recipe (nanoGPT's) fixes 1337, SEED_DOWNSTREAM elsewhere."""
    return opt(default, f"Seed of {what}.")


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


# What an option of this name must satisfy in every stage (one meaning per name): (low, high, low open,
# high open); None leaves that side unbounded. Every float option must be finite besides.
_AT_LEAST_1 = ("batch_size", "n_head", "n_layer", "n_embd", "points", "epochs", "seeds", "max_iters", "eval_every",
               "log_every", "save_every", "keep_last", "eval_windows", "grad_accum", "max_tokens", "max_length",
               "limit", "nnodes")
_AT_LEAST_0 = ("threads", "gpus", "procs", "stop_after", "node_rank", "warmup_iters", "seed", "workers",
               "weight_decay", "grad_clip", "gamma", "lam", "min_lr", "loss_clean", "loss_noise")
LIMITS: dict[str, tuple] = {
    **{name: (1, None, False, False) for name in _AT_LEAST_1}, **{name: (0, None, False, False) for name in _AT_LEAST_0},
    "block_size": (2, None, False, False), "lr": (0, None, True, False), "std": (0, None, True, False),
    "k": (0, None, True, False), "peak_tflops": (0, None, True, False), "dropout": (0, 1, False, True),
    "warmup": (0, 1, False, True), "val_fraction": (0, 1, False, True), "pc": (0, 1, True, False),
    "pn": (0, 1, True, False), "beta1": (0, 1, False, True), "beta2": (0, 1, False, True),
}


def _bounds_text(low, high, low_open, high_open) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def check_numbers(config: Any) -> None:
    """Raise InputError for a float option that is NaN or infinite, or any number outside the limits of
    its name (LIMITS): one line, before any work."""
    import math

    from noisecli.core.errors import InputError
    for f in fields(config):
        value = getattr(config, f.name)
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            flag = f"--{f.name.replace('_', '-')}"
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(f"{flag} must be a finite number, got {v}")
            if f.name in LIMITS:
                low, high, low_open, high_open = LIMITS[f.name]
                if (low is not None and (v <= low if low_open else v < low)) or \
                        (high is not None and (v >= high if high_open else v > high)):
                    raise InputError(f"{flag} must be {_bounds_text(*LIMITS[f.name])}, got {v}")


def check_choices(config: Any) -> None:
    """Raise InputError for a value outside a field's choices, or a number outside its limits
    (`check_numbers`): the Python API's check; the CLI checks the same before the stage runs."""
    from noisecli.core.errors import InputError
    check_numbers(config)
    for f in fields(config):
        allowed, value = choices_of(f), getattr(config, f.name)
        if allowed is None or value is None:
            continue
        for v in value if isinstance(value, list) else [value]:
            if v not in allowed:
                raise InputError(f"--{f.name.replace('_', '-')}: '{v}' is not one of {', '.join(allowed)}")
