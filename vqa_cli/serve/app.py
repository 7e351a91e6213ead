"""The HTTP API, OpenAI-compatible where OpenAI has a shape for it.

    GET  /health                 200 once the models are loaded (no key needed)
    GET  /v1/models              the OpenAI model list
    POST /v1/ask                 {"image": base64, "questions": [...], "model"?, "top_k"?} -> the `vqa ask --json` document
    POST /v1/chat/completions    OpenAI chat: the last user message's text parts are questions,
                                 its image_url part a data: URL; answers one per line
    POST /v1/encode              the CLI's images, uploaded in pieces that fit a request, then encoded
    POST /v1/answer              the CLI's engine calls about encoded images, replayed exactly (serve/client.py)

/v1/ask and chat requests that arrive together share forward passes (batcher.py). /v1/encode
and /v1/answer run each call as the CLI made it, in a session of its own, so `vqa ask` and
`vqa batch` through a server print exactly what they print locally.

Memory has a ceiling (Limits): bytes per body, decoded pixels per request, images held for
encoding over all sessions, sessions by number and idle time, and connections (server.py).

Errors are {"error": {"message", "type", "code"}} with a 4xx/5xx status, never a traceback.
Only image bytes are accepted (base64 or data: URLs): nothing a request names is fetched or opened.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from types import SimpleNamespace

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..backends.base import Generation, check_question, configure, parse_choices
from ..errors import VQAError
from ..io.media import load_media, media_pixels
from ..io.video import Sampling
from ..run.stream import prepared
from ..io.output import ask_document
from .batcher import Batcher
from .chat import completion, generated, question_inputs, stream_events, template_messages, videos_as_images
from .protocol import AnswerBody, APIError, AskBody, ChatBody, EncodeBody, error_response, image_bytes

CHAT_MAX_TOKENS = 256  # new tokens of a generated chat reply when the request gives no max_tokens


@dataclass
class Limits:
    max_body: int = 32 * 1024 * 1024  # bytes of a request body (413 beyond)
    max_pixels: int = 64_000_000  # decoded pixels per request, summed over its images (413 beyond)
    max_questions: int = 64  # per /v1/ask or chat request
    max_replay_questions: int = 1024  # per /v1/answer call: a CLI's --batch-size up to this replays exactly
    max_top_k: int = 100
    max_held: int = 1024 * 1024 * 1024  # bytes of uploaded images waiting to be encoded, over all sessions (413 beyond)
    sessions: int = 16  # CLI sessions kept per model, least recently used dropped first
    session_idle: float = 600.0  # seconds after which an unused session is dropped
    timeout: float = 60.0  # seconds a request may wait for its answers (504 beyond)
    header_timeout: float = 10.0  # seconds a connection may take to send its request line and headers
    max_connections: int = 256  # open connections; a request beyond them gets 503
    grace: float = 60.0  # seconds SIGTERM waits for accepted requests before it exits

    def public(self) -> dict:
        """What a client needs to split its calls to fit (sent by /health)."""
        return {"max_body": self.max_body, "max_pixels": self.max_pixels, "max_replay_questions": self.max_replay_questions}


ENCODINGS = 4  # encoded chunks a session keeps, least recently used dropped first


@dataclass
class Session:
    """One CLI run's state: its engine view (question cache), the images it uploaded and not
    yet encoded, and the chunks of images it encoded last.

    The stream asks a chunk's questions in several calls about the same images; keeping the
    chunk's encoding means each image is still encoded once, in one pass, as in a local run.
    """

    engine: object
    held: dict = field(default_factory=dict)  # image id -> prepared image, until encoded
    held_bytes: dict = field(default_factory=dict)
    encodings: OrderedDict = field(default_factory=OrderedDict)  # ids key -> embeds
    used: float = field(default_factory=time.monotonic)

    def encode(self, ids: list[str]) -> None:
        key = _key(ids)
        if key in self.encodings:
            self.encodings.move_to_end(key)
            return
        missing = [i for i in dict.fromkeys(ids) if i not in self.held]
        if missing:
            raise APIError(409, f"{len(missing)} image(s) not uploaded to this session (or dropped): upload them again", code="unknown_image")
        self.encodings[key] = self.engine.encode_images([self.held[i] for i in ids])
        while len(self.encodings) > ENCODINGS:
            self.encodings.popitem(last=False)
        for i in ids:
            self.held.pop(i, None), self.held_bytes.pop(i, None)

    def encoded(self, ids: list[str]):
        embeds = self.encodings.get(_key(ids))
        if embeds is None:
            raise APIError(409, "these images are not encoded in this session (or were dropped): send them to /v1/encode", code="unknown_image")
        return embeds


def _key(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


class Served:
    """One model: its engine, the batcher that merges concurrent requests, and the CLI sessions."""

    def __init__(self, engine, limits: Limits):
        self.engine = engine
        self.limits = limits
        self.batcher = Batcher(engine)
        self.lock = threading.Lock()  # one exact replay at a time: the two cores are better used in series
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def session(self, key: str) -> Session:
        """The session `key`, made on first use; sessions idle too long, or beyond the count, are dropped."""
        with self.lock:
            now = time.monotonic()
            for name in [n for n, s in self._sessions.items() if now - s.used > self.limits.session_idle]:
                del self._sessions[name]
            if key not in self._sessions:
                self._sessions[key] = Session(self.engine.session())
                while len(self._sessions) > self.limits.sessions:
                    self._sessions.popitem(last=False)
            self._sessions.move_to_end(key)
            session = self._sessions[key]
            session.used = now
            return session

    def hold(self, session: Session, images: dict) -> None:
        """Keep prepared images {id: image} for `session` until encoded, within the server's budget."""
        sizes = {i: _nbytes(image) for i, image in images.items()}
        with self.lock:
            held = sum(sum(s.held_bytes.values()) for s in self._sessions.values())
            if held + sum(sizes.values()) > self.limits.max_held:
                raise APIError(413, f"the server holds at most {self.limits.max_held >> 20} MB of images waiting to be "
                               "encoded; send fewer images at once (a smaller --batch-size)", code="request_too_large")
            session.held.update(images)
            session.held_bytes.update(sizes)


