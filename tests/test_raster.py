"""Acceptance tests of the raster backend: analytic geometry, occlusion, determinism, grouping, textures, lights."""

from __future__ import annotations

import numpy as np
import pytest
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdSemantics, UsdShade
from sdgstudio.core.frame import USD_TO_OPENCV
from sdgstudio.core.raster import RasterBackend, RasterSettings

ALL = {"rgb", "depth", "instance_segmentation", "semantic_segmentation", "normals", "bounding_box_2d_tight",
       "bounding_box_2d_loose", "bounding_box_3d", "pose_6d"}
CLASSES = ["mug", "box", "plate"]


# ---------------------------------------------------------------- stage helpers
def new_stage() -> Usd.Stage:
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    return stage


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """USD camera-to-world (column-vector): camera looks down its -Z with +Y up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = eye - target
    z /= np.linalg.norm(z)
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, np.cross(z, x), z, eye
    return m


def set_matrix(prim: Usd.Prim, m: np.ndarray) -> None:
    UsdGeom.Xformable(prim).AddTransformOp().Set(Gf.Matrix4d(m.T.tolist()))


def add_camera(stage, eye, target, focal=24.0, hap=20.955, clip=(0.01, 100.0), path="/World/Camera"):
    cam = UsdGeom.Camera.Define(stage, path)
    cam.CreateFocalLengthAttr(focal)
    cam.CreateHorizontalApertureAttr(hap)
    cam.CreateClippingRangeAttr(Gf.Vec2f(*clip))
    m = look_at(eye, target)
    set_matrix(cam.GetPrim(), m)
    return path, m


def label(prim: Usd.Prim, cls: str) -> None:
    UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr([cls])


def add_cube(stage, path, size, translate=(0, 0, 0), rotate=(0, 0, 0), cls="box"):
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(size)
    cube.AddTranslateOp().Set(Gf.Vec3d(*translate))
    cube.AddRotateXYZOp().Set(Gf.Vec3f(*rotate))
    if cls:
        label(cube.GetPrim(), cls)
    return cube


def add_quad(stage, path, corners, st=True, cls=None):
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreatePointsAttr([Gf.Vec3f(*map(float, c)) for c in corners])
    mesh.CreateFaceVertexCountsAttr([4])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    if st:
        pv = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                                     UsdGeom.Tokens.faceVarying)
        pv.Set([(0, 0), (1, 0), (1, 1), (0, 1)])
    if cls:
        label(mesh.GetPrim(), cls)
    return mesh


def box_mesh(stage, path, lo, hi):
    """Axis-aligned box as a 6-quad Mesh."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    pts = [[(hi if (i >> a) & 1 else lo)[a] for a in range(3)] for i in range(8)]
    faces = [0, 2, 3, 1, 4, 5, 7, 6, 0, 1, 5, 4, 2, 6, 7, 3, 0, 4, 6, 2, 1, 3, 7, 5]
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreatePointsAttr([Gf.Vec3f(*p) for p in pts])
    mesh.CreateFaceVertexCountsAttr([4] * 6)
    mesh.CreateFaceVertexIndicesAttr(faces)
    return mesh


def rot_xyz(deg) -> np.ndarray:
    """USD rotateXYZ (X first, then Y, then Z) as a column-vector matrix."""
    a, b, c = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def intrinsics(focal, hap, w, h):
    f = focal * w / hap
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def project(K, w2c, pts):
    pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
    return pc[:, :2] / pc[:, 2:3] * np.diag(K)[:2] + K[:2, 2], pc


def cross2(a, b) -> float:
    return a[0] * b[1] - a[1] * b[0]


def hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (monotone chain), counter-clockwise in (u, v)."""
    pts = sorted(map(tuple, pts))

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and cross2(np.subtract(out[-1], out[-2]), np.subtract(p, out[-2])) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def clip_poly(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman intersection of two convex CCW polygons."""
    out = list(map(tuple, subject))
    for a, b in zip(clipper, np.roll(clipper, -1, axis=0), strict=True):
        inp, out = out, []
        if not inp:
            break

        def inside(p, a=a, b=b):
            return cross2(b - a, np.subtract(p, a)) >= 0

        for p, q in zip(inp, inp[1:] + inp[:1], strict=True):
            if inside(q):
                if not inside(p):
                    out.append(_isect(p, q, a, b))
                out.append(q)
            elif inside(p):
                out.append(_isect(p, q, a, b))
    return np.array(out)


