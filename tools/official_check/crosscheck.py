#!/usr/bin/env python3
"""Cross-check evalcot's GenEval scoring against the OFFICIAL GenEval evaluator.

Generates adversarial random detections for all prompts x N images, runs the
official ``evaluation/evaluate_images.py`` (imported from a GenEval checkout,
with torch/mmdet/open_clip/clip_benchmark stubbed and the detector / colour
classifier monkeypatched to replay the generated detections), runs
``evalcot score`` on the same detections, and compares record by record.
Also compares summary_scores.py output on both result files and
``evalcot summary`` against summary_scores.py on the official file.

No official code is copied here: it is loaded from ``--geneval PATH``.
Exit status: 0 = no mismatch, 1 = mismatch, 2 = setup error.
"""

import argparse
import importlib.util
import json
import math
import os
import random
import re
import subprocess
import sys
import types

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
RELATIONS = ["left of", "right of", "above", "below"]
CANVAS = 512.0

DEFAULTS = dict(threshold=0.3, counting_threshold=0.9, max_objects=16,
                max_overlap=1.0, position_threshold=0.1)


# --------------------------------------------------------------------------
# Detection generator
# --------------------------------------------------------------------------

class Gen:
    def __init__(self, rng, classnames, no_ties=False):
        self.r = rng
        self.classnames = classnames
        self.no_ties = no_ties

    # ---- scores ----
    def score_above(self, thr):
        r = self.r.random()
        if r < 0.15:
            return math.nextafter(thr, 2.0)
        if r < 0.22:
            return thr + 1e-9
        if r < 0.27:
            return 1.0
        if r < 0.62:
            return round(self.r.uniform(thr + 0.005, 0.999), 2)   # coarse -> ties
        return self.r.uniform(math.nextafter(thr, 2.0), 1.0)

    def score_below(self, thr, floor=0.0):
        r = self.r.random()
        if r < 0.3:
            return thr                                   # exactly at threshold: dropped (strict >)
        if r < 0.45:
            return math.nextafter(thr, -1.0)
        if r < 0.5:
            return thr - 1e-9
        if r < 0.8:
            return max(round(self.r.uniform(floor + 0.005, thr - 0.005), 2), 0.001)
        return self.r.uniform(max(floor, 1e-6), thr)

    def any_score(self):
        r = self.r.random()
        if r < 0.1:
            return 0.3
        if r < 0.2:
            return 0.9
        if r < 0.3:
            return math.nextafter(self.r.choice([0.3, 0.9]), self.r.choice([-1.0, 2.0]))
        if r < 0.6:
            return round(self.r.uniform(0.01, 0.99), 2)
        return self.r.uniform(0.0, 1.0)

    # ---- boxes ----
    def maybe_round(self, box):
        if self.r.random() < 0.5:
            return [float(round(v)) for v in box]
        return [round(v, self.r.choice([1, 2, 3, 6])) for v in box]

    def maybe_invert(self, box, p=0.05):
        x1, y1, x2, y2 = box
        if self.r.random() < p:
            x1, x2 = x2, x1
        if self.r.random() < p:
            y1, y2 = y2, y1
        return [x1, y1, x2, y2]

    def rand_box(self):
        w = self.r.choice([self.r.uniform(1, 40), self.r.uniform(20, 200), self.r.uniform(100, 512)])
        h = self.r.choice([self.r.uniform(1, 40), self.r.uniform(20, 200), self.r.uniform(100, 512)])
        x1 = self.r.uniform(0, max(CANVAS - w, 0))
        y1 = self.r.uniform(0, max(CANVAS - h, 0))
        return self.maybe_invert(self.maybe_round([x1, y1, x1 + w, y1 + h]))

    def centred_box(self, cx, cy, w, h):
        return [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]

    def pair_geometry(self, expected_rel):
        """(box_a, box_b, mode): A is the positioned object, B the target."""
        r = self.r
        modes = ["clear", "clear", "diagonal", "diagonal", "small", "identical", "axis_boundary",
                 "margin_boundary", "degenerate", "random", "inverted"]
        mode = r.choice(modes)
        wA, hA, wB, hB = (r.uniform(10, 200) for _ in range(4))
        cx, cy = r.uniform(100, 412), r.uniform(100, 412)
        if mode in ("clear", "inverted"):
            rel = expected_rel if r.random() < 0.6 else r.choice(RELATIONS)
            d = r.uniform(0.15 * (wA + wB), 250)
            ox, oy = {"left of": (-d, 0), "right of": (d, 0), "above": (0, -d), "below": (0, d)}[rel]
            ox += r.uniform(-0.3, 0.3) * d
            oy += r.uniform(-0.3, 0.3) * d
        elif mode == "diagonal":
            d = r.uniform(5, 250)
            k = r.choice([1.0, r.uniform(0.6, 1.6)])
            ox, oy = d * r.choice([-1, 1]), d * k * r.choice([-1, 1])
        elif mode == "small":
            m = 0.1 * (wA + wB)
            ox, oy = r.uniform(-m, m) * 0.999, r.uniform(-0.1 * (hA + hB), 0.1 * (hA + hB)) * 0.999
        elif mode == "identical":
            ox, oy = 0.0, 0.0
        elif mode == "axis_boundary":
            # offset along one axis, total size S ~ 5*|a| -> dx ~ 0.5 (strict > 0.5 needed)
            a = float(r.randint(2, 40))
            S = 5 * a + r.choice([0.0, 0.0, 1e-9, -1e-9, 0.5, -0.5, 1.0, -1.0])
            wA = wB = hA = hB = S / 2.0
            sgn = r.choice([-1, 1])
            ox, oy = (sgn * a, 0.0) if r.random() < 0.5 else (0.0, sgn * a)
        elif mode == "margin_boundary":
            # |offset| equal to the margin (revised offset 0) or just beyond (<1e-3 / >1e-3)
            wA, wB, hA, hB = (float(r.randint(2, 100)) for _ in range(4))
            m = 0.1 * (wA + wB)
            ox = r.choice([-1, 1]) * (m + r.choice([0.0, 0.0005, 0.0009, 0.0011, 0.002, 1.0]))
            oy = 0.0 if r.random() < 0.7 else r.choice([-1, 1]) * 0.1 * (hA + hB)
        elif mode == "degenerate":
            # point boxes (zero size): tiny offsets around the 1e-3 cut-off
            wA = wB = hA = hB = 0.0
            ox = r.choice([0.0, 0.0005, -0.0009, 0.0015, -0.002, 3.0])
            oy = r.choice([0.0, 0.0007, -0.0012, 4.0])
        else:  # random
            return self.rand_box(), self.rand_box(), mode
        cbx, cby = cx, cy
        cax, cay = cx + ox, cy + oy
        a = self.centred_box(cax, cay, wA, hA)
        b = self.centred_box(cbx, cby, wB, hB)
        if mode not in ("axis_boundary", "margin_boundary", "degenerate") and r.random() < 0.5:
            a, b = [float(round(v)) for v in a], [float(round(v)) for v in b]
        if mode == "inverted":
            a = self.maybe_invert(a, 0.5)
            b = self.maybe_invert(b, 0.5)
        return a, b, mode

    def nms_variant(self, box):
        """A box overlapping `box` by a varying amount (for max_overlap runs)."""
        x1, y1, x2, y2 = box
        r = self.r.random()
        if r < 0.2:
            return list(box)                                     # exact duplicate
        if r < 0.4 and all(float(v).is_integer() for v in box) and x2 >= x1 and y2 >= y1:
            # IoU exactly 0.5 with the official +1 area convention: double the height
            h = y2 - y1 + 1
            return [x1, y1, x2, y1 + 2 * h - 1]
        j = self.r.uniform(0, 0.6) * max(abs(x2 - x1), abs(y2 - y1), 1.0)
        return self.maybe_round([x1 + self.r.uniform(-j, j), y1 + self.r.uniform(-j, j),
                                 x2 + self.r.uniform(-j, j), y2 + self.r.uniform(-j, j)])

    # ---- per class ----
    def class_dets(self, cls, count, thr, other_thr, color_req=None, counting=False):
        r = self.r
        if counting:
            n_above = r.choice([0, count - 1, count, count, count, count + 1, count + 1, count + 2,
                                16, 17, r.randint(17, 24)])
        else:
            n_above = r.choice([0, count, count, count, count, count + 1, count + 2,
                                r.randint(16, 22)] if r.random() < 0.9 else [16, 17])
        n_above = max(n_above, 0)
        n_below = r.choice([0, 0, 1, 2, 3])
        scores = [self.score_above(thr) for _ in range(n_above)]
        scores += [self.score_below(thr) for _ in range(n_below)]
        if counting and r.random() < 0.6:
            # scores that pass the ordinary threshold but not the counting one
            scores += [r.choice([other_thr, math.nextafter(other_thr, 2.0), 0.5, 0.85,
                                 math.nextafter(thr, -1.0), round(r.uniform(other_thr, thr), 2)])
                       for _ in range(r.randint(1, 4))]
        if not counting and r.random() < 0.2:
            scores += [r.choice([other_thr, math.nextafter(other_thr, 2.0), math.nextafter(other_thr, -1.0)])]
        # deliberate exact ties
        if scores and not self.no_ties and r.random() < 0.35:
            for _ in range(r.randint(1, 3)):
                scores.append(r.choice(scores))
        if self.no_ties:
            seen, uniq = set(), []
            for s in scores:
                while s in seen:
                    s = r.uniform(0.0, 1.0)
                seen.add(s)
                uniq.append(s)
            scores = uniq
        r.shuffle(scores)
        dets = []
        for s in scores:
            if dets and r.random() < 0.25:
                box = self.nms_variant(r.choice(dets)["box"])
            else:
                box = self.rand_box()
            dets.append({"class": cls, "score": s, "box": box, "color": r.choice(COLORS)})
        # colours
        if color_req is not None and dets:
            mode = r.choice(["all", "all", "none", "top", "top", "bottom", "random"])
            others = [c for c in COLORS if c != color_req]
            order = sorted(range(len(dets)), key=lambda i: -dets[i]["score"])  # stable: file order on ties
            for rank, i in enumerate(order):
                if mode == "all":
                    match = True
                elif mode == "none":
                    match = False
                elif mode == "top":
                    match = rank < count
                elif mode == "bottom":
                    match = rank >= count
                else:
                    match = r.random() < 0.5
                dets[i]["color"] = color_req if match else r.choice(others)
        return dets

    def image(self, meta, opts):
        r = self.r
        counting = meta["tag"] == "counting"
        thr = opts["counting_threshold"] if counting else opts["threshold"]
        other = opts["threshold"] if counting else opts["counting_threshold"]
        dets = []
        per_class = {}
        for req in meta.get("include", []):
            if r.random() < 0.05:
                continue  # class entirely missing
            d = self.class_dets(req["class"], req["count"], thr, other, req.get("color"), counting)
            per_class[req["class"]] = d
            dets += d
        # position: design geometry of the top-scoring A and B
        for req in meta.get("include", []):
            if "position" in req and r.random() < 0.9:
                rel, g = req["position"]
                tgt = meta["include"][g]["class"]
                da, db = per_class.get(req["class"]), per_class.get(tgt)
                if da and db:
                    ba, bb, _ = self.pair_geometry(rel)
                    max(da, key=lambda x: x["score"])["box"] = ba
                    max(db, key=lambda x: x["score"])["box"] = bb
        # distractors
        pool = [c for c in self.classnames if c not in per_class]
        for cls in r.sample(pool, r.choice([0, 1, 1, 2, 3, 5])):
            for _ in range(r.choice([1, 1, 2, 3])):
                dets.append({"class": cls, "score": self.any_score(), "box": self.rand_box(),
                             "color": r.choice(COLORS)})
        # occasional >16 detections of a distractor class
        if r.random() < 0.03 and pool:
            cls = r.choice(pool)
            dets += [{"class": cls, "score": self.score_above(thr), "box": self.rand_box(),
                      "color": r.choice(COLORS)} for _ in range(r.randint(17, 20))]
        if self.no_ties:
            seen = {}
            for d in dets:
                used = seen.setdefault(d["class"], set())
                while d["score"] in used:
                    d["score"] = r.uniform(0.0, 1.0)
                used.add(d["score"])
        # interleave classes in file order
        if r.random() < 0.7:
            r.shuffle(dets)
        return dets