def _nbytes(image) -> int:
    """Bytes a prepared image holds: a tensor's, or a PIL image's pixels."""
    if hasattr(image, "nbytes"):
        return int(image.nbytes)
    width, height = image.size
    return width * height * max(len(image.getbands()), 1)


class Models:
    """The engines a server answers with: those named at start, loaded before it listens, plus
    shipped bundles on first use. A request can name nothing else, so it never opens a path."""

    def __init__(self, names: list[str], load, shipped: list[str] = (), limits: Limits = Limits()):
        self.default = names[0]
        self.limits = limits
        self._load = load
        self._allowed = list(dict.fromkeys([*names, *shipped]))
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()
        for name in names:
            self.get(name)

    def get(self, name: str | None) -> Served:
        name = name or self.default
        if name not in self._served:
            if name not in self._allowed:
                raise APIError(404, f"model {name!r} is not served here; available: {', '.join(self._allowed)}", code="model_not_found")
            with self._lock:
                if name not in self._served:
                    self._served[name] = Served(self._load(name), self.limits)
        return self._served[name]

    def listed(self) -> list[str]:
        return self._allowed

    def capabilities(self) -> dict[str, list[str]]:
        """What each loaded model can do beyond answering (the engines' capabilities), by name; None for the default."""
        loaded = {name: sorted(served.engine.capabilities) for name, served in self._served.items()}
        return {**loaded, "": loaded.get(self.default, [])}

    def close(self) -> None:
        for served in self._served.values():
            served.batcher.close()


def create_app(models: Models, *, host: str = "127.0.0.1", api_key: str | None = None, limits: Limits = Limits()) -> FastAPI:
    app = FastAPI(title="vqa", description="Visual question answering: answers about images, OpenAI-compatible.", version="1")
    app.add_middleware(Guard, host=host, api_key=api_key, max_body=limits.max_body)
    _handlers(app)
    _public_routes(app, models, limits)
    _cli_routes(app, models, limits)
    return app


