"""The render farm on a real Ray cluster on loopback (one per module: starting Ray costs seconds): frames and
strips of tiles through 2 workers equal the single-process output byte for byte, a worker killed mid-run
(ray.kill, SIGKILL of its process) loses nothing and writes nothing twice, and the user's mistakes are one line."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import ROOT, assert_one_error_line, run_cli

ray = pytest.importorskip("ray", reason="the render farm needs the [farm] extra (Ray); ./run.sh installs it")

SDF = ROOT / "scenes" / "sdf_bunny.json"
GIGAPIXEL = ROOT / "scenes" / "gigapixel.json"
FRAMES, SIZE = 48, (64, 64)


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster owned by this module, on this machine: a head node with 2 'vulkan' units (ray.cluster_utils
    starts real GCS and raylet processes, and can add and remove nodes); yields it, connected. Its nodes take
    the machine's own address: given 127.0.0.1 instead, ray.init's address canonicalisation cannot reach it."""
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 2, "resources": {"vulkan": 2}, "include_dashboard": False, "object_store_memory": 256 << 20}
    ray_cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        ray.init(address=ray_cluster.address, log_to_driver=False, logging_level="error")
        yield ray_cluster
    finally:
        ray.shutdown()
        ray_cluster.shutdown()


@pytest.fixture(scope="module")
def path_frames(tmp_path_factory) -> tuple[dict[int, dict], dict[int, bytes]]:
    """The 48 frames of the example instant-ngp path (2 s at 24 frames/s; each frame's view from its index)
    and the PNG files one process writes for them."""
    from ngrender.camera_path import load_camera_path, plan_frames
    from ngrender.session import RenderSession

    plan = plan_frames(load_camera_path(ROOT / "scenes" / "paths" / "orbit_base_cam.json", "sdf"), 24.0, 2.0)
    assert plan.n_frames == FRAMES
    views = {i: plan.view(i, *SIZE) for i in range(FRAMES)}
    folder = tmp_path_factory.mktemp("single")
    with RenderSession.from_scene(SDF) as session:
        for i, v in views.items():
            session.renderer.render_to_png(folder / f"{i}.png", *SIZE, session.view(**v))
    return views, {i: (folder / f"{i}.png").read_bytes() for i in views}


def run_frames(farm, path_frames, kill=None):
    """The path's frames on the farm (``kill()`` after the 5th arrives): each written once, each the file one
    process writes."""
    from ngrender.farm import render_frames

    views, expected = path_frames
    written: dict[int, int] = {}
    files: dict[int, bytes] = {}  # the PNG files' bytes

    def write(index: int, png: bytes) -> None:
        written[index] = written.get(index, 0) + 1
        files[index] = png
        if kill is not None and len(written) == 5:
            kill()

    stats = render_frames(farm, views, *SIZE, write)
    assert written == dict.fromkeys(range(FRAMES), 1)  # every frame, each written once
    for i in range(FRAMES):
        assert files[i] == expected[i], f"frame {i}"
    return stats


def test_frames_through_two_workers_equal_one_process_and_survive_killed_workers(cluster, path_frames):
    from ngrender.farm import Farm
    from ngrender.scene import open_scene

    with Farm(*reversed(open_scene(SDF)), 2) as farm:
        assert len(set(farm.pids())) == 2 and os.getpid() not in farm.pids()
        stats = run_frames(farm, path_frames)
        assert stats.tasks == FRAMES and stats.workers_lost == 0 and len(stats.finished) == 2

        stats = run_frames(farm, path_frames, lambda: ray.kill(farm.workers[0]))  # the actor killed through Ray
        assert stats.workers_lost == 1 and stats.retried >= 1, stats
        assert len(farm.workers) + len(farm.starting) == 2  # a replacement takes its place

        # its process killed under Ray's feet
        stats = run_frames(farm, path_frames, lambda: os.kill(farm.pids()[0], signal.SIGKILL))
        assert stats.workers_lost == 1 and stats.retried >= 1, stats


def test_video_frames_on_ray_are_the_files_one_process_writes(cluster, path_frames, tmp_path):
    """What `video --ray` runs: frames 40:48 of the path into a frames folder, each file as without the farm."""
    from ngrender.camera_path import load_camera_path, plan_frames
    from ngrender.farm import render_path_on_ray
    from ngrender.scene import open_scene

    scene, model = open_scene(SDF)
    plan = plan_frames(load_camera_path(ROOT / "scenes" / "paths" / "orbit_base_cam.json", "sdf"), 24.0, 2.0)
    todo = list(range(40, FRAMES))
    stats = render_path_on_ray(cluster.address, None, model, scene, plan, todo, *SIZE,
                               lambda i: tmp_path / f"frame_{i:05d}.png")
    assert stats.tasks == len(todo) and len(stats.finished) == 2
    assert sorted(f.name for f in tmp_path.iterdir()) == [f"frame_{i:05d}.png" for i in todo]
    for i in todo:
        assert (tmp_path / f"frame_{i:05d}.png").read_bytes() == path_frames[1][i]