def _isect(p, q, a, b):
    p, q = np.asarray(p), np.asarray(q)
    d1, d2 = cross2(b - a, p - a), cross2(b - a, q - a)
    return tuple(p + (q - p) * d1 / (d1 - d2))


def render(stage, cam, res=(320, 240), ann=ALL, backend=None, **settings):
    backend = backend or RasterBackend(CLASSES, RasterSettings(**settings))
    return backend.render(stage, cam, res, set(ann), 0)


# ---------------------------------------------------------------- 1. analytic cube
def test_cube_matches_analytic_projection_depth_pose():
    stage = new_stage()
    W, H, focal, hap = 640, 480, 24.0, 20.955
    cam, c2w_usd = add_camera(stage, eye=(0.55, -0.9, 0.45), target=(0.05, 0.0, 0.02), focal=focal, hap=hap)
    t, r = np.array([0.08, -0.03, 0.02]), (20.0, 30.0, 40.0)
    add_cube(stage, "/World/box", 0.2, t, r)
    UsdLux.DistantLight.Define(stage, "/World/sun")
    frame = render(stage, cam, (W, H))

    K = intrinsics(focal, hap, W, H)
    np.testing.assert_allclose(frame.camera.K, K, atol=1e-9)
    c2w = c2w_usd @ USD_TO_OPENCV
    np.testing.assert_allclose(frame.camera.camera_to_world, c2w, atol=1e-9)
    w2c = np.linalg.inv(c2w)
    R = rot_xyz(r)
    corners = np.array([[x, y, z] for x in (-0.1, 0.1) for y in (-0.1, 0.1) for z in (-0.1, 0.1)]) @ R.T + t
    uv, _ = project(K, w2c, corners)

    assert len(frame.objects) == 1
    obj = frame.objects[0]
    assert (obj.instance_id, obj.class_name, obj.class_id) == (1, "box", 2)
    np.testing.assert_allclose(obj.bbox_2d_tight, [*uv.min(0), *uv.max(0)], atol=1.0)
    np.testing.assert_allclose(obj.bbox_2d_loose, [*uv.min(0), *uv.max(0)], atol=1e-6)
    assert obj.truncation == 0.0
    expected_area = area(hull(uv))
    assert obj.pixel_count == pytest.approx(expected_area, rel=0.02)
    assert obj.pixel_count == obj.unoccluded_pixel_count and obj.visible_fraction == 1.0
    assert int((frame.instance_segmentation == 1).sum()) == obj.pixel_count
    assert set(np.unique(frame.semantic_segmentation)) == {0, 2}
    assert frame.instance_segmentation.dtype == np.uint32 and frame.semantic_segmentation.dtype == np.uint16
    assert frame.depth.dtype == np.float32 and frame.normals.dtype == np.float32 and frame.rgb.dtype == np.uint8
    assert frame.rgb.shape == (H, W, 3) and frame.depth.shape == (H, W) and frame.normals.shape == (H, W, 3)

    # depth at the centre of the face that looks most at the camera: exact ray-plane intersection
    cam_pos = c2w[:3, 3]
    normals = np.concatenate([R.T, -R.T])  # rows: world face normals
    centres = t + 0.1 * normals
    best = int(np.argmax(np.einsum("ij,ij->i", normals, cam_pos - centres) / np.linalg.norm(cam_pos - centres, axis=1)))
    pu, pv = project(K, w2c, centres[best : best + 1])[0][0].astype(int)
    ray = np.array([(pu + 0.5 - K[0, 2]) / K[0, 0], (pv + 0.5 - K[1, 2]) / K[1, 1], 1.0])
    n_c, p_c = w2c[:3, :3] @ normals[best], w2c[:3, :3] @ centres[best] + w2c[:3, 3]
    assert frame.depth[pv, pu] == pytest.approx(np.dot(n_c, p_c) / np.dot(n_c, ray), abs=1e-3)
    np.testing.assert_allclose(frame.normals[pv, pu], normals[best], atol=1e-5)
    assert np.isinf(frame.depth[0, 0]) and not frame.normals[0, 0].any() and frame.instance_segmentation[0, 0] == 0

    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = R, t
    np.testing.assert_allclose(obj.pose_in_camera, w2c @ pose, atol=1e-6)
    np.testing.assert_allclose(obj.local_to_world, pose, atol=1e-6)
    np.testing.assert_allclose(obj.bbox_3d_extents, [[-0.1] * 3, [0.1] * 3], atol=1e-9)
    np.testing.assert_allclose(obj.scale, [1, 1, 1], atol=1e-9)