def _public_routes(app: FastAPI, models: Models, limits: Limits) -> None:
    """/health, the OpenAI-shaped endpoints and /v1/ask."""

    @app.get("/health", summary="200 once the models are loaded")
    def health():
        return {"status": "ok", "models": models.listed(), "limits": limits.public(), "capabilities": models.capabilities()}

    @app.get("/v1/models", summary="The served models, as OpenAI lists them")
    def list_models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "vqa"} for name in models.listed()]}

    @app.post("/v1/ask", summary="Answer questions about one image: the `vqa ask --json` document")
    async def ask(body: AskBody):
        among = parse_choices(body.choices) if body.choices is not None else None
        video = Sampling(body.fps, body.max_frames, body.start, body.end)
        served, answers = await _answer(models, limits, body.model, body.image, body.questions, body.top_k, among, video)
        return ask_document(None, served.engine, answers)

    @app.post("/v1/chat/completions", summary="OpenAI chat completions: the chat as given for a generative model; "
              "otherwise text parts are questions about the image_url part")
    async def chat(body: ChatBody):
        served = await asyncio.get_running_loop().run_in_executor(None, models.get, body.model)
        if hasattr(served.engine, "chat"):
            return await _generated_chat(served, body, limits)
        questions, image = question_inputs(body.messages)
        served, answers = await _answer(models, limits, body.model, image, questions, max(1, body.top_logprobs or 1))
        document = completion(served.engine.name, answers, body.logprobs, body.top_logprobs or 0)
        if body.stream:
            pieces = [document["choices"][0]["message"]["content"], SimpleNamespace(reason="stop")]
            return StreamingResponse(stream_events(served.engine.name, iter(pieces)), media_type="text/event-stream")
        return document


def _cli_routes(app: FastAPI, models: Models, limits: Limits) -> None:
    """/v1/encode and /v1/answer: a CLI run's engine calls, replayed in a session of its own."""

    @app.post("/v1/encode", summary="The CLI's images: held for the session, then encoded in one pass")
    async def encode(body: EncodeBody):
        loop = asyncio.get_running_loop()
        served = await loop.run_in_executor(None, models.get, body.model)
        session = served.session(body.session)
        datas = [image_bytes(image) for image in body.images]
        pictures = await loop.run_in_executor(None, _prepared, served.engine, datas, limits.max_pixels)
        served.hold(session, {hashlib.sha256(data).hexdigest(): image for data, image in zip(datas, pictures)})
        if body.ids is not None:
            def run():
                with served.lock:
                    session.encode(body.ids)
            await _within(loop.run_in_executor(None, run), limits.timeout)
        return {"held": len(session.held), "encoded": body.ids is not None}

    @app.post("/v1/answer", summary="The CLI's engine calls, replayed exactly in a session of their own")
    async def replay(body: AnswerBody):
        _check_questions(body.questions, limits.max_replay_questions)
        if len(body.image_index) != len(body.questions) or any(not 0 <= i < len(body.ids) for i in body.image_index):
            raise APIError(400, "image_index must give, for each question, an index into ids")
        loop = asyncio.get_running_loop()
        served = await loop.run_in_executor(None, models.get, body.model)
        session = served.session(body.session)

        def run():
            with served.lock:
                if body.generation is not None:
                    configure(session.engine, _generation(body.generation))
                among = {"choices": [parse_choices(c) if c else None for c in body.choices]} if body.choices else {}
                return session.engine.answer(session.encoded(body.ids), body.questions, body.image_index,
                                             top_k=min(body.top_k, limits.max_top_k), **among)

        answers = await _within(loop.run_in_executor(None, run), limits.timeout)
        return {**ask_document(None, served.engine, answers), "images_in_domain": [a.image_in_domain for a in answers]}


def _check_questions(questions: list[str], limit: int) -> list[str]:
    if not questions:
        raise APIError(400, "no questions")
    if len(questions) > limit:
        raise APIError(400, f"too many questions: {len(questions)} (at most {limit} per request)")
    return [check_question(q) for q in questions]


async def _answer(models: Models, limits: Limits, model: str | None, image: str, questions: list[str], top_k: int,
                  choices=None, video: Sampling = Sampling()):
    texts = _check_questions(questions, limits.max_questions)
    loop = asyncio.get_running_loop()
    served = await loop.run_in_executor(None, models.get, model)
    [picture] = await loop.run_in_executor(None, _prepared, served.engine, [image_bytes(image)], limits.max_pixels, video)
    answers = await _within(served.batcher.answer(picture, texts, min(top_k, limits.max_top_k), choices), limits.timeout)
    return served, answers


