"""What one capability serving datasets offers the others, through the Context.

The catalog describes this node's served datasets as items without knowing which
capability serves them: the data capability hands its service to the Context as a
:class:`DatasetSource`, and the catalog reads ``ctx.datasets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ServedStatus(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str:
        """"ok" or "unopened" when it can be described, "broken" when it cannot."""
        ...


class DatasetSource(Protocol):
    def statuses(self) -> Sequence[ServedStatus]:
        """Every dataset served (or meant to be), with whether it opens."""
        ...

    def stac_item(self, dataset_id: str, base_url: str) -> dict[str, Any]:
        """The STAC Item of a served dataset, its assets at ``base_url``; a StratoError
        when it cannot be described now."""
        ...
