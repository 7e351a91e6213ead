"""OpenAI chat completions, for both kinds of model.

A model that generates (a vision-language model) gets the chat as given: the checkpoint's
chat template over every message, system and earlier turns kept, each image_url part an
image, and no instruction added; `max_tokens`, `temperature` and `seed` apply, and
`stream: true` sends server-sent events in OpenAI's chunk format, ending with [DONE].

Any other model answers questions: the last user message's text parts are questions about
its one image, answered one per line.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Iterator

from .protocol import APIError

def question_inputs(messages: list[dict]) -> tuple[list[str], str]:
    """(questions, image) from the last user message: text parts and one image_url part."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise APIError(400, "no user message")
    content = users[-1].get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    questions = [str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text"]
    urls = [p.get("image_url") for p in parts if isinstance(p, dict) and p.get("type") == "image_url"]
    if len(urls) != 1:
        raise APIError(400, f"the last user message needs exactly one image_url part, not {len(urls)}")
    url = urls[0].get("url") if isinstance(urls[0], dict) else urls[0]
    if not isinstance(url, str) or not url.startswith("data:"):
        raise APIError(400, "image_url must be a data: URL (data:image/...;base64,...); URLs are never fetched")
    return questions, url


def completion(model: str, answers: list, logprobs: bool, top: int) -> dict:
    """The chat.completion for a question-answering model: one answer per line, each answer a "token" in logprobs."""
    content = "\n".join(a.answer for a in answers)

    def entry(answer: str, score: float) -> dict:
        return {"token": answer, "logprob": math.log(max(score, 1e-45)), "bytes": list(answer.encode())}

    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None, "finish_reason": "stop"}
    if logprobs:
        tokens = []
        for n, a in enumerate(answers):
            if n:
                tokens.append({**entry("\n", 1.0), "top_logprobs": []})
            tokens.append({**entry(a.answer, a.score), "top_logprobs": [entry(r["answer"], r["score"]) for r in a.top_k[:top]]})
        choice["logprobs"] = {"content": tokens}
    words = sum(len(a.question.split()) for a in answers)
    usage = {"prompt_tokens": words, "completion_tokens": len(answers), "total_tokens": words + len(answers)}
    return {**_envelope(model, "chat.completion"), "choices": [choice], "usage": usage}


def template_messages(messages: list[dict]) -> tuple[list[dict], list[str]]:
    """OpenAI messages -> (the chat-template shape, the image data: URLs in order). Every content
    becomes a list of parts; an image_url part becomes {"type": "image"}."""
    converted, urls = [], []
    for message in messages:
        role = message.get("role")
        if role not in ("system", "user", "assistant"):
            raise APIError(400, f"unsupported message role {role!r}")
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        out = []
        for part in parts:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                out.append({"type": "text", "text": str(part.get("text", ""))})
            elif kind == "image_url":
                urls.append(_data_url(part.get("image_url")))
                out.append({"type": "image"})
            else:
                raise APIError(400, f"unsupported content part {kind!r}: use text and image_url parts")
        converted.append({"role": role, "content": out})
    if not any(m["role"] == "user" for m in converted):
        raise APIError(400, "no user message")
    return converted, urls


def _data_url(image_url) -> str:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url.startswith("data:"):
        raise APIError(400, "image_url must be a data: URL (data:image/...;base64,...); URLs are never fetched")
    return url


def generated(model: str, pieces: list[str], finished) -> dict:
    """The chat.completion for a whole generated reply."""
    message = {"role": "assistant", "content": "".join(pieces)}
    usage = {"prompt_tokens": finished.prompt_tokens, "completion_tokens": finished.completion_tokens,
             "total_tokens": finished.prompt_tokens + finished.completion_tokens}
    return {**_envelope(model, "chat.completion"), "choices": [{"index": 0, "message": message, "logprobs": None,
            "finish_reason": finished.reason}], "usage": usage}


def stream_events(model: str, pieces: Iterator) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format: the role, each piece, the finish reason, then [DONE]."""
    envelope = _envelope(model, "chat.completion.chunk")

    def event(delta: dict, reason: str | None = None) -> str:
        chunk = {**envelope, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}
        return f"data: {json.dumps(chunk)}\n\n"

    yield event({"role": "assistant", "content": ""})
    for piece in pieces:
        if isinstance(piece, str):
            yield event({"content": piece})
        else:
            yield event({}, piece.reason)
    yield "data: [DONE]\n\n"


def _envelope(model: str, kind: str) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()), "model": model}
