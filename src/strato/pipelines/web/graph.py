"""A run's task graph laid out in layers for an inline SVG: each task in the layer after
its deepest parent (longest path), tasks in a layer ordered by the mean position of their
parents (one barycentre sweep, enough to keep fan-outs from crossing), edges as cubic
curves from a parent's right side to a child's left side. Computed on the server at
page time; the page's script only changes the tasks' state classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

NODE_W = 150
NODE_H = 28
GAP_X = 50
GAP_Y = 12
MARGIN = 8
# Past this many tasks a drawing is no help (and the page would be megabytes): the task
# table alone is shown.
MAX_DRAWN = 400


@dataclass(frozen=True)
class Node:
    name: str
    x: int
    y: int
    label: str  # the name, shortened to fit its box


@dataclass(frozen=True)
class Edge:
    parent: str
    child: str
    path: str  # SVG path data


@dataclass
class Layout:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0


def layout(order: Sequence[str], parents: Mapping[str, Sequence[str]]) -> Layout | None:
    """``order``: the tasks in render order; ``parents``: each task's parents. None when
    there are more than MAX_DRAWN tasks."""
    if len(order) > MAX_DRAWN:
        return None
    known = set(order)
    depth: dict[str, int] = {}
    # Render order is no topological order (``before`` points backwards), so depths are
    # relaxed until stable; a workflow is acyclic (the renderer refuses cycles), so this
    # ends within len(order) sweeps.
    for name in order:
        depth[name] = 0
    for _ in range(len(order)):
        changed = False
        for name in order:
            wanted = max((depth[p] + 1 for p in parents.get(name, ()) if p in known), default=0)
            if wanted != depth[name]:
                depth[name], changed = wanted, True
        if not changed:
            break
    layers: dict[int, list[str]] = {}
    for name in order:
        layers.setdefault(depth[name], []).append(name)
    row: dict[str, float] = {}
    for level in sorted(layers):
        members = layers[level]
        if level:
            rank = {n: i for i, n in enumerate(members)}

            def key(name: str, rank: dict[str, int] = rank) -> tuple[float, int]:
                ps = [row[p] for p in parents.get(name, ()) if p in row]
                return (sum(ps) / len(ps) if ps else float(rank[name]), rank[name])

            members.sort(key=key)
        for i, name in enumerate(members):
            row[name] = float(i)
    result = Layout()
    where: dict[str, tuple[int, int]] = {}
    for level, members in sorted(layers.items()):
        for i, name in enumerate(members):
            x = MARGIN + level * (NODE_W + GAP_X)
            y = MARGIN + i * (NODE_H + GAP_Y)
            where[name] = (x, y)
            result.nodes.append(Node(name, x, y, _fit(name)))
    for name in order:
        cx, cy = where[name]
        for parent in sorted(parents.get(name, ())):
            if parent not in where:
                continue
            px, py = where[parent]
            x1, y1 = px + NODE_W, py + NODE_H // 2
            x2, y2 = cx, cy + NODE_H // 2
            bend = max(GAP_X // 2, (x2 - x1) // 2)
            result.edges.append(
                Edge(parent, name, f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}")
            )
    if where:
        result.width = max(x for x, _ in where.values()) + NODE_W + MARGIN
        result.height = max(y for _, y in where.values()) + NODE_H + MARGIN
    return result


def _fit(name: str, room: int = 20) -> str:
    return name if len(name) <= room else name[: room - 1] + "…"
