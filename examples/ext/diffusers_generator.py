"""A diffusion generator over evalcot-ext/2: a `diffusers` UNet + VAE + DDIM, stepped one
denoising step per `step` request, with the candidate's latents as the opaque state and the
decoded x0 prediction of every step as the preview that PRM and PARM judge.

    python3 examples/ext/diffusers_generator.py --model stabilityai/stable-diffusion-2-1-base --device cuda
    python3 examples/ext/diffusers_generator.py --tiny        # a tiny random model, no downloads (tests)

    evalcot run geneval --strategy parm --n 20 \\
        --generator "ext:python3 examples/ext/diffusers_generator.py --model …" --detector "ext:…"

--model loads a Stable Diffusion 1.x/2.x pipeline (UNet2DConditionModel with text conditioning
only); its scheduler is replaced by DDIM with the same noise schedule, because DDIM's step is a
function of (latents, timestep) alone, so evalcot can hold, fork and resume candidates without
the worker keeping anything. SDXL (added time and text embeddings), DiT and flow models (SD3,
FLUX, PixArt) need their own `denoise()`; the protocol side stays as it is.

Every random draw comes from the request: the initial latents from `seed`, DDIM's noise from
(seed, step). Options (`--option KEY=VALUE`): `eta` (DDIM η, default 1: each step draws fresh
noise, so PRM's branches of one state differ — at η = 0 sampling is deterministic after the
initial latents and every branch would be the same path), `negative_prompt`.
`generate` runs all steps at once (the same image as stepping).
"""

import argparse
import base64
import hashlib
import struct
import sys
import zlib

import torch

from evalcot_ext import image_to_json, log, serve

MAGIC = b"EVD1"


def pack(latents):
    shape = list(latents.shape)
    head = MAGIC + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
    return base64.b64encode(head + latents.to(torch.float32).contiguous().numpy().tobytes()).decode("ascii")


def unpack(b64):
    raw = base64.b64decode(b64)
    if raw[:4] != MAGIC:
        raise ValueError("state: not latents this worker wrote")
    (n,) = struct.unpack_from("<I", raw, 4)
    shape = struct.unpack_from(f"<{n}I", raw, 8)
    data = bytearray(raw[8 + 4 * n:])
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape).clone()


def draw_seed(*keys):
    """A torch seed (below 2^63) from evalcot's 64-bit seed and the step: a stream per key."""
    return int.from_bytes(hashlib.sha256(repr(keys).encode()).digest()[:8], "little") >> 1


def tiny_model():
    """A UNet, VAE and text encoder small enough for CI, random weights from a fixed seed."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
        norm_num_groups=8, attention_head_dim=4,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4, sample_size=64,
    )
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=1, eos_token_id=2,
    ))
    scheduler = DDIMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        clip_sample=False, set_alpha_to_one=False,
    )

    def encode(prompts):
        # Words hashed to ids: a tokenizer without vocabulary files.
        ids = torch.zeros(len(prompts), 77, dtype=torch.long)
        for i, p in enumerate(prompts):
            w = [zlib.crc32(x.encode()) % 997 + 3 for x in p.lower().split()][:75]
            ids[i, : len(w) + 2] = torch.tensor([1] + w + [2])
        return text(ids).last_hidden_state

    return "tiny-diffusers-ddim", unet, vae, scheduler, encode, (1, 4, 8, 8), 4, 5.0


def pretrained(name, device, size):
    from diffusers import DDIMScheduler, DiffusionPipeline

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    pipe = DiffusionPipeline.from_pretrained(name, torch_dtype=dtype).to(device)
    scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)

    def encode(prompts):
        ids = pipe.tokenizer(prompts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids.to(device)
        return pipe.text_encoder(ids)[0]

    shape = (1, pipe.unet.config.in_channels, size // scale, size // scale)
    return name, pipe.unet, pipe.vae, scheduler, encode, shape, 30, 7.5


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a Stable Diffusion 1.x/2.x checkpoint (hub id or folder)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random model (tests)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512, help="image size of --model")
    args = ap.parse_args()
    if args.tiny == bool(args.model):
        ap.error("give exactly one of --model and --tiny")
    torch.set_num_threads(1)  # the same sums in every process: runs repeat bit for bit
    name, unet, vae, scheduler, encode, shape, default_steps, default_cfg = (
        tiny_model() if args.tiny else pretrained(args.model, args.device, args.size)
    )
    device, dtype = args.device, unet.dtype
    sf = getattr(vae.config, "scaling_factor", 0.18215)

    def options(request):
        o = dict(request.get("options") or {})
        eta = float(o.pop("eta", 1.0))
        negative = str(o.pop("negative_prompt", ""))
        if o:
            raise ValueError(f"unknown options {sorted(o)} (this worker reads eta, negative_prompt)")
        return eta, negative

    @torch.no_grad()
    def denoise(prompt, seed, step, steps, latents, cfg, eta, negative):
        """One DDIM step of one candidate: (latents after it, decoded x0 prediction)."""
        scheduler.set_timesteps(steps)
        if latents is None:
            g = torch.Generator().manual_seed(draw_seed(seed))
            latents = torch.randn(shape, generator=g) * scheduler.init_noise_sigma
        t = scheduler.timesteps[step]
        lat = latents.to(device, dtype)
        guided = cfg is not None and cfg != 1.0
        emb = encode([prompt, negative] if guided else [prompt])
        noise = unet(torch.cat([lat] * len(emb)), t, encoder_hidden_states=emb).sample
        if guided:
            cond, uncond = noise.chunk(2)
            noise = uncond + cfg * (cond - uncond)
        g = torch.Generator().manual_seed(draw_seed(seed, step))
        out = scheduler.step(noise.float().cpu(), t, latents, eta=eta, generator=g)
        x0 = out.pred_original_sample
        image = vae.decode((x0 / sf).to(device, dtype)).sample.float().cpu()
        return out.prev_sample, to_pil(image[0]), 2 if guided else 1

    def to_pil(x):
        from PIL import Image

        arr = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        return Image.fromarray(arr)

    def step(request):
        eta, negative = options(request)
        cfg = request.get("cfg_scale")
        out = []
        for it in request["batch"]:
            latents = unpack(it["state"]) if it.get("state") else None
            latents, preview, fwd = denoise(it["prompt"], it["seed"], it["step"], it["steps"], latents, cfg, eta, negative)
            out.append({"state": pack(latents), "preview": image_to_json(preview), "forwards": fwd})
        return {"batch": out}

    def generate(request):
        eta, negative = options(request)
        cfg = request.get("cfg_scale")
        out = []
        for it in request["batch"]:
            latents, spent = None, 0
            for s in range(it["steps"]):
                latents, image, fwd = denoise(it["prompt"], it["seed"], s, it["steps"], latents, cfg, eta, negative)
                spent += fwd
            out.append({"image": image_to_json(image), "forwards": spent})
        return {"batch": out}

    def decode(request):
        raise ValueError("every step sends its preview; nothing to decode")

    log(f"diffusers_generator: {name} ready")
    hello = {
        "protocol": "evalcot-ext/2", "name": name, "state": "opaque", "default_steps": default_steps,
        "default_cfg_scale": default_cfg, "capabilities": ["generate"],
    }
    serve("generator", hello, {"step": step, "generate": generate, "decode": decode})


if __name__ == "__main__":
    sys.exit(main())
