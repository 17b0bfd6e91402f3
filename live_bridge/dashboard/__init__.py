"""The operator dashboard: the city's networks on a map, sensors coloured by how far the
measurement departs from the shadow twin, open alerts, measured-vs-simulated charts and
the what-if panel with its approval gate, served by ``twin dashboard``.

Modules: :mod:`~live_bridge.dashboard.feed` (simulated values kept per step),
:mod:`~live_bridge.dashboard.geo` (networks and sensors as GeoJSON),
:mod:`~live_bridge.dashboard.service` (what each endpoint answers),
:mod:`~live_bridge.dashboard.app` (the FastAPI application), :mod:`~live_bridge.dashboard.live`
(bridge + shadow twin in the dashboard's process), :mod:`~live_bridge.dashboard.command`.
"""
