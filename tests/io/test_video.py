"""Videos: sampled at the times asked, each frame the one on screen then, upright, told from images by their bytes."""

from __future__ import annotations

import io
import sys

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vqa_cli.cli import app
from vqa_cli.errors import ImageError, InputError, UsageError
from vqa_cli.io import video as videos
from vqa_cli.io.media import load_media
from vqa_cli.io.video import SEEK_GAP, Sampling, Video, is_video, read_video, write_video

SIZE = (64, 48)


def gray(level: int, size=SIZE) -> Image.Image:
    return Image.new("RGB", size, (level, level, level))


def level(frame: Image.Image) -> float:
    return float(np.asarray(frame).mean())


def encode(path, arrays, fps: int = 10, gop: int | None = None, rotation: int | None = None, hflip: bool = False, **open_options) -> str:
    """H.264 in MP4 straight through PyAV: a keyframe every `gop` frames, a display matrix turned by `rotation`
    (then mirrored left to right with hflip)."""
    with av.open(str(path), "w", format="mp4", **open_options) as container:
        stream = container.add_stream("libx264", rate=fps, options={"g": str(gop)} if gop else {})
        stream.height, stream.width = arrays[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation, hflip=hflip)
        for array in arrays:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return str(path)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> str:
    """9.5 s at 10 fps: frame i a solid gray of 10 + 2 i."""
    path = tmp_path_factory.mktemp("video") / "long.mp4"
    write_video(path, [gray(10 + 2 * i) for i in range(95)], fps=10)
    return str(path)


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> str:
    """1.2 s at 10 fps: frame i a solid gray of 10 + 20 i, so the level tells which frame was taken."""
    path = tmp_path_factory.mktemp("video") / "steps.mp4"
    write_video(path, [gray(10 + 20 * i) for i in range(12)], fps=10)
    return str(path)


