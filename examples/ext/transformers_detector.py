"""An evalcot-ext/1 detector as GenEval's evaluate_images.py builds it: a Mask2Former instance
segmenter trained on COCO, and CLIP zero-shot colour classification of each object's masked crop.

    python3 examples/ext/transformers_detector.py \\
        --model facebook/mask2former-swin-small-coco-instance --clip openai/clip-vit-large-patch14 --device cuda
    python3 examples/ext/transformers_detector.py --tiny     # tiny random models, no downloads (tests)

    evalcot score IMAGEDIR --detector "ext:python3 examples/ext/transformers_detector.py --model … --clip …"

GenEval's own checkpoint is mmdet 2.x's Mask2Former Swin-S (COCO); the `transformers` port of
the same architecture and data is facebook/mask2former-swin-small-coco-instance, and GenEval's
colour model is open_clip ViT-L-14 "openai", i.e. openai/clip-vit-large-patch14. What follows
the official code: score = class probability × mean mask probability, box = the tight box of the
binary mask [xmin, ymin, xmax + 1, ymax + 1], colour = argmax of 100 · cos(image, text) over the
ten colours, each text the normalised mean of "a photo of a {c} {class}", "a photo of a
{c}-colored {class}" and "a photo of a {c} object", the crop composited over #999 with the mask.
What differs: `transformers` keeps one class per query (mmdet takes the top 100 (query, class)
pairs), and CLIP runs in the model's dtype without autocast. Measure the agreement on your images
before comparing numbers with published ones.

Detections below --min-score (0.3, GenEval's lowest threshold) are not sent; evalcot applies
GenEval's thresholds (0.3, 0.9 for counting) itself.
"""

import argparse
import sys
import zlib
from pathlib import Path

import torch

from evalcot_ext import image_from_json, log, serve

COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
TEMPLATES = ["a photo of a {c} {o}", "a photo of a {c}-colored {o}", "a photo of a {c} object"]
CLASSES = Path(__file__).resolve().parents[2] / "data" / "geneval" / "object_names.txt"


def hashed_tokens(texts, length=16):
    """Word ids from a hash: a tokenizer without vocabulary files, for the tiny model."""
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    for i, t in enumerate(texts):
        w = [zlib.crc32(x.encode()) % 997 + 3 for x in t.lower().replace("-", " ").split()][: length - 2]
        ids[i, : len(w) + 2] = torch.tensor([1] + w + [2])
    return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def features(out):
    """CLIP's projected features: a tensor in transformers 4, `pooler_output` in 5."""
    return out if torch.is_tensor(out) else out.pooler_output


def tiny_models(names):
    from transformers import (Mask2FormerConfig, Mask2FormerForUniversalSegmentation,
                              Mask2FormerImageProcessor, SwinConfig)

    torch.manual_seed(0)
    swin = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                      window_size=2, out_features=["stage1", "stage2", "stage3", "stage4"])
    cfg = Mask2FormerConfig(
        backbone_config=swin, num_queries=10, hidden_dim=32, mask_feature_size=32, feature_size=32,
        encoder_feedforward_dim=64, dim_feedforward=64, decoder_layers=2, encoder_layers=1,
        num_attention_heads=2, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, common_stride=4,
    )
    segmenter = Mask2FormerForUniversalSegmentation(cfg)
    seg_proc = Mask2FormerImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}, size_divisor=32,
                                         ignore_index=255, do_reduce_labels=False)
    clip, clip_proc = tiny_clip()
    return "tiny-mask2former-clip", segmenter, seg_proc, clip, clip_proc, hashed_tokens, 64


def pretrained(model, clip_name, device, size):
    from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

    segmenter = Mask2FormerForUniversalSegmentation.from_pretrained(model).to(device)
    seg_proc = AutoImageProcessor.from_pretrained(model)
    clip, clip_proc, tokens = pretrained_clip(clip_name, device)
    return f"{model}+{clip_name}", segmenter, seg_proc, clip, clip_proc, tokens, size


