"""Streaming dataset writer: formats round-trip, manifest order and durability, failures, back-pressure."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import threading
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from sdgstudio.core import encoders, manifest
from sdgstudio.core import writer as writer_module
from sdgstudio.core.frame import CameraData, FrameData, ObjectLabel
from sdgstudio.core.manifest import read_manifest, verify_entry
from sdgstudio.core.writer import DatasetWriter, WriterError, WriterProgress, read_layer

H, W = 24, 32


def make_label(instance_id: int) -> ObjectLabel:
    pose = np.eye(4)
    pose[:3, 3] = (0.1 * instance_id, -0.2, 1.5)
    return ObjectLabel(
        instance_id=instance_id, prim_path=f"/World/obj_{instance_id}", class_name="box", class_id=1,
        pixel_count=10, unoccluded_pixel_count=20, visible_fraction=0.5, truncation=0.0,
        bbox_2d_tight=(1.0, 2.0, 5.0, 6.0), bbox_2d_loose=(1.0, 2.0, 7.0, 8.0),
        bbox_3d_extents=((-0.1, -0.1, -0.1), (0.1, 0.1, 0.1)), local_to_world=pose, pose_in_camera=pose,
        scale=(1.0, 1.0, 1.0))


def make_frame(index: int, *, big_ids: bool = False, flow: bool = True, seed: int = 0) -> FrameData:
    """A small frame with every layer; ``rgb[0, 0, 0]`` holds ``index % 256`` so encoders can tell frames apart."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    rgb[0, 0, 0] = index % 256
    depth = rng.uniform(0.5, 20.0, (H, W)).astype(np.float32)
    depth[:4] = np.inf
    depth[4, :3] = (-0.0, np.float32(1e-30), np.finfo(np.float32).max)
    instance = rng.integers(0, 4, (H, W), dtype=np.uint32)
    if big_ids:
        instance[5:8, 5:9] = 2**32 - 1
        instance[9, 9] = 65536
    semantic = rng.integers(0, 3, (H, W), dtype=np.uint16)
    semantic[0, :2] = (65535, 1)
    normals = rng.normal(size=(H, W, 3)).astype(np.float32)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    normals[:4] = 0.0
    return FrameData(
        index=index, camera=CameraData(W, H, np.array([[30.0, 0, 16], [0, 30.0, 12], [0, 0, 1]]), np.eye(4)),
        objects=[make_label(1), make_label(2)], rgb=rgb, depth=depth, instance_segmentation=instance,
        semantic_segmentation=semantic, normals=normals,
        optical_flow=rng.normal(0, 3, (H, W, 2)).astype(np.float32) if flow else None)


def record(index: int) -> dict:
    return {"frame": index, "seed": 7, "params": {"yaw_deg": float(index)}}


def write_frames(out_dir, indices, **kwargs) -> DatasetWriter:
    with DatasetWriter(out_dir, **kwargs) as writer:
        writer.start({"name": "test"})
        for i in indices:
            writer.submit(make_frame(i), record(i))
    return writer


@pytest.fixture(params=["isal", "zlib"])
def deflate(request, monkeypatch):
    """Run a test with ISA-L (when installed) and with the stdlib zlib fallback."""
    if request.param == "zlib":
        monkeypatch.setattr(encoders, "_isal_zlib", None)
    elif encoders.deflate_backend() != "isal":
        pytest.skip("isal is not installed")
    return request.param


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("big_ids", [False, True])
def test_every_layer_round_trips_exactly(tmp_path, deflate, big_ids):
    frame = make_frame(3, big_ids=big_ids)
    with DatasetWriter(tmp_path / "out") as writer:
        writer.start({})
        writer.submit(frame, record(3))
    files = read_manifest(tmp_path / "out")[0]["files"]
    assert files == {
        "rgb": "rgb_000003.png", "depth": "depth_000003.tif",
        "instance_segmentation": "instance_000003" + (".tif" if big_ids else ".png"),
        "semantic_segmentation": "semantic_000003.png", "normals": "normals_000003.tif",
        "optical_flow": "flow_000003.tif", "labels": "labels_000003.json",
    }
    for name, array in frame.images().items():
        decoded = read_layer(tmp_path / "out" / files[name])
        assert same_bits(decoded, array), name  # bit-exact: inf, -0.0, max float, ids >= 65536
    # the files are standard: PIL decodes the PNGs and the single-channel float TIFF by itself
    assert np.array_equal(np.array(Image.open(tmp_path / "out" / files["rgb"])), frame.rgb)
    assert same_bits(np.array(Image.open(tmp_path / "out" / files["depth"])), frame.depth)


