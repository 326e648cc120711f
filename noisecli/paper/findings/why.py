"""The findings about Why (§3.3, Appendix B.3): k ≫ 1 and Proposition 1, each judged only where its
conditions and the measured rise allow."""

from __future__ import annotations

import numpy as np

from noisecli.paper.evidence import Evidence, load_json
from noisecli.why.theory import KTable, Prediction
from noisecli.paper.findings.base import K_LARGE, Finding, _random_runs, judge, worst


def k_large(e: Evidence) -> Finding | None:
    rows = []
    for n in _random_runs(e):
        k = load_json(e.out / "theory" / n / "k.json", KTable)
        if not k:
            continue
        last = k["rows"][-3:]
        vals = [r["k"] for r in last if r.get("k") is not None and r["k"] > 0]
        rise = e.compare(n)
        resolved = bool(rise and rise["seeds_known"] and (rise["lo"] > 0 or rise["hi"] < 0))
        if not resolved:
            status, why = "not decidable", ("its rise ε at the same iteration is inside the noise, so k = ε/(ε/k) is "
                                            "not determined" if rise else "its rise is missing")
        elif len(vals) < len(last):
            status, why = "not decidable", "k is undefined at one of the last checkpoints"
        else:
            status = "agrees" if min(vals) > K_LARGE else "disagrees" if max(vals) <= K_LARGE else "within noise"
            why = ""
        rows.append({"run": n, "k": vals, "median": float(np.median(vals)) if vals else None, "status": status,
                     "reason": why, "rise": rise, "last": e.k_interval(n)})
    if not rows:
        return None
    judged = [r["status"] for r in rows if not r["reason"]]
    parts = [f"{r['run']}: " + (f"median {r['median']:.3g}, range [{min(r['k']):.3g}, {max(r['k']):.3g}]" if r["k"]
                                else "undefined") + (f" → not decidable for this run: {r['reason']}" if r["reason"]
                                                     else f" → {r['status']}") for r in rows]
    return Finding("k ≫ 1", "For random noise, k (how much mass moved off clean tokens raises p_n) is much greater than "
                   "one (Appendix B.3). Rule: k > 10 at the last three checkpoints (ours)",
                   "; ".join(_k_text(r) for r in rows) + " (1 noisy seed; windows' interval)",
                   worst(judged),
                   "k from the checkpoints (theory k), judged only for runs whose same-iteration rise is resolved "
                   "(outside the interval over windows and seeds): " + "; ".join(parts) + ".", {"runs": rows})


def _k_text(r: dict) -> str:
    if r["median"] is None:
        return f"{r['run']} k undefined"
    last = r["last"]
    interval = (f" [{last['lo']:.3g}, {last['hi']:.3g}]" if last and last["lo"] is not None else " [no interval]")
    return f"{r['run']} k {r['k'][-1]:.3g}{interval} at {last['iter'] if last else 'the last checkpoint'} (median of the last three {r['median']:.3g})"


def proposition1(e: Evidence) -> Finding | None:
    rows = []
    for n in [r for r in e.runs if r not in e.clean_seeds]:
        p = load_json(e.out / "theory" / n / "predict.json", Prediction)
        if not p:
            continue
        c = {x["number"]: x for x in p.get("conclusions") or []}
        r = e.compare(n)
        row = {"run": n, "conclusions": {k: v["holds"] for k, v in c.items()}, "bound": p.get("predicted_rise_bound"),
               "rise": r}
        if not c or r is None or not r["seeds_known"]:
            row["status"], row["reason"] = "not decidable", "k undefined or the rise's seed spread unknown"
        elif c["3"]["holds"]:
            row["status"], row["reason"] = judge(r["lo"], r["hi"], upper=p["predicted_rise_bound"]), \
                f"(3) bounds the rise by {p['predicted_rise_bound']:+.4f}"
        elif c["1"]["holds"]:
            if r["lo"] > 0 or r["hi"] < 0:
                row["status"], row["reason"] = "not decidable", ("(1) predicts no rise at the optimum; a resolved rise "
                                                                 "says this model is not at the optimum the proposition "
                                                                 "describes (it is about minimisers, not SGD)")
            else:
                row["status"], row["reason"] = "within noise", "(1) predicts no rise; the measured one holds zero"
        else:
            row["status"], row["reason"] = "not decidable", "the conditions of (1) and (3) fail: no bound applies"
        rows.append(row)
    if not rows:
        return None
    parts = [f"{x['run']}: " + (", ".join(f"({k}) {'holds' if v else 'conditions fail'}"
                                          for k, v in x["conclusions"].items()) or "k undefined, no conclusion")
             + (f"; measured {x['rise']['rise']:+.4f} [{x['rise']['lo']:+.4f}, {x['rise']['hi']:+.4f}]" if x["rise"] else "")
             + f"; {x['reason']} → {x['status']}" for x in rows]
    return Finding("Proposition 1", "At the optimum: (1) α ≤ kp_n/(p_c + kp_n): no rise; (2) otherwise the optimum "
                   "moves; (3) α < 1/3 and k above its bound: the clean-loss rise is bounded (§3.3)",
                   "; ".join(f"{x['run']} {x['status']}" for x in rows), worst([x["status"] for x in rows]),
                   "p_c, p_n from the clean run and k from the checkpoints; each conclusion only where its conditions "
                   "hold, the measured rise at the same iteration with its interval over windows and seeds: "
                   + "; ".join(parts) + ".", {"runs": rows})
