"""The layer interface every network (water, sewer, lighting, waste, traffic, parking) fulfils.

A layer's life: ``build(twin)`` makes its elements (from files or the city
generator); ``start(twin)`` registers its processes on the shared clock with its
own step; ``apply(event)`` reacts to bus events; ``elements()`` returns its
elements as GeoDataFrames in the city's CRS with unit-suffixed columns;
``kpis()`` returns named figures; ``snapshot()``/``restore()`` capture what a
what-if fork needs. Build, step and results are kept apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import geopandas as gpd

from twin.events import Event

if TYPE_CHECKING:
    from twin.twin import Twin


class Layer:
    """Base class with the default (empty) behaviour of every hook."""

    name: str = "layer"

    def build(self, twin: "Twin") -> None:
        """Create the layer's elements; called once when the layer is added to a twin."""

    def start(self, twin: "Twin") -> None:
        """Register the layer's processes on ``twin.clock``; called once before the run."""

    def apply(self, event: Event) -> None:
        """React to an event published on the bus (only types the layer subscribed to)."""

    def check_event(self, event: Event) -> list[str]:
        """Problems with an event aimed at this layer (unknown element ids...); empty if fine."""
        return []

    def elements(self) -> dict[str, gpd.GeoDataFrame]:
        """The layer's elements by kind, as GeoDataFrames in the city's CRS."""
        return {}

    def kpis(self) -> dict[str, float]:
        """Named figures of the run so far; names carry units (``leak_volume_m3``)."""
        return {}

    def snapshot(self) -> dict[str, Any]:
        """State a fork needs to continue from now (levels, open incidents...)."""
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`snapshot` taken on a layer built from the same spec."""

    def close(self) -> None:
        """Release engines and files."""