def generate(path, metas, classnames, seed, images_per_prompt, opts, no_ties):
    rng = random.Random(seed)
    gen = Gen(rng, classnames, no_ties)
    lines = []
    with open(path, "w") as fp:
        for p, (raw, meta) in enumerate(metas):
            for i in range(images_per_prompt):
                dets = gen.image(meta, opts)
                rec = {"folder": f"{p:05d}", "image": f"{i:04d}.png", "metadata": meta, "detections": dets}
                line = json.dumps(rec)
                fp.write(line + "\n")
                lines.append(rec)
    return lines


# --------------------------------------------------------------------------
# Official evaluator (imported from the checkout, heavy deps stubbed)
# --------------------------------------------------------------------------

def _stub_modules():
    def mod(name, **attrs):
        m = types.ModuleType(name)
        for k, v in attrs.items():
            setattr(m, k, v)
        sys.modules[name] = m
        return m

    class _Dataset:
        pass

    class _NoGrad:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    tdata = mod("torch.utils.data", Dataset=_Dataset, DataLoader=lambda *a, **k: None)
    tutils = mod("torch.utils", data=tdata)
    mod("torch", cuda=types.SimpleNamespace(is_available=lambda: True), utils=tutils,
        no_grad=lambda: _NoGrad())

    def _unpatched(*a, **k):
        raise RuntimeError("stub called: monkeypatching failed")

    apis = mod("mmdet.apis", inference_detector=_unpatched, init_detector=_unpatched)
    mod("mmdet", apis=apis, __file__="/nonexistent/mmdet/__init__.py")
    mod("open_clip")
    zsc = mod("clip_benchmark.metrics.zeroshot_classification")
    metrics = mod("clip_benchmark.metrics", zeroshot_classification=zsc)
    mod("clip_benchmark", metrics=metrics)
    try:
        import PIL.Image  # noqa: F401
        import PIL.ImageOps  # noqa: F401
    except ImportError:
        im = mod("PIL.Image", open=_unpatched, Image=type("Image", (), {}))
        iops = mod("PIL.ImageOps", exif_transpose=_unpatched)
        mod("PIL", Image=im, ImageOps=iops)