async def _generated_chat(served, body: ChatBody, limits: Limits):
    """A generative model's reply to the chat as given: whole, or streamed as server-sent events."""
    messages, urls = template_messages(body.messages)
    loop = asyncio.get_running_loop()
    media = await loop.run_in_executor(None, _prepared, served.engine, [image_bytes(url) for url in urls], limits.max_pixels)
    messages, images = videos_as_images(messages, media)
    generation = Generation(max_tokens=body.max_completion_tokens or body.max_tokens or CHAT_MAX_TOKENS,
                            temperature=body.temperature or 0.0, seed=body.seed)
    pieces = served.engine.chat(messages, images, generation)  # nothing runs until it is read
    name = served.engine.name
    if body.stream:
        return StreamingResponse(stream_events(name, pieces), media_type="text/event-stream")  # read in a worker thread
    *text, finished = await _within(loop.run_in_executor(None, list, pieces), limits.timeout)
    return generated(name, text, finished)


def _generation(fields: dict) -> Generation:
    try:
        return Generation(**fields)
    except TypeError:
        raise APIError(400, f"generation takes {', '.join(Generation.__dataclass_fields__)}") from None


async def _within(work, timeout: float):
    try:
        return await asyncio.wait_for(work, timeout)
    except asyncio.TimeoutError:
        raise APIError(504, f"no answer within {timeout:g} s", "server_error", "timeout") from None


def _prepared(engine, datas: list[bytes], max_pixels: int, video: Sampling = Sampling()) -> list:
    """Decode and prepare a request's images (off the event loop), once their headers show they fit the pixel budget.
    A video counts the pixels of every frame it samples.

    Prepared images are what the model reads (small, for our bundles), so a request waiting in
    the queue holds those, not the decoded photo."""
    pixels = sum(media_pixels(data, video) for data in datas)
    if pixels > max_pixels:
        raise APIError(413, f"the request's images hold {pixels / 1e6:.1f} MP; at most {max_pixels / 1e6:.0f} MP "
                       "per request (for a video: fewer frames, with max_frames or fps)", code="request_too_large")
    return [prepared(load_media(data, "request", video), engine.prepare) for data in datas]


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request, e: APIError):
        return error_response(e.status, e.message, e.kind, e.code)

    @app.exception_handler(VQAError)
    async def user_error(request, e: VQAError):
        return error_response(400, str(e), code="vqa_error")  # what a local run would say, word for word

    @app.exception_handler(RequestValidationError)
    async def invalid(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(400, f"invalid request: {where or 'body'}: {first.get('msg', 'malformed')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, e: StarletteHTTPException):
        code = "request_too_large" if e.status_code == 413 else None
        return error_response(e.status_code, str(e.detail), "invalid_request_error" if e.status_code < 500 else "server_error", code)

    @app.exception_handler(Exception)
    async def unexpected(request, e: Exception):
        return error_response(500, f"internal error: {type(e).__name__}", "server_error")


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    try:
        return host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard:
    """Pure ASGI middleware: the Host check (DNS rebinding), the API key, and the body-size limit."""

    def __init__(self, app, host: str, api_key: str | None, max_body: int):
        self.app, self.api_key, self.max_body = app, api_key, max_body
        self.hosts = LOOPBACK_NAMES | {host.lower()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope["path"], headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:  # a chunked body has no Content-Length to refuse it by
                raise StarletteHTTPException(413, f"request body over {self.max_body} bytes")  # FastAPI re-raises these as they are
            return message

        await self.app(scope, limited, send)

    def _refusal(self, path: str, headers: dict) -> JSONResponse | None:
        host = headers.get("host", "")
        name = (host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]).lower()
        # Without a key only loopback names are served (DNS rebinding cannot reach them); with a key the
        # key is the guard, so clients may use the machine's name or address, whatever it is.
        if not self.api_key and name not in self.hosts and not is_loopback(name):
            return error_response(403, f"host {host!r} is not allowed", code="forbidden_host")
        if self.api_key and path != "/health":
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
                return error_response(401, "missing or wrong API key (Authorization: Bearer KEY)", "authentication_error", "invalid_api_key")
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            return error_response(413, f"request body over {self.max_body} bytes", code="request_too_large")
        return None
