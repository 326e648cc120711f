"""`noisecli scan merge DIR...`: the shards of one scan (`--shard I/N` for every I) added up into what one pass
would have written: the tallies are sums (tally.py), and documents.jsonl is a streaming k-way merge by id."""

from __future__ import annotations

import heapq
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, read_manifest, staging_dir, write_json
from noisecli.scan.tally import ShardState


def merge(folders: list[Path], out: Path) -> dict:
    """Add up the shards of one scan (`--shard I/N` for every I) into OUT/, as one pass would have written."""
    if not folders:
        raise InputError("scan merge: give the shard folders (DIR...)")
    from noisecli.scan.report import write_results
    from noisecli.scan.tally import Tally
    check_output(out)
    states = [read_manifest(Path(f) / "state.json", ("config", "shard", "tally"), ShardState) for f in folders]
    first = {k: v for k, v in states[0]["config"].items() if k not in ("shard", "out", "write_clean")}
    n = states[0]["shard"][1]
    for f, s in zip(folders, states):
        mine = {k: v for k, v in s["config"].items() if k not in ("shard", "out", "write_clean")}
        if mine != first or s["shard"][1] != n:
            raise InputError(f"scan merge: {f} is a shard of another scan (its settings differ from {folders[0]}'s)")
    got = sorted(s["shard"][0] for s in states)
    if got != list(range(n)):
        raise InputError(f"scan merge: need shards 0..{n - 1} once each, got {got}")
    for f, s in zip(folders, states):
        if s["tally"]["seed"] != s["config"]["seed"]:
            raise InputError(f"scan merge: {f}/state.json: its tally's seed {s['tally']['seed']} is not its --seed "
                             f"{s['config']['seed']}")
    tally = Tally.merged([s["tally"] for s in states])
    settings = {k: states[0][k] for k in ("source", "kinds", "counted_as_random_noise")}
    settings["undecodable_first"] = [u for s in states for u in s.get("undecodable_first", [])][:20]
    settings.update(config={**states[0]["config"], "shard": f"merged {n}"}, shard=[0, 1])
    with staging_dir(out) as tmp, open(tmp / "documents.jsonl", "w", encoding="utf-8") as merged, ExitStack() as files:
        rows = [_rows_by_id(Path(f) / "documents.jsonl", files) for f in folders]
        # each shard's rows are in id order: a streaming k-way merge keeps one row per shard in memory
        merged.writelines(line for _, line in heapq.merge(*rows, key=lambda row: row[0]))
        write_json(tmp / "state.json", {**settings, "tally": tally.state()})
        result = write_results(tmp, tally, settings, 0.0)
    result["out"] = str(out)
    return result


def _rows_by_id(path: Path, files: ExitStack) -> Iterator[tuple[int, str]]:
    """(id, line) of a shard's documents.jsonl; a line that is not a row is one line naming it."""
    if not path.is_file():
        raise InputError(f"scan merge: {path} is missing")
    fh, n = files.enter_context(open(path, encoding="utf-8", errors="strict")), 0
    try:
        for n, line in enumerate(fh, 1):
            doc_id = json.loads(line)["id"]
            if not isinstance(doc_id, int):
                raise TypeError
            yield doc_id, line
    except (ValueError, KeyError, TypeError):        # UnicodeDecodeError is a ValueError
        raise InputError(f"scan merge: {path}:{n + 1 if n == 0 else n} is not a row of documents.jsonl") from None