def load_official(geneval, classnames, opts):
    path = os.path.join(geneval, "evaluation", "evaluate_images.py")
    if not os.path.isfile(path):
        sys.exit(f"error: {path} not found (--geneval must be a GenEval checkout)")
    _stub_modules()
    spec = importlib.util.spec_from_file_location("geneval_official_evaluate_images", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    m.object_detector = None
    m.classnames = list(classnames)
    m.args = types.SimpleNamespace(options={})
    m.THRESHOLD = float(opts["threshold"])
    m.COUNTING_THRESHOLD = float(opts["counting_threshold"])
    m.MAX_OBJECTS = int(opts["max_objects"])
    m.NMS_THRESHOLD = float(opts["max_overlap"])
    m.POSITION_THRESHOLD = float(opts["position_threshold"])
    m.Image = types.SimpleNamespace(open=lambda fp: ("stub-image", fp))
    m.ImageOps = types.SimpleNamespace(exif_transpose=lambda im: im)
    m.color_classification = lambda image, objs, classname: [mask for _, mask in objs]
    return m


def run_official(m, records, classnames, out_path):
    import numpy as np
    import pandas as pd
    cidx = {c: i for i, c in enumerate(classnames)}
    table = {}

    def fake_inference(model, filepath):
        return table[filepath]

    m.inference_detector = fake_inference
    results = []
    for rec in records:
        rows = [[] for _ in classnames]
        cols = [[] for _ in classnames]
        for d in rec["detections"]:
            i = cidx[d["class"]]
            rows[i].append(list(d["box"]) + [d["score"]])
            cols[i].append(d["color"])
        bbox = [np.array(r, dtype=np.float64).reshape(-1, 5) for r in rows]
        fp = f"{rec['folder']}/samples/{rec['image']}"
        table[fp] = (bbox, cols)
        results.append(m.evaluate_image(fp, rec["metadata"]))
        del table[fp]
    with open(out_path, "w") as fp:
        pd.DataFrame(results).to_json(fp, orient="records", lines=True)
    return results


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

POS_RE = re.compile(r"^expected (.+) (left of|right of|above|below) target, found (.*) target$")


def norm_reason(reason):
    out = []
    for line in (reason or "").split("\n"):
        mt = POS_RE.match(line)
        if mt:
            found = frozenset(x for x in mt.group(3).split(" and ") if x)
            out.append(("pos", mt.group(1), mt.group(2), found))
        else:
            out.append(line)
    return out


def as_obj(v):
    return json.loads(v) if isinstance(v, str) else v


def read_jsonl(path):
    with open(path) as fp:
        return [json.loads(l) for l in fp if l.strip()]


def tie_only(d_off, d_ev):
    """True if details differ only by order among equal-score boxes of a class."""
    if set(d_off) != set(d_ev):
        return False
    for k in d_off:
        a, b = d_off[k], d_ev[k]
        if len(a) != len(b) or sorted(map(tuple, a)) != sorted(map(tuple, b)):
            return False
        if [x[4] for x in a] != [x[4] for x in b]:
            return False
    return True


def ulp_equal(d_off, d_ev):
    """True if details agree up to 2 ulps per number (float parse/print rounding)."""
    if set(d_off) != set(d_ev):
        return False
    for k in d_off:
        a, b = d_off[k], d_ev[k]
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if len(x) != len(y) or not all(u == v or abs(u - v) <= 2 * math.ulp(max(abs(u), abs(v)))
                                           for u, v in zip(x, y)):
                return False
    return True


def big_ties(rec):
    """A class with > 16 rows and tied scores: numpy's introsort (not insertion sort) orders the ties."""
    rows = {}
    for d in rec["detections"]:
        rows.setdefault(d["class"], []).append(d["score"])
    return any(len(v) > 16 and len(set(v)) < len(v) for v in rows.values())


def has_kept_ties(rec, thr):
    by = {}
    for d in rec["detections"]:
        if d["score"] > thr:
            by.setdefault(d["class"], []).append(d["score"])
    return any(len(v) != len(set(v)) for v in by.values())


def compare(inputs, off, ev, opts):
    kinds = {}
    details = []
    info = {}

    def add(kind, i, note=""):
        kinds[kind] = kinds.get(kind, 0) + 1
        details.append((kind, i, note))

    if len(off) != len(ev):
        add("record_count", -1, f"official {len(off)} vs evalcot {len(ev)}")
    for i, (o, e, inp) in enumerate(zip(off, ev, inputs)):
        counting = inp["metadata"]["tag"] == "counting"
        thr = opts["counting_threshold"] if counting else opts["threshold"]
        ties = has_kept_ties(inp, thr)
        tnote = (" [image has tied kept scores]" if ties else "") + \
            (" [class with >16 rows and tied scores]" if big_ties(inp) else "")
        missing = [k for k in ("filename", "tag", "prompt", "correct", "reason", "metadata", "details") if k not in e]
        if missing:
            add("missing_keys", i, f"evalcot record lacks {missing}")
            continue
        if o["filename"] != e["filename"]:
            add("filename", i, f"{o['filename']!r} vs {e['filename']!r}")
        if o["tag"] != e["tag"]:
            add("tag", i)
        if o["prompt"] != e["prompt"]:
            add("prompt", i)
        if as_obj(o["metadata"]) != as_obj(e["metadata"]):
            add("metadata", i)
        if o["correct"] is not e["correct"]:
            add("correct", i, tnote)
        do, de = as_obj(o["details"]), as_obj(e["details"])
        if do != de:
            if tie_only(do, de):
                add("details_tie_order_only", i, tnote)
            elif ulp_equal(do, de):
                add("details_ulp_only", i, tnote)
            else:
                add("details", i, tnote)
        elif list(do) != list(de):
            info["details_key_order (informational)"] = info.get("details_key_order (informational)", 0) + 1
        if o["reason"] != e["reason"]:
            if norm_reason(o["reason"]) == norm_reason(e["reason"]):
                info["reason_set_order (allowed)"] = info.get("reason_set_order (allowed)", 0) + 1
            else:
                add("reason", i, tnote)
    return kinds, details, info


def selftest(geneval, classnames):
    """Hand-made cases through the official code (sanity of the harness)."""
    import copy
    meta = {
        "single": {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
        "count3": {"tag": "counting", "include": [{"class": "dog", "count": 3}],
                   "exclude": [{"class": "dog", "count": 4}], "prompt": "a photo of three dogs"},
        "color": {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
        "pos": {"tag": "position", "include": [{"class": "teddy bear", "count": 1},
                {"class": "dog", "count": 1, "position": ["right of", 0]}], "prompt": "a photo of a dog right of a teddy bear"},
    }

    def d(cls, score, box=(10, 10, 60, 60), color="red"):
        return {"class": cls, "score": score, "box": list(box), "color": color}

    B = (100, 100, 200, 200)
    cases = [
        ("perfect single", "single", [d("bench", 0.95)], True, ""),
        ("score == 0.3 dropped", "single", [d("bench", 0.3)], False, "expected bench>=1, found 0"),
        ("score just above 0.3", "single", [d("bench", math.nextafter(0.3, 1))], True, ""),
        ("counting exact", "count3", [d("dog", 0.95)] * 3 + [d("dog", 0.9), d("dog", 0.89)], True, ""),
        ("counting too many", "count3", [d("dog", 0.95)] * 4, False, "expected dog<4, found 4"),
        ("counting 16-cap", "count3", [d("dog", 0.95)] * 20, False, "expected dog<4, found 16"),
        ("counting 0.9 threshold", "count3", [d("dog", 0.5)] * 3, False, "expected dog>=3, found 0"),
        ("colour ok", "color", [d("car", 0.5, color="red")], True, ""),
        ("colour top-1 only", "color", [d("car", 0.4, color="red"), d("car", 0.6, color="blue")], False,
         "expected red car>=1, found 0 red; and 1 blue"),
        ("position ok", "pos", [d("teddy bear", 0.9, B), d("dog", 0.9, (300, 100, 400, 200))], True, ""),
        ("position identical centres", "pos", [d("teddy bear", 0.9, B), d("dog", 0.9, B)], False,
         "expected dog right of target, found  target"),
        ("position no target", "pos", [d("dog", 0.9, B)], False,
         "expected teddy bear>=1, found 0\nno target for dog to be right of"),
    ]
    opts = dict(DEFAULTS)
    m = load_official(geneval, classnames, opts)
    fails = 0
    for name, mk, dets, exp_ok, exp_reason in cases:
        rec = {"folder": "00000", "image": "0000.png", "metadata": copy.deepcopy(meta[mk]), "detections": dets}
        res = run_official(m, [rec], classnames, os.devnull)[0]
        ok = res["correct"] == exp_ok and res["reason"] == exp_reason
        fails += not ok
        print(f"[selftest] {'ok  ' if ok else 'FAIL'} {name}: correct={res['correct']} reason={res['reason']!r}")
    # NMS with max_overlap 0.5: duplicate box suppressed; IoU exactly 0.5 (+1 areas) suppressed too
    m = load_official(geneval, classnames, dict(DEFAULTS, max_overlap=0.5))
    rec = {"folder": "00000", "image": "0000.png", "metadata": meta["single"],
           "detections": [d("bench", 0.9, (0, 0, 9, 9)), d("bench", 0.8, (0, 0, 9, 9)),
                          d("bench", 0.7, (0, 0, 9, 19)), d("bench", 0.6, (100, 100, 150, 150))]}
    res = run_official(m, [rec], classnames, os.devnull)[0]
    kept = [b[4] for b in json.loads(res["details"])["bench"]]
    ok = kept == [0.9, 0.6]
    fails += not ok
    print(f"[selftest] {'ok  ' if ok else 'FAIL'} nms 0.5: kept scores {kept}")
    return fails


def udiff(a, b, na, nb):
    import difflib
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), na, nb, n=100))