def test_video_with_ray_writes_the_frames_video_writes(cluster, tmp_path):
    """`video --ray ADDRESS` against `video`: the same frame files (8 frames of the example path)."""
    common = ["video", SDF, "--path", ROOT / "scenes" / "paths" / "orbit_base_cam.json", "--fps", "4",
              "--seconds", "2", "--width", "48", "--height", "40"]
    run_cli(*common, "--out", f"{tmp_path / 'plain'}/", check=True)
    result = run_cli(*common, "--out", f"{tmp_path / 'farmed'}/", "--ray", cluster.address, check=True)
    assert "rendered 8 frames" in result.stdout, result.stdout
    plain = sorted((tmp_path / "plain").glob("frame_*.png"))
    assert len(plain) == 8
    for frame in plain:
        assert (tmp_path / "farmed" / frame.name).read_bytes() == frame.read_bytes(), frame.name


def test_a_node_removed_mid_run_loses_nothing(cluster, path_frames):
    """A second node joins with 1 'vulkan' unit; of 3 workers one runs there; the node is removed mid-run
    (its raylet killed, and with it its worker): its tasks finish on the head's workers."""
    from ngrender.farm import Farm
    from ngrender.scene import open_scene

    node = cluster.add_node(num_cpus=1, resources={"vulkan": 1})
    with Farm(*reversed(open_scene(SDF)), 3) as farm:
        (pid,) = [farm.info[a]["pid"] for a in farm.workers if farm.info[a]["node_id"] == node.node_id]

        def remove_node() -> None:
            cluster.remove_node(node, allow_graceful=False)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:  # the worker goes with its raylet
                time.sleep(0.05)

        stats = run_frames(farm, path_frames, remove_node)
        assert not _alive(pid)
        assert stats.workers_lost == 1 and stats.retried >= 1, stats


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_gigapixel_strips_through_ray_equal_one_process(cluster, tmp_path):
    """render --ray ADDRESS: 16 strips of 1024x64 tiles over 2 workers, the PNG equal to a plain render's."""
    size = ["--width", "2048", "--height", "1024", "--tile", "1024x64"]
    plain, farmed = tmp_path / "plain.png", tmp_path / "farmed.png"
    run_cli("render", GIGAPIXEL, "--out", plain, *size, check=True)
    result = run_cli("render", GIGAPIXEL, "--out", farmed, *size, "--ray", cluster.address, "--ray-actors", "2",
                     check=True)
    assert "16 strips on 2 Ray worker(s)" in result.stdout, result.stdout
    assert result.stderr == ""  # nothing of Ray's own logging reaches the user
    assert farmed.read_bytes() == plain.read_bytes()


def test_sigterm_mid_render_keeps_what_was_there(cluster, tmp_path):
    """A kill while strips are coming in: one line, exit 143, the file that was at --out untouched, no
    temporary file left, the workers stopped."""
    out = tmp_path / "world.png"
    out.write_bytes(b"the user's file")
    proc = subprocess.Popen([sys.executable, "-m", "ngrender", "render", str(GIGAPIXEL), "--out", str(out),
                             "--width", "4096", "--height", "4096", "--tile", "1024x64", "--ray", cluster.address,
                             "--ray-actors", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".world.png.*.tmp")) and time.monotonic() < deadline:  # strips are arriving
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (143, "ngrender: terminated\n")
    assert out.read_bytes() == b"the user's file" and sorted(tmp_path.iterdir()) == [out]


def test_unreachable_address_is_one_line_within_seconds(tmp_path):
    start = time.monotonic()
    result = run_cli("render", GIGAPIXEL, "--out", tmp_path / "x.png", "--height", "2048", "--tile", "1024x1024",
                     "--ray", "127.0.0.1:9")
    assert_one_error_line(result, "no Ray cluster answers there")
    assert time.monotonic() - start < 20
    assert not (tmp_path / "x.png").exists()


def test_an_address_where_something_else_listens_is_one_line(tmp_path):
    """Something listening that is not Ray (here: an SSH-like banner) is refused at once, not retried for
    minutes by Ray's client."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = run_cli("render", GIGAPIXEL, "--out", tmp_path / "x.png", "--height", "2048",
                         "--ray", f"127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    assert_one_error_line(result, "something listens there, but not a Ray cluster")


def test_ray_missing_is_one_line_naming_the_extra(tmp_path):
    """As without the extra installed: ``import ray`` fails."""
    code = "import sys; sys.modules['ray'] = None; from ngrender.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "render", str(GIGAPIXEL), "--out", str(tmp_path / "x.png"),
                           "--ray"], capture_output=True, text=True, cwd=ROOT)
    assert_one_error_line((proc.returncode, proc.stdout, proc.stderr), "install the [farm] extra")


@pytest.mark.parametrize("args, fragment", [
    (["--width", "256", "--height", "256", "--ray"], "is one strip of 1024x1024 tiles"),
    (["--ray-actors", "2"], "add --ray"),
    (["--height", "2048", "--pipeline", "ngpc", "--ray"], "it does not run on the farm"),
    (["--height", "2048", "--ray", "nowhere"], "a Ray address is HOST:PORT"),
])
def test_farm_usage_mistakes_are_one_line(tmp_path, args, fragment):
    out = tmp_path / "x.png"
    assert_one_error_line(run_cli("render", GIGAPIXEL, "--out", out, *args), fragment)
    assert not out.exists()
