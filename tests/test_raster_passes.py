"""The raster backend's fast paths give exactly what the plain algorithms give: rasterized primary visibility vs
float64 brute-force ray casting, culled shadow rays vs testing every instance, threads, coverage passes, frame
order; and the CUDA build of every kernel compiles (NVRTC ships with Warp; no GPU needed)."""

from __future__ import annotations

import numpy as np
import pytest
import warp as wp
from pxr import Gf, UsdGeom, UsdLux
from sdgstudio.core.raster import RasterBackend, RasterSettings, coverage, geometry, shadows
from sdgstudio.core.raster.shapes import hull_triangles, is_convex
from sdgstudio.core.raster.transfer import FrameTraffic
from sdgstudio.core.session import RenderSession
from test_raster import ALL, CLASSES, add_camera, add_cube, label, new_stage


def _frames_equal(a, b) -> None:
    for name, img in a.images().items():
        assert img.tobytes() == b.images()[name].tobytes(), name
    assert a.labels_json() == b.labels_json()


def _tabletop(tabletop, res=(160, 120), **settings):
    config = tabletop.model_copy(deep=True)
    config.camera.resolution = res
    return RenderSession(config, RasterBackend(list(config.classes), RasterSettings(**settings)))


def _shapes_scene(light: str = "sphere"):
    """Boxes, a sphere, a cone, a rotated capsule and a quad on a floor; the point light sits inside a box's
    bounding region when ``light == "inside"``."""
    stage = new_stage()
    cam, _ = add_camera(stage, eye=(0.9, -1.2, 0.8), target=(0.0, 0.0, 0.1), clip=(0.05, 20.0))
    add_cube(stage, "/World/floor", 1.0, (0, 0, -0.5), cls=None)
    add_cube(stage, "/World/a_box", 0.2, (0.1, 0.05, 0.1), (0, 0, 30), cls="box")
    add_cube(stage, "/World/b_tall", 0.1, (-0.25, 0.2, 0.25), (10, 0, 0), cls="box")
    ball = UsdGeom.Sphere.Define(stage, "/World/c_ball")
    ball.CreateRadiusAttr(0.08)
    ball.AddTranslateOp().Set(Gf.Vec3d(-0.2, -0.15, 0.08))
    label(ball.GetPrim(), "plate")
    cone = UsdGeom.Cone.Define(stage, "/World/d_cone")
    cone.CreateRadiusAttr(0.06), cone.CreateHeightAttr(0.2)
    cone.AddTranslateOp().Set(Gf.Vec3d(0.3, -0.25, 0.1))
    label(cone.GetPrim(), "mug")
    cap = UsdGeom.Capsule.Define(stage, "/World/e_capsule")
    cap.CreateRadiusAttr(0.03), cap.CreateHeightAttr(0.2), cap.CreateAxisAttr("X")
    cap.AddTranslateOp().Set(Gf.Vec3d(0.0, 0.3, 0.35))
    cap.AddRotateXYZOp().Set(Gf.Vec3f(0, 20, 40))
    UsdLux.DistantLight.Define(stage, "/World/sun").AddRotateXYZOp().Set(Gf.Vec3f(40, 25, 0))
    bulb = UsdLux.SphereLight.Define(stage, "/World/bulb")
    bulb.CreateIntensityAttr(20000.0)
    bulb.AddTranslateOp().Set(Gf.Vec3d(0.1, 0.05, 0.15) if light == "inside" else Gf.Vec3d(-0.4, -0.3, 0.9))
    return stage, cam


