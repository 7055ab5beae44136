"""Lossless per-layer file encoders for the streaming writer, and ``read_layer`` to decode them back.

Formats (one file per layer per frame, flat in the dataset folder, ``<prefix>_<frame:06d><suffix>``):

==========================  ==========  =====================================================================
layer (manifest ``files``)  file        encoding
==========================  ==========  =====================================================================
rgb                         rgb_        8-bit RGB(A) PNG (or JPEG quality 95 with ``rgb_format="jpg"``)
depth                       depth_      TIFF, (H, W) float32 meters, ``inf`` where nothing is hit
instance_segmentation       instance_   16-bit grey PNG when every id < 65536, else TIFF (H, W) uint32
semantic_segmentation       semantic_   16-bit grey PNG
normals                     normals_    TIFF, (H, W, 3) float32
optical_flow                flow_       TIFF, (H, W, 2) float32 pixels
labels                      labels_     compact JSON of ``frame.labels_json()``, sorted keys, UTF-8
==========================  ==========  =====================================================================

TIFFs are little-endian, one deflate strip, Predictor 2 (horizontal differencing of the 32-bit sample bits,
so every float bit pattern, ``inf`` and ``-0.0`` included, survives). Checked bit-exact with PIL (1 channel),
tifffile (with and without imagecodecs) and OpenCV 5 (1 and 3 channels; OpenCV returns 3 channels reversed,
BGR-style; it cannot read 2-channel float TIFFs). ``read_layer`` returns the exact array the writer was given
(instance ids as uint32 whichever file held them).

Why these encoders (measured 2026-11-27 on this project's 2-core AMD EPYC VM on the 1280x720 payload of
``bench/writer.py``; ms per layer, one thread; ``bench/writer.py --encoders`` reproduces the table):

* RGB PNG. PIL's default (zlib level 6, adaptive filters): 407 ms, 1.28 MB; PIL ``compress_level=1``: 77 ms,
  1.51 MB (PIL's per-row filter search alone costs ~45 ms). OpenCV 5.0 ``imencode``: 25-53 ms and a 72 MB
  dependency: not added. Our PNG (numpy "Up" filter, one IDAT): stdlib zlib level 1 ``Z_RLE``: 24 ms,
  1.27 MB; ISA-L (``isal``) level 1: 9.8 ms, 1.42 MB. Sub/Avg/Paeth filters: no smaller or slower.
  PIL (libjpeg-turbo) for JPEG: 2.5 ms, 0.17 MB.
* Id masks (16-bit PNG): ISA-L 0.4 ms, zlib ``Z_RLE`` 3.1 ms, PIL 11 ms.
* Float layers, depth / normals. ``.npy``: 3.7 / 11 MB to hash, write and fsync (page-cache writes cost
  ~2.5 ms per MB on this VM). ``np.savez_compressed``: 77 / 58 ms, 1.5 / 0.54 MB. PIL TIFF deflate (depth
  only): 67 ms. OpenEXR ZIP (``openexr`` 3.5): 13 / 31 ms. Raw deflate, ISA-L level 1 (a plain ``.npz``):
  5.9 / 3.1 ms, 2.27 / 0.61 MB: rendered depth differs at every pixel, so raw float bytes barely compress.
  TIFF Predictor 2 + deflate: ISA-L 1.8 / 3.2 ms, 0.29 / 0.40 MB; zlib 12 / 24 ms. (Predictor 3, the float
  predictor: 2.8 / 7.0 ms, 0.29 / 0.85 MB; byte shuffling: slower, no smaller.)
* Threads, not processes: ISA-L ``compressobj``, SHA-256, numpy and file I/O release the GIL (2 threads
  encode 1.95x as fast as one); pickling a 23 MB frame to a process pool costs more than encoding it (26 vs
  130 frames/s, encode only). ISA-L's one-shot ``compress`` holds the GIL for part of its work (1.6x), so
  ``compressobj`` is used.

ISA-L is optional: without ``isal`` installed, stdlib zlib makes the same formats, 2.5-7x slower.

Determinism: equal arrays must give equal bytes in every process (a resumed run is compared byte for byte with an
uninterrupted one). ISA-L's level-1 deflate body (x86 AVX2/AVX-512 ``isal_deflate_icf_body``, ISA-L 2.32.1 as
bundled by python-isal 1.9.1) hashes input position 2 of a stream from a register that still holds the stream's
address (``.write_first_byte``: ``shr tmp2, 16`` with ``tmp2`` = ``rcx``), so 1 compressor address in 5,000-10,000
changed the bytes (never the decoded data) of a small PNG. ``_deflate`` therefore feeds ISA-L the first
``_ISAL_PRIME`` bytes alone and sync-flushes them: those go through ISA-L's correct finishing code, and the body
never starts a stream (cost: one more deflate block, ~10 bytes a file).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

try:  # ISA-L: same deflate format as zlib, 2.5-8x faster here (see module docstring).
    from isal import isal_zlib as _isal_zlib
except ImportError:  # pragma: no cover - exercised by monkeypatching _isal_zlib to None
    _isal_zlib = None

#: File name prefix per layer; the manifest's ``files`` keys are the FrameData layer names and "labels".
LAYER_PREFIX: dict[str, str] = {
    "rgb": "rgb",
    "depth": "depth",
    "depth_sensor": "depth_sensor",
    "instance_segmentation": "instance",
    "semantic_segmentation": "semantic",
    "normals": "normals",
    "optical_flow": "flow",
    "optical_flow_backward": "flow_backward",
    "labels": "labels",
}

#: (dtype, trailing shape after (H, W)) each image layer must have; instance ids may be uint16 or uint32.
LAYER_SPEC: dict[str, tuple[tuple[np.dtype, ...], tuple[tuple[int, ...], ...]]] = {
    "rgb": ((np.dtype(np.uint8),), ((3,), (4,))),
    "depth": ((np.dtype(np.float32),), ((),)),
    "depth_sensor": ((np.dtype(np.float32),), ((),)),
    "instance_segmentation": ((np.dtype(np.uint32), np.dtype(np.uint16)), ((),)),
    "semantic_segmentation": ((np.dtype(np.uint16),), ((),)),
    "normals": ((np.dtype(np.float32),), ((3,),)),
    "optical_flow": ((np.dtype(np.float32),), ((2,),)),
    "optical_flow_backward": ((np.dtype(np.float32),), ((2,),)),
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def deflate_backend() -> str:
    """Name of the deflate implementation in use: ``"isal"`` or ``"zlib"``."""
    return "zlib" if _isal_zlib is None else "isal"


def _crc32(data: Any, value: int = 0) -> int:
    return (_isal_zlib or zlib).crc32(data, value)


_ISAL_PRIME = 16  #: bytes ISA-L compresses and sync-flushes first (at most its 16-byte flush padding; module docstring)


def _deflate(chunks: list[Any], *, zlib_header: bool, zlib_strategy: int) -> bytes:
    """Compress ``chunks`` (buffers) as one stream at level 1: a zlib stream for PNG, raw deflate for zip.

    ``zlib_strategy`` applies to the stdlib fallback only (ISA-L has no strategies): ``Z_RLE`` suits filtered
    image rows, the default strategy raw float bytes (measured, see the module docstring).
    """
    wbits = 15 if zlib_header else -15
    if _isal_zlib is None:
        comp = zlib.compressobj(1, zlib.DEFLATED, wbits, 9, zlib_strategy)
        return b"".join([comp.compress(chunk) for chunk in chunks] + [comp.flush()])
    comp = _isal_zlib.compressobj(1, _isal_zlib.DEFLATED, wbits)
    head, rest = bytearray(), []
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        take = min(len(view), _ISAL_PRIME - len(head))
        head += view[:take]
        if take < len(view):
            rest.append(view[take:])
    # the first bytes alone, flushed: the stream's start is hashed by ISA-L's finishing code (module docstring)
    parts = [comp.compress(head), comp.flush(_isal_zlib.Z_SYNC_FLUSH)]
    parts += [comp.compress(view) for view in rest]
    parts.append(comp.flush())
    return b"".join(parts)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", _crc32(data, _crc32(tag)))


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG, every row with filter "Up", of a (H, W[, C]) uint8 array (C in 1-4) or a (H, W[, 1]) uint16
    array (16-bit colour PNGs are valid but PIL cannot decode them, so they are not made)."""
    channels = 1 if image.ndim == 2 else image.shape[-1]
    if image.ndim not in (2, 3) or channels not in _PNG_COLOR_TYPE or image.dtype not in (np.uint8, np.uint16) \
            or (image.dtype == np.uint16 and channels != 1):
        raise ValueError(f"PNG needs (H, W[, 1-4]) uint8 or (H, W) uint16, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if image.dtype == np.uint16:
        image = image.astype(">u2")  # PNG samples are big-endian
    rows = np.ascontiguousarray(image).reshape(height, -1).view(np.uint8)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # "Up": each byte minus the byte above it (the row above row 0 is zeros)
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8 * image.dtype.itemsize, _PNG_COLOR_TYPE[channels], 0, 0, 0)
    idat = _deflate([filtered], zlib_header=True, zlib_strategy=zlib.Z_RLE)
    return b"".join(
        (_PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", idat), _png_chunk(b"IEND", b""))
    )


_TIFF_SAMPLE_FORMAT = {np.dtype(np.uint32): 1, np.dtype(np.float32): 3}  # TIFF SampleFormat: uint, IEEE float
_TIFF_TYPES = {3: "H", 4: "I"}  # TIFF field types SHORT, LONG


def encode_tiff(image: np.ndarray) -> bytes:
    """Lossless little-endian TIFF of a (H, W[, C]) float32 or uint32 array, C in 1-4: one deflate strip, with
    horizontal differencing of the 32-bit sample bits (Predictor 2), so float bit patterns (inf, nan, -0.0)
    survive exactly. Readers: libtiff (PIL for C = 1, OpenCV for C = 1 or 3, GDAL), tifffile, ``read_layer``.
    """
    if image.dtype not in _TIFF_SAMPLE_FORMAT or image.ndim not in (2, 3) or image.shape[2:] not in ((), (1,), (2,),
                                                                                                      (3,), (4,)):
        raise ValueError(f"TIFF needs a (H, W[, C<=4]) float32 or uint32 array, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    spp = 1 if image.ndim == 2 else image.shape[2]
    bits = np.ascontiguousarray(image).view(np.uint32).reshape(height, -1)
    delta = np.empty_like(bits)  # each sample minus the same channel's sample to its left, modulo 2**32
    delta[:, :spp] = bits[:, :spp]
    np.subtract(bits[:, spp:], bits[:, :-spp], out=delta[:, spp:])
    strip = _deflate([delta], zlib_header=True, zlib_strategy=zlib.Z_DEFAULT_STRATEGY)
    ifd_offset = 8 + len(strip) + (len(strip) & 1)  # IFD on a word boundary after the strip
    tags = [  # (tag, type, values), ascending tag order (TIFF 6.0 section 2)
        (256, 4, [width]), (257, 4, [height]), (258, 3, [32] * spp), (259, 3, [8]),  # compression: deflate
        (262, 3, [2 if spp >= 3 else 1]), (273, 4, [8]), (277, 3, [spp]), (278, 4, [height]),  # RGB / grey
        (279, 4, [len(strip)]), (284, 3, [1]), (317, 3, [2]),  # chunky, predictor: horizontal differencing
    ]
    if spp in (2, 4):
        tags.append((338, 3, [0]))  # ExtraSamples: the last channel is unspecified (flow's v, an alpha)
    tags.append((339, 3, [_TIFF_SAMPLE_FORMAT[image.dtype]] * spp))
    overflow_offset = ifd_offset + 2 + 12 * len(tags) + 4
    entries, overflow = [struct.pack("<H", len(tags))], []
    for tag, kind, values in tags:
        packed = struct.pack(f"<{len(values)}{_TIFF_TYPES[kind]}", *values)
        if len(packed) <= 4:
            entries.append(struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, kind, len(values), overflow_offset + sum(map(len, overflow))))
            overflow.append(packed)
    entries.append(struct.pack("<I", 0))  # no next IFD
    return b"".join([b"II*\0", struct.pack("<I", ifd_offset), strip, b"\0" * (len(strip) & 1), *entries, *overflow])


def decode_tiff(data: bytes) -> np.ndarray:
    """Decode the TIFFs ``encode_tiff`` writes (little-endian, chunky, deflate, predictor 1 or 2, 32-bit)."""
    if data[:4] != b"II*\0":
        raise ValueError("not a little-endian TIFF")
    (offset,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, offset)
    fields: dict[int, tuple[int, ...]] = {}
    for i in range(count):
        tag, kind, n, value = struct.unpack_from("<HHI4s", data, offset + 2 + 12 * i)
        if kind not in _TIFF_TYPES:
            continue
        fmt = f"<{n}{_TIFF_TYPES[kind]}"
        where = (value, 0) if struct.calcsize(fmt) <= 4 else (data, struct.unpack("<I", value)[0])
        fields[tag] = struct.unpack_from(fmt, *where)
    width, height, spp = fields[256][0], fields[257][0], fields.get(277, (1,))[0]
    if fields.get(259, (1,))[0] != 8 or set(fields[258]) != {32} or fields.get(284, (1,))[0] != 1:
        raise ValueError("only deflate-compressed, chunky, 32-bit TIFFs (as the writer makes) are supported")
    raw = b"".join(zlib.decompress(data[o:o + n]) for o, n in zip(fields[273], fields[279], strict=True))
    bits = np.frombuffer(raw, np.uint32).reshape(height, width, spp)
    if fields.get(317, (1,))[0] == 2:
        bits = np.cumsum(bits, axis=1, dtype=np.uint32)  # undo differencing, modulo 2**32
    dtype = np.float32 if fields.get(339, (1,))[0] == 3 else np.uint32
    image = bits.view(dtype)
    return image[..., 0] if spp == 1 else image


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """Lossy JPEG (PIL/libjpeg-turbo) of an 8-bit RGB image; an alpha channel is dropped."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[..., :3])).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_labels(labels: dict) -> bytes:
    """Deterministic labels JSON: equal dicts give equal bytes (numpy scalars written as Python numbers). Compact,
    so that the stdlib's C encoder writes it: with ``indent`` json falls back to pure Python, ~3 ms of a writer
    thread per frame of the built-in scene, 4 % of all CPU a 640x480 run spends (``jq .`` shows it indented)."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), default=_json_default).encode()


def encode_manifest_line(entry: dict) -> bytes:
    """One compact ``manifest.jsonl`` line (keys sorted, ends with a newline)."""
    return (json.dumps(entry, sort_keys=True, separators=(",", ":"), default=_json_default) + "\n").encode()


def _encode_ids(ids: np.ndarray) -> tuple[str, bytes]:
    if ids.dtype == np.uint16 or int(ids.max(initial=0)) < 65536:
        return ".png", encode_png(ids.astype(np.uint16, copy=False))
    return ".tif", encode_tiff(ids)


def encode_layer(name: str, array: np.ndarray, *, rgb_format: str = "png") -> tuple[str, bytes]:
    """Encode one image layer; returns (file suffix, bytes). ``rgb_format`` is "png" or "jpg"."""
    if name == "rgb":
        return (".jpg", encode_jpeg(array)) if rgb_format == "jpg" else (".png", encode_png(array))
    if name in ("instance_segmentation", "semantic_segmentation"):
        return _encode_ids(array)
    if name in ("depth", "depth_sensor", "normals", "optical_flow", "optical_flow_backward"):
        return ".tif", encode_tiff(array)
    raise ValueError(f"unknown image layer {name!r}; expected one of {sorted(LAYER_SPEC)}")


def check_layer(name: str, array: np.ndarray, height: int | None = None, width: int | None = None) -> None:
    """Raise ValueError naming the layer when its dtype or shape breaks the FrameData contract."""
    dtypes, trailing = LAYER_SPEC[name]
    if not isinstance(array, np.ndarray) or array.dtype not in dtypes or array.shape[2:] not in trailing \
            or array.ndim < 2:
        got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        want = " or ".join(f"(H, W{''.join(f', {n}' for n in t)})" for t in trailing)
        raise ValueError(f"layer {name}: expected {want} {'/'.join(map(str, dtypes))}, got {got}")
    if height is not None and array.shape[:2] != (height, width):
        raise ValueError(f"layer {name}: expected {height}x{width} pixels (H x W), got {array.shape[:2]}")


_DECODED_DTYPE = {"instance": np.uint32, "semantic": np.uint16}  # FrameData dtypes by file prefix


def read_layer(path: Path | str) -> np.ndarray:
    """Decode any image-layer file the writer wrote back to its exact array (JPEG: the decoded image).

    Instance ids come back as uint32 and semantic ids as uint16 whether a PNG or a TIFF held them.
    Labels files are JSON: read them with ``json.loads(path.read_text())``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        array = decode_tiff(path.read_bytes())
    elif suffix in (".png", ".jpg", ".jpeg"):
        with Image.open(path) as image:
            array = np.array(image)
    else:
        raise ValueError(f"{path}: not an image-layer file (.png, .jpg, .tif)")
    dtype = _DECODED_DTYPE.get(path.name.split("_", 1)[0])
    return array.astype(dtype, copy=False) if dtype is not None else array