# ---------------------------------------------------------------- 2. occlusion
@pytest.mark.parametrize("near_first", [True, False])  # instance order must not matter
@pytest.mark.parametrize("occluder", ["cube", "mesh_quad"])
def test_visible_fraction_of_partly_occluded_object(occluder, near_first):
    stage = new_stage()
    near_path, far_path = ("/World/a_near", "/World/b_far") if near_first else ("/World/b_near", "/World/a_far")
    W, H = 320, 240
    cam, c2w_usd = add_camera(stage, eye=(0.0, 0.001, 3.0), target=(0.0, 0.0, 0.0))
    add_cube(stage, far_path, 0.4, (0, 0, 0), cls="box")
    if occluder == "cube":
        add_cube(stage, near_path, 0.2, (0.12, 0.05, 0.6), cls="mug")
        near_pts = np.array([[x, y, z] for x in (0.02, 0.22) for y in (-0.05, 0.15) for z in (0.5, 0.7)])
    else:
        near_pts = np.array([[0.02, -0.05, 0.8], [0.22, -0.05, 0.8], [0.22, 0.15, 0.8], [0.02, 0.15, 0.8]])
        add_quad(stage, near_path, near_pts, cls="mug")
    far_pts = np.array([[x, y, z] for x in (-0.2, 0.2) for y in (-0.2, 0.2) for z in (-0.2, 0.2)])
    frame = render(stage, cam, (W, H))
    K = intrinsics(24.0, 20.955, W, H)
    w2c = np.linalg.inv(c2w_usd @ USD_TO_OPENCV)
    far_hull, near_hull = hull(project(K, w2c, far_pts)[0]), hull(project(K, w2c, near_pts)[0])
    expected = 1.0 - area(clip_poly(far_hull, near_hull)) / area(far_hull)
    by_path = {o.prim_path: o for o in frame.objects}
    far, near = by_path[far_path], by_path[near_path]
    assert 0.3 < expected < 0.95
    assert far.visible_fraction == pytest.approx(expected, abs=0.05)
    assert far.unoccluded_pixel_count == pytest.approx(area(far_hull), rel=0.02)
    assert near.visible_fraction == 1.0
    assert [o.prim_path for o in frame.objects] == sorted([near_path, far_path])  # ids 1, 2 in path order
    assert [o.instance_id for o in frame.objects] == [1, 2]


# ---------------------------------------------------------------- 3. determinism
def textured_scene(tmp_path) -> tuple[Usd.Stage, str, np.ndarray]:
    from PIL import Image

    img = np.zeros((16, 32, 3), np.uint8)
    img[:, :16] = (255, 0, 0)
    img[:, 16:] = (0, 0, 255)
    png = tmp_path / "lr.png"
    Image.fromarray(img).save(png)
    stage = new_stage()
    cam, c2w = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    mat = UsdShade.Material.Define(stage, "/World/Looks/lr")
    sh = UsdShade.Shader.Define(stage, "/World/Looks/lr/pbr")
    sh.CreateIdAttr("UsdPreviewSurface")
    sh.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.9)
    tex = UsdShade.Shader.Define(stage, "/World/Looks/lr/tex")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(str(png))
    reader = UsdShade.Shader.Define(stage, "/World/Looks/lr/st")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    sh.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    mat.CreateSurfaceOutput().ConnectToSource(sh.ConnectableAPI(), "surface")
    quad = add_quad(stage, "/World/quad", [(-0.6, -0.3, 0), (-0.05, -0.3, 0), (-0.05, 0.3, 0), (-0.6, 0.3, 0)],
                    cls="plate")
    cube = add_cube(stage, "/World/cube", 0.4, (0.35, 0.0, 0.0), cls="box")
    for prim in (quad.GetPrim(), cube.GetPrim()):
        UsdShade.MaterialBindingAPI.Apply(prim).Bind(mat)
    UsdLux.DistantLight.Define(stage, "/World/sun").CreateIntensityAttr(1000.0)
    return stage, cam, c2w