@pytest.fixture(scope="module")
def png_bytes() -> bytes:
    buffer = io.BytesIO()
    gray(90, (8, 6)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_by_default_a_video_is_sampled_once_a_second(long_clip):
    clip = read_video(long_clip, "long.mp4")
    assert clip.times == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert len(clip.frames) == 10 and all(frame.mode == "RGB" and frame.size == SIZE for frame in clip.frames)
    assert clip.duration == pytest.approx(9.5) and clip.until == pytest.approx(9.5)


def test_the_video_info_says_its_length_rate_size_and_frames_sampled(long_clip):
    info = read_video(long_clip, "long.mp4", Sampling(fps=2)).info()
    assert info == {"duration": 9.5, "fps": 10.0, "width": 64, "height": 48, "sampled": 19}


def test_max_frames_spreads_the_samples_over_the_whole_video(long_clip):
    clip = read_video(long_clip, "long.mp4", Sampling(fps=10, max_frames=5))
    assert clip.times == [0.0, 1.9, 3.8, 5.7, 7.6]  # every 9.5 / 5 s, not the first half second
    assert [round((level(f) - 10) / 2) for f in clip.frames] == pytest.approx([0, 19, 38, 57, 76], abs=2)


def test_start_and_end_cut_a_window(long_clip):
    clip = read_video(long_clip, "long.mp4", Sampling(fps=2, start=2, end=4.2))
    assert clip.times == [2.0, 2.5, 3.0, 3.5, 4.0]
    assert clip.until == pytest.approx(4.2) and clip.duration == pytest.approx(9.5)
    spread = read_video(long_clip, "long.mp4", Sampling(fps=10, max_frames=4, start=2, end=6))
    assert spread.times == [2.0, 3.0, 4.0, 5.0]
    past_the_end = read_video(long_clip, "long.mp4", Sampling(fps=10, start=9.2, end=30))
    assert past_the_end.times == [9.2, 9.3, 9.4] and past_the_end.until == pytest.approx(9.5)


def test_the_frame_taken_at_a_time_is_the_one_on_screen_then(steps):
    clip = read_video(steps, "steps.mp4", Sampling(fps=4, start=0.07))
    assert clip.times == [0.07, 0.32, 0.57, 0.82, 1.07]
    shown = [0, 3, 5, 8, 10]  # frame i is on screen from i/10 s to (i+1)/10 s
    assert [level(f) for f in clip.frames] == pytest.approx([10 + 20 * i for i in shown], abs=5)


class SeekCounter:
    """A container that counts its seeks and does everything else as the real one."""

    def __init__(self, container, seeks: list):
        self.container, self.seeks = container, seeks

    def seek(self, *args, **kwargs):
        self.seeks.append(args)
        return self.container.seek(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.container.__exit__(*exc)


def test_seeking_to_distant_samples_takes_the_same_frames_as_decoding_straight_through(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(200):  # 20 s, a keyframe every second, every frame different
        array = np.full((48, 64, 3), 10 + i, np.uint8)
        array[:, :16] = rng.integers(0, 256, (48, 16, 3), dtype=np.uint8)
        arrays.append(array)
    path = encode(tmp_path / "long.mp4", arrays, gop=10)
    seeks: list = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: SeekCounter(real_open(*a, **k), seeks))

    sparse = read_video(path, "long.mp4", Sampling(fps=1 / 3.7))
    assert sparse.times == [0.0, 3.7, 7.4, 11.1, 14.8, 18.5] and 3.7 > SEEK_GAP
    assert len(seeks) == len(sparse.times)  # each sample reached by a seek
    seeks.clear()
    dense = read_video(path, "long.mp4", Sampling(fps=10, max_frames=200))
    assert len(dense.times) == 200 and len(seeks) == 1  # one seek to the start, then straight through
    at = {t: frame for t, frame in zip(dense.times, dense.frames)}
    for t, frame in zip(sparse.times, sparse.frames):
        np.testing.assert_array_equal(np.asarray(frame), np.asarray(at[t]), err_msg=f"t={t}")
        assert np.asarray(frame)[:, 16:].mean() == pytest.approx(10 + round(t * 10), abs=2)


@pytest.mark.parametrize("options, message", [
    (dict(fps=0), "--fps"), (dict(fps=-1), "--fps"), (dict(fps=float("nan")), "--fps"), (dict(fps=float("inf")), "--fps"),
    (dict(max_frames=0), "--max-frames"), (dict(start=-1), "--start"),
    (dict(start=3, end=3), "--end"), (dict(start=3, end=2), "--end"),
])
def test_impossible_sampling_is_a_usage_error(options, message):
    with pytest.raises(UsageError, match=message):
        Sampling(**options)


def test_a_start_beyond_the_end_says_how_long_the_video_is(long_clip):
    with pytest.raises(InputError, match=r"--start 12 s is beyond the end of long\.mp4 \(9\.5 s long\)"):
        read_video(long_clip, "long.mp4", Sampling(start=12))


@pytest.mark.parametrize("degrees, turn", [(90, Image.Transpose.ROTATE_90), (270, Image.Transpose.ROTATE_270)])
def test_a_rotated_phone_video_comes_out_upright(tmp_path, degrees, turn):
    stored = np.full((48, 64, 3), 30, np.uint8)
    stored[:16] = 230  # a bright band along the top of the stored frame
    path = encode(tmp_path / "phone.mp4", [stored] * 5, rotation=degrees)
    clip = read_video(path, "phone.mp4")
    assert (clip.width, clip.height) == (48, 64) and clip.info()["width"] == 48
    frame = np.asarray(clip.frames[0])[..., 0].astype(int)
    expected = np.asarray(Image.fromarray(stored).transpose(turn))[..., 0].astype(int)
    assert frame.shape == expected.shape == (64, 48)
    assert np.abs(frame - expected).mean() < 3
    band = slice(0, 16) if degrees == 90 else slice(32, 48)  # counterclockwise: the top goes left; clockwise: right
    assert frame[:, band].mean() > 200 and np.delete(frame, band, axis=1).mean() < 60


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_a_mirrored_video_comes_out_turned_then_mirrored_as_its_display_matrix_says(tmp_path, degrees):
    stored = np.full((48, 64, 3), 30, np.uint8)
    stored[:16, :16] = 230  # a bright block in the top-left corner of the stored frame
    path = encode(tmp_path / "mirrored.mp4", [stored] * 5, rotation=degrees, hflip=True)
    frame = np.asarray(read_video(path, "mirrored.mp4").frames[0])[..., 0].astype(int)
    turns = {0: [], 90: [Image.Transpose.ROTATE_90], 180: [Image.Transpose.ROTATE_180], 270: [Image.Transpose.ROTATE_270]}
    expected = Image.fromarray(stored)
    for step in turns[degrees] + [Image.Transpose.FLIP_LEFT_RIGHT]:
        expected = expected.transpose(step)
    expected = np.asarray(expected)[..., 0].astype(int)
    assert frame.shape == expected.shape and np.abs(frame - expected).mean() < 3


def test_a_gif_is_never_taken_for_an_mpeg_ts_stream():
    gif = b"GIF89a" + bytes(182) + b"G" + bytes(187) + b"G" + bytes(20)  # "G" where TS sync bytes would be
    assert not is_video(gif)
    assert is_video((b"\x47" + bytes(187)) * 3)  # three packets' sync bytes: MPEG-TS


def test_an_unrotated_video_keeps_its_shape(steps):
    clip = read_video(steps, "steps.mp4")
    assert (clip.width, clip.height) == SIZE and clip.frames[0].size == SIZE


def test_a_video_is_known_by_its_bytes_not_its_name(tmp_path, steps, png_bytes, monkeypatch):
    disguised = tmp_path / "clip.png"
    disguised.write_bytes(open(steps, "rb").read())
    as_video = load_media(str(disguised))
    assert isinstance(as_video, Video) and as_video.name == str(disguised) and len(as_video.frames) == 2

    picture = tmp_path / "picture.mp4"
    picture.write_bytes(png_bytes)
    image = load_media(str(picture))
    assert isinstance(image, Image.Image) and image.size == (8, 6) and image.getpixel((0, 0)) == (90, 90, 90)

    from_bytes = load_media(open(steps, "rb").read(), video=Sampling(fps=10))
    assert isinstance(from_bytes, Video) and from_bytes.times == read_video(steps, "x", Sampling(fps=10)).times

    class Stdin:
        buffer = io.BytesIO(open(steps, "rb").read())

    monkeypatch.setattr(sys, "stdin", Stdin())
    from_stdin = load_media("-")
    assert isinstance(from_stdin, Video) and from_stdin.name == "stdin"


def test_is_video_tells_containers_from_images(steps, png_bytes):
    jpeg = io.BytesIO()
    gray(90).save(jpeg, format="JPEG")
    assert is_video(open(steps, "rb").read(videos.HEAD_BYTES))
    assert not is_video(png_bytes) and not is_video(jpeg.getvalue())
    assert not is_video(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf")  # AVIF: MP4's boxes, an image
    assert not is_video(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    assert is_video(b"\x1a\x45\xdf\xa3" + bytes(40))  # Matroska / WebM
    assert not is_video(b"")


def audio_only(path) -> str:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return str(path)


def _truncated(tmp_path, steps):
    data = open(steps, "rb").read()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    return str(tmp_path / "cut.mp4"), "cannot read video"


def _junk_after_ftyp(tmp_path, steps):
    data = open(steps, "rb").read()[:32] + np.random.default_rng(0).bytes(4000)
    (tmp_path / "junk.mp4").write_bytes(data)
    return data, "cannot read video image bytes"


def _audio(tmp_path, steps):
    return audio_only(tmp_path / "song.mp4"), "no video stream in .*song.mp4 \\(it holds only audio\\)"


@pytest.mark.parametrize("make", [_truncated, _junk_after_ftyp, _audio], ids=["truncated", "junk-after-ftyp", "audio-only"])
def test_a_broken_video_is_a_one_line_image_error(tmp_path, steps, make):
    source, message = make(tmp_path, steps)
    assert is_video((source if isinstance(source, bytes) else open(source, "rb").read())[: videos.HEAD_BYTES])
    with pytest.raises(ImageError, match=message) as error:
        load_media(source)
    assert "\n" not in str(error.value) and error.value.__cause__ is None


def test_a_broken_video_on_the_command_line_is_one_line_without_a_traceback(tmp_path, steps):
    cut, _ = _truncated(tmp_path, steps)
    result = CliRunner().invoke(app, ["ask", cut, "is there a circle?", "-m", str(tmp_path / "no-model")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"vqa: error: cannot read video {cut}") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_frames_too_large_are_refused_before_any_is_decoded(steps, monkeypatch):
    monkeypatch.setenv("VQA_MAX_PIXELS", "1000")

    def decoded(*args):
        raise AssertionError("decoded frames of a video too large to read")

    monkeypatch.setattr(videos, "_sample", decoded)
    with pytest.raises(ImageError, match="video too large: the frames of .*steps.mp4 are 64x48") as error:
        load_media(steps)
    assert "VQA_MAX_PIXELS" in str(error.value) and "\n" not in str(error.value)


def test_a_video_is_refused_where_only_images_are_read(steps):
    with pytest.raises(ImageError, match="is a video; only images are read here"):
        load_media(steps, video=None)
    with pytest.raises(ImageError, match="image bytes is a video"):
        load_media(open(steps, "rb").read(), video=None)


def test_a_video_cut_short_keeps_the_frames_before_the_cut_and_says_its_real_length(tmp_path):
    arrays = []
    for i in range(95):  # 9.5 s with its index up front, so the header survives a cut
        array = np.full((48, 64, 3), 10 + 2 * i, np.uint8)
        array[:, :16] = np.random.default_rng(i).integers(0, 256, (48, 16, 3), dtype=np.uint8)
        arrays.append(array)
    full = encode(tmp_path / "full.mp4", arrays, gop=10, options={"movflags": "faststart"})
    data = open(full, "rb").read()
    whole = load_media(data, video=Sampling(fps=2))
    assert whole.duration == pytest.approx(9.5) and len(whole.times) == 19
    cut = load_media(data[: len(data) // 2], video=Sampling(fps=2))
    assert 0 < len(cut.times) < 19 and cut.times == whole.times[: len(cut.times)]
    assert cut.duration == pytest.approx(cut.times[-1] + 0.1) and cut.info()["duration"] < 9.5
    for t, frame in zip(cut.times, cut.frames):
        assert np.asarray(frame)[:, 16:].mean() == pytest.approx(10 + 2 * round(t * 10), abs=3)


def test_a_16k_wide_stream_is_refused_by_the_default_pixel_limit_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "wide.mkv"
    with av.open(str(path), "w") as container:  # one black 15360x8640 frame, 133 MP, as MJPEG: 2 MB
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 15360, 8640, "yuvj420p"
        frame = av.VideoFrame(15360, 8640, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    monkeypatch.delenv("VQA_MAX_PIXELS", raising=False)
    monkeypatch.setattr(videos, "_sample", lambda *args: pytest.fail("decoded a 133 MP frame"))
    with pytest.raises(ImageError, match=r"video too large: the frames of .*wide.mkv are 15360x8640 \(133 MP, limit 50 MP"):
        load_media(str(path))
