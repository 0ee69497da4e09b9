"""Camera paths for videos: instant-ngp's ``base_cam.json`` and nerfstudio's ``camera_path.json`` read, checked and
evaluated; each frame's view is computed from the path and the frame's index alone, so frames can be rendered in
any order, on any machine (docs/formats.md, "Camera paths").

- instant-ngp (``src/camera_path.cu``, ``camera_path.h``): keyframes ``R`` (quaternion x, y, z, w), ``T``, ``fov``
  (degrees along y), ``scale``, ``slice``, ``aperture_size``, ``timestamp``; a uniform B-spline of order 0..3
  (3 by default) over the keyframes, quaternions hemisphere-aligned as they are summed and then normalised;
  ``loop`` wraps the keyframe index. Poses are in NGP space (camera.c2w_from_ngp). Frame i of N is at t = i/N.
- nerfstudio (``cameras/camera_paths.py``, ``scripts/render.py``): one camera per entry, ``camera_to_world``
  (16 floats, row-major, OpenGL axes, taken in ngrender's model space), ``fov`` (degrees along y); entry i is
  the picture at time i / (entries / seconds). Another frame count samples that timeline, interpolating
  between neighbouring entries (position and fov linearly, rotation by slerp).
- Gigapixel paths are base_cam files in instant-ngp's image mode: the image lies on the plane z = 0.5 of NGP
  space, 1 high, ``W/H`` wide (y up). A keyframe shows the window around the point where its optical axis meets
  the plane, ``2 d tan(fov/2)`` high at distance d. Centres and log heights are interpolated, so zooms are
  smooth; the window's width follows the frame so that pixels stay square."""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from . import validate
from .camera import Camera, c2w_from_ngp, fov_other_axis, ngp_from_c2w
from .errors import ConfigError
from .fileio import read_json

INGP, NERFSTUDIO = "instant-ngp base_cam.json", "nerfstudio camera_path.json"
DEFAULT_FPS, DEFAULT_SECONDS = 30.0, 5.0
MAX_KEYFRAMES = 100_000
MAX_FRAMES = 1_000_000
MAX_FPS, MAX_SECONDS = 1000.0, 24 * 3600.0
IMAGE_PLANE_Z = 0.5  # instant-ngp's image mode shows the image on this plane of NGP space,
IMAGE_CENTRE = (0.5, 0.5)  # centred here, 1 high (y up) and width / height wide
IMAGE_MODE_FOV = math.degrees(2 * math.atan(0.5))  # its default: relative focal length 1, the image full-screen
# One instant-ngp keyframe as a vector: R (x, y, z, w), T, then the scalars.
R, T, SLICE, SCALE, FOV, APERTURE = slice(0, 4), slice(4, 7), 7, 8, 9, 10


# -- quaternions (x, y, z, w, as instant-ngp's JSON stores them) ------------------------------------------------

