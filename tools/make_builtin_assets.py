"""Regenerate the small USD meshes and textures shipped in exts/sdgstudio.core/data (run once; outputs committed).

Meshes are lathed profiles (revolved around +Z, base at z=0, meters) with UVs, so they are exact, tiny and
need no external modelling tool. Textures are procedural 128x128 PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pxr import Gf, Sdf, Usd, UsdGeom, Vt

DATA = Path(__file__).resolve().parents[1] / "exts" / "sdgstudio.core" / "data"
SEGMENTS = 32


def lathe(profile: list[tuple[float, float]], segments: int = SEGMENTS):
    """Revolve (radius, z) points around Z into a quad mesh: points, face counts, indices, st."""
    points, st = [], []
    for j, (r, z) in enumerate(profile):
        for i in range(segments + 1):
            a = 2 * np.pi * i / segments
            points.append((r * np.cos(a), r * np.sin(a), z))
            st.append((i / segments, j / (len(profile) - 1)))
    counts, indices = [], []
    row = segments + 1
    for j in range(len(profile) - 1):
        for i in range(segments):
            a, b = j * row + i, j * row + i + 1
            counts.append(4)
            indices += [a, b, b + row, a + row]
    return points, counts, indices, st


def torus_arc(center, major, minor, start, end, segments=16, sides=12):
    """A partial torus in the XZ plane (a mug handle)."""
    points, counts, indices, st = [], [], [], []
    for i in range(segments + 1):
        u = start + (end - start) * i / segments
        cu, su = np.cos(u), np.sin(u)
        for k in range(sides + 1):
            v = 2 * np.pi * k / sides
            r = major + minor * np.cos(v)
            points.append((center[0] + r * cu, center[1] + minor * np.sin(v), center[2] + r * su))
            st.append((i / segments, k / sides))
    row = sides + 1
    for i in range(segments):
        for k in range(sides):
            a = i * row + k
            counts.append(4)
            indices += [a, a + row, a + row + 1, a + 1]
    return points, counts, indices, st


def write_mesh(stage, path, mesh):
    points, counts, indices, st = mesh
    m = UsdGeom.Mesh.Define(stage, path)
    m.CreatePointsAttr(Vt.Vec3fArray([Gf.Vec3f(*p) for p in points]))
    m.CreateFaceVertexCountsAttr(counts)
    m.CreateFaceVertexIndicesAttr(indices)
    m.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    pv = UsdGeom.PrimvarsAPI(m).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex)
    pv.Set(Vt.Vec2fArray([Gf.Vec2f(*t) for t in st]))
    m.CreateExtentAttr(UsdGeom.PointBased.ComputeExtent(m.GetPointsAttr().Get()))


def write_asset(name: str, meshes: dict[str, tuple], folder: str = "assets") -> None:
    path = DATA / folder / f"{name}.usda"
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, f"/{name}")
    stage.SetDefaultPrim(root.GetPrim())
    for mesh_name, mesh in meshes.items():
        write_mesh(stage, f"/{name}/{mesh_name}", mesh)
    stage.GetRootLayer().Save()


def textures() -> None:
    out = DATA / "textures"
    out.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:128, 0:128] / 128.0
    rng = np.random.default_rng(7)
    checker = ((np.floor(x * 8) + np.floor(y * 8)) % 2)[..., None] * np.array([150, 150, 150]) + 60
    grain = np.sin((x * 40 + 3 * np.sin(y * 6)) * np.pi) * 0.5 + 0.5
    wood = np.stack([120 + 70 * grain, 75 + 45 * grain, 40 + 20 * grain], -1)
    noise = rng.integers(0, 40, (16, 16, 1)).repeat(8, 0).repeat(8, 1) + np.array([90, 110, 130])
    stripes = np.where((x * 10) % 1 < 0.5, 1.0, 0.0)[..., None] * np.array([180, 40, 40]) + 50
    for name, img in dict(checker=checker, wood=wood, concrete=noise, stripes=stripes).items():
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(out / f"{name}.png")


# Household library: (file stem, class, profile(s)) — lathed, meters, base at z = 0.
HOUSEHOLD_CLASSES = {
    "mug_short": "mug", "mug_tall": "mug", "bottle_water": "bottle", "bottle_sauce": "bottle", "bowl_deep": "bowl",
    "bowl_wide": "bowl", "can_soda": "can", "can_soup": "can", "jar_jam": "jar", "cup_paper": "cup",
}


def household() -> None:
    folder = "assets/household"
    def mug(r, h):
        return [(0.0, 0.0), (r - 0.002, 0.0), (r, 0.004), (r, h), (r - 0.004, h), (r - 0.006, 0.01), (0.0, 0.01)]

    def handle(r, h):
        return torus_arc((r, 0, h / 2), h * 0.27, 0.006, -1.4, 1.4)

    write_asset("mug_short", {"body": lathe(mug(0.042, 0.09)), "handle": handle(0.042, 0.09)}, folder)
    write_asset("mug_tall", {"body": lathe(mug(0.037, 0.12)), "handle": handle(0.037, 0.12)}, folder)
    write_asset("bottle_water", {"body": lathe([(0.0, 0.0), (0.033, 0.0), (0.035, 0.01), (0.035, 0.15), (0.02, 0.19),
                                                 (0.013, 0.2), (0.013, 0.225), (0.0, 0.225)])}, folder)
    write_asset("bottle_sauce", {"body": lathe([(0.0, 0.0), (0.028, 0.0), (0.03, 0.02), (0.026, 0.1), (0.015, 0.14),
                                                 (0.01, 0.17), (0.0, 0.17)])}, folder)
    write_asset("bowl_deep", {"body": lathe([(0.0, 0.0), (0.03, 0.0), (0.055, 0.03), (0.065, 0.07), (0.06, 0.072),
                                              (0.05, 0.035), (0.025, 0.008), (0.0, 0.008)])}, folder)
    write_asset("bowl_wide", {"body": lathe([(0.0, 0.0), (0.04, 0.0), (0.08, 0.025), (0.09, 0.045), (0.085, 0.047),
                                              (0.07, 0.022), (0.035, 0.007), (0.0, 0.007)])}, folder)
    def can(r, h):
        return [(0.0, 0.0), (r - 0.004, 0.0), (r, 0.005), (r, h - 0.005), (r - 0.004, h), (0.0, h)]

    write_asset("can_soda", {"body": lathe(can(0.033, 0.122))}, folder)
    write_asset("can_soup", {"body": lathe(can(0.038, 0.1))}, folder)
    write_asset("jar_jam", {"body": lathe([(0.0, 0.0), (0.035, 0.0), (0.037, 0.01), (0.037, 0.08), (0.03, 0.09),
                                            (0.032, 0.092), (0.032, 0.11), (0.0, 0.11)])}, folder)
    write_asset("cup_paper", {"body": lathe([(0.0, 0.0), (0.028, 0.0), (0.04, 0.11), (0.042, 0.112), (0.0, 0.112)])},
                folder)
    lines = [f'{stem} = "{cls}"' for stem, cls in HOUSEHOLD_CLASSES.items()]
    (DATA / folder / "classes.toml").write_text("# file stem = semantic class\n" + "\n".join(lines) + "\n")


def box(center, size):
    """An axis-aligned box mesh (meters), for the gripper."""
    (cx, cy, cz), (sx, sy, sz) = center, size
    pts = [(cx + x * sx / 2, cy + y * sy / 2, cz + z * sz / 2) for z in (-1, 1) for y in (-1, 1) for x in (-1, 1)]
    quads = [[0, 2, 3, 1], [4, 5, 7, 6], [0, 1, 5, 4], [2, 6, 7, 3], [0, 4, 6, 2], [1, 3, 7, 5]]
    st = [(0.0, 0.0)] * 8
    return pts, [4] * 6, [i for q in quads for i in q], st


def gripper() -> None:
    """A parallel-jaw gripper pointing down -Z from its wrist at the origin; ``wrist`` is the camera mount."""
    path = DATA / "assets" / "gripper.usda"
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, "/gripper")
    stage.SetDefaultPrim(root.GetPrim())
    UsdGeom.Xform.Define(stage, "/gripper/wrist")
    flange = lathe([(0.0, 0.0), (0.035, 0.0), (0.035, -0.04), (0.0, -0.04)])
    write_mesh(stage, "/gripper/flange", flange)
    write_mesh(stage, "/gripper/palm", box((0.0, 0.0, -0.055), (0.05, 0.16, 0.03)))
    write_mesh(stage, "/gripper/finger_left", box((0.0, 0.065, -0.11), (0.02, 0.012, 0.08)))
    write_mesh(stage, "/gripper/finger_right", box((0.0, -0.065, -0.11), (0.02, 0.012, 0.08)))
    stage.GetRootLayer().Save()


def main() -> int:
    (DATA / "assets").mkdir(parents=True, exist_ok=True)
    mug_body = [(0.0, 0.0), (0.04, 0.0), (0.042, 0.005), (0.042, 0.095), (0.038, 0.095), (0.036, 0.01), (0.0, 0.01)]
    write_asset("mug", {"body": lathe(mug_body), "handle": torus_arc((0.042, 0, 0.05), 0.025, 0.006, -1.4, 1.4)})
    bottle = [(0.0, 0.0), (0.032, 0.0), (0.034, 0.01), (0.034, 0.13), (0.028, 0.16), (0.013, 0.18), (0.012, 0.21),
              (0.014, 0.212), (0.014, 0.225), (0.0, 0.225)]
    write_asset("bottle", {"body": lathe(bottle)})
    bowl = [(0.0, 0.0), (0.035, 0.0), (0.06, 0.02), (0.075, 0.05), (0.07, 0.052), (0.055, 0.025), (0.03, 0.008),
            (0.0, 0.008)]
    write_asset("bowl", {"body": lathe(bowl)})
    household()
    gripper()
    textures()
    print(f"wrote assets and textures under {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