# ---------------------------------------------------------------- primary visibility
def _brute_force_ids(backend: RasterBackend, stage, cam: str, res) -> tuple[np.ndarray, np.ndarray, list]:
    """Closest hit per pixel centre by float64 ray casting against every triangle (instance index, -1 = none),
    and the pixels whose answer float32 may legitimately flip: a triangle in front passes within 1e-5 of one of its
    edges, or two instances are within 1e-5 (relative) of the same depth."""
    sc = backend.reader.read(stage, cam, res)
    W, H = res
    K, w2c = sc.camera.K, np.linalg.inv(sc.camera.cam_to_world)
    near, far = sc.camera.near, sc.camera.far
    v, u = np.mgrid[0:H, 0:W]
    d = np.stack([(u + 0.5 - K[0, 2]) / K[0, 0], (v + 0.5 - K[1, 2]) / K[1, 1], np.ones(u.shape)], -1).reshape(-1, 3)
    eps = 1e-5
    per_inst, marginal_z = [], np.full(len(d), np.inf)
    for ins in sc.instances:
        m = w2c @ ins.local_to_world
        p = ins.entry.points @ m[:3, :3].T + m[:3, 3]
        a, b, c = (p[ins.entry.tris[:, i]] for i in range(3))
        w = np.stack([d @ np.cross(b, c).T, d @ np.cross(c, a).T, d @ np.cross(a, b).T])  # (3, pixels, tris)
        scale = np.stack([np.abs(d) @ np.abs(x).T for x in (np.cross(b, c), np.cross(c, a), np.cross(a, b))])
        wn = w / np.maximum(scale, 1e-300)
        lo, hi = wn.min(0), wn.max(0)
        n = np.cross(b - a, c - a)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.einsum("tj,tj->t", n, a)[None, :] / (d @ n.T)
        valid = (z >= near) & (z <= far)
        per_inst.append(np.where(((lo >= 0) | (hi <= 0)) & valid, z, np.inf).min(1))
        marginal = ((np.abs(lo) < eps) | (np.abs(hi) < eps)) & (np.linalg.norm(n, axis=1) > 0)[None, :]
        marginal_z = np.minimum(marginal_z, np.where(marginal & (z > 0.5 * near), z, np.inf).min(1))
    zs = np.stack(per_inst)
    inst = np.where(np.isfinite(zs.min(0)), zs.argmin(0), -1)
    srt = np.sort(zs, axis=0)
    best, second = srt[0], srt[1] if len(srt) > 1 else np.full(len(d), np.inf)
    with np.errstate(invalid="ignore"):
        unsure = (np.isfinite(marginal_z) & (marginal_z <= best * (1 + eps))) | (second - best <= eps * best)
    return inst.reshape(H, W), unsure.reshape(H, W), sc.instances


def test_rasterized_ids_equal_float64_ray_casting_away_from_edges():
    stage, cam = _shapes_scene()
    res = (96, 72)
    backend = RasterBackend(CLASSES, RasterSettings(segments=16))
    frame = backend.render(stage, cam, res, ALL, 0)
    ref, unsure, instances = _brute_force_ids(backend, stage, cam, res)
    to_id = np.array([i.obj + 1 for i in instances] + [0])
    ids = frame.instance_segmentation.astype(np.int64)
    hit = np.isfinite(frame.depth)
    assert (hit == (ref >= 0))[~unsure].all()
    assert (ids == to_id[ref])[~unsure].all()
    assert unsure.mean() < 0.05 and len(np.unique(ids)) >= 5


# ---------------------------------------------------------------- shadows: culling is exact
_LIGHT_GRID = shadows.light_grid


def _no_culling(light, lo, hi, corners):
    """A grid whose every cell (inside and outside) lists every instance: each ray tests all of them."""
    g = _LIGHT_GRID(light, lo, hi, corners)
    n = len(lo)
    ncell = len(g.cell_start) - 1
    order = np.argsort(-g.reach if g.kind == 0 else g.reach, kind="stable")
    g.cell_start = np.arange(ncell + 1) * n
    g.cell_items = np.tile(order, ncell)
    g.reach = np.full(n, np.inf if g.kind == 0 else -np.inf)  # no early stop either
    return g


_UPDATE = geometry.DeviceGeometry.update


def _no_hull_skip(self, instances, traffic):
    """Device geometry whose triangles are never on the hull: a ray also tests its own instance."""
    _UPDATE(self, instances, traffic)
    self.tri_hull = wp.zeros(self.tri_hull.shape, dtype=wp.int32, device=self.device)
    self.key = ()


def _test_everything(monkeypatch) -> None:
    monkeypatch.setattr(shadows, "light_grid", _no_culling)
    monkeypatch.setattr(geometry.DeviceGeometry, "update", _no_hull_skip)


@pytest.mark.parametrize("light", ["sphere", "inside"])
def test_light_space_grids_cull_only_what_cannot_block(monkeypatch, light):
    stage, cam = _shapes_scene(light)
    fast = RasterBackend(CLASSES, RasterSettings(segments=24)).render(stage, cam, (128, 96), ALL, 0)
    _test_everything(monkeypatch)
    slow = RasterBackend(CLASSES, RasterSettings(segments=24)).render(stage, cam, (128, 96), ALL, 0)
    _frames_equal(fast, slow)
    no_shadow = RasterBackend(CLASSES, RasterSettings(segments=24, shadows=False)).render(stage, cam, (128, 96),
                                                                                      ALL, 0)
    assert np.any(fast.rgb != no_shadow.rgb)  # the scene does cast shadows


