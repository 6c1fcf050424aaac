"""Work spread over a Ray cluster (``--engine ray``): one Ray task per item, results handled on the driver.

Ray (the ``cluster`` extra) does the scheduling, placement and the one retry of a task whose worker
or node died; this module only connects, checks that every node can do the work, submits the
tasks and hands each result (or each task lost twice) back to the caller on the driver, which
records it as the local engine does. Every node must see the input and output folders at the same
paths (shared storage) and run the same medtalk version: both are checked on every node before
any work starts.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import MedtalkError
from .io.files import display_path
from .stopping import check_stop

log = logging.getLogger(__name__)

RAY_EXTRA = 'pip install "medtalk[cluster]"'
POLL_S = 0.25  # how often the driver looks for Ctrl-C while tasks run
PROBE_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RayOptions:
    """Where and how big: ``address`` None starts Ray on this machine only (``ray.init()``)."""

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0


@dataclass(frozen=True)
class NodeReport:
    """What a probe task found on one node."""

    node_id: str
    host: str
    version: str
    seen: tuple[bool, ...]  # one per checked path, in order


def import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise MedtalkError(f"--engine ray needs Ray, which is not installed: {RAY_EXTRA}") from err
    return ray


def check_address(address: str) -> None:
    """Fail fast, in one line, when nothing listens at ``host:port`` (ray.init would wait a long time)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise MedtalkError(f"--address {address!r}: give the head node as HOST:PORT (e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise MedtalkError(
            f"no Ray cluster answers at {address} ({err.strerror or err}); start one with `ray start --head "
            f"--port {port}` on the head machine and `ray start --address {address}` on each other machine, "
            "or leave out --address to run Ray on this machine alone"
        ) from err


def node_problems(reports: Sequence[NodeReport], paths: Sequence[Path], version: str = __version__) -> list[str]:
    """One line per node that cannot take part: another medtalk version, or a folder it cannot see."""
    problems = []
    for r in reports:
        where = f"Ray node {r.host} ({r.node_id[:8]})"
        if r.version != version:
            problems.append(
                f"{where} runs medtalk {r.version}, this driver {version}: install the same version on every node"
            )
        for path, seen in zip(paths, r.seen, strict=True):
            if not seen:
                problems.append(
                    f"{where} cannot see {display_path(path)}: put the videos and --out on storage that every "
                    "node mounts at the same path (NFS, a cluster file system)"
                )
    return problems


def _probe(paths: list[str], token: str) -> NodeReport:
    """Runs on one node: its medtalk version and whether it sees each path (a token file: with its content)."""
    import ray

    from . import __version__ as node_version

    seen = []
    for p in paths:
        try:
            seen.append(Path(p).read_text() == token if p.endswith(".probe") else Path(p).exists())
        except OSError:
            seen.append(False)
    node = ray.get_runtime_context().get_node_id()
    return NodeReport(node, socket.gethostname(), node_version, tuple(seen))


@dataclass
class RaySession:
    """A connected driver; :meth:`run` submits one task per item."""

    ray: Any
    options: RayOptions
    nodes: int
    cpus: float

    def run(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        args_of: Callable[[Any], tuple[Any, ...]],
        on_done: Callable[[Any, Any, str], None],
        on_lost: Callable[[Any, str], None],
    ) -> None:
        """Run ``fn(*args_of(item))`` as a task per item. ``on_done(item, value, node_id)`` gets each result;
        ``on_lost(item, why)`` each item whose worker or node died on both tries (Ray retries once).
        An exception raised by ``fn`` itself is raised here, as the local engine would raise it."""
        ray = self.ray
        task = ray.remote(_call).options(
            num_cpus=self.options.cpus_per_task,
            num_gpus=self.options.gpus_per_task,
            max_retries=1,
            retry_exceptions=False,
            scheduling_strategy="SPREAD",
        )
        in_flight = max(2, int(2 * self.cpus / max(self.options.cpus_per_task, 1e-3)))
        queue = list(reversed(items))
        pending: dict[Any, Any] = {}
        try:
            while queue or pending:
                while queue and len(pending) < in_flight:
                    item = queue.pop()
                    pending[task.remote(fn, *args_of(item))] = item
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                check_stop()
                for ref in ready:
                    item = pending.pop(ref)
                    try:
                        value, node = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        raise err.as_instanceof_cause() from None
                    except ray.exceptions.RayError as err:
                        on_lost(item, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
                        continue
                    on_done(item, value, node)
        except BaseException:
            for ref in pending:
                with suppress(Exception):
                    ray.cancel(ref, force=True)
            raise


def _call(fn: Callable[..., Any], *args: Any) -> tuple[Any, str]:
    import ray

    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up lines
    return fn(*args), ray.get_runtime_context().get_node_id()


@contextmanager
def ray_session(options: RayOptions, shared: Sequence[Path], writable: Path) -> Iterator[RaySession]:
    """Connect (or start Ray here), check every node, yield, disconnect.

    ``shared``: paths every node must see (inputs); ``writable``: a folder where a probe file is
    written by the driver and must be read back by every node (the output storage)."""
    ray = import_ray()
    if options.address:
        check_address(options.address)
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": log.isEnabledFor(logging.DEBUG)}
    if not options.address:
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=options.address, **kwargs)
    except (ConnectionError, RuntimeError) as err:
        raise MedtalkError(f"Ray: cannot connect to {options.address or 'a local cluster'}: {err}") from err
    try:
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
        _check_nodes(ray, nodes, list(shared), Path(writable))
        cpus = sum(n["Resources"]["CPU"] for n in nodes)
        log.info("Ray: %d nodes, %g CPUs", len(nodes), cpus)
        yield RaySession(ray, options, len(nodes), cpus)
    finally:
        ray.shutdown()


def _check_nodes(ray: Any, nodes: list[dict[str, Any]], shared: list[Path], writable: Path) -> None:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe_file = writable / f".medtalk-{token}.probe"
    writable.mkdir(parents=True, exist_ok=True)
    probe_file.write_text(token)
    paths = [*(p.resolve() for p in shared), probe_file]
    try:
        probe = ray.remote(num_cpus=0)(_probe)
        refs = [
            probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                [str(p) for p in paths], token
            )
            for n in nodes
        ]
        try:
            reports = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.RayError as err:
            raise MedtalkError(
                f"Ray: a node could not run medtalk ({str(err).splitlines()[0]}); install medtalk with the extras "
                "of the stages you run on every node"
            ) from err
    finally:
        probe_file.unlink(missing_ok=True)
    problems = node_problems(reports, [*shared, writable])
    if problems:
        raise MedtalkError("; ".join(problems))
