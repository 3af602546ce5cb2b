"""A tiny PyTorch judge served over evalcot-ext/1 — the shape of a LLaVA-style verifier adapter,
with a model the script creates itself (random weights from a fixed seed), so it runs without
downloads:

    evalcot run geneval --strategy parm --judge "ext:python3 examples/ext/torch_judge.py"

A real adapter asks a multimodal LLM the paper's questions (`final`: "Does this image match the
description? Answer yes or no."; `clarity`, `potential`, `step`, `reflect` likewise) and returns
the first-token probability of "yes" as `p_yes`; for `reflect` one verdict per GenEval clause,
with an explanation and the region to blame.
"""

import sys
import zlib

import torch

from evalcot_ext import image_from_json, log, serve

TASKS = ["final", "step", "clarity", "potential", "reflect"]
BUCKETS = 512
SIZE = 64

torch.set_num_threads(1)


def words(text):
    return torch.tensor([zlib.crc32(w.encode()) % BUCKETS for w in text.lower().split()] or [0])


class TinyJudge(torch.nn.Module):
    def __init__(self, d=32):
        super().__init__()
        self.image = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(16, d, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )
        self.text = torch.nn.EmbeddingBag(BUCKETS, d, mode="mean")
        self.task = torch.nn.Embedding(len(TASKS), d)
        self.head = torch.nn.Sequential(torch.nn.Linear(3 * d, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))

    def forward(self, image, text, task):
        z = torch.cat([self.image(image), self.text(text[None]), self.task(torch.tensor([task]))], 1)
        return torch.sigmoid(self.head(z))[0, 0]


torch.manual_seed(2)
MODEL = TinyJudge().eval()


def pixels(image):
    img = image.resize((SIZE, SIZE))
    return torch.tensor(list(img.getdata()), dtype=torch.float32).view(1, SIZE, SIZE, 3).permute(0, 3, 1, 2) / 255


def clauses(metadata):
    """GenEval's clauses, named as evalcot names them, with their wording."""
    out = []
    for i, c in enumerate(metadata.get("include", [])):
        text = f"{c.get('count', 1)} {c.get('color', '')} {c['class']}".replace("  ", " ")
        if "position" in c:
            rel, ref = c["position"]
            text += f" {rel.replace('_', ' ')} {metadata['include'][ref]['class']}"
        out.append((f"include[{i}]", text))
    for i, c in enumerate(metadata.get("exclude", [])):
        out.append((f"exclude[{i}]", f"fewer than {c['count']} {c['class']}"))
    return out


def judge(request):
    verdicts = []
    for r in request["requests"]:
        x = pixels(image_from_json(r["image"]))
        task = TASKS.index(r["task"])
        with torch.no_grad():
            p = float(MODEL(x, words(r["prompt"]), task))
            v = {"p_yes": p}
            if r["task"] == "reflect":
                v["clauses"] = []
                for name, text in clauses(r["metadata"]):
                    p_pass = float(MODEL(x, words(text), task))
                    v["clauses"].append({
                        "clause": name,
                        "p_pass": p_pass,
                        "explanation": f"expected {text}" + ("" if p_pass >= 0.5 else ", not found"),
                        "region": None,
                    })
        verdicts.append(v)
    return {"verdicts": verdicts}


if __name__ == "__main__":
    log(f"torch_judge: torch {torch.__version__}")
    serve("judge", {"name": "tiny-torch-judge", "tasks": TASKS}, {"judge": judge})
    sys.exit(0)
