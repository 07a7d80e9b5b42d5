"""What a capability running analytic processes offers the others, through the Context.

strato.data's diagnostics URLs (``/datasets/{id}/groupby/{var}/{coord}/{action}``) were
computed by the data service itself; the climatology process of strato.processes now does
that work, as a job of the engine. Data does not import processes (capabilities know each
other only through the Context): the processes capability hands an :class:`Analytics` to
the Context, and data uses ``ctx.analytics`` when it is there, else computes as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import xarray as xr


class Analytics(Protocol):
    def groupby(
        self, dataset_id: str, variable: str, grouping: str, action: str, *, owner: str
    ) -> xr.Dataset | None:
        """``variable`` of the served dataset grouped by ``grouping`` (``time.month``,
        ``time.season``, ...) and each group reduced by ``action``, computed (loaded), run
        as a job of ``owner``; None for a request it does not run (the caller computes
        it). Failures are raised as the StratoError the process raised (413 over the byte
        budget, 400 for bad input)."""
        ...