def test_only_present_layers_are_written_and_jpg_option(tmp_path):
    frame = make_frame(0, flow=False)
    frame.normals = None
    frame.rgb = np.broadcast_to(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, W, 3)).copy()
    with DatasetWriter(tmp_path, rgb_format="jpg") as writer:
        writer.start({})
        writer.submit(frame, record(0))
    files = read_manifest(tmp_path)[0]["files"]
    assert sorted(files) == ["depth", "instance_segmentation", "labels", "rgb", "semantic_segmentation"]
    assert files["rgb"] == "rgb_000000.jpg"
    decoded = read_layer(tmp_path / files["rgb"])
    assert decoded.shape == (H, W, 3) and np.abs(decoded.astype(int) - frame.rgb).mean() < 3  # lossy, close
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".tif", ".png"))) == [
        "depth_000000.tif", "instance_000000.png", "semantic_000000.png"]


def test_labels_json_bytes_are_deterministic(tmp_path):
    write_frames(tmp_path / "a", [5])
    write_frames(tmp_path / "b", [5])
    first = (tmp_path / "a" / "labels_000005.json").read_bytes()
    assert first == (tmp_path / "b" / "labels_000005.json").read_bytes()
    assert first == json.dumps(make_frame(5).labels_json(), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.skipif(encoders.deflate_backend() != "isal", reason="isal is not installed (stdlib zlib is deterministic)")
def test_deflate_bytes_do_not_depend_on_where_the_compressor_lives():
    """ISA-L's level-1 body hashed stream position 2 from the compressor's own address (encoders module docstring),
    so a resumed run could write other PNG/TIFF bytes than an uninterrupted one (about 1 compressor address in 5000
    per stream). Each round moves the next compressor object into another 64 KiB region of the heap; every stream
    must keep its bytes. Without the fix ~10 of these 100,000 compressions differed (the chance that none does: ~1e-5)."""
    rng = np.random.default_rng(7)
    streams = [np.tile(rng.integers(0, 256, 300, dtype=np.uint8), 2) for _ in range(250)]  # repeats: matches

    def deflate_one(data: np.ndarray) -> bytes:
        return encoders._deflate([data], zlib_header=True, zlib_strategy=zlib.Z_RLE)

    first = [deflate_one(s) for s in streams]
    assert all(zlib.decompress(b) == s.tobytes() for b, s in zip(first, streams, strict=True))
    spacers = []
    for _ in range(400):
        spacers.append(bytearray(1 << 16))  # the freed compressor's place is taken: the next one lands elsewhere
        assert [deflate_one(s) for s in streams] == first


@pytest.mark.parametrize("cuts", [[], [0], [3], [1, 2, 16, 17], [15, 16, 4000], [4999]])
def test_deflate_of_chunks_is_their_concatenation(deflate, cuts):
    """Chunks shorter than, across and past the bytes ISA-L gets first (``encoders._ISAL_PRIME``), and tiny streams."""
    data = np.random.default_rng(3).integers(0, 4, 5000, dtype=np.uint8)
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert zlib.decompress(encoders._deflate(chunks, zlib_header=True, zlib_strategy=zlib.Z_RLE)) == data.tobytes()
    raw = encoders._deflate(chunks, zlib_header=False, zlib_strategy=zlib.Z_DEFAULT_STRATEGY)
    assert zlib.decompress(raw, -15) == data.tobytes()
    for tiny in (b"", b"x", bytes(range(16)), bytes(17)):
        assert zlib.decompress(encoders._deflate([tiny], zlib_header=True, zlib_strategy=zlib.Z_RLE)) == tiny


_SIZES = hnp.array_shapes(min_dims=2, max_dims=2, max_side=17)
_PNG_IMAGES = hnp.arrays(np.uint16, _SIZES) | hnp.arrays(np.uint8, _SIZES | hnp.array_shapes(
    min_dims=3, max_dims=3, max_side=9).map(lambda s: (s[0], s[1], 1 + s[2] % 4)))


@settings(max_examples=60, deadline=None)
@given(_PNG_IMAGES)
def test_png_encoder_round_trips_any_image(image):
    decoded = np.array(Image.open(io.BytesIO(encoders.encode_png(image))))
    assert np.array_equal(decoded.reshape(image.shape), image) and decoded.dtype == image.dtype


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(st.sampled_from([np.float32, np.uint32]), hnp.array_shapes(min_dims=2, max_dims=2, max_side=17)
                  | hnp.array_shapes(min_dims=3, max_dims=3, max_side=9).map(lambda s: (s[0], s[1], 1 + s[2] % 4))))