def test_tabletop_shadows_equal_testing_every_instance(monkeypatch, tabletop):
    fast = [_tabletop(tabletop).render(k)[1] for k in (0, 1)]
    _test_everything(monkeypatch)
    for k, frame in zip((0, 1), fast, strict=True):
        _frames_equal(frame, _tabletop(tabletop).render(k)[1])


def test_convex_hull_faces():
    cube = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                      [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    assert is_convex(cube, faces)
    dented = cube.copy()
    dented = np.vstack([dented, [0.5, 0.5, 0.8]])  # a pit in the top face
    pit = np.array([[1, 5, 8], [5, 7, 8], [7, 3, 8], [3, 1, 8]])
    cup = np.vstack([faces[:10], pit])
    assert not is_convex(dented, cup)
    np.testing.assert_array_equal(hull_triangles(dented, cup), [True] * 10 + [False] * 4)  # the pit is not


# ---------------------------------------------------------------- threads, coverage passes, frame order
def test_results_do_not_depend_on_threads_or_coverage_passes(monkeypatch, tabletop):
    one = _tabletop(tabletop, threads=1).render(2)[1]
    _frames_equal(one, _tabletop(tabletop, threads=2).render(2)[1])
    _frames_equal(one, _tabletop(tabletop, threads=3).render(2)[1])
    monkeypatch.setattr(coverage, "COVER_BUDGET", 64)  # one object per coverage pass
    _frames_equal(one, _tabletop(tabletop, threads=2).render(2)[1])


def test_a_frame_does_not_depend_on_what_was_rendered_before(tabletop):
    session = _tabletop(tabletop)
    first = session.render(4)[1]
    for k in (7, 1):
        session.render(k)
    _frames_equal(first, session.render(4)[1])


def test_a_run_poses_the_next_frame_while_the_passes_run_and_gets_the_same_frames(tabletop):
    """``RenderSession.frames`` overlaps frame k's passes (other threads) with posing and reading frame k+1, and
    with frame k-1's passes."""
    import threading
    import time

    session = _tabletop(tabletop)
    backend, events = session.backend, []
    prepare, execute = backend.prepare, backend.execute

    def slow_execute(job):
        events.append(("passes start", job.frame.index, threading.current_thread().name))
        time.sleep(0.2)  # long enough for the next frame's prepare to start meanwhile
        frame = execute(job)
        events.append(("passes end", job.frame.index))
        return frame

    def logged_prepare(*args):
        events.append(("prepare", args[-1]))
        return prepare(*args)

    backend.execute, backend.prepare = slow_execute, logged_prepare
    run = list(session.frames([3, 4, 5]))
    assert [f.index for _, f in run] == [3, 4, 5]
    assert events.index(("prepare", 4)) < events.index(("passes end", 3))
    started = {e[1]: k for k, e in enumerate(events) if e[0] == "passes start"}
    assert started[4] < events.index(("passes end", 3))  # two frames' passes at once (frames_in_flight = 2)
    assert all(e[2].startswith("sdgstudio-passes") for e in events if e[0] == "passes start")
    backend.execute, backend.prepare = execute, prepare
    for params, frame in run:
        again_params, again = _tabletop(tabletop).render(frame.index)
        assert params == again_params
        _frames_equal(frame, again)


def test_a_run_about_to_pause_writes_its_frames_in_flight_before_taking_the_next(tabletop):
    """``holding`` (a pause or stop asked for): every frame in flight is yielded before the next index is taken,
    so a paused run holds no rendered frame unwritten."""
    session, yielded, pulled_after = _tabletop(tabletop), [], {}
    hold = {"on": False}

    def indices():
        for k in range(8):
            pulled_after[k] = list(yielded)
            yield k

    for _, frame in session.frames(indices(), holding=lambda: hold["on"]):
        yielded.append(frame.index)
        hold["on"] = frame.index >= 2  # from the third frame on, the caller is "pausing"
    assert yielded == list(range(8))
    assert pulled_after[4] == [0, 1]  # not holding yet: frames 2 and 3 were in flight when index 4 was taken
    for k in range(5, 8):
        assert pulled_after[k] == list(range(k)), (k, pulled_after[k])


def test_a_frame_that_fails_to_pose_or_read_still_lets_the_frames_before_it_out(tabletop):
    session, yielded = _tabletop(tabletop), []

    def failing(prepare):  # frame 4 fails, whether read from the stage or from its parameters
        def failing_prepare(*args):
            if args[-1] == 4:
                raise ValueError("camera_path '/World/Camera' is not a UsdGeom.Camera")
            return prepare(*args)
        return failing_prepare

    session.backend.prepare = failing(session.backend.prepare)
    session.backend.prepare_params = failing(session.backend.prepare_params)
    with pytest.raises(ValueError, match="not a UsdGeom.Camera"):
        for _, frame in session.frames(range(8)):
            yielded.append(frame.index)
    assert yielded == [0, 1, 2, 3]  # 2 and 3 were in flight when frame 4 failed


# ---------------------------------------------------------------- CUDA build
@pytest.mark.parametrize("module", ["primary", "tiles", "coverage", "geometry", "pixels", "labels"])
def test_kernels_compile_for_cuda(module, tmp_path):
    """NVRTC compiles every kernel for an H100 (sm_90) here too, so the CUDA path cannot break unseen."""
    wp.init()
    paths = wp.compile_aot_module(f"sdgstudio.core.raster.{module}", arch=90, module_dir=str(tmp_path),
                                  use_ptx=True)
    ptx = paths[0].read_text()
    assert ".entry" in ptx
    if module in ("primary", "tiles"):  # no contraction into FMA: CPU and CUDA round every step alike
        assert "fma.rn.f32" not in ptx


def test_specular_lobe_table_matches_pow(tabletop):
    session = _tabletop(tabletop)
    session.render(0)
    backend = session.backend
    sc = backend.reader.read(session.stage, "/World/Camera", (160, 120))
    traffic = FrameTraffic(backend.staging)
    arrays = backend.shading.materials(sc, backend.reader.materials.textures, traffic.up)
    traffic.send()
    pbr, table = arrays[5].numpy(), arrays[6].numpy().reshape(len(sc.materials), -1)
    rng = np.random.default_rng(0)
    for m, (rough, _, start, scale) in enumerate(pbr):
        s = 2.0 / max(rough, 0.05) ** 4 - 2.0
        ndh = rng.uniform(start, 1.0, 2000).astype(np.float32)
        u = np.minimum((ndh - start) * scale, table.shape[1] - 1)
        k = np.minimum(u.astype(int), table.shape[1] - 2)
        looked_up = table[m, k] * (1 - (u - k)) + table[m, k + 1] * (u - k)
        exact = (s + 2) / 8 * ndh.astype(np.float64) ** s
        assert np.all(np.abs(looked_up - exact) <= 2e-3 * exact + 1e-4), (rough, s)  # 1e-4: a third of an 8-bit step


def test_silhouettes_are_the_coverage_render_counts(tabletop):
    """``RasterBackend.silhouettes`` returns the masks ``render`` counts into ``unoccluded_pixel_count``."""
    from sdgstudio.core.session import RenderSession, make_backend

    config = tabletop.model_copy(deep=True)
    config.camera.resolution = (160, 120)
    session = RenderSession(config, make_backend("raster", config))
    for k in range(3):
        _, frame = session.render(k)
        masks, K = session.backend.silhouettes(session.stage, session.camera_path, (160, 120))
        assert np.allclose(K, frame.camera.K)
        assert {o.prim_path for o in frame.objects} == set(masks)
        for obj in frame.objects:
            mask = masks[obj.prim_path]
            assert mask.sum() == obj.unoccluded_pixel_count
            visible = frame.instance_segmentation == obj.instance_id
            assert not np.any(visible & ~mask), "visible pixels lie inside the full silhouette"


@pytest.mark.parametrize("bounds", [(1 << 16, 1 << 20), (7, 64)], ids=["bounds hold", "bounds outgrown"])
def test_a_frame_sized_from_bounds_equals_an_exactly_sized_one(tabletop, bounds):
    """``PrimaryPass.one_wait`` (CUDA's default) queues a frame without waiting midway: the raster launch and the
    coverage masks are sized from bounds and laid out on the device. Same frames as exact sizing; a frame that
    outgrows the bounds is rendered again exactly and the bounds grow."""
    exact, bounded = _tabletop(tabletop), _tabletop(tabletop)
    bounded.backend.primary.one_wait = True
    bounded.backend.primary.item_bound, bounded.backend.primary.cover_bound = bounds
    runs = []
    original = bounded.backend.primary.run
    bounded.backend.primary.run = lambda *a, **kw: runs.append(kw.get("exact", False)) or original(*a, **kw)
    for k in range(6):
        _frames_equal(exact.render(k)[1], bounded.render(k)[1])
    if bounds[0] < 100:
        assert runs[:2] == [False, True]  # the first frame outgrew them and was rendered again ...
        assert bounded.backend.primary.item_bound > 1000 and bounded.backend.primary.cover_bound > 1000
    assert runs.count(True) <= 1  # ... later frames fit the grown bounds (twice what a frame needed)
