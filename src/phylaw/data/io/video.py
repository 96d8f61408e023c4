"""Video files: uint8 frame arrays [T, H, W, 3] to and from mp4 and gif, in memory or on disk.

MP4 encoding reproduces what the authors' data files hold (reference section 1.1): imageio 2.34's
FFMPEG defaults, i.e. H.264 (libx264), yuv420p, ``-crf 25`` (imageio quality 5), 10 fps. Here it
runs in-process through PyAV, with no ffmpeg binary. yuv420p halves the chroma resolution, so
frame sizes must be even (the paper's 128 and 256 are); the codec is lossy (a rendered ball video
comes back within a few grey levels on average). GIF is encoded by PyAV with one exact palette
when the video has at most 256 colours (renders of the fundamental scenarios do), so a GIF round
trip is then lossless; videos with more colours are quantised. GIFs are decoded with Pillow.

Frames are stored as given: row 0 is the top of the image, which for phylaw's renderer and the
authors' files is world y = 10. Every file is written atomically (temporary file, then rename);
unreadable or corrupt input raises ``PhylawError`` naming the file.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageSequence

from phylaw import PhylawError
from phylaw.data.store import atomic_write_bytes

FPS = 10  # imageio's default, what the authors' HDF5 videos use
CRF = 25  # imageio quality 5 -> libx264 -crf 25
CODEC = "libx264"
PIX_FMT = "yuv420p"
GIF_MAGIC = (b"GIF87a", b"GIF89a")

VideoSource = bytes | bytearray | memoryview | str | Path


def check_frames(frames: np.ndarray, even: bool = False) -> np.ndarray:
    """Validate a video array: uint8 [T, H, W, 3] with T >= 1 (and even H, W if ``even``)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise PhylawError(f"a video must be a uint8 array [T, H, W, 3]; got shape {frames.shape}")
    if frames.dtype != np.uint8:
        raise PhylawError(f"a video must be a uint8 array; got dtype {frames.dtype}")
    if even and (frames.shape[1] % 2 or frames.shape[2] % 2):
        raise PhylawError(
            f"mp4 (yuv420p) needs even frame sizes; got {frames.shape[2]}x{frames.shape[1]} "
            "(use an even resolution such as 128 or 256)"
        )
    return np.ascontiguousarray(frames)


def _check_rate(fps: float) -> None:
    if not fps > 0:
        raise PhylawError(f"invalid fps {fps!r}: give a positive frame rate")


# ---------------------------------------------------------------------------------- encode
X264_DETERMINISTIC = "sync-lookahead=0:rc-lookahead=0:mbtree=0"  # see encode_mp4


def encode_mp4(frames: np.ndarray, fps: float = FPS, crf: int = CRF) -> bytes:
    """H.264 mp4 bytes of ``frames`` uint8 [T, H, W, 3] (H, W even), libx264 yuv420p ``crf``."""
    frames = check_frames(frames, even=True)
    _check_rate(fps)
    if not 0 <= crf <= 51:
        raise PhylawError(f"invalid crf {crf!r}: libx264 takes 0 (lossless) to 51")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream(CODEC, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = PIX_FMT
        # Same frames, same bytes: measured on 16 collision videos encoded 9 times in one
        # process, libx264's lookahead (rc-lookahead, mbtree, its sync thread) and swscale's
        # threads each changed some encodings between calls; without them none changed
        stream.options = {"crf": str(crf), "threads": "1", "x264-params": X264_DETERMINISTIC}
        for t, frame in enumerate(frames):
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format=PIX_FMT, threads=1
            )
            yuv.pts = t
            for packet in stream.encode(yuv):
                container.mux(packet)
        for packet in stream.encode():  # flush the encoder
            container.mux(packet)
    return buf.getvalue()


