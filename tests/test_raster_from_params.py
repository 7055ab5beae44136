"""A run's frames straight from their parameters (``raster/from_params.py``) equal the frames of the posed stage, bit
for bit: every field of the scene the backend renders, and the images and labels of a run."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from pxr import Gf, Sdf, Usd, UsdGeom
from sdgstudio.core.config import load_config
from sdgstudio.core.raster import RasterBackend, RasterSettings
from sdgstudio.core.raster.from_params import op_transform
from sdgstudio.core.sampler import camera_path, sample_frame_params
from sdgstudio.core.session import RenderSession
from sdgstudio.core.stage import FrameWriter, build_stage

RES = (160, 120)
SCENES = Path(__file__).resolve().parents[1] / "exts" / "sdgstudio.core" / "data" / "scenes"


def _same(a, b, where: str) -> None:
    """``a`` equals ``b`` to the bit (floats and arrays by their bytes: 0.0 and -0.0 differ)."""
    if hasattr(a, "mesh") and hasattr(a, "serial"):  # a MeshEntry: the same geometry, from another backend's cache
        for name in ("points", "tris", "lo", "hi", "seg_tris", "hull", "centroid", "box"):
            _same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name != "key":  # the instance's cache key: its parts are compared instead
                _same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes()), where
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{k}]")
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _backend(config) -> RasterBackend:
    return RasterBackend(list(config.classes), RasterSettings(device="cpu"))


@pytest.mark.parametrize("scene", ["tabletop", "grasping"])
def test_scenes_from_parameters_equal_the_posed_stage_read_bit_for_bit(scene):
    """Grasping covers a camera riding on a moving prop and library assets; tabletop background textures that come
    and go (texture links), both lights and 60 frames of poses, looks and visibility."""
    config = load_config(SCENES / f"{scene}.toml")
    camera = camera_path(config)
    posed, unposed = build_stage(config), build_stage(config)
    reference, backend = _backend(config), _backend(config)
    writer, fallback = FrameWriter(posed), FrameWriter(unposed)
    from_params = 0
    for k in range(60):
        params = sample_frame_params(config, config.seed, k)
        writer.apply(params)
        expected = reference.reader.read(posed, camera, RES)
        got = backend.params_reader.read(unposed, params, camera, RES)
        if got is None:  # first sight of an object: pose the stage and read it once
            fallback.apply(params)
            got = backend.reader.read(unposed, camera, RES)
        else:
            from_params += 1
        _same(expected, got, f"{scene} frame {k}")
    assert from_params >= 50


def test_a_run_renders_the_same_frames_from_parameters_as_from_the_posed_stage(tabletop):
    config = tabletop.model_copy(deep=True)
    config.camera.resolution = RES
    unposed = RenderSession(config, _backend(config))
    posed = RenderSession(config, _backend(config))
    read_from_stage, prepare = [], unposed.backend.prepare
    unposed.backend.prepare = lambda *args: read_from_stage.append(args[-1]) or prepare(*args)
    posed_frames = list(posed.frames(range(12), on_posed=lambda k: None))  # on_posed: the stage must be posed
    unposed_frames = list(unposed.frames(range(12)))
    for (pa, a), (pb, b) in zip(posed_frames, unposed_frames, strict=True):
        assert pa.to_json() == pb.to_json()
        for name, image in a.images().items():
            assert image.tobytes() == b.images()[name].tobytes(), (a.index, name)
        assert a.labels_json() == b.labels_json()
    # the run from parameters posed its stage only for its first frames (until the reader knew every object)
    assert len(read_from_stage) <= 3, read_from_stage
    transform = unposed.stage.GetAttributeAtPath(f"{unposed.camera_path}.xformOp:transform").Get()
    assert transform != Gf.Matrix4d(pb.camera.camera_to_world().T.tolist())


def test_an_edit_of_the_stage_is_read_before_the_next_frame_from_parameters(tabletop):
    """Anything but the frame's values is taken from the stage: an edit there (the lamp made larger, the table
    recoloured) reaches the next frames, exactly as a posed stage shows it."""
    config = tabletop.model_copy(deep=True)
    camera = camera_path(config)
    posed, unposed = build_stage(config), build_stage(config)
    reference, backend = _backend(config), _backend(config)
    writer, fallback = FrameWriter(posed), FrameWriter(unposed)

    def frame(k: int):
        params = sample_frame_params(config, config.seed, k)
        writer.apply(params)
        expected = reference.reader.read(posed, camera, RES)
        got = backend.params_reader.read(unposed, params, camera, RES)
        if got is None:
            fallback.apply(params)
            got = backend.reader.read(unposed, camera, RES)
        _same(expected, got, f"frame {k}")
        return got is not None

    for k in range(6):
        frame(k)
    for stage in (posed, unposed):
        stage.GetPrimAtPath("/World/Lights/Lamp").GetAttribute("inputs:radius").Set(0.4)
        stage.GetPrimAtPath("/World/Props/table_top").GetAttribute("xformOp:scale").Set(Gf.Vec3f(1.2, 0.9, 0.05))
    assert backend.params_reader.read(unposed, sample_frame_params(config, config.seed, 6), camera, RES) is None
    for k in range(6, 14):
        frame(k)


@pytest.mark.parametrize("op_type, value", [
    (UsdGeom.XformOp.TypeTranslate, Gf.Vec3d(0.25, -1.5, 3.125)),
    (UsdGeom.XformOp.TypeScale, Gf.Vec3f(0.3, 1.7, 2.2)),
    (UsdGeom.XformOp.TypeRotateX, 33.3),
    (UsdGeom.XformOp.TypeRotateY, -71.9),
    (UsdGeom.XformOp.TypeRotateZ, 182.4),
    *[(t, Gf.Vec3f(17.3, -48.1, 101.7)) for t in (
        UsdGeom.XformOp.TypeRotateXYZ, UsdGeom.XformOp.TypeRotateXZY, UsdGeom.XformOp.TypeRotateYXZ,
        UsdGeom.XformOp.TypeRotateYZX, UsdGeom.XformOp.TypeRotateZXY, UsdGeom.XformOp.TypeRotateZYX)],
    (UsdGeom.XformOp.TypeTransform, Gf.Matrix4d(0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0,
                                                1.0, 2.0, 3.0, 1.0)),
])
def test_op_transform_is_usds_own(op_type, value):
    stage = Usd.Stage.CreateInMemory()
    xform = UsdGeom.Xform.Define(stage, "/X")
    op = xform.AddXformOp(op_type, UsdGeom.XformOp.PrecisionFloat if isinstance(value, Gf.Vec3f | float)
                          else UsdGeom.XformOp.PrecisionDouble)
    op.Set(value)
    assert op_transform(op_type, op.Get()) == op.GetOpTransform(Usd.TimeCode.Default())


def test_random_poses_compose_as_usd_composes_them():
    """Many random translate / rotateXYZ / scale stacks under a moved parent: the world transforms equal
    ``UsdGeom.XformCache``'s to the bit."""
    config = load_config(SCENES / "tabletop.toml")
    stage, backend = build_stage(config), _backend(config)
    camera = camera_path(config)
    backend.reader.read(stage, camera, RES)  # the reader knows the stage
    rng = np.random.default_rng(7)
    for k in itertools.count():
        params = sample_frame_params(config, config.seed, k)
        for obj in params.objects:
            obj.visible = True
            obj.position = rng.uniform(-3, 3, 3).tolist()
            obj.rotation_xyz = rng.uniform(-360, 360, 3).tolist()
            obj.scale = float(rng.uniform(0.01, 4.0))
        scene = backend.params_reader.read(stage, params, camera, RES)
        if scene is None:  # an object seen for the first time: let the reader read it posed once
            FrameWriter(stage).apply(params)
            backend.reader.read(stage, camera, RES)
            continue
        FrameWriter(stage).apply(params)
        xfc = UsdGeom.XformCache()
        for inst in scene.instances:
            expected = np.array(xfc.GetLocalToWorldTransform(stage.GetPrimAtPath(inst.path))).T
            assert inst.local_to_world.tobytes() == expected.tobytes(), inst.path
        backend.reader.read(stage, camera, RES)  # back in step with the posed stage
        if k >= 30:
            break


def test_the_writer_sets_what_frame_values_lists(tabletop):
    """One mapping from parameters to attribute values serves both: every value a frame lists is on the posed
    stage, as the attribute stores it."""
    from sdgstudio.core.stage import camera_path_of, frame_values

    stage = build_stage(tabletop)
    params = sample_frame_params(tabletop, tabletop.seed, 3)
    FrameWriter(stage).apply(params)
    values = frame_values(params, camera_path_of(stage))
    assert len(values) > 100
    for path, value in values.items():
        attr = stage.GetAttributeAtPath(path)
        stored = attr.Get()
        if attr.GetTypeName() == Sdf.ValueTypeNames.Float:
            value = float(np.float32(value))
        elif isinstance(value, Sdf.AssetPath):
            stored, value = stored.path, value.path
        assert stored == value, path
