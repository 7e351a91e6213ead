"""The Engine protocol over HTTP, so `vqa ask` and `vqa batch` answer through a warm server.

The CLI answers through the same stream as locally (run/stream.py); only the engine is
remote. Images travel as lossless PNG of the decoded pixels, so the server sees exactly
what a local run would. Nothing here imports torch or transformers: only the standard
library and Pillow.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from ..backends.base import Answer, require
from ..errors import UsageError, VQAError

class ServerError(VQAError):
    """The server could not be reached or refused the request."""


class RemoteEngine:
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None, timeout: float = 300.0):
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise UsageError(f"VQA_SERVER (or --server) must be an http:// or https:// URL, like http://127.0.0.1:8765; got {url!r}")
        self.url = url.strip().rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.session = uuid.uuid4().hex  # this run's calls share a question cache on the server, as they would locally
        self._document: dict | None = None  # the last answer: model, device and dtype
        self._request("GET", "/health")  # fail now, in one line, if nothing answers there

    @property
    def name(self) -> str:
        """The served model's name; before the first answer, the one asked for (or "the vqa server")."""
        return self.model_info["name"] if self._document else (self.model or "the vqa server")

    @property
    def model_info(self) -> dict:
        return self._described()["model"]

    @property
    def device(self) -> str:
        return self._described()["device"]

    @property
    def dtype_name(self) -> str:
        return self._described()["dtype"]

    dtype = None  # only the server knows its torch dtype
    domain = None  # the server's model's domain, in words, is not sent; answers still say in or out
    capabilities = frozenset()
    why_not = {"explain": "--explain draws its maps locally; unset VQA_SERVER (or drop --server) to use it"}

    def prepare(self, image):
        return image  # the server prepares what it decodes

    def encode_images(self, images: list) -> list[str]:
        """Decoded images -> base64 PNG, pixel for pixel what the server will decode."""
        encoded = []
        for image in images:
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
            encoded.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        return encoded

    def answer(self, images: list[str], questions: list[str], image_index: list[int] | None = None, top_k: int = 1, explain: bool = False) -> list[Answer]:
        """The same call, made on the server in this run's session: the answers a local run gives."""
        if explain:
            require(self, "explain")
        body = {
            "images": images, "questions": questions, "image_index": image_index if image_index is not None else [0] * len(questions),
            "top_k": top_k, "session": self.session,
        }
        if self.model:
            body["model"] = self.model
        document = self._request("POST", "/v1/answer", body)
        try:
            answers = [
                Answer(a["question"], a["answer"], a["score"], a["top_k"], None, ok, a["question_in_domain"])
                for a, ok in zip(document["answers"], document["images_in_domain"], strict=True)
            ]
            document["model"]["name"], document["device"], document["dtype"]
        except (KeyError, TypeError, ValueError):
            raise ServerError(f"the server at {self.url} answered with JSON that is not a vqa server's answer") from None
        if len(answers) != len(questions):
            raise ServerError(f"the server at {self.url} answered {len(answers)} questions of {len(questions)}")
        self._document = document
        return answers

    def _described(self) -> dict:
        if self._document is None:
            raise ServerError("the server has not answered yet, so its model is not known")
        return self._document

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            raise ServerError(f"the vqa server at {self.url} refused: {_message(e)}") from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise ServerError(f"cannot reach the vqa server at {self.url} (VQA_SERVER): {reason}") from None
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ServerError(f"the server at {self.url} did not answer as a vqa server does (no JSON object)")
        return document


def _message(error) -> str:
    try:
        return json.loads(error.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"
