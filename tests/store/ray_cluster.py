"""A real Ray cluster on loopback for tests: a head node and worker nodes, each a `ray start`.

Each node is its own ``ray start --block`` process (its own process group), with bounded ports
picked free at start (GCS, node manager, object manager, agents, metrics, dashboard and a
worker port range) and one CPU; the nodes share one temporary folder. Stopping kills exactly
the processes the nodes started (each ``ray start`` and its descendants: GCS, raylet, agents,
the workers and actors the raylet forked), by process id — not ``ray stop``, which would also
end any other Ray cluster on the machine (another test run's, a user's).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Ports each node gets: 8 named ones (see :func:`_node_args`) then its workers' range.
_NAMED_PORTS = 8
_WORKER_PORTS = 32


@dataclass
class RayCluster:
    """A local cluster, started or starting: ``address`` and how to stop it.

    Attributes:
        head: The head node's GCS address (known before the nodes are up).
        env: The environment the nodes run with (their workers import harken from it).
        temp_dir: Ray's session folder root (the nodes' logs are there too).
    """

    head: str
    env: dict[str, str]
    temp_dir: Path
    timeout: float = 90.0
    nodes: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _failure: BaseException | None = None
    _starter: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of the head node, once every node has started."""
        self.wait()
        return self.head

    def wait(self) -> None:
        """Until every node has started; raises what stopped one from starting."""
        if not self._ready.wait(2 * self.timeout):
            raise RuntimeError(f"the Ray cluster did not start:\n{self.log_tail()}")
        if self._failure is not None:
            raise RuntimeError(f"the Ray cluster did not start: {self._failure}") from (
                self._failure
            )

    def stop(self) -> None:
        """Kill every process the nodes started (worker nodes first), then the temp folder."""
        import psutil

        if self._starter is not None and self._starter is not threading.current_thread():
            self._starter.join(2 * self.timeout)
        for proc in reversed(self.nodes):
            try:
                family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
            except psutil.NoSuchProcess:
                family = []
            for p in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    p.send_signal(signal.SIGKILL)
            psutil.wait_procs(family, timeout=15)
            proc.wait(timeout=15)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            out.append(f"--- {log.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


def _free_block(n: int, tries: int = 200) -> int:
    """First port of ``n`` consecutive ports that are free on every interface now."""
    rng = random.Random()
    for _ in range(tries):
        base = rng.randrange(20000, 60000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports found")


def _node_args(base: int, head: bool) -> list[str]:
    args = [
        f"--node-manager-port={base + 1}",
        f"--object-manager-port={base + 2}",
        f"--runtime-env-agent-port={base + 3}",
        f"--metrics-export-port={base + 4}",
        f"--dashboard-agent-listen-port={base + 5}",
        f"--dashboard-agent-grpc-port={base + 6}",
        f"--min-worker-port={base + _NAMED_PORTS}",
        f"--max-worker-port={base + _NAMED_PORTS + _WORKER_PORTS - 1}",
    ]
    if head:
        args += [f"--port={base}", f"--dashboard-port={base + 7}", "--include-dashboard=false"]
    return args


def _wait_started(proc: subprocess.Popen, log: Path, cluster: RayCluster) -> None:
    """Until the node's ``ray start`` says it started (it then blocks), or fail with its log."""
    deadline = time.monotonic() + cluster.timeout
    while time.monotonic() < deadline:
        if "Ray runtime started" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise RuntimeError(
        f"a Ray node did not start within {cluster.timeout:.0f} s:\n{cluster.log_tail()}"
    )


def _wait_listening(port: int, proc: subprocess.Popen, cluster: RayCluster) -> None:
    """Until something accepts connections on ``127.0.0.1:port`` (the head's GCS)."""
    deadline = time.monotonic() + cluster.timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the head node's GCS did not listen:\n{cluster.log_tail()}")


def start_cluster(
    nodes: int = 2, cpus_per_node: int = 1, timeout: float = 90.0, background: bool = False
) -> RayCluster:
    """Start a head node and ``nodes - 1`` worker nodes on 127.0.0.1 (``ray start``).

    Args:
        nodes: Nodes, the head included.
        cpus_per_node: CPUs each node offers.
        timeout: Seconds each node may take to start.
        background: Return at once and start the nodes in a thread (``address`` waits for
            them), so that a test can prepare its reference meanwhile. Always :meth:`stop`.
    """
    env = dict(os.environ)
    paths = [str(REPO / "src"), str(REPO / "tests"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"] = "disabled"  # loopback only; ignore any ~/.ray/auth_token
    temp_dir = Path(tempfile.mkdtemp(prefix="rayh-", dir="/tmp"))  # short: unix socket paths
    bases = [_free_block(_NAMED_PORTS + _WORKER_PORTS) for _ in range(nodes)]
    cluster = RayCluster(f"127.0.0.1:{bases[0]}", env, temp_dir, timeout)
    common = [
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={cpus_per_node}",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]

    ray_start = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block"]

    def start() -> None:
        try:
            for i, base in enumerate(bases):
                role = ["--head"] if i == 0 else [f"--address={cluster.head}"]
                log = temp_dir / f"node{i}.log"
                cluster.logs.append(log)
                with open(log, "wb") as out:
                    proc = subprocess.Popen(
                        [*ray_start, *role, *common, *_node_args(base, head=i == 0)],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                cluster.nodes.append(proc)
                if i == 0:  # worker nodes may start once the head's GCS listens (they retry)
                    _wait_listening(base, proc, cluster)
            for proc, log in zip(cluster.nodes, cluster.logs, strict=True):
                _wait_started(proc, log, cluster)
        except BaseException as exc:
            cluster._failure = exc
        finally:
            cluster._ready.set()

    if background:
        cluster._starter = threading.Thread(target=start, name="ray-cluster", daemon=True)
        cluster._starter.start()
        return cluster
    start()
    try:
        cluster.wait()
    except BaseException:
        cluster.stop()
        raise
    return cluster
