"""`noisecli scan` as a datatrove pipeline step (`pip install 'noisecli[datatrove]'`), so it runs inside
datatrove's Local, Slurm and Ray executors beside its readers, filters and writers:

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from noisecli.scan.datatrove import NoiseScan

    LocalPipelineExecutor([JsonlReader("data/"), NoiseScan("scans/")], tasks=8).run()
    # then: noisecli scan merge scans/* --out scans-all

Each document gets `metadata["noisecli_noise"]` (noisy tokens per kind) and `metadata["noisecli_spans"]`;
with `remove=True` its flagged random-noise spans are cut from its text (a cleaning step). Each task writes
what `noisecli scan --shard RANK/WORLD` writes into OUTPUT/RANK, so `noisecli scan merge` adds the tasks up.
A document's id in the tally is rank + world_size × its index in the task (datatrove's string ids need not be
numbers), which makes the bootstrap's weights a function of the document alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from datatrove.pipeline.base import PipelineStep

from noisecli.core.manifest import write_json


class NoiseScan(PipelineStep):
    name = "🔎 noisecli scan"
    type = "📊 - STATS"

    def __init__(self, output_folder: str, reference: str = "en", other: str = "fr", script: str = "LATIN",
                 remove: bool = False, seed: int = 0):
        super().__init__()
        self.output_folder, self.remove = Path(output_folder), remove
        self.reference, self.other, self.script, self.seed = reference, other, script, seed

    def run(self, data, rank: int = 0, world_size: int = 1):
        from noisecli.scan.detect import KINDS, RANDOM_KINDS, Detector
        from noisecli.scan.report import write_results
        from noisecli.scan.scan import ScanConfig, _logp
        from noisecli.scan.batch import detect_batch
        from noisecli.scan.tally import Tally, without
        detector = Detector(_logp(self.reference), _logp(self.other), None if self.script == "none" else self.script)
        tally, t0 = Tally(self.seed), time.perf_counter()
        folder = self.output_folder / f"{rank:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "documents.jsonl", "w", encoding="utf-8") as rows_file:
            for i, doc in enumerate(data or []):
                doc_id = rank + world_size * i
                with self.track_time():
                    result = detect_batch(detector, [doc_id], [doc.text], self.seed, [{"datatrove_id": doc.id}])
                rows_file.write(result.lines)
                tally.update(result.tally)
                row = json.loads(result.lines)
                doc.metadata["noisecli_noise"] = row["noisy"]
                doc.metadata["noisecli_spans"] = row["spans"]
                random_tokens = sum(row["noisy"].get(k, 0) for k in RANDOM_KINDS)
                self.stat_update("noisecli_random_noise_tokens", value=random_tokens)
                if self.remove and random_tokens:
                    doc.text = without(doc.text, [s for s in row["spans"] if s["kind"] in RANDOM_KINDS])
                yield doc
        cfg = ScanConfig(source=["datatrove"], out=self.output_folder, reference=self.reference, other=self.other,
                         script=self.script, seed=self.seed)
        from noisecli.core.options import as_dict
        settings = {"config": as_dict(cfg), "source": "a datatrove pipeline", "shard": [rank, world_size],
                    "kinds": list(KINDS), "counted_as_random_noise": list(RANDOM_KINDS)}
        write_json(folder / "state.json", {**settings, "tally": tally.state()})
        write_results(folder, tally, settings, time.perf_counter() - t0)
