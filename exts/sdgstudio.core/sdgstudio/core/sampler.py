"""``sample_frame_params(config, seed, frame_index)``: every randomized value of one frame, drawn purely.

Each frame draws from ``numpy.random.SeedSequence([seed, frame_index])``, so any frame can be re-rendered alone,
runs resume exactly and shards never overlap. The sequence is split into one child stream per randomizer
(camera, lighting, background, placement, appearance), so adding an object does not move the camera.
Every sampled value lands in ``FrameParams.to_json()``, which the manifest records.
"""

from __future__ import annotations

import colorsys
from dataclasses import asdict, dataclass, field

import numpy as np

from .assets import box_corners, item_bounds, look_at, rotation_xyz
from .config import AssetConfig, AssetItem, Range, SDGConfig

OBJECTS_ROOT = "/World/Objects"
PROPS_ROOT = "/World/Props"
CAMERA_PATH = "/World/Camera"


@dataclass(frozen=True)
class ObjectSlot:
    """One object prim the stage holds: which asset and item it shows, at which path."""

    asset: AssetConfig
    item: AssetItem
    prim_path: str


def object_slots(config: SDGConfig) -> list[ObjectSlot]:
    """Every object prim of the scene, in config order: ``count.max`` per single-source asset, one per library file."""
    slots = []
    for asset, item in config.asset_items():
        if asset.is_library:
            slots.append(ObjectSlot(asset, item, f"{OBJECTS_ROOT}/{item.name}"))
        else:
            slots += [ObjectSlot(asset, item, f"{OBJECTS_ROOT}/{asset.name}_{k}") for k in range(asset.count.max)]
    return slots


def camera_path(config: SDGConfig) -> str:
    """The camera prim: under its mount when the camera rides on a prim, else ``/World/Camera``."""
    return f"{config.camera.mount}/Camera" if config.camera.mount else CAMERA_PATH


def prop_path(prop_name: str) -> str:
    return f"{PROPS_ROOT}/{prop_name}"


@dataclass
class ObjectParams:
    prim_path: str
    asset: str
    visible: bool
    position: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # meters
    rotation_xyz: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # degrees, USD rotateXYZ
    scale: float = 1.0  # uniform, includes the asset's size normalization
    color: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])  # linear RGB 0..1
    roughness: float = 0.5
    metallic: float = 0.0
    mass: float = 1.0  # kg
    static_friction: float = 0.5
    dynamic_friction: float = 0.5
    restitution: float = 0.0
    is_target: bool = False
    linear_velocity: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # m/s, world (sequences)
    angular_velocity: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # deg/s of rotateXYZ angles


@dataclass
class PropParams:
    prim_path: str
    position: list[float]  # meters
    rotation_xyz: list[float]  # degrees, USD rotateXYZ


@dataclass
class DistantLightParams:
    intensity: float
    color_temperature: float  # Kelvin
    elevation: float  # degrees
    azimuth: float  # degrees


@dataclass
class SphereLightParams:
    intensity: float
    color_temperature: float  # Kelvin
    position: list[float]  # meters


@dataclass
class CameraParams:
    """The camera's sampled values; the orbit fields are None when the camera rides on a mount prim."""

    focal_length: float  # mm
    position: list[float] | None = None  # meters
    look_at: list[float] | None = None  # meters
    distance: float | None = None  # meters
    azimuth: float | None = None  # degrees
    elevation: float | None = None  # degrees

    def camera_to_world(self) -> np.ndarray:
        """USD camera transform (column-vector) of an orbiting camera."""
        return look_at(np.asarray(self.position), np.asarray(self.look_at))


@dataclass
class BackgroundParams:
    prim_path: str
    color: list[float]  # linear RGB 0..1
    texture: str | None  # image file, or None for plain colour


@dataclass
class FrameParams:
    frame: int
    seed: int
    camera: CameraParams
    objects: list[ObjectParams]
    distant_light: DistantLightParams | None
    sphere_light: SphereLightParams | None
    ambient: float
    backgrounds: list[BackgroundParams]
    props: list[PropParams] = field(default_factory=list)
    sequence: dict | None = None  # index, step, time (s), camera rates; None for independent frames
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def _uniform(rng: np.random.Generator, r: Range) -> float:
    """One draw from a closed range; a degenerate range returns its value without consuming randomness."""
    return float(r.min) if r.min == r.max else float(rng.uniform(r.min, r.max))


def _hsv(rng: np.random.Generator, hue: Range, saturation: Range, value: Range) -> list[float]:
    return list(colorsys.hsv_to_rgb(_uniform(rng, hue), _uniform(rng, saturation), _uniform(rng, value)))