def test_determinism(tmp_path):
    stage, cam, _ = textured_scene(tmp_path)
    sphere = UsdGeom.Sphere.Define(stage, "/World/ball")
    sphere.CreateRadiusAttr(0.1)
    sphere.AddTranslateOp().Set(Gf.Vec3d(0.0, 0.2, 0.3))
    label(sphere.GetPrim(), "mug")
    UsdLux.SphereLight.Define(stage, "/World/bulb").AddTranslateOp().Set(Gf.Vec3d(0.5, 0.5, 1.0))
    backend = RasterBackend(CLASSES)
    frames = [backend.render(stage, cam, (160, 120), ALL, 3), backend.render(stage, cam, (160, 120), ALL, 3),
              RasterBackend(CLASSES).render(stage, cam, (160, 120), ALL, 3)]
    for other in frames[1:]:
        for name, img in frames[0].images().items():
            assert img.tobytes() == other.images()[name].tobytes(), name
        assert frames[0].labels_json() == other.labels_json()
    assert set(frames[0].images()) == {"rgb", "depth", "instance_segmentation", "semantic_segmentation", "normals"}


# ---------------------------------------------------------------- 4. multi-mesh asset
def test_multi_mesh_asset_is_one_object():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -1.5, 1.0), target=(0.0, 0.0, 0.1))
    asset = UsdGeom.Xform.Define(stage, "/World/mug_0")
    asset.AddTranslateOp().Set(Gf.Vec3d(0.1, 0.0, 0.0))
    asset.AddScaleOp().Set(Gf.Vec3f(2.0, 2.0, 2.0))
    label(asset.GetPrim(), "mug")
    box_mesh(stage, "/World/mug_0/body", (-0.05, -0.05, 0.0), (0.05, 0.05, 0.1))
    handle = UsdGeom.Xform.Define(stage, "/World/mug_0/handle_xf")
    handle.AddTranslateOp().Set(Gf.Vec3d(0.07, 0.0, 0.0))
    box_mesh(stage, "/World/mug_0/handle_xf/handle", (-0.01, -0.01, 0.03), (0.01, 0.01, 0.07))
    add_cube(stage, "/World/floor", 1.0, (0, 0, -0.5), cls=None)  # unlabelled: renders, occludes, id 0
    add_cube(stage, "/World/thing", 0.1, (-0.4, 0, 0.05), cls="spaceship")  # unknown class: id 0
    frame = render(stage, cam)
    assert [(o.prim_path, o.instance_id) for o in frame.objects] == [("/World/mug_0", 1)]
    obj = frame.objects[0]
    assert set(np.unique(frame.instance_segmentation)) == {0, 1}
    assert obj.pixel_count == int((frame.instance_segmentation == 1).sum()) > 0
    np.testing.assert_allclose(obj.bbox_3d_extents, [[-0.05, -0.05, 0.0], [0.08, 0.05, 0.1]], atol=1e-6)
    np.testing.assert_allclose(obj.scale, [2, 2, 2])
    np.testing.assert_allclose(obj.pose_in_camera[:3, :3] @ obj.pose_in_camera[:3, :3].T, np.eye(3), atol=1e-9)
    hit = np.isfinite(frame.depth)
    assert frame.unlabeled_pixel_count == int((hit & (frame.instance_segmentation == 0)).sum()) > 0
    assert frame.extra["unknown_classes"] == ["spaceship"]
    # the handle's pixels belong to the object: render without the body and compare boxes
    stage.GetPrimAtPath("/World/mug_0/body").SetActive(False)
    handle_only = render(stage, cam).objects[0]
    assert handle_only.pixel_count > 0 and handle_only.bbox_2d_tight[2] <= obj.bbox_2d_tight[2]


