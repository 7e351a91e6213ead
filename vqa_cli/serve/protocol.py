"""The server's wire format: request bodies, image bytes from base64, and OpenAI-shaped errors."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def error_response(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


class AskBody(BaseModel):
    image: str = Field(description="The image's (or a video's) bytes, base64-encoded, or a data: URL.")
    questions: list[str] = Field(description="Questions about the image, answered in order.")
    model: str | None = Field(None, description="A served model; default: the first given to `vqa serve`.")
    top_k: int = Field(1, ge=1, description="How many ranked answers each answer's top_k holds.")
    choices: list[str] | None = Field(None, description="Answer among these; each score is a probability over the set.")
    fps: float = Field(1.0, description="A video: answer this many frames per second.")
    max_frames: int = Field(64, description="A video: at most this many frames, spread evenly over a longer one.")
    start: float = Field(0.0, description="A video: begin at this second.")
    end: float | None = Field(None, description="A video: stop at this second.")


class EncodeBody(BaseModel):
    session: str = Field(description="The CLI run these calls belong to.")
    images: list[str] = Field([], description="Images to hold for encoding: base64 PNG of the decoded pixels, as the CLI sends them.")
    ids: list[str] | None = Field(None, description="When given: encode these held images (sha256 of their PNG bytes), in this order, in one pass.")
    model: str | None = None


class AnswerBody(BaseModel):
    ids: list[str] = Field(description="The images the session encoded last (/v1/encode), in that order.")
    questions: list[str]
    image_index: list[int] = Field(description="For each question, its image's place in ids.")
    top_k: int = Field(1, ge=1)
    generation: dict[str, Any] | None = Field(None, description="For a model that generates: the CLI's --instruction, --max-tokens, --temperature, --seed.")
    choices: list[list[str] | None] | None = Field(None, description="For each question, the choices to answer among, or null.")
    model: str | None = None
    session: str = Field(description="The CLI run these calls belong to.")


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send more than a VQA model uses
    model: str | None = None
    messages: list[dict[str, Any]]
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_tokens: int | None = Field(None, ge=1, description="Generative models: new tokens at most (default 256).")
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens.")
    temperature: float | None = Field(None, ge=0, le=2, description="Generative models: 0 or absent is greedy.")
    seed: int | None = None
    stream: bool = False


def image_bytes(value: str) -> bytes:
    """base64 or a data: URL -> bytes. URLs and paths are refused: the server never fetches or opens them."""
    text = value.strip()
    if text.startswith("data:"):
        header, _, payload = text.partition(",")
        if not header.endswith(";base64") or not payload:
            raise APIError(400, "a data: URL must be base64, as data:image/png;base64,...")
        text = payload
    try:
        return base64.b64decode(text, validate=True)  # raw base64 may start with "/" (a JPEG's is "/9j/")
    except (binascii.Error, ValueError):
        if "://" in text[:16] or text.startswith(("/", "~", ".")):
            raise APIError(400, "only image bytes are accepted (base64 or a data: URL); URLs and paths are never fetched or opened") from None
        raise APIError(400, "the image is not valid base64") from None
