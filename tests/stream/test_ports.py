"""The gateway's port pool: ports handed out in turn, none skipped, one given back not
handed out again at once (its connections may linger in TIME_WAIT)."""

from __future__ import annotations

from strato.stream.model.ports import PortPool
from tests.stream.support import free_ports


def test_ports_go_out_in_turn_and_a_returned_one_waits_its_turn() -> None:
    first = free_ports(1)[0]
    pool = PortPool(first, first + 5)
    free = [p for p in range(first, first + 6) if pool._bindable(p)]
    taken = [pool.reserve(1, f"s{i}")[0] for i in range(3)]
    assert taken == free[:3]  # in turn: none skipped
    assert pool.release("s0") == [free[0]]
    rest = [pool.reserve(1, f"t{i}")[0] for i in range(len(free) - 3)]
    assert rest == free[3:]
    assert pool.reserve(1, "again") == [free[0]]  # back in turn only after the others
