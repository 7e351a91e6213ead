"""OpenAI chat completions: a generative model gets the chat as given, streamed or whole, through the openai client."""

from __future__ import annotations

import base64
import json

import torch
from PIL import Image


def data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def conversation(scene_png) -> list[dict]:
    return [
        {"role": "system", "content": "You answer questions about pictures."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(scene_png)}},
                                     {"type": "text", "text": "what color is the circle?"}]},
        {"role": "assistant", "content": "red"},
        {"role": "user", "content": "and how many objects are there?"},
    ]


def local_reply(folder, scene_png, max_tokens: int) -> str:
    """transformers' own greedy generate on the checkpoint's chat template over the same messages."""
    from vqa_cli.backends.registry import load_engine

    engine = load_engine(str(folder), "cpu")
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "You answer questions about pictures."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what color is the circle?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
        {"role": "user", "content": [{"type": "text", "text": "and how many objects are there?"}]},
    ]
    text = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = engine.processor(text=[text], images=[[Image.open(scene_png).convert("RGB")]], return_tensors="pt")
    with torch.inference_mode():
        out = engine.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
    return engine.processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_a_generative_model_gets_the_chat_as_given_whole_or_streamed(vlm_server, scene_png):
    from openai import OpenAI

    url, folder = vlm_server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    whole = client.chat.completions.create(model=str(folder), messages=conversation(scene_png), max_tokens=6)
    assert whole.choices[0].message.content == local_reply(folder, scene_png, 6)
    assert whole.choices[0].finish_reason in ("stop", "length") and whole.usage.completion_tokens <= 6
    chunks = list(client.chat.completions.create(model=str(folder), messages=conversation(scene_png), max_tokens=6, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason


def test_seeded_sampling_repeats_and_the_stream_ends_with_done(vlm_server, scene_png):
    import httpx

    url, folder = vlm_server
    body = {"model": str(folder), "messages": conversation(scene_png), "max_tokens": 5, "temperature": 1.3, "seed": 11}
    first, second = (httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json() for _ in range(2))
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]
    raw = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": True}, timeout=60)
    events = [line for line in raw.text.split("\n\n") if line]
    assert raw.headers["content-type"].startswith("text/event-stream") and events[-1] == "data: [DONE]"
    assert all(json.loads(e.removeprefix("data: "))["object"] == "chat.completion.chunk" for e in events[:-1])


def test_ask_on_a_generative_model_answers_as_vqa_ask_does(vlm_server, scene_png):
    import httpx
    from typer.testing import CliRunner

    from vqa_cli.cli import app

    url, folder = vlm_server
    questions = ["what color is the circle?", "is there a red square?"]
    served = httpx.post(f"{url}/v1/ask", json={"image": data_url(scene_png), "questions": questions}, timeout=60).json()
    local = json.loads(CliRunner().invoke(app, ["ask", "--json", "-m", str(folder), str(scene_png), *questions]).stdout)
    assert [a["answer"] for a in served["answers"]] == [a["answer"] for a in local["answers"]]


def test_bad_chats_get_400(vlm_server):
    import httpx

    url, folder = vlm_server
    for messages in ([{"role": "tool", "content": "x"}], [{"role": "user", "content": [{"type": "audio"}]}],
                     [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}]}],
                     [{"role": "system", "content": "no user"}]):
        response = httpx.post(f"{url}/v1/chat/completions", json={"model": str(folder), "messages": messages}, timeout=60)
        assert response.status_code == 400 and "error" in response.json()
