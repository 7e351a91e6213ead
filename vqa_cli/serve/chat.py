"""OpenAI chat completions, for both kinds of model.

A model that generates (a vision-language model) gets the chat as given: the checkpoint's
chat template over every message, system and earlier turns kept, each image_url part an
image, each video_url part (a data: URL of a video) its sampled frames as images, each
after its time, and no instruction added; `max_tokens`, `temperature` and `seed` apply, and
`stream: true` sends server-sent events in OpenAI's chunk format, ending with [DONE].

Any other model answers questions: the last user message's text parts are questions about
its one image (or video), answered one per line.
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
    urls = [p.get(p["type"]) for p in parts if isinstance(p, dict) and p.get("type") in MEDIA_PARTS]
    if len(urls) != 1:
        raise APIError(400, f"the last user message needs exactly one image_url (or video_url) part, not {len(urls)}")
    return questions, _data_url(urls[0])


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


MEDIA_PARTS = {"image_url": "image", "video_url": "video"}


def template_messages(messages: list[dict]) -> tuple[list[dict], list[str]]:
    """OpenAI messages -> (the chat-template shape, the media data: URLs in order). Every content
    becomes a list of parts; an image_url part becomes {"type": "image"}, a video_url part {"type": "video"}."""
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
            elif kind in MEDIA_PARTS:
                urls.append(_data_url(part.get(kind)))
                out.append({"type": MEDIA_PARTS[kind]})
            else:
                raise APIError(400, f"unsupported content part {kind!r}: use text, image_url and video_url parts")
        converted.append({"role": role, "content": out})
    if not any(m["role"] == "user" for m in converted):
        raise APIError(400, "no user message")
    return converted, urls


def videos_as_images(messages: list[dict], media: list) -> tuple[list[dict], list]:
    """The chat with each {"type": "video"} part replaced by its frames, each an image after its time
    ("0.5 s:"), and the images in order: how a model that takes several images sees a video."""
    media = iter(media)
    images, out = [], []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part["type"] == "image":
                images.append(next(media))
                parts.append(part)
            elif part["type"] == "video":
                video = next(media)
                if not hasattr(video, "frames"):
                    raise APIError(400, "a video_url part holds an image, not a video: send it as image_url")
                images += video.frames
                parts += [p for t in video.times for p in ({"type": "text", "text": f"{t:g} s:"}, {"type": "image"})]
            else:
                parts.append(part)
        out.append({**message, "content": parts})
    return out, images


def _data_url(media_url) -> str:
    url = media_url.get("url") if isinstance(media_url, dict) else media_url
    if not isinstance(url, str) or not url.startswith("data:"):
        raise APIError(400, "image_url and video_url must be data: URLs (data:image/png;base64,..., "
                       "data:video/mp4;base64,...); URLs are never fetched")
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
