"""Render farm on Ray: one actor per Vulkan device holds one RenderSession; frames or strips of tiles are its
tasks; the driver streams the results back as they finish and writes each one exactly once.

The model travels once, as the model file's bytes through Ray's object store; a worker writes them to a
private temporary file and loads it with the same safe loader as any model file (model.load_model), so no
user file is ever unpickled. Workers are scheduled on the custom resource ``vulkan`` (one unit per actor), which
every node declares for its Vulkan devices (``ray start --resources '{"vulkan": N}'``): lavapipe and non-CUDA GPUs
are scheduled like any other device.

Retries are the driver's own: a worker that dies (actor killed, process killed, node gone) loses only the tasks
it held; they go back to the queue and a replacement worker is started in its place. A task whose worker died
MAX_TRIES times is an error. docs/farm.md has the whole picture and the scaling model."""
from __future__ import annotations

import fcntl
import os
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError, NgrenderError
from .fileio import read_bytes, write_bytes
from .model import Model
from .pngio import DeflatedRows, PngStripWriter, deflate_rows
from .render import strip_rows
from .scene import Scene

FARM_EXTRA = "the render farm needs Ray: install the [farm] extra (pip install 'ngrender[farm]')"
MAX_TRIES = 3              # tries per task: a task whose worker died this many times is an error
TASKS_PER_WORKER = 2       # tasks queued on a worker at once: one renders while the next waits, no idle gap
START_TIMEOUT_S = 300.0    # no worker placed and started within this is an error
START_GRACE_S = 30.0       # how long the others may take after the first before the work starts without them
CONNECT_TIMEOUT_S = 5.0    # an address nothing listens at is an error after this long
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP2_EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
CONNECT_DEADLINE_S = 20.0  # one where something listens but no Ray cluster answers: after this long
MAX_MODEL_BYTES = 1 << 32  # the largest model file sent to the workers
SLOT_LOCKS = 64            # per-node device slots a worker may claim (see _claim_device_slot)