def _sample_camera(config: SDGConfig, rng: np.random.Generator) -> CameraParams:
    cam = config.camera
    if cam.mount:
        return CameraParams(focal_length=_uniform(rng, cam.focal_length))
    distance, azimuth, elevation = (_uniform(rng, r) for r in (cam.distance, cam.azimuth, cam.elevation))
    focal = _uniform(rng, cam.focal_length)
    jitter = rng.uniform(-cam.look_at_jitter, cam.look_at_jitter, 3) if cam.look_at_jitter > 0 else np.zeros(3)
    target = np.asarray(cam.target) + jitter
    az, el = np.radians(azimuth), np.radians(elevation)
    eye = np.asarray(cam.target) + distance * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return CameraParams(focal, eye.tolist(), target.tolist(), distance, azimuth, elevation)


def _sample_lights(config: SDGConfig, rng: np.random.Generator):
    lighting = config.lighting
    distant = sphere = None
    if lighting.distant.enabled:  # a light switched off draws nothing: the other streams stay put
        d = lighting.distant
        distant = DistantLightParams(*(_uniform(rng, r) for r in (d.intensity, d.color_temperature, d.elevation, d.azimuth)))
    if lighting.sphere.enabled:
        s = lighting.sphere
        position = rng.uniform(s.position.min, s.position.max).tolist()
        sphere = SphereLightParams(_uniform(rng, s.intensity), _uniform(rng, s.color_temperature), position)
    return distant, sphere, _uniform(rng, lighting.ambient)


def _sample_backgrounds(config: SDGConfig, rng: np.random.Generator) -> list[BackgroundParams]:
    bg = config.background
    textures = bg.texture_files()
    result = []
    for prop in config.props:
        if not prop.background:
            continue
        color = _hsv(rng, bg.hue, bg.saturation, bg.value)
        use_texture = bool(textures) and rng.random() < bg.texture_probability
        texture = textures[int(rng.integers(len(textures)))] if use_texture else None
        result.append(BackgroundParams(prop_path(prop.name), color, texture))
    return result


def _footprint_radius(corners: np.ndarray, rotation: np.ndarray, scale: float) -> tuple[float, float]:
    """(XY radius around the origin, lowest Z) of the rotated, scaled local box, meters."""
    pts = (corners @ rotation.T) * scale
    return float(np.max(np.hypot(pts[:, 0], pts[:, 1]))), float(np.min(pts[:, 2]))


def _sample_props(config: SDGConfig, rng: np.random.Generator) -> list[PropParams]:
    result = []
    for prop in (p for p in config.props if p.is_randomized):
        position = rng.uniform(prop.position_range.min, prop.position_range.max).tolist() if prop.position_range else list(prop.position)
        r = prop.rotation_range
        rotation = [_uniform(rng, a) for a in (r.roll, r.pitch, r.yaw)] if r else list(prop.rotation)
        result.append(PropParams(prop_path(prop.name), position, rotation))
    return result


def _shown_slots(config: SDGConfig, placement: np.random.Generator) -> set[str]:
    """Which slots a frame fills: ``count`` copies of a single source, ``count`` distinct files of a library."""
    shown: set[str] = set()
    slots = object_slots(config)
    for asset in config.assets:
        mine = [s for s in slots if s.asset is asset]
        count = int(placement.integers(asset.count.min, asset.count.max + 1))
        if asset.is_library:
            weights = np.array([s.item.weight for s in mine])
            picked = placement.choice(len(mine), size=count, replace=False, p=weights / weights.sum())
            shown |= {mine[i].prim_path for i in sorted(picked)}
        else:
            shown |= {s.prim_path for s in mine[:count]}
    return shown


