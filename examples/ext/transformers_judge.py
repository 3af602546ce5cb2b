"""A VLM judge over evalcot-ext/1 with `transformers`: the paper's yes/no questions to a LLaVA-style
model, P("yes") read from the logits of the first answer token (VQAScore-style, as the paper's
ORM/PARM verifiers are used).

    python3 examples/ext/transformers_judge.py --model llava-hf/llava-1.5-7b-hf --device cuda
    python3 examples/ext/transformers_judge.py --tiny      # a tiny random LLaVA, no downloads (tests)

--model is any image-text-to-text checkpoint whose processor has a chat template (LLaVA-1.5,
LLaVA-NeXT, Qwen2-VL, …). P(yes) = p(yes) / (p(yes) + p(no)), each the summed next-token
probability of the spellings "yes", "Yes", " yes", " Yes" (and the same for no) that are single
tokens of the model's tokenizer. Tasks: final, step, clarity, potential (one question each), and
reflect: the final question's P(yes) plus one verdict per include clause of the GenEval metadata
("Does the image show two red dogs?"), for PARM++'s self-correction.
"""

import argparse
import sys
from pathlib import Path

import torch

from evalcot_ext import image_from_json, log, serve

QUESTIONS = {
    "final": 'Does this image show "{prompt}"? Answer yes or no.',
    "step": 'This is an intermediate image (step {step} of {steps}) on the way to "{prompt}". '
    "Is the generation on the right track? Answer yes or no.",
    "clarity": "This is an intermediate image (step {step} of {steps}). Is it clear enough to judge "
    "what it will show? Answer yes or no.",
    "potential": 'This is a partially generated image (step {step} of {steps}). Can it still become '
    'an image of "{prompt}"? Answer yes or no.',
}
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
CLASSES = Path(__file__).resolve().parents[2] / "data" / "geneval" / "object_names.txt"


def clause_question(c):
    count = c.get("count", 1)
    noun = c["class"] + ("s" if count > 1 else "")
    text = f"{NUMBERS[count] if count < len(NUMBERS) else count} {c.get('color', '')} {noun}"
    return f"Does the image show {' '.join(text.split())}? Answer yes or no."


def tiny_model():
    """A LLaVA of a few thousand random weights and a word-level tokenizer built here."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerFast)

    words = ["<pad>", "<unk>", "<s>", "</s>", "<image>", "USER:", "ASSISTANT:", "yes", "no"]
    for text in list(QUESTIONS.values()) + [clause_question({"class": "x"})] + NUMBERS:
        words += text.lower().replace('"', " ").replace("?", " ").replace(".", " ").split()
    words += [w for line in open(CLASSES) for w in line.split()]
    words += ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"]
    vocab = {}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.add_special_tokens(["<image>"])  # so that the processor's run of image tokens splits
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>",
                                  bos_token="<s>", eos_token="</s>")
    torch.manual_seed(0)
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32,
                              num_hidden_layers=2, num_attention_heads=2)
    text = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=0, bos_token_id=2, eos_token_id=3)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=vocab["<image>"],
                      vision_feature_select_strategy="default", vision_feature_layer=-1, image_seq_length=16)
    model = LlavaForConditionalGeneration(cfg)
    proc = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                             crop_size={"height": 32, "width": 32}),
                          tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                          image_token="<image>", num_additional_image_tokens=1)

    def prompt(question):
        return f"USER: <image> {question.lower().replace('?', ' ').replace('.', ' ')} ASSISTANT:"

    return "tiny-llava", model, proc, prompt


def pretrained(name, device):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(name, torch_dtype=dtype).to(device)
    proc = AutoProcessor.from_pretrained(name)

    def prompt(question):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return proc.apply_chat_template(messages, add_generation_prompt=True)

    return name, model, proc, prompt


def answer_ids(tokenizer, word):
    """Ids of the spellings of `word` that are one token."""
    ids = set()
    for w in (word, word.capitalize(), " " + word, " " + word.capitalize()):
        enc = tokenizer.encode(w, add_special_tokens=False)
        if len(enc) == 1 and enc[0] != tokenizer.unk_token_id:
            ids.add(enc[0])
    if not ids:
        raise SystemExit(f"transformers_judge: {word!r} is not one token of this tokenizer")
    return sorted(ids)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="an image-text-to-text checkpoint (hub id or folder)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random LLaVA (tests)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.tiny == bool(args.model):
        ap.error("give exactly one of --model and --tiny")
    torch.set_num_threads(1)
    name, model, proc, prompt = tiny_model() if args.tiny else pretrained(args.model, args.device)
    model.eval()
    yes, no = answer_ids(proc.tokenizer, "yes"), answer_ids(proc.tokenizer, "no")

    @torch.no_grad()
    def p_yes(image, question):
        inputs = proc(images=[image], text=[prompt(question)], return_tensors="pt").to(args.device)
        probs = torch.softmax(model(**inputs).logits[0, -1].float(), dim=-1)
        y, n = probs[yes].sum(), probs[no].sum()
        return float(y / (y + n))

    def judge(request):
        verdicts = []
        for r in request["requests"]:
            image = image_from_json(r["image"])
            step, steps = r.get("step") or (None, None)
            task = "final" if r["task"] == "reflect" else r["task"]
            v = {"p_yes": p_yes(image, QUESTIONS[task].format(prompt=r["prompt"], step=step, steps=steps))}
            if r["task"] == "reflect":
                v["clauses"] = [
                    {"clause": f"include[{i}]", "p_pass": p_yes(image, clause_question(c))}
                    for i, c in enumerate(r["metadata"].get("include", []))
                ]
            verdicts.append(v)
        return {"verdicts": verdicts}

    log(f"transformers_judge: {name} ready")
    serve("judge", {"name": name, "tasks": sorted(QUESTIONS) + ["reflect"]}, {"judge": judge})


if __name__ == "__main__":
    sys.exit(main())