def quat_to_matrix(q: Sequence[float]) -> np.ndarray:
    x, y, z, w = np.asarray(q, np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """The unit quaternion of a rotation matrix (the largest of w, x, y, z picks the stable formula)."""
    m = np.asarray(m, np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2 * math.sqrt(1 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2 * math.sqrt(1 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2 * math.sqrt(1 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2 * math.sqrt(1 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    return q / np.linalg.norm(q)


def slerp(q0: np.ndarray, q1: np.ndarray, f: float) -> np.ndarray:
    """Along the shorter arc from q0 (f = 0) to q1 (f = 1)."""
    d = float(np.dot(q0, q1))
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:  # nearly the same rotation: lerp is exact enough and avoids dividing by sin(~0)
        q = q0 + f * (q1 - q0)
    else:
        a = math.acos(d)
        q = (math.sin((1 - f) * a) * q0 + math.sin(f * a) * q1) / math.sin(a)
    return q / np.linalg.norm(q)


# -- instant-ngp's spline -----------------------------------------------------------------------------------------

def spline_weights(order: int, f: float) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Keyframe offsets from the segment's index and their weights at fraction f of the segment (instant-ngp's
    spline_linear / spline_quadratic / spline_cubic: uniform B-splines; order 0 picks the nearer keyframe)."""
    if order == 0:
        return (int(math.floor(f + 0.5)),), (1.0,)
    if order == 1:
        return (0, 1), (1 - f, f)
    if order == 2:
        return (-1, 0, 1), ((1 - f) ** 2 / 2, (-2 * f * f + 2 * f + 1) / 2, f * f / 2)
    return (-1, 0, 1, 2), ((1 - f) ** 3 / 6, (3 * f ** 3 - 6 * f * f + 4) / 6,
                           (-3 * f ** 3 + 3 * f * f + 3 * f + 1) / 6, f ** 3 / 6)


def blend(vectors: Sequence[np.ndarray], weights: Sequence[float], quaternion: bool) -> np.ndarray:
    """Sum of weighted keyframe vectors in order; with ``quaternion``, each term's R (the first 4 values) is
    flipped into the running sum's hemisphere before it is added (instant-ngp's CameraKeyframe::operator+) and
    the sum's R is normalised."""
    acc = vectors[0] * weights[0]
    for v, w in zip(vectors[1:], weights[1:]):
        term = v * w
        if quaternion and float(np.dot(term[R], acc[R])) < 0:
            term[R] = -term[R]
        acc = acc + term
    if quaternion:
        acc[R] = acc[R] / np.linalg.norm(acc[R])
    return acc


def segment(timestamps: Sequence[float], loop: bool, t: float) -> tuple[int, float]:
    """(keyframe index, fraction) at path time t in [0, 1] (instant-ngp's CameraPath::get_pos): keyframe i's
    timestamp ends segment i; the path lasts to the last timestamp with ``loop``, else to the one before."""
    n = len(timestamps)
    if n == 1:
        return 0, t
    duration = timestamps[-1] if loop else timestamps[-2]
    playtime = t * duration
    i = min(max(bisect.bisect_right(timestamps, playtime), 0), n - (1 if loop else 2))
    prev = 0.0 if i == 0 else timestamps[i - 1]
    return i, (playtime - prev) / (timestamps[i] - prev)


def keyframe_times(stamps: Sequence[float | None]) -> tuple[float, ...]:
    """The keyframes' own timestamps when they increase strictly from above 0, else evenly spaced (i+1)/n, as
    instant-ngp's sanitize_keyframes does."""
    prev = 0.0
    for s in stamps:
        if s is None or not s > prev:
            return tuple((i + 1) / len(stamps) for i in range(len(stamps)))
        prev = s
    return tuple(float(s) for s in stamps)


# -- the path --------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CameraPath:
    """A loaded camera path. ``view_at(t, width, height)`` gives the view overrides at path time t in [0, 1]."""

    seconds: float | None  # the path's own duration
    fps: float | None  # the path's own rate (instant-ngp's format has none)
    size: tuple[int, int] | None  # the path's own frame size (nerfstudio's render_width x render_height)
    loop: bool
    file: str  # for messages
    app: str
    format: str  # INGP or NERFSTUDIO
    keys: np.ndarray = field(repr=False)  # one row per keyframe (instant-ngp: R T slice scale fov aperture;
    #                                       GIA: x y log-height on the image plane; nerfstudio: 4x4 c2w, fov)
    spline_order: int = 3
    timestamps: tuple[float, ...] = ()
    image_aspect: float = 1.0  # GIA: the whole image's width / height

    @property
    def n_keyframes(self) -> int:
        return len(self.keys)

    def view_at(self, t: float, width: int, height: int) -> dict:
        if not (isinstance(t, (int, float)) and 0.0 <= t <= 1.0):
            raise ConfigError(f"{self.file}: path time must be in [0, 1], got {t!r}")
        validate.integer(width, "frame width", 1)
        validate.integer(height, "frame height", 1)
        if self.format == NERFSTUDIO:
            return self._camera_view(self._nerfstudio_at(t), width, height)
        i, f = segment(self.timestamps, self.loop, float(t))
        offsets, weights = spline_weights(self.spline_order, f)
        vectors = [self.keys[self._index(i + o)] for o in offsets]
        if self.app == "gigapixel":
            return {"window": self._window(blend(vectors, weights, quaternion=False), width, height)}
        v = blend(vectors, weights, quaternion=True)
        m = np.column_stack([quat_to_matrix(v[R]), v[T]])
        return self._camera_view((c2w_from_ngp(m), v[FOV]), width, height)

    def _index(self, i: int) -> int:
        n = len(self.keys)
        return i % n if self.loop else min(max(i, 0), n - 1)

    def _nerfstudio_at(self, t: float) -> tuple[np.ndarray, float]:
        """Entry i is the picture at t = i / n; between entries, interpolate; past the last, hold it."""
        n = len(self.keys)
        p = t * n
        if abs(p - round(p)) < 1e-9 or p >= n - 1:  # on an entry (or past the last): that entry exactly
            k = min(round(p), n - 1)
            return self.keys[k][:16].reshape(4, 4), float(self.keys[k][16])
        i, f = int(math.floor(p)), p - math.floor(p)
        a, b = self.keys[i], self.keys[i + 1]
        ma, mb = a[:16].reshape(4, 4), b[:16].reshape(4, 4)
        q = slerp(matrix_to_quat(ma[:3, :3]), matrix_to_quat(mb[:3, :3]), f)
        c2w = np.eye(4)
        c2w[:3, :3] = quat_to_matrix(q)
        c2w[:3, 3] = ma[:3, 3] + f * (mb[:3, 3] - ma[:3, 3])
        return c2w, float(a[16] + f * (b[16] - a[16]))

    def _camera_view(self, pose: tuple[np.ndarray, float], width: int, height: int) -> dict:
        c2w, fov_y = pose
        fov_x = fov_other_axis(fov_y, height, width)
        if not 1.0 <= fov_x <= 170.0:
            raise ConfigError(f"{self.file}: a field of view of {fov_y:.4g} degrees vertically is {fov_x:.4g} "
                              f"across a {width}x{height} frame; ngrender renders 1..170 degrees")
        return {"camera": {"transform_matrix": np.asarray(c2w).tolist(), "fov_x": fov_x}}

    def _window(self, v: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
        """(x, y, log h) on instant-ngp's image plane -> ngrender's window (u right, v down, 0..1 the image)."""
        x, y, h = float(v[0]), float(v[1]), math.exp(float(v[2]))
        cu, cv = (x - IMAGE_CENTRE[0]) / self.image_aspect + 0.5, 0.5 - (y - IMAGE_CENTRE[1])
        w = h * (width / height) / self.image_aspect
        return (cu - w / 2, cv - h / 2, cu + w / 2, cv + h / 2)


@dataclass(frozen=True, eq=False)
class FramePlan:
    """The frames of a video over a path: frame i shows path time i / n_frames (instant-ngp's video mapping)."""

    path: CameraPath
    n_frames: int
    fps: float

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps

    def view(self, index: int, width: int, height: int) -> dict:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.n_frames:
            raise ConfigError(f"frame index {index!r} is not in 0..{self.n_frames - 1}")
        return self.path.view_at(index / self.n_frames, width, height)


def plan_frames(path: CameraPath, fps: float | None, seconds: float | None) -> FramePlan:
    """The frame count and rate: the CLI's values, else the path's own, else 30 fps and 5 s."""
    fps = validate.number(fps if fps is not None else path.fps or DEFAULT_FPS, "--fps", 0, MAX_FPS, lo_open=True)
    seconds = validate.number(seconds if seconds is not None else path.seconds or DEFAULT_SECONDS, "--seconds",
                              0, MAX_SECONDS, lo_open=True)
    n = int(math.floor(fps * seconds + 1e-6))  # instant-ngp truncates; the epsilon keeps 30 * (n / 30) at n
    if n < 1:
        raise ConfigError(f"--fps {fps:g} for --seconds {seconds:g} gives no frame; ask for more of either")
    if n > MAX_FRAMES:
        raise ConfigError(f"--fps {fps:g} for --seconds {seconds:g} gives {n} frames; at most {MAX_FRAMES}")
    return FramePlan(path, n, fps)


FRAMES_RE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")


def parse_frames(text: str, n_frames: int) -> range:
    """``--frames A:B``: Python slice semantics (A or B may be empty, negative counts from the end); a bound
    outside -n..n or an empty selection is a ConfigError."""
    match = FRAMES_RE.match(text) if isinstance(text, str) else None
    if not match:
        raise ConfigError(f"--frames must be A:B (frame numbers, either may be empty), got {text!r}")
    bounds = []
    for group, default in zip(match.groups(), (0, n_frames)):
        if group is None:
            bounds.append(default)
            continue
        value = int(group)
        if not -n_frames <= value <= n_frames:
            raise ConfigError(f"--frames {text}: {value} is out of range for a video of {n_frames} frames "
                              f"(0..{n_frames - 1})")
        bounds.append(value + n_frames if value < 0 else value)
    frames = range(bounds[0], bounds[1])
    if not frames:
        raise ConfigError(f"--frames {text} selects no frame of {n_frames}")
    return frames


# -- reading -----------------------------------------------------------------------------------------------------

def load_camera_path(path: str | Path, app: str, image_aspect: float = 1.0) -> CameraPath:
    """instant-ngp's ``base_cam.json`` or nerfstudio's ``camera_path.json``, told apart by content. ``app`` is
    the scene's; for gigapixel, ``image_aspect`` is the whole image's width / height (``image_aspect_of``)."""
    where = str(path)
    data = validate.obj(read_json(path, "camera path"), where)
    image_aspect = validate.number(image_aspect, f"{where}: image aspect", 0, 1e6, lo_open=True)
    has_ingp, has_ns = "path" in data, "camera_path" in data
    if has_ingp == has_ns:
        raise ConfigError(f"{where}: unknown camera path format: expected instant-ngp's base_cam.json (a 'path' "
                          "list of keyframes) or nerfstudio's camera_path.json (a 'camera_path' list)")
    if has_ns:
        if app == "gigapixel":
            raise ConfigError(f"{where}: a nerfstudio camera path is 3D; gigapixel paths are base_cam.json files "
                              "(docs/formats.md, 'Camera paths')")
        return _load_nerfstudio(data, where, app)
    return _load_base_cam(data, where, app, image_aspect)


def _entries(data: Mapping[str, Any], key: str, where: str) -> list:
    entries = data[key]
    if not isinstance(entries, list):
        raise validate.fail(f"{where}: {key}", "a list", entries)
    if not entries:
        raise ConfigError(f"{where}: {key} is empty: a camera path needs at least one camera")
    if len(entries) > MAX_KEYFRAMES:
        raise ConfigError(f"{where}: {key} holds {len(entries)} cameras; at most {MAX_KEYFRAMES}")
    return entries


def _load_base_cam(data: Mapping[str, Any], where: str, app: str, image_aspect: float) -> CameraPath:
    entries = _entries(data, "path", where)
    loop = validate.boolean(data.get("loop", False), f"{where}: loop")
    order = validate.integer(data.get("spline_order", 3), f"{where}: spline_order", 0, 3)
    duration = validate.number(data.get("duration_seconds", 0.0), f"{where}: duration_seconds", 0, MAX_SECONDS)
    keys, stamps = [], []
    for i, entry in enumerate(entries):
        at = f"{where}: path[{i}]"
        kf = validate.obj(entry, at, required=("R", "T", "fov"))
        q = np.array(validate.numbers(kf["R"], f"{at}.R", 4))
        if np.linalg.norm(q) < 1e-6:
            raise ConfigError(f"{at}.R must be a non-zero quaternion (x, y, z, w), got {list(kf['R'])}")
        aperture = kf.get("aperture_size", kf.get("dof", 0.0))
        vec = np.concatenate([q / np.linalg.norm(q), validate.numbers(kf["T"], f"{at}.T", 3),
                              [validate.number(kf.get("slice", 0.0), f"{at}.slice"),
                               validate.number(kf.get("scale", 1.0), f"{at}.scale"),
                               validate.number(kf["fov"], f"{at}.fov", 0, 180, lo_open=True, hi_open=True),
                               validate.number(aperture, f"{at}.aperture_size", 0)]])
        stamps.append(validate.number(kf["timestamp"], f"{at}.timestamp") if "timestamp" in kf else None)
        keys.append(_plane_key(vec, at) if app == "gigapixel" else vec)
    return CameraPath(seconds=duration or None, fps=None, size=None, loop=loop, file=where, app=app, format=INGP,
                      spline_order=order, timestamps=keyframe_times(stamps), keys=np.array(keys),
                      image_aspect=image_aspect)


def _plane_key(vec: np.ndarray, at: str) -> np.ndarray:
    """A GIA keyframe as (x, y, log h): where its optical axis meets the image plane and the height it sees."""
    axis = quat_to_matrix(vec[R])[:, 2]  # instant-ngp's cameras look along their +z column
    if axis[2] >= -1e-6 or vec[T][2] <= IMAGE_PLANE_Z:
        raise ConfigError(f"{at}: the camera does not look down at the image plane (z = {IMAGE_PLANE_Z} of NGP "
                          "space, seen from above), so it shows no window")
    distance = (IMAGE_PLANE_Z - vec[T][2]) / axis[2]
    centre = vec[T] + distance * axis
    height = 2 * distance * math.tan(math.radians(vec[FOV]) / 2)
    return np.array([centre[0], centre[1], math.log(height)])


def _load_nerfstudio(data: Mapping[str, Any], where: str, app: str) -> CameraPath:
    entries = _entries(data, "camera_path", where)
    camera_type = data.get("camera_type", "perspective")
    if camera_type != "perspective":
        raise validate.fail(f"{where}: camera_type", "'perspective' (the only camera ngrender renders)", camera_type)
    if data.get("crop") is not None:
        raise ConfigError(f"{where}: crop is not supported (ngrender renders the whole scene); remove it")
    size = None
    if "render_width" in data or "render_height" in data:
        size = (validate.integer(data.get("render_width"), f"{where}: render_width", 1, 65536),
                validate.integer(data.get("render_height"), f"{where}: render_height", 1, 65536))
    seconds = fps = None
    if "seconds" in data:  # nerfstudio renders len(camera_path) frames over `seconds`, whatever `fps` says
        seconds = validate.number(data["seconds"], f"{where}: seconds", 0, MAX_SECONDS, lo_open=True)
        fps = len(entries) / seconds
    elif "fps" in data:
        fps = validate.number(data["fps"], f"{where}: fps", 0, MAX_FPS, lo_open=True)
        seconds = len(entries) / fps
    keys = []
    for i, entry in enumerate(entries):
        at = f"{where}: camera_path[{i}]"
        cam = validate.obj(entry, at, required=("camera_to_world", "fov"))
        m = np.array(validate.numbers(cam["camera_to_world"], f"{at}.camera_to_world", 16)).reshape(4, 4)
        m[3] = (0, 0, 0, 1)  # nerfstudio reads the top 3 rows
        rot = m[:3, :3]
        if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-3) or np.linalg.det(rot) < 0:
            raise ConfigError(f"{at}.camera_to_world: its rotation part is not a rotation (scale, shear or "
                              "mirror present)")
        fov = validate.number(cam["fov"], f"{at}.fov", 0, 180, lo_open=True, hi_open=True)
        if "aspect" in cam:
            validate.number(cam["aspect"], f"{at}.aspect", 0, 1e6, lo_open=True)
        keys.append(np.concatenate([m.ravel(), [fov]]))
    return CameraPath(seconds=seconds, fps=fps, size=size, loop=False, file=where, app=app, format=NERFSTUDIO,
                      keys=np.array(keys))


# -- writing (the viewer's P key) ------------------------------------------------------------------------------

class SceneLike(Protocol):
    width: int
    height: int
    view: Mapping[str, Any]


def image_aspect_of(scene: SceneLike) -> float:
    """A GIA scene's whole-image width / height: the aspect at which its own window and frame size show square
    pixels (the scene's window (0, 0, 1, 1) at 1024x512 is a 2:1 image)."""
    x0, y0, x1, y1 = scene.view.get("window", (0.0, 0.0, 1.0, 1.0))
    return (scene.width / scene.height) * (y1 - y0) / (x1 - x0)


def camera_keyframe(camera: Camera, width: int, height: int, scale: float = 1.5) -> dict:
    """instant-ngp's keyframe for an ngrender camera seen in a ``width`` x ``height`` frame (fov along y)."""
    m = ngp_from_c2w(camera.c2w)
    return {"R": matrix_to_quat(m[:, :3]).tolist(), "T": m[:, 3].tolist(), "slice": 0.0, "scale": float(scale),
            "fov": fov_other_axis(camera.fov_x_deg, width, height), "aperture_size": 0.0, "timestamp": 0.0}


def window_keyframe(window: Sequence[float], image_aspect: float) -> dict:
    """instant-ngp's image-mode keyframe showing ``window``'s centre and height: looking straight down at the
    plane, at instant-ngp's image-mode field of view (at which distance = height seen)."""
    x0, y0, x1, y1 = (float(v) for v in window)
    height = y1 - y0
    x = ((x0 + x1) / 2 - 0.5) * image_aspect + IMAGE_CENTRE[0]
    y = IMAGE_CENTRE[1] - ((y0 + y1) / 2 - 0.5)
    distance = height / (2 * math.tan(math.radians(IMAGE_MODE_FOV) / 2))
    return {"R": [1.0, 0.0, 0.0, 0.0], "T": [x, y, IMAGE_PLANE_Z + distance], "slice": 0.0, "scale": distance,
            "fov": IMAGE_MODE_FOV, "aperture_size": 0.0, "timestamp": 0.0}


def append_keyframe(data: Mapping[str, Any] | None, keyframe: dict) -> dict:
    """A base_cam document with ``keyframe`` appended (a new one when ``data`` is None), keyframes evenly spaced
    in time as instant-ngp's editor leaves them."""
    doc = dict(data) if data is not None else {"loop": False, "time": 0.0, "path": [], "duration_seconds": 0.0,
                                               "spline_order": 3}
    frames = [*doc.get("path", []), keyframe]
    doc["path"] = [{**kf, "timestamp": (i + 1) / len(frames)} for i, kf in enumerate(frames)]
    return doc