def test_tiff_encoder_round_trips_any_bits(image):
    assert same_bits(encoders.decode_tiff(encoders.encode_tiff(image)), image[..., 0] if image.shape[2:] == (1,)
                     else image)


def test_manifest_lists_frames_in_order_only_after_their_files(tmp_path, monkeypatch):
    """Frame 0 is held back until frame 3 is encoded, so frames finish out of order; lines must not."""
    indices = [0, 1, 2, 5, 9, 10, 11, 40]  # increasing, with gaps (a resumed run)
    release_first = threading.Event()
    real_encode = encoders.encode_layer

    def encode(name, array, **kwargs):
        if name == "rgb" and array[0, 0, 0] == 0:
            assert release_first.wait(10)
        result = real_encode(name, array, **kwargs)
        if name == "optical_flow" and frames_by_flow.get(id(array)) == 5:
            release_first.set()
        return result

    frames = [make_frame(i) for i in indices]
    frames_by_flow = {id(f.optical_flow): f.index for f in frames}
    checked: list[int] = []
    real_append = manifest.ManifestAppender.append

    def append(self, lines):
        for line in lines:  # every file must be complete and final before its frame's line is written
            entry = json.loads(line)
            assert verify_entry(tmp_path, entry) == []
            checked.append(entry["frame"])
        real_append(self, lines)

    monkeypatch.setattr(writer_module, "encode_layer", encode)
    monkeypatch.setattr(manifest.ManifestAppender, "append", append)
    with DatasetWriter(tmp_path, workers=3, queue_depth=2) as writer:
        writer.start({"name": "order"})
        for frame in frames:
            writer.submit(frame, record(frame.index))
    entries = read_manifest(tmp_path)
    assert [e["frame"] for e in entries] == indices == checked
    assert (tmp_path / "manifest.jsonl").read_bytes().count(b"\n") == len(indices)
    for entry in entries:
        assert entry["seed"] == 7 and entry["params"] == {"yaw_deg": float(entry["frame"])}
        assert set(entry["sha256"]) == set(entry["files"].values())
        for name, digest in entry["sha256"].items():
            assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == digest
    assert not list(tmp_path.glob(".*"))  # no temp files, no lock file
    assert json.loads((tmp_path / "dataset.json").read_text()) == {"name": "order", "format_version": "1.0"}


def test_abort_lists_only_complete_frames(tmp_path, monkeypatch):
    gate = threading.Event()
    real_encode = encoders.encode_layer

    def encode(name, array, **kwargs):
        if name == "depth" and held.get(id(array), -1) >= 3:
            assert gate.wait(10)
        return real_encode(name, array, **kwargs)

    frames = [make_frame(i) for i in range(10)]
    held = {id(f.depth): f.index for f in frames}
    three_done = threading.Event()
    monkeypatch.setattr(writer_module, "encode_layer", encode)
    writer = DatasetWriter(tmp_path, workers=2, queue_depth=8,
                           on_progress=lambda p: p.frames_written >= 3 and three_done.set())
    writer.start({})
    for frame in frames:
        writer.submit(frame, record(frame.index))
    assert three_done.wait(10)
    aborting = threading.Thread(target=writer.abort)
    aborting.start()
    assert writer._stopping.wait(10)
    gate.set()  # frames 3 and 4, stuck in their depth layer, now stop at their next file
    aborting.join(10)
    entries = read_manifest(tmp_path)
    assert [e["frame"] for e in entries] == [0, 1, 2]
    assert all(verify_entry(tmp_path, e) == [] for e in entries)
    assert not list(tmp_path.glob("*_000009.*")) and not list(tmp_path.glob(".*.tmp"))
    write_frames(tmp_path, [3, 4])  # the lock was released: a resumed run appends after the aborted one
    assert [e["frame"] for e in read_manifest(tmp_path)] == [0, 1, 2, 3, 4]


def test_encoder_failure_surfaces_as_one_line_writer_error(tmp_path, monkeypatch):
    real_encode = encoders.encode_layer

    def encode(name, array, **kwargs):
        if name == "depth" and failing.get(id(array)) == 3:
            raise ValueError("boom")
        return real_encode(name, array, **kwargs)

    frames = [make_frame(i) for i in range(12)]
    failing = {id(f.depth): f.index for f in frames}
    monkeypatch.setattr(writer_module, "encode_layer", encode)
    writer = DatasetWriter(tmp_path, workers=2, queue_depth=2)
    writer.start({})
    with pytest.raises(WriterError) as info:
        for frame in frames:
            writer.submit(frame, record(frame.index))
        writer.close()
    assert str(info.value) == "frame 3: encoding depth failed: ValueError: boom"
    with pytest.raises(WriterError, match="^frame 3"):
        writer.close()  # the failure stays visible; frames before it that were in flight are finished
    assert [e["frame"] for e in read_manifest(tmp_path)] == [0, 1, 2]


