"""The PyTorch eager twin of evalcot's masked-token generator (`benchmarks/twin/compare.sh`).

    python3 twin.py EXPORT_DIR [--batch B] [--seconds S] [--device cpu|cuda] [--dtype float32|float16|bfloat16]

Builds the same network as `models::maskgit::MaskGit` — burn's pre-norm TransformerEncoder,
whose attention reads `norm_2` and whose feed-forward reads `norm_1`; GELU (erf); LayerNorm eps
1e-5; burn's Linear weights are [in, out], so they are transposed here — loads the weights that
`twin export` wrote, checks that it computes burn's logits on the probe, then times the forward
pass on the CFG pair of B images (2B rows) and prints one JSON line like `twin bench`.
"""

import argparse
import json
import math
import struct
import time

import numpy as np
import torch


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype="<f4").reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


class Layer(torch.nn.Module):
    def __init__(self, d, heads, d_ff):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.o = (torch.nn.Linear(d, d) for _ in range(4))
        self.inner, self.outer = torch.nn.Linear(d, d_ff), torch.nn.Linear(d_ff, d)
        self.norm_1, self.norm_2 = torch.nn.LayerNorm(d, eps=1e-5), torch.nn.LayerNorm(d, eps=1e-5)

    def forward(self, x):
        b, n, d = x.shape
        h = self.norm_2(x)  # burn's pre-norm attention path uses norm_2
        split = lambda t: t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d)
        x = x + self.o(ctx)
        return x + self.outer(torch.nn.functional.gelu(self.inner(self.norm_1(x))))


class MaskGitTwin(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        d = net["d_model"]
        self.text_len = net["text_len"]
        self.text_emb = torch.nn.Embedding(net["text_vocab"], d)
        self.image_emb = torch.nn.Embedding(net["codebook"] + 1, d)
        self.pos = torch.nn.Parameter(torch.zeros(net["text_len"] + net["image_tokens"], d))
        self.layers = torch.nn.ModuleList(Layer(d, net["heads"], net["d_ff"]) for _ in range(net["layers"]))
        self.norm = torch.nn.LayerNorm(d, eps=1e-5)
        self.head = torch.nn.Linear(d, net["codebook"])

    def forward(self, text, image):
        x = torch.cat([self.text_emb(text), self.image_emb(image)], 1) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x[:, self.text_len:]))

    def load_burn(self, w):
        def linear(m, prefix):
            m.weight.data = w[prefix + ".weight"].t().contiguous()
            m.bias.data = w[prefix + ".bias"]

        def norm(m, prefix):
            m.weight.data, m.bias.data = w[prefix + ".gamma"], w[prefix + ".beta"]

        used = set()
        get = lambda k: (used.add(k), w[k])[1]
        self.text_emb.weight.data = get("text_emb.weight")
        self.image_emb.weight.data = get("image_emb.weight")
        self.pos.data = get("pos")
        for i, layer in enumerate(self.layers):
            p = f"encoder.layers.{i}"
            for m, name in [(layer.q, "mha.query"), (layer.k, "mha.key"), (layer.v, "mha.value"),
                            (layer.o, "mha.output"), (layer.inner, "pwff.linear_inner"),
                            (layer.outer, "pwff.linear_outer")]:
                linear(m, f"{p}.{name}")
                used.update({f"{p}.{name}.weight", f"{p}.{name}.bias"})
            norm(layer.norm_1, f"{p}.norm_1")
            norm(layer.norm_2, f"{p}.norm_2")
            used.update({f"{p}.norm_{k}.{g}" for k in (1, 2) for g in ("gamma", "beta")})
        norm(self.norm, "norm")
        linear(self.head, "head")
        used.update({"norm.gamma", "norm.beta", "head.weight", "head.bias"})
        left = set(w) - used
        if left:
            raise SystemExit(f"twin: burn tensors the twin does not use: {sorted(left)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export_dir")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg = json.load(open(f"{args.export_dir}/config.json"))
    net = cfg["net"]
    model = MaskGitTwin(net)
    model.load_burn(load_safetensors(f"{args.export_dir}/weights.safetensors"))
    model.eval()

    probe = json.load(open(f"{args.export_dir}/probe.json"))
    rows = probe["rows"]
    text = torch.tensor(probe["text"]).view(rows, net["text_len"])
    image = torch.tensor(probe["image"]).view(rows, net["image_tokens"])
    want = torch.tensor(probe["logits"]).view(rows, net["image_tokens"], net["codebook"])
    got = model(text, image)
    diff = float((got - want).abs().max())
    if diff > 1e-3:
        raise SystemExit(f"twin: logits differ from burn's by up to {diff:.3g}: not the same network")

    dev = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model = model.to(dev, dtype)
    n = 2 * args.batch
    text = text.repeat(args.batch, 1).to(dev)
    image = image.repeat(args.batch, 1).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model(text, image)
    sync()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds or calls < 3:
        model(text, image)
        sync()
        calls += 1
    rows_per_s = calls * n / (time.perf_counter() - start)
    print(json.dumps({
        "impl": "pytorch-eager", "backend": f"torch {torch.__version__} ({dev.type})",
        "precision": args.dtype, "batch": args.batch, "rows_per_s": rows_per_s,
        "images_per_s": rows_per_s / (2 * cfg["sampling"]["steps"]),
        "threads": torch.get_num_threads(), "max_abs_logit_diff": diff,
    }))


if __name__ == "__main__":
    main()
