"""Reading long videos: peak memory whatever the length, and what seeking saves.

    python bench/video_memory.py [--minutes 1 60] [--fps 25] [--workdir /tmp/vqa-video-bench]

Writes 720p H.264 videos (1280x720, a keyframe every 10 s as x264 puts them by default) of
a square moving over a gradient: one minute is encoded, and longer videos repeat its
packets (whole minutes). Then for each length:
  vqa ask   `vqa ask --json VIDEO "is there a red circle?"` with the builtin model and the
            default sampling (1 fps, at most 64 frames spread over the video), in a fresh
            process: its wall time and peak resident memory (VmHWM)
  seek      sampling its frames (64 for a video over a minute long) by seeking to each (the default: samples are more than 2 s
            apart), in this process: seconds
  sequential the same 64 frames, decoding every frame from the start (seeking disabled);
            only for videos up to --sequential-minutes long, as it reads the whole file
The videos are kept in --workdir for reruns.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_long_video(path: Path, minutes: float, fps: int, workdir: Path) -> None:
    """A video of `minutes`: one minute encoded once, then its packets copied end to end with shifted
    timestamps (no re-encoding), so an hour takes seconds to write."""
    import av

    minute = workdir / f"720p-1min-{fps}fps.mp4"
    if not minute.exists():
        write_video_minute(minute, fps)
    if minutes == 1:
        return
    with av.open(str(minute)) as source, av.open(str(path), "w", format="mp4") as target:
        inp = source.streams.video[0]
        out = target.add_stream_from_template(inp)
        step = round(60 / inp.time_base)
        for copy in range(round(minutes)):
            source.seek(0)
            for packet in source.demux(inp):
                if packet.dts is None:
                    continue
                packet.pts += copy * step
                packet.dts += copy * step
                packet.stream = out
                target.mux(packet)


def write_video_minute(path: Path, fps: int) -> None:
    import av

    frames = 60 * fps
    base = np.zeros((720, 1280, 3), np.uint8)
    base[..., 0] = np.linspace(40, 200, 1280, dtype=np.uint8)[None, :]
    base[..., 2] = np.linspace(200, 40, 720, dtype=np.uint8)[:, None]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(frames):
            image = base.copy()
            x, y = (i * 7) % 1180, (i * 3) % 620
            image[y : y + 100, x : x + 100] = (220, 40, 40)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def ask_in_a_fresh_process(video: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of `vqa ask --json` on the video."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "vqa_cli.cli", "ask", "--json", str(video), "is there a red circle?"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _rss_peak(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"vqa ask failed: {process.stderr.read().decode()}")
    return seconds, peak


def _rss_peak(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def sample_seconds(video: Path, seek: bool) -> float:
    from vqa_cli.io import video as videos

    gap = videos.SEEK_GAP
    videos.SEEK_GAP = gap if seek else float("inf")
    try:
        started = time.perf_counter()
        videos.read_video(str(video), video.name, videos.Sampling())
        return time.perf_counter() - started
    finally:
        videos.SEEK_GAP = gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 10, 60])
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--sequential-minutes", type=float, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vqa-video-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("| video | file | vqa ask | peak RSS | sampling by seeking | sampling decoding everything |")
    print("|---|---:|---:|---:|---:|---:|")
    for minutes in args.minutes:
        path = args.workdir / f"720p-{minutes:g}min-{args.fps}fps.mp4"
        if not path.exists():
            started = time.perf_counter()
            write_long_video(path, minutes, args.fps, args.workdir)
            print(f"(wrote {path} in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
        seconds, peak = ask_in_a_fresh_process(path)
        seek = sample_seconds(path, seek=True)
        sequential = f"{sample_seconds(path, seek=False):.1f} s" if minutes <= args.sequential_minutes else "-"
        print(f"| 720p, {minutes:g} min, {args.fps} fps | {path.stat().st_size / 1e6:.0f} MB | {seconds:.1f} s | "
              f"{peak:.0f} MB | {seek:.1f} s | {sequential} |", flush=True)


if __name__ == "__main__":
    main()