def test_disk_full_surfaces_from_close_and_manifest_stays_consistent(tmp_path, monkeypatch):
    real_write = manifest.write_file_durably

    def write(path, data, **kwargs):
        if path.name == "rgb_000002.png":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data, **kwargs)

    monkeypatch.setattr(writer_module, "write_file_durably", write)
    with pytest.raises(WriterError) as info:
        write_frames(tmp_path, range(6), workers=2)
    assert str(info.value) == "frame 2: writing rgb_000002.png failed: No space left on device"
    assert isinstance(info.value.__cause__, OSError)
    entries = read_manifest(tmp_path)
    assert [e["frame"] for e in entries] == [0, 1]
    assert all(verify_entry(tmp_path, e) == [] for e in entries)
    assert not list(tmp_path.glob(".*.tmp"))


def test_manifest_append_failure_stops_listing(tmp_path, monkeypatch):
    def append(self, lines):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(manifest.ManifestAppender, "append", append)
    with pytest.raises(WriterError, match=r"^appending to manifest.jsonl failed: Input/output error$"):
        write_frames(tmp_path, range(4))
    assert read_manifest(tmp_path) == []


def test_submit_blocks_when_queue_is_full_and_progress_increases(tmp_path, monkeypatch):
    gate = threading.Event()
    real_encode = encoders.encode_layer

    def slow_encode(name, array, **kwargs):
        assert gate.wait(10)
        return real_encode(name, array, **kwargs)

    seen: list[WriterProgress] = []
    monkeypatch.setattr(writer_module, "encode_layer", slow_encode)
    writer = DatasetWriter(tmp_path, workers=1, queue_depth=1, on_progress=seen.append)
    writer.start({})
    writer.submit(make_frame(0), record(0))  # taken by the worker, which waits on the gate
    writer.submit(make_frame(1), record(1))  # fills the queue (or waits until the worker takes frame 0)
    opener = threading.Timer(0.3, gate.set)
    opener.start()
    writer.submit(make_frame(2), record(2))  # must wait for the gate
    assert writer.progress().blocked_seconds >= 0.2
    writer.close()
    counts = [p.frames_written for p in seen]
    assert counts == sorted(counts) and set(counts) == {1, 2, 3}  # one call per listing, then a final one
    final = seen[-1]
    assert final.blocked_seconds >= 0.2 and final.queue_depth == 0 and final.elapsed_seconds > 0
    assert final.bytes_written == sum((tmp_path / n).stat().st_size for e in read_manifest(tmp_path)
                                      for n in e["files"].values())


def test_submit_rejects_bad_input_with_clear_errors(tmp_path):
    with DatasetWriter(tmp_path) as writer:
        writer.start({})
        writer.submit(make_frame(4), record(4))
        with pytest.raises(ValueError, match="frame indices must increase"):
            writer.submit(make_frame(4), record(4))
        bad = make_frame(5)
        bad.depth = bad.depth.astype(np.float64)
        with pytest.raises(ValueError, match=r"layer depth: expected \(H, W\) float32, got float64"):
            writer.submit(bad, record(5))
        with pytest.raises(ValueError, match="filled in by the writer"):
            writer.submit(make_frame(6), {**record(6), "files": {}})
        with pytest.raises(ValueError, match="not JSON-serializable"):
            writer.submit(make_frame(7), {"frame": 7, "params": {"x": object()}})
        with pytest.raises(ValueError, match="record\\['frame'\\] = 9"):
            writer.submit(make_frame(8), {"frame": 9})
        writer.submit(make_frame(10), {"seed": np.int64(3)})  # numpy scalars are fine; frame is filled in
    assert [(e["frame"], e.get("seed")) for e in read_manifest(tmp_path)] == [(4, 7), (10, 3)]


def test_second_writer_on_a_folder_is_refused(tmp_path):
    first = DatasetWriter(tmp_path)
    first.start({})
    with pytest.raises(WriterError, match="is being written by another run \\(pid "):
        DatasetWriter(tmp_path).start({})
    first.close()
    write_frames(tmp_path, [0])


def test_exception_in_with_block_aborts_and_propagates(tmp_path):
    with pytest.raises(KeyboardInterrupt), DatasetWriter(tmp_path) as writer:
        writer.start({})
        writer.submit(make_frame(0), record(0))
        raise KeyboardInterrupt
    assert all(verify_entry(tmp_path, e) == [] for e in read_manifest(tmp_path))
    write_frames(tmp_path, [1])  # lock released
