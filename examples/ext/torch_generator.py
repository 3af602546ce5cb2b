"""A tiny PyTorch masked-token generator served over evalcot-ext/1 — the shape of a Show-o
adapter, with a model the script creates itself (random weights from a fixed seed), so it runs
without downloads:

    evalcot run geneval --strategy parm --n 20 --generator "ext:python3 examples/ext/torch_generator.py"

What a real adapter changes: load Show-o (or LlamaGen, Janus…) instead of `TinyMaskGit`, its VQ
decoder instead of `PatchDecoder`, its text tokenizer instead of `encode_prompt`. The sampling
loop below is Show-o's: cosine schedule, classifier-free guidance with the empty prompt,
multinomial draws, confidence = log p + τ·Gumbel with τ annealed per step and reset per
candidate, re-masking of the least confident tokens. The worker is stateless: evalcot sends each
candidate's tokens with every request, and every random draw comes from (seed, step).
"""

import math
import sys
import zlib

import torch
from PIL import Image

from evalcot_ext import MASK, image_to_json, log, serve

GRID = 8  # 8×8 tokens
PATCH = 8  # pixels per token side: 64×64 images
CODEBOOK = 32
TEXT_LEN = 16
TEXT_BUCKETS = 512
STEPS = 8
CFG = 1.75
TAU0 = 1.0

torch.set_num_threads(1)


def encode_prompt(prompt):
    """Hashed words (crc32: Python's hash() changes between processes), 0 = padding."""
    ids = [1 + zlib.crc32(w.encode()) % (TEXT_BUCKETS - 1) for w in prompt.lower().split()]
    ids = ids[:TEXT_LEN]
    return ids + [0] * (TEXT_LEN - len(ids))


class TinyMaskGit(torch.nn.Module):
    def __init__(self, d=64):
        super().__init__()
        self.text = torch.nn.Embedding(TEXT_BUCKETS, d)
        self.image = torch.nn.Embedding(CODEBOOK + 1, d)  # + the mask token
        self.pos = torch.nn.Parameter(torch.randn(TEXT_LEN + GRID * GRID, d) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(d, 4, 4 * d, dropout=0.0, batch_first=True)
        self.body = torch.nn.TransformerEncoder(layer, 2)
        self.head = torch.nn.Linear(d, CODEBOOK)

    def forward(self, text, tokens):
        x = torch.cat([self.text(text), self.image(tokens)], dim=1) + self.pos
        return self.head(self.body(x)[:, TEXT_LEN:])


class PatchDecoder:
    """Token k → an 8×8 patch: one colour on a fixed random shape."""

    def __init__(self, g):
        self.colors = torch.randint(0, 256, (CODEBOOK, 3), generator=g)
        self.shapes = torch.rand(CODEBOOK, PATCH, PATCH, generator=g) > 0.5

    def __call__(self, tokens):
        t = torch.tensor([0 if x == MASK else x for x in tokens]).view(GRID, GRID)
        bg = torch.full((3,), 235)
        patches = torch.where(self.shapes[t][..., None], self.colors[t][:, :, None, None, :], bg)
        img = patches.permute(0, 2, 1, 3, 4).reshape(GRID * PATCH, GRID * PATCH, 3)
        return Image.fromarray(img.to(torch.uint8).numpy())


torch.manual_seed(0)
MODEL = TinyMaskGit().eval()
DECODER = PatchDecoder(torch.Generator().manual_seed(1))
EMPTY = encode_prompt("")


def draw_seed(seed, *keys):
    """A 63-bit seed from a trajectory seed and keys."""
    h = zlib.crc32(repr((seed,) + keys).encode())
    return (seed * 0x9E3779B97F4A7C15 + h) % (2**63)


def guided_log_probs(prompt, tokens, cfg):
    """log-softmax of (1+s)·cond − s·uncond for one trajectory: the CFG pair in one forward
    of batch 2. One trajectory per forward, so that results never depend on batch make-up."""
    inp = torch.tensor([[CODEBOOK if x == MASK else x for x in tokens]] * 2)
    text = torch.tensor([encode_prompt(prompt), EMPTY])
    with torch.no_grad():
        logits = MODEL(text, inp)
    guided = (1 + cfg) * logits[0] - cfg * logits[1]
    return torch.log_softmax(guided, dim=-1)


def keep_masked(n0, t, steps, unknown):
    """Show-o's cosine schedule; the last step commits everything."""
    if t + 1 >= steps or unknown <= 1:
        return 0
    n = math.floor(n0 * math.cos(math.pi / 2 * (t + 1) / steps))
    return min(max(n, 1), unknown - 1)


def step_one(item, cfg):
    tokens = list(item["tokens"])
    t, steps = item["step"], item["steps"]
    g = torch.Generator().manual_seed(draw_seed(item["seed"], t))
    logp = guided_log_probs(item["prompt"], tokens, cfg)
    tau = TAU0
    for k in range(t):  # annealed from τ0 at step 0 of every schedule
        tau *= 1 - (k + 1) / steps
    masked = [p for p, x in enumerate(tokens) if x == MASK]
    picks = torch.multinomial(logp.exp(), 1, generator=g).squeeze(1)
    u = torch.rand(len(tokens), generator=g).clamp(1e-12, 1 - 1e-12)
    gumbel = -torch.log(-torch.log(u))
    confidence = logp.gather(1, picks[:, None]).squeeze(1) + tau * gumbel
    prediction = [x if x != MASK else int(picks[p]) for p, x in enumerate(tokens)]
    n = keep_masked(item["schedule_masked"], t, steps, len(masked))
    remasked = set(sorted(masked, key=lambda p: (float(confidence[p]), p))[:n])
    new = [MASK if p in remasked else prediction[p] for p in range(len(tokens))]
    return {"tokens": new, "prediction": prediction, "forwards": 2}


def step(request):
    cfg = request.get("cfg_scale")
    cfg = CFG if cfg is None else cfg
    return {"batch": [step_one(item, cfg) for item in request["batch"]]}


def decode(request):
    return {"images": [image_to_json(DECODER(item["tokens"])) for item in request["batch"]]}


def log_prob(request):
    """log p(tokens | prompt), summed over a random cosine-schedule mask drawn from the seed."""
    tokens = request["tokens"]
    g = torch.Generator().manual_seed(draw_seed(request["seed"], "mask"))
    r = float(torch.rand(1, generator=g))
    count = max(1, math.floor(len(tokens) * math.cos(math.pi / 2 * r)))
    hidden = torch.randperm(len(tokens), generator=g)[:count].tolist()
    inp = [MASK if p in hidden else x for p, x in enumerate(tokens)]
    text = torch.tensor([encode_prompt(request["prompt"])])
    with torch.no_grad():
        logp = torch.log_softmax(MODEL(text, torch.tensor([[CODEBOOK if x == MASK else x for x in inp]]))[0], -1)
    return {"log_prob": float(sum(logp[p, tokens[p]] for p in hidden))}


if __name__ == "__main__":
    log(f"torch_generator: torch {torch.__version__}, {sum(p.numel() for p in MODEL.parameters())} parameters")
    serve(
        "generator",
        {
            "name": "tiny-torch-maskgit",
            "grid": [GRID, GRID],
            "default_steps": STEPS,
            "default_cfg_scale": CFG,
            "capabilities": ["remask", "log_prob"],
        },
        {"step": step, "decode": decode, "log_prob": log_prob},
    )
    sys.exit(0)
