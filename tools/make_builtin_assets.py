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


def write_asset(name: str, meshes: dict[str, tuple]) -> None:
    path = DATA / "assets" / f"{name}.usda"
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
    textures()
    print(f"wrote assets and textures under {DATA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