def _sample_objects(
    config: SDGConfig, placement: np.random.Generator, appearance: np.random.Generator, warnings: list[str]
) -> list[ObjectParams]:
    pose, mats, phys = config.pose, config.materials, config.physics
    lo_region, hi_region = np.asarray(pose.region.min), np.asarray(pose.region.max)
    placed: list[tuple[np.ndarray, float]] = []  # (xy, radius)
    objects: list[ObjectParams] = []
    shown = _shown_slots(config, placement)
    for slot in object_slots(config):
        obj = ObjectParams(prim_path=slot.prim_path, asset=slot.asset.name, visible=False)
        objects.append(obj)
        if slot.prim_path not in shown:
            continue
        lo, hi, normalize = item_bounds(slot.item, slot.asset.size)
        rot = [_uniform(placement, r) for r in (pose.rotation.roll, pose.rotation.pitch, pose.rotation.yaw)]
        scale = normalize * _uniform(placement, slot.asset.scale)
        radius, min_z = _footprint_radius(box_corners(lo, hi), rotation_xyz(*rot), scale)
        for _ in range(pose.max_attempts):
            xy = placement.uniform(lo_region[:2], hi_region[:2])
            if all(np.hypot(*(xy - other)) >= radius + r + pose.min_gap for other, r in placed):
                break
        else:
            warnings.append(f"{obj.prim_path}: no free spot after {pose.max_attempts} attempts; hidden")
            continue
        placed.append((xy, radius))
        bottom = float(placement.uniform(lo_region[2], hi_region[2])) if hi_region[2] > lo_region[2] else lo_region[2]
        obj.visible = True
        obj.position = [float(xy[0]), float(xy[1]), float(bottom - min_z)]
        obj.rotation_xyz = rot
        obj.scale = float(scale)
        color = slot.asset.color
        obj.color = list(color) if color is not None else _hsv(appearance, mats.hue, mats.saturation, mats.value)
        obj.roughness = _uniform(appearance, mats.roughness)
        obj.metallic = _uniform(appearance, mats.metallic)
        obj.mass = _uniform(appearance, phys.mass)
        obj.static_friction = _uniform(appearance, phys.static_friction)
        obj.dynamic_friction = _uniform(appearance, phys.dynamic_friction)
        obj.restitution = _uniform(appearance, phys.restitution)
    targets = {a.name for a in config.assets if a.target}
    candidates = [o for o in objects if o.visible and o.asset in targets]
    if candidates:
        candidates[int(placement.integers(len(candidates)))].is_target = True
    return objects


MOTION_STREAM = 0x4D4F  # third SeedSequence word of a sequence's motion draws
JITTER_STREAM = 0x4A49  # third SeedSequence word of a frame's camera jitter


def _scene_params(config: SDGConfig, seed: int, frame_index: int) -> FrameParams:
    """Every randomized value drawn from ``SeedSequence([seed, frame_index])``: one stream per randomizer."""
    cam_ss, light_ss, bg_ss, place_ss, look_ss, props_ss = np.random.SeedSequence([seed, frame_index]).spawn(6)
    warnings: list[str] = []
    distant, sphere, ambient = _sample_lights(config, np.random.default_rng(light_ss))
    return FrameParams(
        frame=frame_index,
        seed=seed,
        camera=_sample_camera(config, np.random.default_rng(cam_ss)),
        objects=_sample_objects(config, np.random.default_rng(place_ss), np.random.default_rng(look_ss), warnings),
        distant_light=distant,
        sphere_light=sphere,
        ambient=ambient,
        backgrounds=_sample_backgrounds(config, np.random.default_rng(bg_ss)),
        props=_sample_props(config, np.random.default_rng(props_ss)),
        warnings=warnings,
    )


def sample_frame_params(config: SDGConfig, seed: int, frame_index: int) -> FrameParams:
    """All randomized values of frame ``frame_index`` of the run seeded ``seed``. Pure and deterministic."""
    if frame_index < 0:
        raise ValueError(f"frame index must be >= 0, got {frame_index}")
    if config.sequence.length == 1:
        return _scene_params(config, seed, frame_index)
    return sample_sequence_step(config, seed, *divmod(frame_index, config.sequence.length))


def sample_sequence_step(config: SDGConfig, seed: int, sequence: int, step: int) -> FrameParams:
    """The state of ``sequence`` at ``step``; ``step == length`` is the state just after its last frame (for flow).

    The scene (objects, looks, lights, props, the camera's start) is the sequence's first frame's draw; object
    velocities and camera rates come from ``SeedSequence([seed, first_frame, MOTION_STREAM])``; motion is
    linear in time: position += v t, rotateXYZ angles += w t, camera azimuth += orbit_rate t, distance +=
    dolly_rate t, with t = step / frame_rate seconds; camera jitter is drawn per frame.
    """
    seq = config.sequence
    first = sequence * seq.length
    params = _scene_params(config, seed, first)
    params.frame = first + step
    time = step / seq.frame_rate
    motion = np.random.default_rng(np.random.SeedSequence([seed, first, MOTION_STREAM]))
    for obj in params.objects:  # drawn for every slot, so the stream never depends on which are shown
        v = motion.uniform(seq.linear_velocity.min, seq.linear_velocity.max)
        w = motion.uniform(seq.angular_velocity.min, seq.angular_velocity.max)
        obj.linear_velocity, obj.angular_velocity = v.tolist(), w.tolist()
        if obj.visible:
            obj.position = (np.asarray(obj.position) + v * time).tolist()
            obj.rotation_xyz = (np.asarray(obj.rotation_xyz) + w * time).tolist()
    orbit, dolly = _uniform(motion, seq.orbit_rate), _uniform(motion, seq.dolly_rate)
    cam = params.camera
    if cam.position is not None:  # an orbiting camera moves; a mounted one rides on its (static) mount
        cam.azimuth += orbit * time
        cam.distance += dolly * time
        if cam.distance <= 0:
            raise ValueError(f"sequence {sequence}: the camera dollied through its target at step {step}")
        az, el = np.radians(cam.azimuth), np.radians(cam.elevation)
        direction = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        eye = np.asarray(config.camera.target) + cam.distance * direction
        if seq.camera_jitter > 0:
            jitter = np.random.default_rng(np.random.SeedSequence([seed, params.frame, JITTER_STREAM]))
            eye = eye + jitter.uniform(-seq.camera_jitter, seq.camera_jitter, 3)
        cam.position = eye.tolist()
    params.sequence = {"index": sequence, "step": step, "time": time, "orbit_rate": orbit, "dolly_rate": dolly}
    return params


