"""The Engine protocol over HTTP, so `vqa ask` and `vqa batch` answer through a warm server.

The CLI answers through the same stream as locally (run/stream.py); only the engine is
remote. Images travel as lossless PNG of the decoded pixels, so the server sees exactly
what a local run would. The calls are split to fit the server's limits (/health says them):
a chunk's images are uploaded in as many /v1/encode requests as their bytes and pixels need,
then encoded there in one pass, as locally; an image too large for any request is its row's
error. Nothing here imports torch or transformers: only the standard library and Pillow.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict

from ..backends.base import Answer, require
from ..errors import InputError, UsageError, VQAError

OVERHEAD = 4096  # bytes of JSON around a request's images and questions
KEEP_SENT = 1024  # images kept after sending, to send again if the server dropped them

class ServerError(VQAError):
    """The server could not be reached or refused the request."""


class Dropped(ServerError):
    """The server no longer holds what this session sent it (409): send it again."""


class Upload:
    """One image as the server receives it: lossless PNG bytes, base64, and its id (their sha256)."""

    def __init__(self, png: bytes, pixels: int):
        self.base64 = base64.b64encode(png).decode("ascii")
        self.id = hashlib.sha256(png).hexdigest()
        self.pixels = pixels


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
        self._sent: OrderedDict[str, Upload] = OrderedDict()  # the images sent last, to send again if the server dropped them
        health = self._request("GET", "/health")  # fail now, in one line, if nothing answers there
        limits = health.get("limits") if isinstance(health.get("limits"), dict) else {}
        self.max_body = int(limits.get("max_body", 32 << 20))
        self.max_pixels = int(limits.get("max_pixels", 64_000_000))
        self.max_questions = int(limits.get("max_replay_questions", 1024))
        known = health.get("capabilities") if isinstance(health.get("capabilities"), dict) else {}
        self.capabilities = frozenset(known.get(model or "", [])) - {"explain"}  # maps are drawn locally only
        self.generation: dict | None = None

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
    why_not = {"explain": "--explain draws its maps locally; unset VQA_SERVER (or drop --server) to use it",
               "generate": "the server's model chooses among a fixed vocabulary of answers; it does not generate them"}

    def configure(self, generation) -> None:
        """--instruction, --max-tokens, ...: sent with every call, for the server's model to generate as asked."""
        self.generation = dict(vars(generation))

    def prepare(self, image) -> "Upload":
        """A decoded image -> its lossless PNG upload, in the reading thread; one too large to send is this image's error."""
        if isinstance(image, Upload):
            return image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        upload = Upload(buffer.getvalue(), image.width * image.height)
        if len(upload.base64) + OVERHEAD > self.max_body:
            raise InputError(f"image too large to send to the server: {len(upload.base64) / 1e6:.1f} MB as base64 PNG, "
                             f"the server takes {self.max_body / 1e6:.1f} MB per request")
        if upload.pixels > self.max_pixels:
            raise InputError(f"image too large to send to the server: {upload.pixels / 1e6:.1f} MP, the server takes "
                             f"{self.max_pixels / 1e6:.0f} MP per request")
        return upload

    def encode_images(self, images: list) -> list[str]:
        """Upload a chunk's images in requests that fit the server's limits, then have it encode
        them all in one pass, as a local run does. Returns their ids, for `answer`."""
        uploads = [self.prepare(image) for image in images]
        ids = [upload.id for upload in uploads]
        try:
            self._upload(uploads, ids)
        except Dropped:  # the server dropped what it held (an idle or evicted session): once more
            self._upload(uploads, ids)
        for upload in uploads:
            self._sent[upload.id] = upload
            self._sent.move_to_end(upload.id)
        while len(self._sent) > KEEP_SENT:
            self._sent.popitem(last=False)
        return ids

    def answer(self, ids: list[str], questions: list[str], image_index: list[int] | None = None, top_k: int = 1, explain: bool = False,
               choices: list | None = None) -> list[Answer]:
        """The same call, made on the server in this run's session: the answers a local run gives."""
        if explain:
            require(self, "explain")
        index = image_index if image_index is not None else [0] * len(questions)
        among = choices or [None] * len(questions)
        answers = []
        for start in range(0, len(questions), self.max_questions):  # a --batch-size above the server's limit
            end = start + self.max_questions
            part = (ids, questions[start:end], index[start:end], top_k, among[start:end])
            try:
                answers += self._answered(*part)
            except Dropped:  # the server dropped this encoding since (idle, or more recent ones): encode again, ask again
                if not all(i in self._sent for i in ids):
                    raise
                self._upload([self._sent[i] for i in ids], ids)
                answers += self._answered(*part)
        return answers

    def _upload(self, uploads: list["Upload"], ids: list[str]) -> None:
        pieces: list[list[Upload]] = [[]]
        for upload in uploads:
            piece = pieces[-1]
            size = sum(len(u.base64) for u in piece) + len(upload.base64) + OVERHEAD + 70 * len(ids)
            if piece and (size > self.max_body or sum(u.pixels for u in piece) + upload.pixels > self.max_pixels):
                pieces.append(piece := [])
            piece.append(upload)
        for n, piece in enumerate(pieces):
            body = {"session": self.session, "images": [u.base64 for u in piece]}
            if n == len(pieces) - 1:
                body["ids"] = ids
            self._request("POST", "/v1/encode", self._with_model(body))

    def _answered(self, ids: list[str], questions: list[str], index: list[int], top_k: int, choices: list) -> list[Answer]:
        body = {"ids": ids, "questions": questions, "image_index": index, "top_k": top_k, "session": self.session}
        if any(choices):
            body["choices"] = [list(c) if c else None for c in choices]
        if self.generation is not None:
            body["generation"] = self.generation
        document = self._request("POST", "/v1/answer", self._with_model(body))
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

    def _with_model(self, body: dict) -> dict:
        return {**body, "model": self.model} if self.model else body

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
            message, code = _message(e)
            if e.code == 409:
                raise Dropped(message) from None
            if code == "vqa_error":  # the model's own error for this input: as a local run words it
                raise InputError(message) from None
            raise ServerError(f"the vqa server at {self.url} refused: {message}") from None
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


def _message(error) -> tuple[str, str | None]:
    """An error response's (message, code)."""
    try:
        document = json.loads(error.read())["error"]
        return str(document["message"]), document.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"HTTP {error.code}", None