# ---------------------------------------------------------------- 5. textures and shadows
def test_texture_shows_on_mesh_and_cube(tmp_path):
    stage, cam, c2w = textured_scene(tmp_path)
    W, H = 320, 240
    frame = render(stage, cam, (W, H))
    K = intrinsics(24.0, 20.955, W, H)
    w2c = np.linalg.inv(c2w @ USD_TO_OPENCV)
    # quad spans x in [-0.6, -0.05] at z=0; cube front face spans x in [0.15, 0.55] at z=0.2
    for left, right in (((-0.5, 0, 0), (-0.15, 0, 0)), ((0.2, 0, 0.2), (0.5, 0, 0.2))):
        (ul, vl), (ur, vr) = project(K, w2c, np.array([left, right], float))[0].astype(int)
        lp, rp = frame.rgb[vl, ul].astype(int), frame.rgb[vr, ur].astype(int)
        assert lp[0] - max(lp[1], lp[2]) > 100, lp
        assert rp[2] - max(rp[0], rp[1]) > 100, rp


def shadow_scene(light_rotate_y=45.0):
    stage = new_stage()
    cam, c2w = add_camera(stage, eye=(0.2, -1.6, 1.2), target=(0.0, 0.0, 0.0))
    add_quad(stage, "/World/ground", [(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)])
    add_cube(stage, "/World/box", 0.2, (0.0, 0.0, 0.1))
    sun = UsdLux.DistantLight.Define(stage, "/World/sun")
    sun.CreateIntensityAttr(1000.0)
    sun.AddRotateYOp().Set(light_rotate_y)  # shines along -Z rotated towards -X: shadow falls at x < -0.1
    return stage, cam, c2w


@pytest.mark.parametrize("shadows", [True, False])
def test_box_casts_shadow_on_plane(shadows):
    stage, cam, c2w = shadow_scene()
    W, H = 320, 240
    frame = render(stage, cam, (W, H), shadows=shadows)
    K = intrinsics(24.0, 20.955, W, H)
    (us, vs), (ul, vl) = project(K, np.linalg.inv(c2w @ USD_TO_OPENCV),
                                 np.array([[-0.2, 0.0, 0.0], [0.3, 0.3, 0.0]]))[0].astype(int)
    assert frame.instance_segmentation[vs, us] == 0 and frame.instance_segmentation[vl, ul] == 0  # ground pixels
    shadow, lit = frame.rgb[vs, us].astype(float).mean(), frame.rgb[vl, ul].astype(float).mean()
    if shadows:
        assert shadow < 0.3 * lit, (shadow, lit)
    else:
        assert shadow == pytest.approx(lit, abs=3)


# ---------------------------------------------------------------- 6. lights
def lit_plane(lights: list[str]) -> tuple[Usd.Stage, str, np.ndarray]:
    stage = new_stage()
    cam, c2w = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    quad = add_quad(stage, "/World/ground", [(-2, -2, 0), (2, -2, 0), (2, 2, 0), (-2, 2, 0)])
    quad.CreateDisplayColorAttr([(0.5, 0.5, 0.5)])
    if "distant" in lights:
        sun = UsdLux.DistantLight.Define(stage, "/World/sun")
        sun.CreateIntensityAttr(1000.0)
        sun.AddRotateYOp().Set(60.0)  # cos(60 deg) = 0.5 on the ground
    if "sphere" in lights:
        bulb = UsdLux.SphereLight.Define(stage, "/World/bulb")
        bulb.CreateIntensityAttr(20000.0)
        bulb.CreateRadiusAttr(0.1)
        bulb.AddTranslateOp().Set(Gf.Vec3d(0.0, 0.0, 0.5))
    if "warm" in lights:
        sun = UsdLux.DistantLight.Define(stage, "/World/warm")
        sun.CreateIntensityAttr(500.0)
        sun.CreateEnableColorTemperatureAttr(True)
        sun.CreateColorTemperatureAttr(2500.0)
    return stage, cam, c2w


