#!/usr/bin/env python3
"""What a run's own records say about its strategy: overall score (mean over tags), compute per
image, PARM's truncation and fallbacks, and — for ORM runs, from each image's trace (`p_yes` and
the evaluation detector's `candidate_correct`) — the within-image AUROC of the judge and the
share of the sampling (candidate 0) → oracle (any candidate right) gap its pick closes.

    tools/run-stats.py RUN [RUN …]
"""
import json
import sys
from collections import defaultdict
from pathlib import Path


def mean_over_tags(by_tag):
    return sum(c / n for c, n in by_tag.values()) / len(by_tag)


def stats(run):
    run = Path(run)
    summary = json.loads((run / "summary.json").read_text())
    tags = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        key = tuple(Path(r["filename"]).parts[-3:])
        tags[(key[0], key[2])] = r["tag"]
    n = fwd = calls = trunc = fallback = 0
    won = pairs = 0.0
    first, pick, oracle = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0])
    for line in (run / "generation.jsonl").read_text().splitlines():
        g = json.loads(line)
        n += 1
        fwd += g.get("forwards", 0)
        calls += g.get("judge_calls", 0)
        trunc += g.get("truncated", 0)
        t = g.get("trace") or {}
        fallback += bool(t.get("fallback_lowest_p_no"))
        p, c = t.get("p_yes"), t.get("candidate_correct")
        if p and c:
            tag = tags[(f"{g['prompt_index']:05d}", f"{g['image_index']:04d}.png")]
            for i, ci in enumerate(c):
                for k, ck in enumerate(c):
                    if ci and not ck:
                        pairs += 1
                        won += 1.0 if p[i] > p[k] else 0.5 if p[i] == p[k] else 0.0
            for acc, v in ((first, c[0]), (pick, c[t["chosen"]]), (oracle, any(c))):
                acc[tag][0] += v
                acc[tag][1] += 1
    out = {
        "run": run.name,
        "overall": round(summary["overall"], 4),
        "images": n,
        "forwards_per_image": round(fwd / n, 1),
        "judge_calls_per_image": round(calls / n, 1),
        "truncated_per_image": round(trunc / n, 2),
        "share_with_a_survivor": round(1 - fallback / n, 3),
    }
    if pairs:
        s, pk, o = mean_over_tags(first), mean_over_tags(pick), mean_over_tags(oracle)
        out.update(
            within_image_auroc=round(won / pairs, 3),
            pairs=int(pairs),
            candidate_0=round(s, 4),
            pick=round(pk, 4),
            oracle=round(o, 4),
            gap_closed=round((pk - s) / (o - s), 3) if o > s else None,
        )
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for r in sys.argv[1:]:
        print(json.dumps(stats(r)))
