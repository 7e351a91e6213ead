"""Videos: recognised by their bytes, sampled at known times, each frame upright 8-bit RGB.

Decoding is PyAV's (the `video` extra: its wheel carries its own FFmpeg). A video is read
from its file as it is decoded, never whole, and only the sampled frames are kept, so
memory depends on --max-frames and the frame size, not on the video's length. When the
samples lie further apart than SEEK_GAP, the decoder seeks to the keyframe before each
one instead of decoding every frame in between.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ImageError, InputError, UsageError, env_limit
from .images import MAX_PIXELS

SEEK_GAP = 2.0  # seconds: samples further apart than this are reached by seeking
INSTALL = "reading videos needs the video extra: pip install 'vqa-cli[video]'"


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video are answered: every 1/fps seconds of [start, end), at most max_frames,
    spread evenly over the window when it holds more."""

    fps: float = 1.0
    max_frames: int = 64
    start: float = 0.0
    end: float | None = None  # None: the end of the video

    def __post_init__(self):
        if not self.fps > 0 or math.isinf(self.fps):
            raise UsageError(f"--fps must be a positive number of frames per second; got {self.fps:g}")
        if self.max_frames < 1:
            raise UsageError(f"--max-frames must be at least 1; got {self.max_frames}")
        if self.start < 0:
            raise UsageError(f"--start must be 0 or later; got {self.start:g}")
        if self.end is not None and self.end <= self.start:
            raise UsageError(f"--end ({self.end:g} s) must come after --start ({self.start:g} s)")

    def times(self, duration: float, name: str) -> list[float]:
        """The sampled times, in seconds from the video's start, for a video `duration` seconds long."""
        if self.start >= duration:
            raise InputError(f"--start {self.start:g} s is beyond the end of {name} ({duration:.3g} s long)")
        end = min(self.end, duration) if self.end is not None else duration
        count = max(1, math.ceil((end - self.start) * self.fps - 1e-9))
        if count <= self.max_frames:
            return [round(self.start + k / self.fps, 3) for k in range(count)]
        step = (end - self.start) / self.max_frames
        return [round(self.start + k * step, 3) for k in range(self.max_frames)]


@dataclass
class Video:
    """A video's sampled frames, in time order, and what the container says of it."""

    name: str
    duration: float  # seconds
    fps: float  # the stream's average frame rate
    width: int  # as displayed: after the container's rotation
    height: int
    times: list[float]  # seconds, one per frame
    frames: list[Any] = field(repr=False)  # upright RGB PIL images, or what an engine's `prepare` made of them
    until: float = 0.0  # where the window asked for ends: the duration, or --end when earlier

    def __post_init__(self):
        self.until = min(self.until, self.duration) if self.until else self.duration

    def info(self) -> dict:
        """The `video` object of the JSON output."""
        return {"duration": round(self.duration, 3), "fps": round(self.fps, 3), "width": self.width,
                "height": self.height, "sampled": len(self.frames)}

    def with_frames(self, frames: list) -> "Video":
        return replace(self, frames=frames)


_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"jxl "}


def is_video(head: bytes) -> bool:
    """Whether a file's first bytes are those of a video container (MP4/MOV, Matroska/WebM, AVI,
    MPEG-TS/PS, FLV, Ogg); AVIF and HEIC images share MP4's box format and are images."""
    if head[4:8] == b"ftyp":
        return head[8:12] not in _IMAGE_BRANDS
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):  # QuickTime files without ftyp
        return True
    return (
        head.startswith((b"\x1a\x45\xdf\xa3", b"FLV\x01", b"OggS", b"\x00\x00\x01\xba"))
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or (len(head) > 376 and head[0] == head[188] == head[376] == 0x47 and not head.startswith(b"GIF8"))
    )


HEAD_BYTES = 377  # enough for every signature above (the sync bytes of three MPEG-TS packets)