def run_cmd(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return p.returncode, p.stdout, p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--geneval", required=True, help="path to a GenEval checkout (work tree)")
    ap.add_argument("--evalcot", default="/work/main/target/debug/evalcot")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--metadata", default="/work/shared/geneval/evaluation_metadata.jsonl")
    ap.add_argument("--object-names", default="/work/shared/geneval/object_names.txt")
    ap.add_argument("--images-per-prompt", type=int, default=4)
    ap.add_argument("--out-dir", default=None, help="default /tmp/evalcot_crosscheck/<run-name>")
    ap.add_argument("--no-ties", action="store_true", help="avoid exact score ties within a class")
    ap.add_argument("--official-only", action="store_true", help="generate + run official side only")
    ap.add_argument("--selftest", action="store_true", help="run hand-made cases through the official code and exit")
    ap.add_argument("--show", type=int, default=10, help="mismatches shown in detail")
    for k in DEFAULTS:
        ap.add_argument("--" + k.replace("_", "-"), type=float if k != "max_objects" else int, default=None)
    a = ap.parse_args()

    opts = {k: (getattr(a, k) if getattr(a, k) is not None else v) for k, v in DEFAULTS.items()}
    passed = {k: getattr(a, k) for k in DEFAULTS if getattr(a, k) is not None}
    name = f"seed{a.seed}" + "".join(f"_{k}{v}" for k, v in passed.items()) + ("_noties" if a.no_ties else "")
    out = a.out_dir or os.path.join("/tmp/evalcot_crosscheck", name)
    os.makedirs(out, exist_ok=True)

    with open(a.object_names) as fp:
        classnames = [l.strip() for l in fp]
    with open(a.metadata) as fp:
        metas = [(l.rstrip("\n"), json.loads(l)) for l in fp if l.strip()]

    if a.selftest:
        return 1 if selftest(a.geneval, classnames) else 0

    dets_path = os.path.join(out, "dets.jsonl")
    off_path = os.path.join(out, "official_results.jsonl")
    ev_path = os.path.join(out, "evalcot_results.jsonl")
    inputs = generate(dets_path, metas, classnames, a.seed, a.images_per_prompt, opts, a.no_ties)
    import numpy as np
    import pandas as pd
    print(f"[crosscheck] {len(inputs)} images -> {dets_path}  (numpy {np.__version__}, pandas {pd.__version__}, "
          f"python {sys.version.split()[0]})")
    print(f"[crosscheck] options: {opts}")
    if tuple(int(x) for x in np.__version__.split(".")[:2]) >= (1, 25):
        print("[crosscheck] WARNING: numpy >= 1.25 may use SIMD argsort; the order of tied scores then differs "
              "from GenEval's pinned numpy 1.23 (see README). Prefer a venv with numpy==1.23.5 pandas==1.5.3.")

    m = load_official(a.geneval, classnames, opts)
    run_official(m, inputs, classnames, off_path)
    off = read_jsonl(off_path)
    n_ok = sum(r["correct"] for r in off)
    print(f"[crosscheck] official: {n_ok}/{len(off)} correct -> {off_path}")
    by_tag = {}
    for r in off:
        t = by_tag.setdefault(r["tag"], [0, 0])
        t[0] += r["correct"]
        t[1] += 1
    print("[crosscheck] official correct by tag: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in by_tag.items()))

    summ = os.path.join(a.geneval, "evaluation", "summary_scores.py")
    rc, s_off, err = run_cmd([sys.executable, summ, off_path])
    if rc != 0:
        print(f"[crosscheck] summary_scores.py failed on official file:\n{err}")
        return 2
    if a.official_only:
        print(s_off)
        return 0

    cmd = [a.evalcot, "score", "--detections", dets_path, "--out", ev_path]
    for k, v in passed.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    print("[crosscheck] $ " + " ".join(cmd))
    rc, so, se = run_cmd(cmd)
    if rc != 0:
        print(f"[crosscheck] evalcot score failed (rc={rc}):\n{so}\n{se}")
        return 1
    ev = read_jsonl(ev_path)

    kinds, mism, info = compare(inputs, off, ev, opts)

    # summaries
    rc2, s_ev, err2 = run_cmd([sys.executable, summ, ev_path])
    if rc2 != 0:
        kinds["summary_scores_on_evalcot_failed"] = 1
        print(f"[crosscheck] summary_scores.py failed on evalcot file:\n{err2}")
    elif s_ev != s_off:
        kinds["summary_scores_output"] = 1
        print("[crosscheck] summary_scores.py output differs between the two result files:")
        print(udiff(s_off, s_ev, "summary_scores.py official_results.jsonl", "summary_scores.py evalcot_results.jsonl"))
    rc3, s_ec, err3 = run_cmd([a.evalcot, "summary", ev_path])
    if rc3 != 0:
        kinds["evalcot_summary_failed"] = 1
        print(f"[crosscheck] evalcot summary failed (rc={rc3}):\n{s_ec}\n{err3}")
    elif s_ec != s_off:
        kinds["evalcot_summary_text"] = 1
        print("[crosscheck] `evalcot summary` differs from summary_scores.py on the official file:")
        print(udiff(s_off, s_ec, "summary_scores.py official_results.jsonl", "evalcot summary evalcot_results.jsonl"))

    print(f"[crosscheck] mismatch counts: {kinds if kinds else 'none'}")
    if info:
        print(f"[crosscheck] tolerated/informational: {info}")
    sev = ["record_count", "missing_keys", "correct", "reason", "details", "details_tie_order_only",
           "details_ulp_only"]
    mism.sort(key=lambda t: (sev.index(t[0]) if t[0] in sev else len(sev), t[1]))
    shown = set()
    for kind, i, note in mism:
        if len(shown) >= a.show:
            break
        if i in shown:
            continue
        shown.add(i)
        print(f"\n=== mismatch [{kind}] image #{i}{note}")
        if i >= 0:
            print("input:    " + json.dumps(inputs[i]))
            print("official: " + json.dumps(off[i]))
            print("evalcot:  " + (json.dumps(ev[i]) if i < len(ev) else "<missing>"))
    print(f"\n[crosscheck] files in {out}")
    if mism:
        print("[crosscheck] images shown most-severe first (correct, reason, details, tie order, ulp)")
    return 1 if kinds else 0


if __name__ == "__main__":
    sys.exit(main())
