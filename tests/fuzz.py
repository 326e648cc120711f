"""The fuzzer's parts (tests/test_fuzz.py runs it briefly, bench/fuzz.py for long): valid fixtures of what the
tool reads, mutations of them, and the promise every command keeps on whatever it is given.

A mutation takes one file of a copied fixture and truncates it, extends it, flips bytes, changes a JSON
field's type, drops or renames a key, or re-encodes text. The command then either works (exit 0) or says no
in one line: exit 2, one `noisecli: error:` line on stderr, no traceback, nothing under --out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from hypothesis import strategies as st

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                        st.text(max_size=8), st.lists(st.integers(), max_size=3), st.just({}))


@st.composite
def json_mutation(draw, data: dict) -> dict:
    """`data` with one top-level or nested field dropped, renamed, or given another value of any type."""
    data = json.loads(json.dumps(data))
    paths = [[k] for k in data] + [[k, j] for k, v in data.items() if isinstance(v, dict) for j in v]
    if not paths:
        return data
    path = draw(st.sampled_from(paths))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    how = draw(st.sampled_from(["drop", "rename", "value"]))
    if how == "drop":
        del parent[path[-1]]
    elif how == "rename":
        parent[path[-1] + "_x"] = parent.pop(path[-1])
    else:
        parent[path[-1]] = draw(JSON_VALUES)
    return data


@st.composite
def byte_mutation(draw, raw: bytes) -> bytes:
    """`raw` truncated, extended, with bytes flipped, or re-encoded as UTF-16 / Latin-1 where it is text."""
    how = draw(st.sampled_from(["truncate", "extend", "flip", "utf16", "latin1"]))
    if how == "truncate":
        return raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    if how == "extend":
        return raw + draw(st.binary(min_size=1, max_size=64))
    if how == "flip" and raw:
        out = bytearray(raw)
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(out) - 1))
            out[i] ^= draw(st.integers(1, 255))
        return bytes(out)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw[::-1]
    return text.encode("utf-16") if how == "utf16" else text.encode("latin-1", errors="replace")


def copy_fixture(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    return dst


def keeps_the_promise(result, out: Path) -> str | None:
    """None if the command kept the promise; else what it broke."""
    exception = getattr(result, "exception", None)
    if exception is not None and not isinstance(exception, SystemExit):   # in-process: the traceback it would print
        return f"a traceback: {type(exception).__name__}: {str(exception)[:200]}"
    if result.exit_code == 0:
        return None
    if "Traceback" in result.stderr + result.stdout:
        return "a traceback"
    if result.exit_code not in (1, 2):
        return f"exit code {result.exit_code}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith("noisecli"):
        return f"{len(lines)} lines on stderr: {lines[:3]}"
    if result.exit_code == 2 and out.exists() and any(out.rglob("*")):
        return f"something written under {out} after an error"
    return None