def read_video(file, name: str, sampling: Sampling = Sampling()) -> Video:
    """Decode the sampled frames of the video in `file` (a path or a seekable binary file object).

    Every failure is this video's ImageError, one line: no video stream (an audio file), a
    frame larger than VQA_MAX_PIXELS (refused from the header, before decoding), a corrupt or
    truncated file, no frame at all, or --start beyond the end.
    """
    av = _import_av()
    try:
        container = av.open(file, mode="r", metadata_errors="ignore")
    except Exception as e:  # noqa: BLE001 - FFmpeg's errors, and whatever else one bad file raises, are its error
        raise ImageError(f"cannot read video {name}: {_reason(e)}") from None
    with container:
        if not container.streams.video:
            held = " (it holds only audio)" if container.streams.audio else ""
            raise ImageError(f"no video stream in {name}{held}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_frame_size(width, height, name)
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        duration = _duration(container, stream)
        targets = _targets(sampling, duration, name)
        try:
            times, frames = _sample(container, stream, targets, fps)
        except MemoryError:
            raise ImageError(f"video too large: the frames of {name} do not fit in memory") from None
        except Exception as e:  # noqa: BLE001 - a corrupt packet, an odd pixel format: this video's error
            raise ImageError(f"cannot decode video {name}: {_reason(e)}") from None
    if not frames:
        raise ImageError(f"no frames in video {name}")
    if duration is None or len(times) < len(targets):  # unknown, or the data ends before the length declared
        duration = times[-1] + (1 / fps if fps else 0)
    return Video(name, duration, fps, *frames[0].size, times, frames, sampling.end or 0.0)  # the size as displayed


def video_pixels(data: bytes, sampling: Sampling = Sampling()) -> int:
    """Pixels the sampled frames of the video in `data` add up to, from its header alone (nothing is
    decoded); 0 when it cannot tell (decoding will say what is wrong)."""
    import io

    av = _import_av()
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            targets = _targets(sampling, _duration(container, stream), "video")
            return stream.codec_context.width * stream.codec_context.height * len(targets)
    except Exception:  # noqa: BLE001 - not a readable video: read_video raises its one-line error
        return 0


def _targets(sampling: Sampling, duration: float | None, name: str) -> list[float]:
    if duration is not None:
        return sampling.times(duration, name)
    # no length in the container: every 1/fps seconds from --start, as far as the stream goes
    targets = [sampling.start + k / sampling.fps for k in range(sampling.max_frames)]
    return [t for t in targets if sampling.end is None or t < sampling.end]


def _sample(container, stream, targets: list[float], fps: float):
    """(times, upright frames): the frame on screen at each target time, seeking between distant ones."""
    origin = stream.start_time or 0
    base = float(stream.time_base)
    slack = 2 / fps if fps else 1.0  # a frame shows until the next; a target this far past the last frame is past the end
    times, frames = [], []
    shown = upcoming = None  # the frame on screen at the last target, and the next one decoded
    decoded = iter(())
    for target in targets:
        if shown is None or target - _time(shown, origin, base) > SEEK_GAP:
            container.seek(origin + int(target / base), stream=stream, backward=True)  # the keyframe at or before it
            decoded = container.decode(stream)
            shown, upcoming = None, next(decoded, None)
        while upcoming is not None and _time(upcoming, origin, base) <= target + 1e-6:
            shown, upcoming = upcoming, next(decoded, None)
        shown = shown or upcoming  # the first frame lies after the target (an edit list, a late keyframe)
        if shown is None or (upcoming is None and target > _time(shown, origin, base) + slack):
            break  # the data ends before this target (a truncated file, a length the container overstates)
        times.append(round(target, 3))
        frames.append(upright(shown))
    return times, frames


def _time(frame, origin: int, base: float) -> float:
    return ((frame.pts if frame.pts is not None else origin) - origin) * base


def _duration(container, stream) -> float | None:
    if stream.duration:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def upright(frame):
    """A decoded frame as displayed: RGB, turned and mirrored as the container's display matrix says
    (the eight orientations a phone or an editor writes, as EXIF has for images)."""
    image = frame.to_image()
    for step in _orientation(frame):
        image = image.transpose(step)
    return image


def _orientation(frame) -> list:
    """The PIL transposes that show a frame as its display matrix says: [a b; c d] of the matrix,
    rounded, names one of eight orientations (rotations counterclockwise, then a left-right mirror)."""
    from PIL.Image import Transpose

    for item in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(getattr(item, "type", "")).upper():
            import numpy as np

            a, b, c, d = (round(v / 65536) for v in np.frombuffer(bytes(item), dtype=np.int32)[[0, 1, 3, 4]])
            return {
                (0, -1, 1, 0): [Transpose.ROTATE_90], (-1, 0, 0, -1): [Transpose.ROTATE_180], (0, 1, -1, 0): [Transpose.ROTATE_270],
                (-1, 0, 0, 1): [Transpose.FLIP_LEFT_RIGHT], (1, 0, 0, -1): [Transpose.FLIP_TOP_BOTTOM],
                (0, -1, -1, 0): [Transpose.ROTATE_90, Transpose.FLIP_LEFT_RIGHT],
                (0, 1, 1, 0): [Transpose.ROTATE_270, Transpose.FLIP_LEFT_RIGHT],
            }.get((a, b, c, d), [])
    return []


def _check_frame_size(width: int, height: int, name: str) -> None:
    limit = env_limit("VQA_MAX_PIXELS", MAX_PIXELS)
    if width * height > limit:
        raise ImageError(f"video too large: the frames of {name} are {width}x{height} ({width * height / 1e6:.3g} MP, "
                         f"limit {limit / 1e6:.3g} MP; raise VQA_MAX_PIXELS to allow it)")
    if not width or not height:
        raise ImageError(f"no frames in video {name}: its stream declares no frame size")


def _import_av():
    try:
        import av
    except ImportError:
        raise InputError(INSTALL) from None
    av.logging.set_level(None)  # FFmpeg's own messages would reach stderr line by line; errors are raised
    return av


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def write_video(path, images, fps: int, crf: int = 23) -> None:
    """Encode RGB PIL images (all one size, even width and height) as H.264 in MP4 at `fps`:
    yuv420p, as cameras and browsers write it; `crf` is x264's quality (lower: better)."""
    import numpy as np

    av = _import_av()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = None
        for image in images:
            if stream is None:
                stream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "medium"})
                stream.width, stream.height, stream.pix_fmt = image.width, image.height, "yuv420p"
            frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
            container.mux(stream.encode(frame))
        if stream is not None:
            container.mux(stream.encode(None))