class ColourClassifier:
    """GenEval's colour step: CLIP zero-shot over the ten colours, per class one text classifier
    (the normalised mean of the three templates' unit embeddings), on the object's crop
    composited over #999 with its mask (without a mask, the crop as it is: GenEval's
    bgcolor=original)."""

    def __init__(self, clip, image_processor, tokens, device):
        self.clip, self.proc, self.tokens, self.device = clip, image_processor, tokens, device
        self.weights = {}

    @torch.no_grad()
    def text(self, cls):
        if cls not in self.weights:
            texts = [t.format(c=c, o=cls) for c in COLORS for t in TEMPLATES]
            batch = {k: v.to(self.device) for k, v in self.tokens(texts).items()}
            e = features(self.clip.get_text_features(**batch))
            e = torch.nn.functional.normalize(e, dim=-1).reshape(len(COLORS), len(TEMPLATES), -1).mean(1)
            self.weights[cls] = torch.nn.functional.normalize(e, dim=-1)
        return self.weights[cls]

    @torch.no_grad()
    def probs(self, image, mask, box, cls):
        from PIL import Image

        if mask is not None:
            grey = Image.new("RGB", image.size, (153, 153, 153))
            image = Image.composite(image, grey, Image.fromarray(mask.numpy().astype("uint8") * 255))
        pixels = self.proc(images=image.crop(box), return_tensors="pt")["pixel_values"].to(self.device)
        f = torch.nn.functional.normalize(features(self.clip.get_image_features(pixel_values=pixels)), dim=-1)
        return torch.softmax(100 * f @ self.text(cls).T, dim=-1)[0].tolist()


def tiny_clip():
    """A tiny random CLIP and its image processor (tests; words tokenized by `hashed_tokens`)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    clip = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=1000, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=77, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32,
                           num_hidden_layers=1, num_attention_heads=2),
        projection_dim=16,
    ))
    return clip, CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})


def pretrained_clip(name, device):
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(name)

    def tokens(texts):
        return processor.tokenizer(texts, padding=True, return_tensors="pt")

    return CLIPModel.from_pretrained(name).to(device), processor.image_processor, tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="a transformers Mask2Former COCO instance checkpoint")
    ap.add_argument("--clip", default="openai/clip-vit-large-patch14")
    ap.add_argument("--tiny", action="store_true", help="tiny random models (tests)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=512, help="images are sent at this size (evalcot resizes)")
    ap.add_argument("--min-score", type=float, default=0.3)
    ap.add_argument("--classes", default=str(CLASSES), help="GenEval's 80 class names, one per line")
    args = ap.parse_args()
    if args.tiny == bool(args.model):
        ap.error("give exactly one of --model and --tiny")
    torch.set_num_threads(1)
    names = [line.strip() for line in open(args.classes) if line.strip()]
    if args.tiny:
        name, segmenter, seg_proc, clip, clip_proc, tokens, size = tiny_models(names)
        min_score = 0.0  # random weights score everything low; send all so the rules see them
    else:
        name, segmenter, seg_proc, clip, clip_proc, tokens, size = pretrained(args.model, args.clip, args.device, args.size)
        min_score = args.min_score
    segmenter.eval()
    clip.eval()
    device = args.device
    labels = segmenter.config.id2label
    unknown = sorted({labels[i] for i in labels} - set(names))
    if unknown:
        log(f"transformers_detector: labels outside GenEval's 80 are dropped: {unknown}")
    colours = ColourClassifier(clip, clip_proc, tokens, device)

    @torch.no_grad()
    def detect(request):
        out = []
        for item in request["images"]:
            image = image_from_json(item)
            inputs = {k: v.to(device) for k, v in seg_proc(images=[image], return_tensors="pt").items()}
            res = seg_proc.post_process_instance_segmentation(
                segmenter(**inputs), target_sizes=[(image.height, image.width)], threshold=0.0,
                return_binary_maps=True)[0]
            dets = []
            for k, seg in enumerate(res["segments_info"]):
                cls = labels[seg["label_id"]]
                if seg["score"] < min_score or cls not in names:
                    continue
                mask = res["segmentation"][k].bool().cpu()
                ys, xs = torch.nonzero(mask, as_tuple=True)
                if len(xs) == 0:
                    continue
                box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                dets.append({"class": cls, "score": float(seg["score"]), "box": box,
                             "color_probs": colours.probs(image, mask, box, cls)})
            out.append(dets)
        return {"detections": out}

    log(f"transformers_detector: {name} ready")
    serve("detector", {"name": name, "input_size": size}, {"detect": detect})


if __name__ == "__main__":
    sys.exit(main())
