"""Worker side of evalcot-ext/1 (external/PROTOCOL.md) for Python adapters.

A worker reads one JSON request per line on standard input and writes one JSON reply per line on
standard output; logs go to standard error. `serve(role, hello, handlers)` runs that loop:
`hello` is the dict of role fields for the handshake, `handlers` maps each op to a function of
the request dict returning the reply fields. An exception becomes an `ok: false` reply with its
message, so evalcot reports it with the command and the request.
"""

import base64
import io
import json
import sys

PROTOCOL = "evalcot-ext/1"
MASK = -1


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def image_to_json(image):
    """{"png": base64} of a PIL image."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return {"png": base64.b64encode(buf.getvalue()).decode("ascii")}


def image_from_json(obj):
    """A PIL RGB image from {"png": base64} or {"path": file}."""
    from PIL import Image  # imported here so that workers without images need no Pillow

    if "png" in obj:
        return Image.open(io.BytesIO(base64.b64decode(obj["png"]))).convert("RGB")
    return Image.open(obj["path"]).convert("RGB")


def serve(role, hello, handlers, stdin=sys.stdin, stdout=sys.stdout):
    for line in stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply = {"id": request.get("id")}
        try:
            op = request.get("op")
            if op == "hello":
                if request.get("protocol") != PROTOCOL:
                    raise ValueError(f"this worker speaks {PROTOCOL}, not {request.get('protocol')!r}")
                if request.get("role") != role:
                    raise ValueError(f"this worker is a {role}, not a {request.get('role')!r}")
                fields = hello
            elif op in handlers:
                fields = handlers[op](request)
            else:
                raise ValueError(f"unknown op {op!r} for a {role} ({', '.join(handlers)})")
            reply.update(fields)
            reply["ok"] = True
        except Exception as e:  # reported to evalcot, which names the request
            reply = {"id": request.get("id"), "ok": False, "error": f"{type(e).__name__}: {e}"}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()
