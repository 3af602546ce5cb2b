#!/usr/bin/env python3
"""Per-image agreement of two runs of the same configuration made on different devices (or
builds): how many GenEval verdicts agree, how each tag's accuracy and the overall score move,
and how many images are byte-identical (when both folders hold md5.txt, as
tools/gpu/perf-check.sh writes). Images are matched by their path inside the run folder
(`PPPPP/samples/IIII.png`); only images present in both runs are compared, and the counts say
how many that is.

    tools/compare-runs.py RUN_A RUN_B [--json]
"""
import json
import sys
from pathlib import Path


def load(run):
    path = Path(run) / "results.jsonl"
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            sys.exit(f"{path}:{n}: {e}")
        key = "/".join(Path(r["filename"]).parts[-3:])
        out[key] = (r["tag"], bool(r["correct"]))
    return out


def md5s(run):
    path = Path(run) / "md5.txt"
    if not path.exists():
        return None
    sums = {}
    for line in path.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums["/".join(Path(name).parts[-3:])] = digest
    return sums


def score(records, keys):
    tags = {}
    for k in keys:
        tag, ok = records[k]
        c, n = tags.get(tag, (0, 0))
        tags[tag] = (c + ok, n + 1)
    per_tag = {t: c / n for t, (c, n) in tags.items()}
    return per_tag, sum(per_tag.values()) / max(len(per_tag), 1)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    a, b = load(args[0]), load(args[1])
    keys = sorted(set(a) & set(b))
    if not keys:
        sys.exit("the two runs share no image")
    agree = sum(a[k][1] == b[k][1] for k in keys)
    a_only = sum(a[k][1] and not b[k][1] for k in keys)
    b_only = sum(b[k][1] and not a[k][1] for k in keys)
    tags_a, overall_a = score(a, keys)
    tags_b, overall_b = score(b, keys)
    ma, mb = md5s(args[0]), md5s(args[1])
    same = None
    if ma is not None and mb is not None:
        same = sum(ma.get(k) is not None and ma.get(k) == mb.get(k) for k in keys)
    report = {
        "images": len(keys), "only_in_a": len(set(a) - set(b)), "only_in_b": len(set(b) - set(a)),
        "verdicts_agree": agree, "agreement": agree / len(keys),
        "correct_in_a_only": a_only, "correct_in_b_only": b_only,
        "overall_a": overall_a, "overall_b": overall_b, "overall_delta": overall_b - overall_a,
        "per_tag": {t: {"a": tags_a[t], "b": tags_b[t], "delta": tags_b[t] - tags_a[t]} for t in sorted(tags_a)},
        "identical_images": same,
    }
    if "--json" in sys.argv:
        print(json.dumps(report, indent=1))
        return
    print(f"{len(keys)} images in both runs ({report['only_in_a']} only in A, {report['only_in_b']} only in B)")
    print(f"verdicts agree on {agree} ({agree / len(keys):.4f}); correct only in A: {a_only}, only in B: {b_only}")
    if same is not None:
        print(f"byte-identical images: {same} ({same / len(keys):.4f})")
    print(f"{'tag':<14} {'A':>7} {'B':>7} {'B - A':>7}")
    for t, v in report["per_tag"].items():
        print(f"{t:<14} {v['a']:7.4f} {v['b']:7.4f} {v['delta']:+7.4f}")
    print(f"{'overall':<14} {overall_a:7.4f} {overall_b:7.4f} {overall_b - overall_a:+7.4f}")


if __name__ == "__main__":
    main()