def import_ray():
    """The ray module, or one line naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise NgrenderError(FARM_EXTRA) from None
    return ray


# -- the cluster -------------------------------------------------------------------------------------------
def _check_reachable(address: str) -> None:
    """Fail fast on an address nothing answers at (ray.init would retry for a minute or more)."""
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--ray {address}: a Ray address is HOST:PORT (GCS, e.g. head:6379), ray://HOST:PORT "
                          "(Ray client, e.g. ray://head:10001) or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as conn:
            # Ray's GCS and client server speak gRPC: an HTTP/2 server answers the connection preface with a
            # SETTINGS frame (type 4); anything else listening there does not.
            conn.sendall(HTTP2_PREFACE + HTTP2_EMPTY_SETTINGS)
            reply = conn.recv(9)
    except OSError as exc:
        raise NgrenderError(f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
                            "with `ray start --head` or leave ADDRESS out for a local one") from None
    if len(reply) < 4 or reply[3] != 4:
        raise NgrenderError(f"--ray {address}: something listens there, but not a Ray cluster (no gRPC answer); "
                            "the head's GCS port is 6379 by default, the Ray client's ray://HOST:10001")


def _connect(ray, address: str, options: dict) -> None:
    """ray.init(address) with a deadline: against a port where something other than Ray listens, Ray's client
    retries for minutes (and logs each try), so it runs in a daemon thread the process does not wait for."""
    outcome: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            ray.init(address=address, **options)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="ray-connect", daemon=True)
    thread.start()
    thread.join(CONNECT_DEADLINE_S)
    if "error" not in outcome:
        raise NgrenderError(f"--ray {address}: no Ray cluster answered within {CONNECT_DEADLINE_S:.0f} s "
                            "(something listens there, but not Ray's GCS?)")
    error = outcome["error"]
    if error is not None:
        first = str(error).strip().splitlines()
        raise NgrenderError(f"--ray {address}: cannot connect ({first[0] if first else type(error).__name__})")


def _local_device_count() -> int:
    from .vk.device import list_devices

    return len(_candidates(list_devices()))


@contextmanager
def cluster(address: str | None, actors: int | None) -> Iterator[int]:
    """Connect to the Ray cluster at ``address`` (None: start a local one on loopback, its ``vulkan`` resource
    ``actors`` or this machine's device count) and yield how many workers to start. A cluster already
    connected in this process (a test's, a notebook's) is used as it is and left running."""
    ray = import_ray()
    owned = not ray.is_initialized()
    if owned:
        common = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if address is None:
            vulkan = actors or _local_device_count()
            ray.init(num_cpus=max(1, os.cpu_count() or 1), resources={"vulkan": vulkan},
                     _node_ip_address="127.0.0.1", **common)
        else:
            _check_reachable(address)
            _connect(ray, address, common)
        if on_sigterm is not None and threading.current_thread() is threading.main_thread():
            # ray.init takes SIGTERM over (a stack dump, exit 1): a kill unwinds as the CLI's own, dropping
            # the partial output and stopping the local cluster on the way out
            signal.signal(signal.SIGTERM, on_sigterm)
    try:
        offered = int(ray.cluster_resources().get("vulkan", 0))
        if offered < 1:
            raise NgrenderError("the Ray cluster offers no 'vulkan' resource: start each node with "
                                "`ray start ... --resources '{\"vulkan\": N}'` (N: its Vulkan devices)")
        if actors is not None and actors > offered:
            raise NgrenderError(f"--ray-actors {actors}: the cluster offers {offered} 'vulkan' unit(s)")
        yield actors or offered
    finally:
        if owned:
            ray.shutdown()


# -- the worker ------------------------------------------------------------------------------------------
def _candidates(infos: list) -> list:
    """The devices a node's workers share out: its GPUs, else its CPU drivers."""
    return [d for d in infos if not d.is_cpu] or list(infos)


def _claim_device_slot() -> tuple[int, Any]:
    """A node-wide slot number, held by an advisory lock for this process's life (the kernel drops it when the
    process dies, however it dies), so the workers on one node spread over its devices."""
    folder = Path(tempfile.gettempdir()) / f"ngrender-vulkan-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    for slot in range(SLOT_LOCKS):
        handle = open(folder / f"slot-{slot}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, handle
        except OSError:
            handle.close()
    raise NgrenderError(f"more than {SLOT_LOCKS} ngrender workers on one node")


class RenderWorker:
    """A Ray actor's state: one RenderSession on one Vulkan device of its node."""

    def __init__(self, model_bytes: bytes, scene: Scene, device: str | int | None, options: dict) -> None:
        self.model_bytes, self.scene, self.device, self.options = model_bytes, scene, device, options
        self.session = None

    def start(self) -> dict:
        """Build the session (a user error here, e.g. a device limit, reaches the driver as itself)."""
        import ray

        from .session import RenderSession
        from .vk.device import list_devices

        device = self.device
        if device is None:
            slot, self._slot_lock = _claim_device_slot()
            candidates = _candidates(list_devices())
            device = candidates[slot % len(candidates)].index
        fd, name = tempfile.mkstemp(suffix=".safetensors", prefix="ngrender-model-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.model_bytes)
            self.session = RenderSession(name, self.scene, device=device, **self.options)
        finally:
            os.unlink(name)  # the model is in memory now
        self.model_bytes = None
        return {"pid": os.getpid(), "node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
                "device": self.session.device.info.name, "tile": tuple(self.session.app.max_tile)}

    def pid(self) -> int:
        return os.getpid()

    def frame(self, overrides: dict, width: int, height: int) -> bytes:
        """A whole frame as the bytes of its PNG file, those Renderer.render_to_png writes (compressed here, not
        by the driver)."""
        png, _ = self.session.renderer.render_png_bytes(width, height, self.session.view(**overrides),
                                                         check=self.session.check_validation)
        return png

    def strip(self, overrides: dict, width: int, height: int, y: int) -> DeflatedRows:
        """The strip of tiles starting at row ``y``, deflated here for the driver's PNG."""
        strip, _ = self.session.renderer.render_strip(width, height, y, self.session.view(**overrides))
        self.session.check_validation()
        return deflate_rows(strip)


# -- the driver ------------------------------------------------------------------------------------------
@dataclass
class FarmStats:
    """What a farm run did: tasks, retries after lost workers, the workers that took part."""

    tasks: int = 0
    retried: int = 0
    workers_lost: int = 0
    wall_s: float = 0.0
    finished: dict[tuple[str, int], int] = field(default_factory=dict)  # ("device @ node", pid) -> tasks

    def summary(self, unit: str) -> str:
        places = sorted({where for where, _ in self.finished})
        counts = "+".join(str(n) for _, n in sorted(self.finished.items()))
        lost = f"; {self.workers_lost} worker(s) lost, {self.retried} task(s) retried" if self.workers_lost else ""
        return (f"{self.tasks} {unit} on {len(self.finished)} Ray worker(s) in {self.wall_s:.1f} s "
                f"({self.tasks / max(self.wall_s, 1e-9):.2f} {unit}/s; {', '.join(places)}; {counts}){lost}")


def model_payload(model: Model | str | Path) -> bytes:
    """What travels to the workers: the model file's bytes (a model imported in memory: its safetensors bytes)."""
    if isinstance(model, Model):
        return model.to_bytes()
    return read_bytes(model, "model file", MAX_MODEL_BYTES)


def _failure(exc: BaseException) -> NgrenderError:
    """A task's own error (not a lost worker) as the user sees it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, NgrenderError):
        return cause
    first = str(cause or exc).strip().splitlines()
    return NgrenderError(f"a farm worker failed: {first[-1] if first else type(exc).__name__}")


class Farm:
    """The workers of one run and the driver's loop over them."""

    def __init__(self, model: Model | str | Path, scene: Scene, workers: int, device: str | int | None = None,
                 options: dict | None = None) -> None:
        self.ray = import_ray()
        self.scene, self.device, self.options = scene, device, options or {}
        self.model_ref = self.ray.put(model_payload(model))  # once; every worker reads this one object
        self.actor_class = self.ray.remote(RenderWorker).options(num_cpus=0, resources={"vulkan": 1})
        self.workers: list[Any] = []
        self.starting: dict[Any, Any] = {}  # start() ref -> actor
        self.info: dict[Any, dict] = {}      # actor -> its start() answer
        self.replacements = workers * MAX_TRIES
        try:
            for _ in range(workers):
                self._start_worker()
            # The first worker within START_TIMEOUT_S, the others a little later or while the work runs (a
            # cluster's count of 'vulkan' units can include a node that just left)
            if self._wait(list(self.starting), 1, START_TIMEOUT_S):
                self._wait(list(self.starting), workers, START_GRACE_S)
            for ref in self._wait(list(self.starting), workers, 0):
                if not self._started(ref):
                    raise NgrenderError("a farm worker died while starting (see the Ray logs)")
            if not self.workers:
                raise NgrenderError(f"no farm worker started within {START_TIMEOUT_S:.0f} s: is a 'vulkan' "
                                    "resource free on the cluster?")
        except BaseException:
            self.close()
            raise
        self.tile = self.info[self.workers[0]]["tile"]  # the same ngrender and options everywhere: one tile

    def _wait(self, refs: list, n: int, timeout: float | None) -> list:
        """ray.wait for ``n`` of ``refs`` (fewer when ``timeout`` runs out), in slices of a second so that a
        signal (SIGTERM, Ctrl-C) is handled at once. Its exception, when raised while Ray's C code waited, comes
        out wrapped in a SystemError: it is raised as itself, so the command unwinds as it does everywhere."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else min(1.0, max(0.0, deadline - time.monotonic()))
            try:
                ready = self.ray.wait(refs, num_returns=n, timeout=left)[0]
            except SystemError as exc:
                if isinstance(exc.__context__, BaseException) and not isinstance(exc.__context__, Exception):
                    raise exc.__context__ from None
                raise
            if len(ready) >= n or (deadline is not None and time.monotonic() >= deadline):
                return ready

    def _start_worker(self) -> None:
        actor = self.actor_class.remote(self.model_ref, self.scene, self.device, self.options)
        self.starting[actor.start.remote()] = actor

    def _replace_worker(self) -> None:
        """Start a worker in place of a lost one, within the farm's budget of replacements."""
        if self.replacements <= 0:
            raise NgrenderError("too many farm workers died; giving up (see the Ray logs)")
        self.replacements -= 1
        self._start_worker()

    def _started(self, ref) -> bool:
        """Take a finished start(): the worker joins (True), or it died starting (False); its own error (a
        device limit, a bad model) is raised as the user's error."""
        exceptions = self.ray.exceptions
        actor = self.starting.pop(ref)
        try:
            self.info[actor] = self.ray.get(ref)
        except (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.NodeDiedError):
            return False
        except exceptions.RayTaskError as exc:
            raise _failure(exc) from None
        self.workers.append(actor)
        return True

    def pids(self) -> list[int]:
        """The process ids of the started workers (tests kill them)."""
        return [self.info[a]["pid"] for a in self.workers]

    def run(self, indices: list[int], call: Callable[[Any, int], Any], deliver: Callable[[int, Any], None],
            ahead: Callable[[int], bool] = lambda index: True) -> FarmStats:
        """Run ``call(actor, index)`` for every index on the workers and ``deliver(index, result)`` each result
        exactly once, as it arrives. ``ahead(index)``: whether the task may be submitted yet (bounds how far the
        work runs ahead of the writing)."""
        ray, exceptions = self.ray, self.ray.exceptions
        lost_errors = (exceptions.RayActorError, exceptions.WorkerCrashedError, exceptions.ObjectLostError,
                       exceptions.NodeDiedError)
        stats = FarmStats()
        queue, done, tries = deque(indices), set(), dict.fromkeys(indices, 0)
        pending: dict[Any, tuple[int, Any]] = {}  # task ref -> (index, actor)
        load: dict[Any, int] = {}
        start = time.perf_counter()

        def lose(actor) -> None:
            """A worker died: its tasks go back to the queue, a replacement takes its place."""
            if actor not in self.workers:
                return
            self.workers.remove(actor)
            stats.workers_lost += 1
            ray.kill(actor)
            for ref, (index, owner) in list(pending.items()):
                if owner is actor:
                    del pending[ref]
                    tries[index] += 1
                    if tries[index] >= MAX_TRIES:
                        raise NgrenderError(f"task {index}: {tries[index]} farm workers died while running it; "
                                            "giving up (see the Ray logs of the lost workers)")
                    queue.appendleft(index)
                    stats.retried += 1
            self._replace_worker()

        while queue or pending:
            for depth in range(1, TASKS_PER_WORKER + 1):  # every worker one task deep, then two
                for actor in self.workers:
                    if queue and load.get(actor, 0) < depth and ahead(queue[0]):
                        index = queue.popleft()
                        pending[call(actor, index)] = (index, actor)
                        load[actor] = load.get(actor, 0) + 1
            if not self.workers and not self.starting:
                raise NgrenderError("no farm worker is left to run the remaining tasks")
            refs = list(pending) + list(self.starting)
            ready = self._wait(refs, 1, None if pending else START_TIMEOUT_S)
            if not ready:
                raise NgrenderError(f"no farm worker started within {START_TIMEOUT_S:.0f} s: is a 'vulkan' resource "
                                    "free on the cluster?")
            ref = ready[0]
            if ref in self.starting:
                if not self._started(ref):  # a replacement died starting
                    self._replace_worker()
                continue
            index, actor = pending.pop(ref)
            load[actor] -= 1
            try:
                result = ray.get(ref)
            except lost_errors:
                pending[ref] = (index, actor)  # lose() requeues it with the worker's other tasks
                load[actor] += 1
                lose(actor)
                continue
            except exceptions.RayTaskError as exc:
                raise _failure(exc) from None
            if index in done:  # cannot happen: each index is in flight once; kept as the write-once guard
                raise RuntimeError(f"task {index} finished twice")
            done.add(index)
            info = self.info[actor]
            key = (f"{info['device']} @ {info['node']}", info["pid"])
            stats.finished[key] = stats.finished.get(key, 0) + 1
            deliver(index, result)
        stats.tasks = len(done)
        stats.wall_s = time.perf_counter() - start
        return stats

    def close(self) -> None:
        for actor in self.workers + list(self.starting.values()):
            self.ray.kill(actor)
        self.workers, self.starting = [], {}

    def __enter__(self) -> "Farm":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- what the commands run -------------------------------------------------------------------------------------
def render_frames(farm: Farm, views: dict[int, dict], width: int, height: int,
                  write: Callable[[int, bytes], None],
                  progress: Callable[[int], None] | None = None) -> FarmStats:
    """Frames on the farm: ``views`` maps a frame's index to its view overrides (RenderSession.view); each
    finished frame arrives as the bytes of its PNG file (the bytes Renderer.render_to_png writes) and is written
    (e.g. fileio.write_bytes to video.FrameFolder.path(index)) as it arrives, once."""
    def deliver(index: int, png: bytes) -> None:
        write(index, png)
        if progress:
            progress(1)

    return farm.run(sorted(views), lambda actor, i: actor.frame.remote(views[i], width, height), deliver)


def render_path_frames(farm: Farm, plan, indices: list[int], width: int, height: int,
                       frame_path: Callable[[int], Path], overrides: dict | None = None,
                       progress: Callable[[int], None] | None = None) -> FarmStats:
    """Frames ``indices`` of a camera path (``plan``: camera_path.FramePlan; the driver computes each frame's
    view from its index) on the farm, each written atomically to ``frame_path(index)`` (video.FrameFolder.path)
    as it arrives: the same file `video` writes without the farm. ``overrides``: the other view settings
    (``mode``)."""
    views = {i: {**(overrides or {}), **plan.view(i, width, height)} for i in indices}
    return render_frames(farm, views, width, height, lambda i, png: write_bytes(frame_path(i), png), progress)


def render_path_on_ray(address: str | None, actors: int | None, model: Model | str | Path, scene: Scene, plan,
                       indices: list[int], width: int, height: int, frame_path: Callable[[int], Path],
                       device: str | int | None = None, options: dict | None = None, overrides: dict | None = None,
                       progress: Callable[[int], None] | None = None) -> FarmStats:
    """What `video --ray [ADDRESS]` runs: connect (or start a local cluster), start the workers (no more than
    there are frames) and render ``indices`` of ``plan`` into ``frame_path(index)`` (render_path_frames)."""
    with cluster(address, actors) as workers, \
            Farm(model, scene, min(workers, len(indices)), device, options) as farm:
        return render_path_frames(farm, plan, indices, width, height, frame_path, overrides, progress)


def strips_ahead(workers: int) -> int:
    """How many strips may be rendered beyond the first one not yet written: enough to keep every worker busy;
    the driver holds at most this many strips in memory."""
    return max(2, TASKS_PER_WORKER * workers)


def render_png(farm: Farm, out: str | Path, overrides: dict, width: int, height: int,
               progress: Callable[[int], None] | None = None) -> FarmStats:
    """A large frame on the farm, one task per strip of tiles (a row of the workers' tiles), written in order
    into a PNG that appears only when complete. Workers deflate their strips (pngio.deflate_rows), so the
    driver only appends bytes. A strip that arrives early waits in memory, compressed; at most
    ``strips_ahead(workers)`` strips are held."""
    rows = strip_rows(height, farm.tile)
    starts = [y for y, _ in rows]
    limit = strips_ahead(len(farm.workers))
    waiting: dict[int, DeflatedRows] = {}
    writer = PngStripWriter(out, width, height)
    next_strip = 0

    def deliver(index: int, strip: DeflatedRows) -> None:
        nonlocal next_strip
        waiting[index] = strip
        while next_strip in waiting:
            writer.write_deflated(waiting.pop(next_strip))
            next_strip += 1
            if progress:
                progress(rows[next_strip - 1][1])

    try:
        stats = farm.run(list(range(len(rows))),
                         lambda actor, i: actor.strip.remote(overrides, width, height, starts[i]), deliver,
                         ahead=lambda index: index < next_strip + limit)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return stats