def palette_indices(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """One palette for frames [T, H, W, 3]: ``(indices uint8 [T, H, W], palette uint8 [K, 3],
    exact)``.

    Exact when the frames hold at most 256 distinct colours; otherwise a median-cut palette of
    256 colours without dithering (lossy, ``exact`` False).
    """
    keys = (frames[..., 0].astype(np.uint32) << 16) | (frames[..., 1].astype(np.uint32) << 8)
    keys |= frames[..., 2]
    colours, inverse = np.unique(keys, return_inverse=True)
    if len(colours) <= 256:
        rgb = np.stack([colours >> 16, colours >> 8, colours], axis=-1).astype(np.uint8)
        return inverse.reshape(frames.shape[:3]).astype(np.uint8), rgb, True
    t, h, w, _ = frames.shape
    mosaic = Image.fromarray(np.ascontiguousarray(frames.reshape(t * h, w, 3)), "RGB")
    quant = mosaic.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    rgb = np.asarray(quant.getpalette()[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    return np.asarray(quant, dtype=np.uint8).reshape(t, h, w), rgb, False


def _pal8(index: np.ndarray, rgb: np.ndarray) -> av.VideoFrame:
    index = index.reshape(index.shape[-2:])
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255  # opaque
    argb[: len(rgb), 1:] = rgb
    return av.VideoFrame.from_ndarray((index, argb), format="pal8")


def encode_gif(frames: np.ndarray, fps: float = FPS) -> bytes:
    """Animated GIF bytes of ``frames`` uint8 [T, H, W, 3], looping forever.

    One global palette when the video has at most 256 colours, else one per frame (local colour
    tables); lossless whenever each frame has at most 256 colours (``palette_indices``). Every
    frame is kept, repeats included (Pillow's writer merges identical frames, so PyAV's gif
    encoder is used). GIF delays are whole centiseconds.
    """
    frames = check_frames(frames)
    _check_rate(fps)
    index, rgb, exact = palette_indices(frames)
    if exact:
        pal8 = [_pal8(i, rgb) for i in index]
    else:
        pal8 = [_pal8(*palette_indices(f[None])[:2]) for f in frames]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="gif") as container:
        stream = container.add_stream("gif", rate=Fraction(fps).limit_denominator(100))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "pal8"
        for frame in pal8:
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def write_mp4(path: str | Path, frames: np.ndarray, fps: float = FPS, crf: int = CRF) -> Path:
    """Encode ``frames`` with ``encode_mp4`` and write them atomically to ``path``."""
    path = Path(path)
    atomic_write_bytes(path, encode_mp4(frames, fps, crf))
    return path


def write_gif(path: str | Path, frames: np.ndarray, fps: float = FPS) -> Path:
    """Encode ``frames`` with ``encode_gif`` and write them atomically to ``path``."""
    path = Path(path)
    atomic_write_bytes(path, encode_gif(frames, fps))
    return path


def write_video(path: str | Path, frames: np.ndarray, fps: float = FPS) -> Path:
    """Write ``frames`` as mp4 or gif, chosen by the suffix of ``path``."""
    suffix = Path(path).suffix.lower()
    writers = {".mp4": write_mp4, ".gif": write_gif}
    if suffix not in writers:
        raise PhylawError(f"cannot write {path}: the name must end in {' or '.join(writers)}")
    return writers[suffix](path, frames, fps)


# ---------------------------------------------------------------------------------- decode
def _decode_gif(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(img)])


def _decode_av(data: bytes) -> np.ndarray:
    """One decoding thread and one conversion thread: FFmpeg's automatic threading spends
    5-7x the wall time on small videos (measured: 29 ms against 6.6 ms per 32 x 128 x 128
    mp4, benchmarks/bench_eval.py); callers parallelise over videos instead."""
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1
        expected = stream.frames  # 0 when the container does not say
        frames = [
            f.reformat(format="rgb24", threads=1).to_ndarray() for f in container.decode(stream)
        ]
    if not frames:
        raise ValueError("no decodable frame")
    if expected and len(frames) < expected:
        raise ValueError(f"{len(frames)} of {expected} frames decodable")
    return np.stack(frames)


def decode_video(source: VideoSource, name: str | None = None) -> np.ndarray:
    """Decode an mp4 (or any format ffmpeg reads) or gif to uint8 [T, H, W, 3].

    ``source``: the encoded bytes, or a file path. ``name``: what to call in-memory bytes in
    error messages (e.g. ``"video_streams/00003[17]"``). Raises ``PhylawError`` naming the file
    when it is missing, empty, truncated or not a video.
    """
    if isinstance(source, (bytes, bytearray, memoryview, np.ndarray)):
        data = bytes(source) if not isinstance(source, np.ndarray) else source.tobytes()
        label = name or "in-memory video"
    else:
        label = name or str(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise PhylawError(f"video file not found: {source}") from None
        except OSError as e:
            raise PhylawError(f"cannot read video file {source}: {e.strerror}") from None
    if not data:
        raise PhylawError(f"cannot decode {label}: it is empty")
    try:
        return _decode_gif(data) if data[:6] in GIF_MAGIC else _decode_av(data)
    except (av.error.FFmpegError, OSError, ValueError, EOFError, SyntaxError) as e:
        raise PhylawError(
            f"cannot decode {label}: corrupt, truncated or not a video ({e})"
        ) from None