def srgb(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return 255.0 * (12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055)


def test_sphere_and_distant_lights_follow_documented_mapping():
    """Ground near p = (-0.6, 0, 0), albedo 0.5, away from both specular highlights."""
    W, H = 128, 96
    K = intrinsics(24.0, 20.955, W, H)
    value = {}
    for combo in (["distant"], ["sphere"], ["distant", "sphere"]):
        stage, cam, c2w = lit_plane(combo)
        frame = render(stage, cam, (W, H))
        c2w_cv = c2w @ USD_TO_OPENCV
        u, v = project(K, np.linalg.inv(c2w_cv), np.array([[-0.6, 0.0, 0.0]]))[0][0].astype(int)
        ray = c2w_cv[:3, :3] @ np.linalg.solve(K, [u + 0.5, v + 0.5, 1.0])
        p = c2w_cv[:3, 3] - ray * c2w_cv[2, 3] / ray[2]  # the pixel centre's ground point
        value[tuple(combo)] = (frame.rgb[v, u].astype(float), p)
    e_distant = 1000.0 / 1000.0 * 0.5  # intensity / 1000 * cos(60 deg)
    for combo, (rgb, p) in value.items():
        d2 = p[0] ** 2 + p[1] ** 2 + 0.5**2
        e_sphere = 20000.0 / 1000.0 * np.pi * 0.1**2 / d2 * (0.5 / np.sqrt(d2))  # I pi r^2 / d^2 * cos
        e = ("distant" in combo) * e_distant + ("sphere" in combo) * e_sphere
        np.testing.assert_allclose(rgb, srgb(0.5 * e), atol=1.0, err_msg=str(combo))
    stage, cam, _ = lit_plane(["warm"])
    warm = render(stage, cam, (64, 48)).rgb[24, 32].astype(int)
    assert warm[0] > warm[1] > warm[2]


def test_no_lights_uses_headlight():
    stage, cam, _ = lit_plane([])
    frame = render(stage, cam, (64, 48))
    assert frame.rgb.mean() > 50


# ---------------------------------------------------------------- extra label behaviour
def test_truncation_out_of_view_occlusion_target_and_invisible():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0))
    add_cube(stage, "/World/a_edge", 0.4, (0.8, 0.0, 0.0))  # right half outside the image
    add_cube(stage, "/World/b_behind", 0.2, (0.0, 0.0, 3.0))  # behind the camera
    add_cube(stage, "/World/c_hidden", 0.1, (-0.2, 0.0, -0.5))
    add_cube(stage, "/World/d_cover", 0.5, (-0.2, 0.0, 0.0), cls="mug")
    stage.GetPrimAtPath("/World/d_cover").CreateAttribute("sdgstudio:target", Sdf.ValueTypeNames.Bool).Set(True)
    UsdGeom.Imageable(add_cube(stage, "/World/e_invisible", 0.1, (0, 0, 0.5)).GetPrim()).MakeInvisible()
    frame = render(stage, cam, (160, 120), ann={"rgb"})
    obj = {o.prim_path: o for o in frame.objects}
    assert list(obj) == ["/World/a_edge", "/World/b_behind", "/World/c_hidden", "/World/d_cover"]
    edge = obj["/World/a_edge"]
    assert 0.2 < edge.truncation < 0.8 and edge.bbox_2d_loose[2] == 160.0
    assert edge.bbox_2d_tight[2] == 160.0 and edge.visible_fraction == 1.0
    behind = obj["/World/b_behind"]
    assert behind.pixel_count == 0 and behind.bbox_2d_tight is None and behind.bbox_2d_loose is None
    assert behind.truncation == 1.0 and behind.visible_fraction == 0.0
    hidden = obj["/World/c_hidden"]
    assert hidden.pixel_count == 0 and hidden.unoccluded_pixel_count > 0 and hidden.visible_fraction == 0.0
    assert hidden.bbox_2d_tight is None and hidden.bbox_2d_loose is not None and hidden.truncation == 0.0
    assert obj["/World/d_cover"].is_target and not edge.is_target
    assert frame.depth is None and frame.instance_segmentation is None and frame.rgb is not None


