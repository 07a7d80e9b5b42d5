"""A federation on one machine: one bus and three index nodes, each its own process.

East and West consume every event; Secondary only the historical experiment, by a
pattern subscription on the ``<mip_era>.<experiment_id>.<source_id>`` topics the
playground publishes to. Each node has its own data directory, database and port.
The running playground is described in ``playground.json`` in its directory, which
``down`` reads to stop it and ``strato generate --publish`` reads to find its bus.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from strato.errors import Conflict, InvalidInput, NotFound, Unavailable
from strato.redact import mask_secrets, mask_url

STATE_FILE = "playground.json"
STRATEGY = "drs"
# Secondary's filter: any project, the historical experiment, any model.
HISTORICAL_ONLY = r"[^.]+\.historical\.[^.]+"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    topics: str | None = None


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("east"),
    NodeSpec("west"),
    NodeSpec("secondary", HISTORICAL_ONLY),
)


@dataclass
class RunningNode:
    name: str
    url: str
    pid: int
    data_dir: str
    log: str
    topics: str | None


@dataclass
class Playground:
    directory: str
    bus_url: str
    topic_strategy: str
    nodes: list[RunningNode] = field(default_factory=list)
    host: str = "127.0.0.1"
    # One database per node, "{node}" standing for its name; None for SQLite files.
    database_url: str | None = None

    @property
    def state_path(self) -> Path:
        return Path(self.directory) / STATE_FILE

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        # Readable by its owner only: the URLs in it may carry passwords.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self), indent=2))
        tmp.replace(self.state_path)

    def node(self, name: str) -> RunningNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise NotFound(f"the playground has no node {name!r}")


def load(directory: Path) -> Playground | None:
    """The playground described in ``directory``, or None when none was started there."""
    path = Path(directory) / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        nodes = [RunningNode(**n) for n in raw.pop("nodes")]
        return Playground(**raw, nodes=nodes)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"{path} is not a playground description: {exc}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(directory: Path) -> Playground | None:
    """The playground in ``directory`` if at least one of its nodes still runs."""
    found = load(directory)
    if found is None or not any(_alive(n.pid) for n in found.nodes):
        return None
    return found


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _node_env(
    spec: NodeSpec,
    *,
    data_dir: Path,
    port: int,
    host: str,
    bus_url: str,
    peers: Mapping[str, str],
    database_url: str | None,
) -> dict[str, str]:
    env = dict(os.environ)
    # A playground node takes nothing from the caller's strato configuration but its
    # logging: its own directory, database, port, bus and filter.
    for key in list(env):
        if key.startswith("STRATO_") and not key.startswith("STRATO_LOG_"):
            del env[key]
    env.update(
        {
            "STRATO_DATA_DIR": str(data_dir),
            "STRATO_NODE_NAME": spec.name,
            "STRATO_HOST": host,
            "STRATO_PORT": str(port),
            "STRATO_BUS_URL": bus_url,
            "STRATO_DATA_DEMO": "false",
            "STRATO_CATALOG_TOPIC_STRATEGY": STRATEGY,
            "STRATO_CATALOG_PEERS": json.dumps(dict(peers)),
        }
    )
    if spec.topics:
        env["STRATO_CATALOG_TOPICS"] = spec.topics
    if database_url:
        env["STRATO_DATABASE_URL"] = database_url.replace("{node}", spec.name)
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    why = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            # What a node printed before its logging was set up is not masked yet.
            tail = mask_secrets(tail)
            raise Unavailable(f"node at {url} exited with {process.returncode}:\n{tail}")
        try:
            answer = httpx.get(f"{url}/readyz", timeout=1.0)
            if answer.status_code == 200:
                return
            why = f" ({answer.json().get('detail', answer.status_code)})"
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
        time.sleep(0.2)
    raise Unavailable(f"node at {url} did not become ready within {timeout:.0f} s{why}; see {log}")


def require_bus(url: str, directory: Path) -> None:
    """Connect to the playground's bus once, so that an unreachable one is said before any
    node starts (the nodes would only keep retrying)."""
    import asyncio

    from strato.bus import open_bus

    async def probe() -> None:
        bus = open_bus(url, directory)
        try:
            await bus.start()
        finally:
            await bus.close()

    try:
        asyncio.run(probe())
    except Unavailable as exc:
        raise Unavailable(
            f"{exc.detail}: start it, or pass --bus a bus that runs; the playground did not start"
        ) from None


def up(
    directory: Path,
    *,
    bus_url: str | None = None,
    host: str = "127.0.0.1",
    ports: Sequence[int] = (8101, 8102, 8103),
    database_url: str | None = None,
    timeout: float = 60.0,
) -> Playground:
    """Start the bus and the three nodes; return once every node answers /readyz.

    ``database_url`` may name one database per node with ``{node}`` in it (for example
    ``postgresql://host/pg_{node}``), created on its server when missing; by default
    each node has a SQLite file. ``ports`` of 0 pick free ones.
    """
    directory = Path(directory).resolve()
    if running(directory) is not None:
        raise Conflict(
            f"a playground already runs in {directory}; `strato playground restart NODE` "
            "restarts one of its nodes, `strato playground down` stops it"
        )
    if len(ports) != len(NODES):
        raise InvalidInput(f"give {len(NODES)} ports, one per node")
    if database_url and "{node}" not in database_url:
        raise InvalidInput("the database URL needs {node} in it: each node has its own database")
    directory.mkdir(parents=True, exist_ok=True)
    bus = bus_url or f"sqlite:///{directory / 'bus.db'}"
    require_bus(bus, directory)
    if database_url:
        for spec in NODES:
            _create_database(database_url, spec.name)
    chosen = [p or _free_port(host) for p in ports]
    playground = Playground(str(directory), bus, STRATEGY, host=host, database_url=database_url)
    urls = {spec.name: f"http://{host}:{port}" for spec, port in zip(NODES, chosen, strict=True)}
    started: list[tuple[subprocess.Popen[bytes], RunningNode]] = []
    try:
        for spec, port in zip(NODES, chosen, strict=True):
            process, node = _launch(playground, spec, port, urls)
            started.append((process, node))
            playground.nodes.append(node)
        playground.save()
        for process, node in started:
            _wait_healthy(node.url, process, Path(node.log), timeout)
    except BaseException:
        _stop_pids([n.pid for _, n in started])
        playground.state_path.unlink(missing_ok=True)
        raise
    return playground


def restart(directory: Path, name: str, *, timeout: float = 60.0) -> RunningNode:
    """Stop one node of the playground in ``directory`` (if it runs) and start it again
    on its port, with its data directory, database, bus and filter; the other nodes go
    on. Returns once it answers /readyz."""
    directory = Path(directory).resolve()
    found = load(directory)
    if found is None:
        raise NotFound(f"no playground runs in {directory}; `strato playground up` first")
    old = found.node(name)
    spec = next(s for s in NODES if s.name == name)
    _stop_pids([old.pid])
    require_bus(found.bus_url, directory)
    if found.database_url:
        _create_database(found.database_url, name)
    urls = {n.name: n.url for n in found.nodes}
    port = int(old.url.rsplit(":", 1)[1])
    process, node = _launch(found, spec, port, urls)
    found.nodes = [node if n.name == name else n for n in found.nodes]
    found.save()
    try:
        _wait_healthy(node.url, process, Path(node.log), timeout)
    except BaseException:
        _stop_pids([node.pid])
        raise
    return node


def _launch(
    playground: Playground, spec: NodeSpec, port: int, urls: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], RunningNode]:
    """Start ``spec``'s node process; ``urls`` are every node's, its peers among them."""
    data_dir = Path(playground.directory) / spec.name
    data_dir.mkdir(exist_ok=True)
    log = data_dir / "node.log"
    env = _node_env(
        spec,
        data_dir=data_dir,
        port=port,
        host=playground.host,
        bus_url=playground.bus_url,
        peers={name: url for name, url in urls.items() if name != spec.name},
        database_url=playground.database_url,
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "strato", "up"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the caller's terminal does not reach it.
            start_new_session=True,
        )
    url = f"http://{playground.host}:{port}"
    return process, RunningNode(spec.name, url, process.pid, str(data_dir), str(log), spec.topics)


def _create_database(database_url: str, node: str) -> None:
    """Create ``node``'s database on its server when it does not exist yet."""
    from sqlalchemy.exc import DBAPIError

    from strato import db

    url = database_url.replace("{node}", node)
    try:
        db.create_database_if_missing(url)
    except DBAPIError as exc:
        reason = mask_secrets(str(exc.orig or exc).strip().splitlines()[0])
        raise Unavailable(
            f"cannot create the database of node {node} at {mask_url(url)}: {reason}"
        ) from None


def _stop_pids(pids: Sequence[int], grace: float = 15.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)


def _reap(pid: int) -> None:
    # Our own children stay zombies (and "alive" to kill 0) until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def down(directory: Path) -> Playground:
    """Stop the playground's nodes; the data stays for the next ``up``."""
    found = load(Path(directory).resolve())
    if found is None:
        raise NotFound(f"no playground runs in {Path(directory).resolve()}")
    _stop_pids([n.pid for n in found.nodes])
    found.state_path.unlink(missing_ok=True)
    return found


def counts(playground: Playground, timeout: float = 5.0) -> dict[str, int | None]:
    """How many items each node holds (None for a node that does not answer)."""
    result: dict[str, int | None] = {}
    for node in playground.nodes:
        try:
            response = httpx.get(f"{node.url}/stac/search", params={"limit": 1}, timeout=timeout)
            result[node.name] = int(response.json()["numberMatched"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            result[node.name] = None
    return result


def describe(playground: Playground) -> dict[str, Any]:
    shown = asdict(playground)
    shown["bus_url"] = mask_url(playground.bus_url)
    if playground.database_url:
        shown["database_url"] = mask_url(playground.database_url)
    return shown