def parameter_ranges(config: SDGConfig) -> dict[str, tuple[float, float]]:
    """Every randomized scalar's configured ``(min, max)``, by the name ``flatten_params`` uses."""
    cam, mats, phys, rot = config.camera, config.materials, config.physics, config.pose.rotation
    ranges = {
        "camera.focal_length": cam.focal_length, "lighting.ambient": config.lighting.ambient,
        "objects.roughness": mats.roughness, "objects.metallic": mats.metallic, "objects.mass": phys.mass,
        "objects.static_friction": phys.static_friction, "objects.dynamic_friction": phys.dynamic_friction,
        "objects.restitution": phys.restitution, "objects.roll": rot.roll, "objects.pitch": rot.pitch,
        "objects.yaw": rot.yaw,
    }
    if not cam.mount:
        ranges |= {"camera.distance": cam.distance, "camera.azimuth": cam.azimuth, "camera.elevation": cam.elevation}
    if config.lighting.distant.enabled:
        d = config.lighting.distant
        ranges |= {"lighting.distant.intensity": d.intensity, "lighting.distant.color_temperature": d.color_temperature,
                   "lighting.distant.elevation": d.elevation, "lighting.distant.azimuth": d.azimuth}
    if config.lighting.sphere.enabled:
        s = config.lighting.sphere
        ranges |= {"lighting.sphere.intensity": s.intensity, "lighting.sphere.color_temperature": s.color_temperature}
        ranges |= {f"lighting.sphere.position.{a}": Range(min=lo, max=hi)
                   for a, lo, hi in zip("xyz", s.position.min, s.position.max, strict=True)}
    for asset in config.assets:
        factors = [item_bounds(item, asset.size)[2] for item in asset.items()]
        ranges[f"objects.scale.{asset.name}"] = Range(min=asset.scale.min * min(factors), max=asset.scale.max * max(factors))
    return {name: (float(r.min), float(r.max)) for name, r in ranges.items()}


def flatten_params(params: FrameParams | dict) -> dict[str, list[float]]:
    """One frame's sampled scalars by parameter name (objects pooled over the visible ones).

    Takes a ``FrameParams`` or its JSON form as recorded in ``manifest.jsonl`` (the report reads those).
    """
    p = params.to_json() if isinstance(params, FrameParams) else params
    cam = p["camera"]
    values: dict[str, list[float]] = {"camera.focal_length": [cam["focal_length"]], "lighting.ambient": [p["ambient"]]}
    if cam.get("distance") is not None:
        values |= {f"camera.{k}": [cam[k]] for k in ("distance", "azimuth", "elevation")}
    if (d := p.get("distant_light")) is not None:
        for key in ("intensity", "color_temperature", "elevation", "azimuth"):
            values[f"lighting.distant.{key}"] = [d[key]]
    if (s := p.get("sphere_light")) is not None:
        values["lighting.sphere.intensity"] = [s["intensity"]]
        values["lighting.sphere.color_temperature"] = [s["color_temperature"]]
        values |= {f"lighting.sphere.position.{a}": [v] for a, v in zip("xyz", s["position"], strict=True)}
    for obj in (o for o in p["objects"] if o["visible"]):
        for key in ("roughness", "metallic", "mass", "static_friction", "dynamic_friction", "restitution"):
            values.setdefault(f"objects.{key}", []).append(obj[key])
        for axis, angle in zip(("roll", "pitch", "yaw"), obj["rotation_xyz"], strict=True):
            values.setdefault(f"objects.{axis}", []).append(angle)
        values.setdefault(f"objects.scale.{obj['asset']}", []).append(obj["scale"])
    return values