def test_near_clip_ignores_close_geometry():
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0), clip=(0.5, 10.0))
    add_cube(stage, "/World/close", 0.2, (0.0, 0.0, 1.7))  # depth 0.2..0.4: in front of the near plane
    add_cube(stage, "/World/far", 0.2, (0.0, 0.0, 0.0))
    frame = render(stage, cam, (64, 48))
    assert frame.depth[24, 32] == pytest.approx(1.9, abs=1e-4)
    assert frame.objects[0].pixel_count == 0 and frame.objects[1].pixel_count > 0


def test_implicit_prims_are_tessellated_accurately():
    stage = new_stage()
    W, H = 640, 480
    cam, c2w = add_camera(stage, eye=(0.0, -0.0001, 1.0), target=(0.0, 0.0, 0.0))
    sphere = UsdGeom.Sphere.Define(stage, "/World/ball")
    sphere.CreateRadiusAttr(0.1)
    label(sphere.GetPrim(), "mug")
    for name, typ, y in (("cyl", UsdGeom.Cylinder, 0.25), ("cone", UsdGeom.Cone, -0.25), ("cap", UsdGeom.Capsule, 0)):
        prim = typ.Define(stage, f"/World/{name}")
        prim.CreateAxisAttr("X")
        prim.CreateRadiusAttr(0.04 if name == "cap" else 0.05)
        prim.CreateHeightAttr(0.1 if name == "cap" else 0.2)
        prim.AddTranslateOp().Set(Gf.Vec3d(0.0 if y else 0.3, y, 0.0))
        label(prim.GetPrim(), "box")
    frame = render(stage, cam, (W, H))
    ball = frame.objects[0]
    f = intrinsics(24.0, 20.955, W, H)[0, 0]
    # sphere of radius r at distance D: silhouette radius (pixels) = f * r / sqrt(D^2 - r^2)
    rad = f * 0.1 / np.sqrt(1.0 - 0.01)
    assert ball.pixel_count == pytest.approx(np.pi * rad**2, rel=0.01)
    np.testing.assert_allclose(ball.bbox_2d_tight, [W / 2 - rad, H / 2 - rad, W / 2 + rad, H / 2 + rad], atol=1.0)
    assert frame.depth[H // 2, W // 2] == pytest.approx(0.9, abs=1e-3)
    np.testing.assert_allclose(ball.bbox_3d_extents, [[-0.1] * 3, [0.1] * 3], atol=1e-9)
    ext = {o.prim_path: np.array(o.bbox_3d_extents) for o in frame.objects}
    np.testing.assert_allclose(ext["/World/cyl"], [[-0.1, -0.05, -0.05], [0.1, 0.05, 0.05]], atol=1e-9)
    np.testing.assert_allclose(ext["/World/cone"], [[-0.1, -0.05, -0.05], [0.1, 0.05, 0.05]], atol=1e-9)
    np.testing.assert_allclose(ext["/World/cap"], [[-0.09, -0.04, -0.04], [0.09, 0.04, 0.04]], atol=1e-9)
    assert all(o.pixel_count > 0 for o in frame.objects)


def test_object_crossing_the_camera_plane_is_clipped_at_the_near_plane():
    stage = new_stage()
    cam, c2w = add_camera(stage, eye=(0.0, -0.0001, 2.0), target=(0.0, 0.0, 0.0), clip=(0.1, 100.0))
    rail = add_cube(stage, "/World/rail", 1.0, (0.3, 0.0, 1.0))  # z from -1 to 3: passes beside the camera
    rail.AddScaleOp().Set(Gf.Vec3f(0.1, 0.1, 4.0))
    frame = render(stage, cam, (160, 120))
    obj = frame.objects[0]
    K = intrinsics(24.0, 20.955, 160, 120)
    # the near-plane cut (depth 0.1) of the rail's right edge x = 0.35 projects far outside the image
    assert obj.bbox_2d_loose[2] == 160.0 and obj.truncation > 0.5
    assert obj.bbox_2d_loose[0] == pytest.approx(K[0, 2] + K[0, 0] * 0.25 / 3.0, abs=1e-3)  # far end, depth 3
    assert obj.bbox_2d_tight is not None and obj.bbox_2d_tight[2] == 160.0
