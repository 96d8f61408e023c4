"""Arrays in ``.npz`` files, memory-mapped when the member is stored uncompressed.

``np.load`` reads an npz member whole, even to look at its first video. ``np.savez`` stores its
members uncompressed (``ZIP_STORED``), one contiguous ``.npy`` inside the zip, so such a member
can be memory-mapped at its offset: ``phylaw eval --limit 10`` on a 10 GB ``videos.npz`` reads
10 videos. A compressed member (``np.savez_compressed``) is read whole, as numpy would.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from phylaw import PhylawError

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header (30 bytes)


def npz_keys(path: str | Path) -> list[str]:
    """The array names of an npz file."""
    try:
        with zipfile.ZipFile(path) as z:
            return [n.removesuffix(".npy") for n in z.namelist()]
    except (OSError, zipfile.BadZipFile) as e:
        raise PhylawError(f"cannot read {path} as an npz file ({e})") from None


def load_npz_array(path: str | Path, key: str) -> np.ndarray:
    """The array ``key`` of the npz file ``path``: a read-only memory map when stored
    uncompressed, else loaded. Raises ``PhylawError`` naming the file when it is unreadable,
    truncated or lacks ``key``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(f"{key}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with z.open(info) as f:
                    return np.lib.format.read_array(f, allow_pickle=False)
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
            if fields[0] != b"PK\x03\x04":
                raise ValueError("bad local header")
            f.seek(fields[-2] + fields[-1], 1)  # file name and extra field
            major, _ = np.lib.format.read_magic(f)
            read_header = {
                1: np.lib.format.read_array_header_1_0,
                2: np.lib.format.read_array_header_2_0,
            }.get(major)
            if read_header is None:
                raise ValueError(f"npy format version {major} is not supported")
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if dtype.hasobject:
            raise ValueError("object arrays are not read (they would unpickle)")
        need = offset + int(np.prod(shape)) * dtype.itemsize
        if path.stat().st_size < need:
            raise ValueError(f"truncated: {path.stat().st_size} of {need} bytes")
        order = "F" if fortran else "C"
        return np.memmap(path, dtype, "r", offset=offset, shape=shape, order=order)
    except KeyError:
        raise PhylawError(f"{path} has no {key!r} array (found: {npz_keys(path)})") from None
    except (OSError, ValueError, zipfile.BadZipFile, struct.error) as e:
        raise PhylawError(f"cannot read {key!r} from {path} ({e})") from None
