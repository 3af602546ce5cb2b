"""Turns the official GenEval evaluator's run (its results.jsonl) into `evalcot score --detections`
input, so that evalcot re-scores the official detector's objects with its own rules, options and
reports.

    python3 examples/ext/official_to_detections.py RESULTS.jsonl --out detections.jsonl \\
        [--images-root IMAGEDIR] [--clip openai/clip-vit-large-patch14 | --tiny] [--device cuda]
    evalcot score --detections detections.jsonl --out rescored.jsonl

The official `details` keep, per class, the boxes and scores of the objects that passed the
thresholds ([x1, y1, x2, y2, score]); they do not keep colours or masks. Colours are therefore
classified again, for the objects of classes that a colour clause tests only, with GenEval's CLIP
recipe (examples/ext/transformers_detector.py) on each box's crop as it is — GenEval's
`bgcolor=original`, since the masks are gone — so a colour verdict can differ from the official
one where the masked crop would have classified otherwise. Every other verdict is the official
detector's objects under evalcot's rules. Images are read from each line's `filename`, or from
IMAGEDIR/<folder>/samples/<image> with --images-root (the official filenames are paths on the
machine that ran it). A line that cannot be converted stops the script naming the line.
"""

import argparse
import json
import os
import sys
from pathlib import Path

from transformers_detector import COLORS, ColourClassifier, hashed_tokens, pretrained_clip, tiny_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="the official evaluator's results.jsonl")
    ap.add_argument("--out", required=True)
    ap.add_argument("--images-root", help="the image folder, when the filenames point elsewhere")
    ap.add_argument("--clip", default="openai/clip-vit-large-patch14")
    ap.add_argument("--tiny", action="store_true", help="a tiny random CLIP (tests)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from PIL import Image
    import torch

    torch.set_num_threads(1)
    if args.tiny:
        torch.manual_seed(0)
        clip, proc = tiny_clip()
        tokens = hashed_tokens
    else:
        clip, proc, tokens = pretrained_clip(args.clip, args.device)
    clip.eval()
    colours = ColourClassifier(clip, proc, tokens, args.device)
    out = []
    with open(args.results) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                path = Path(row["filename"])
                folder, image = path.parent.parent.name, path.name
                if args.images_root:
                    path = Path(args.images_root) / folder / "samples" / image
                meta = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
                details = json.loads(row["details"]) if isinstance(row["details"], str) else row["details"]
                tested = {c["class"] for c in meta.get("include", []) if "color" in c}
                picture = Image.open(path).convert("RGB") if tested & set(details) else None
                dets = []
                for cls, boxes in details.items():
                    for x1, y1, x2, y2, score in boxes:
                        d = {"class": cls, "score": score, "box": [x1, y1, x2, y2]}
                        if cls in tested:
                            probs = colours.probs(picture, None, (x1, y1, x2, y2), cls)
                            d["color"] = COLORS[max(range(len(COLORS)), key=probs.__getitem__)]
                        dets.append(d)
            except (KeyError, ValueError, TypeError, OSError) as e:
                sys.exit(f"{args.results}:{n}: {type(e).__name__}: {e}")
            out.append(json.dumps({"folder": folder, "image": image, "metadata": meta, "detections": dets}))
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {len(out)} images' detections to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
