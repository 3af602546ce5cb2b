"""An evalcot-ext/1 judge that asks an OpenAI-compatible chat endpoint (vLLM, TGI, SGLang, a
hosted API) and reads P("yes") from the logprobs of the first answer token, as VQAScore-style
verifiers do. Standard library only.

    python3 examples/ext/http_judge.py --url http://127.0.0.1:8000/v1 --model Qwen/Qwen2-VL-7B-Instruct

Every image of a `judge` request is one chat completion (the image as a data URL, max_tokens 1,
temperature 0, top_logprobs 20); up to --concurrency of them are in flight at once. A request
that fails with a connection error, a timeout (--timeout seconds), HTTP 408, 429 or 5xx is
retried after an exponential back-off (--backoff · 2^k seconds, k = 0, 1, …) up to --retries
times; any other HTTP error, or a reply whose top logprobs hold neither "yes" nor "no", fails the
whole `judge` request with a message evalcot shows. Verdicts come back in request order, so a
run is as deterministic as the endpoint (greedy decoding, fixed weights).

P(yes) = p(yes) / (p(yes) + p(no)), each summed over the top tokens that read "yes" (or "no")
once stripped and lower-cased: the first-token probability of the paper's MLLM judges,
renormalised over the two answers.
"""

import argparse
import concurrent.futures
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

from evalcot_ext import log, serve

QUESTIONS = {
    "final": 'Does this image show "{prompt}"? Answer yes or no.',
    "step": 'This is an intermediate image (step {step} of {steps}) on the way to "{prompt}". '
    "Is the generation on the right track? Answer yes or no.",
    "clarity": "This is an intermediate image (step {step} of {steps}) of an image being generated. "
    "Is it clear enough to judge what it will show? Answer yes or no.",
    "potential": 'This is a partially generated image (step {step} of {steps}). Can it still become '
    'an image of "{prompt}"? Answer yes or no.',
}
RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class Failed(Exception):
    """A completion that cannot be had within the retry budget."""


def question(r):
    step, steps = r.get("step") or (None, None)
    return QUESTIONS[r["task"]].format(prompt=r["prompt"], step=step, steps=steps)


def p_yes(reply):
    try:
        top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    except (KeyError, IndexError, TypeError) as e:
        raise Failed(f"the reply has no choices[0].logprobs.content[0].top_logprobs ({e!r})")
    mass = {"yes": 0.0, "no": 0.0}
    for t in top:
        word = t["token"].strip().lower()
        if word in mass:
            mass[word] += math.exp(t["logprob"])
    if mass["yes"] + mass["no"] == 0.0:
        raise Failed(f"neither yes nor no among the top tokens {[t['token'] for t in top]}")
    return mass["yes"] / (mass["yes"] + mass["no"])


def complete(args, r):
    body = {
        "model": args.model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + r["image"]["png"]}},
                    {"type": "text", "text": question(r)},
                ],
            }
        ],
        "max_tokens": 1,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 20,
    }
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(args.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    last = None
    for attempt in range(args.retries + 1):
        if attempt:
            time.sleep(args.backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(args.url.rstrip("/") + "/chat/completions", data, headers)
        try:
            with urllib.request.urlopen(request, timeout=args.timeout) as resp:
                body = resp.read()
            try:
                reply = json.loads(body)
            except ValueError as e:  # a proxy's error page, a cut-off body: try again
                last = f"HTTP 200 with a body that is not JSON ({e}): {body[:200]!r}"
            else:
                return p_yes(reply)
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:200]!r}"
            if e.code not in RETRY_STATUS:
                raise Failed(last)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            last = f"{type(e).__name__}: {e}"
        log(f"http_judge: attempt {attempt + 1} of {args.retries + 1} failed: {last}")
    raise Failed(f"no answer after {args.retries + 1} attempts; the last: {last}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="base URL of the OpenAI-compatible API, e.g. http://host:8000/v1")
    ap.add_argument("--model", required=True, help="the served model's name")
    ap.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--retries", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request")
    ap.add_argument("--backoff", type=float, default=0.5, help="first retry delay in seconds")
    args = ap.parse_args()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency)

    def judge(request):
        futures = [pool.submit(complete, args, r) for r in request["requests"]]
        try:
            return {"verdicts": [{"p_yes": f.result()} for f in futures]}
        except Failed as e:
            for f in futures:
                f.cancel()
            raise RuntimeError(f"{args.url}: {e}")

    serve("judge", {"name": f"http:{args.model}", "tasks": sorted(QUESTIONS)}, {"judge": judge})


if __name__ == "__main__":
    sys.exit(main())
