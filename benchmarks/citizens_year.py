"""A simulated year of citizens' requests and field crews: speed and how it scales.

250,000 inhabitants, 40 crews, priority dispatch: the year at the catalogue's volume
(1x, about 61,000 requests) and at ten times that volume (10x, with crews, phone agents and
counter desks scaled by ten so the service is loaded alike). Prints each run's wall time and the last line one
JSON object: ``simulated_s_per_wall_s`` (simulated seconds per wall second at 1x),
``wall_s_1x``, ``wall_s_10x``, ``requests_1x``, ``requests_10x``, ``cost_ratio_10x_vs_1x``
(wall 10x / wall 1x; about 10 when cost is linear in the volume) and ``ratio`` (the same
as ``simulated_s_per_wall_s``). Wall times cover the run only (city, households, router
and crews are built before, ``setup_s_*``).
"""

from __future__ import annotations

import json
import sys

from twin.agents.service_layer import simulate_city

YEAR_S = 365 * 86400.0


def main() -> int:
    one = simulate_city(population=250_000, days=365, crews=40, policy="priority", seed=0)
    print(f"1x: {one['requests']:.0f} requests in {one['seconds']:.2f} s "
          f"(+{one['setup_seconds']:.2f} s setup)", file=sys.stderr)
    ten = simulate_city(population=250_000, days=365, crews=400, policy="priority", seed=0,
                        volume_factor=10.0, phone_agents=40, counter_desks=20)
    print(f"10x: {ten['requests']:.0f} requests in {ten['seconds']:.2f} s "
          f"(+{ten['setup_seconds']:.2f} s setup)", file=sys.stderr)
    ratio = YEAR_S / one["seconds"]
    print(json.dumps({
        "ratio": round(ratio), "simulated_s_per_wall_s": round(ratio),
        "wall_s_1x": one["seconds"], "wall_s_10x": ten["seconds"],
        "setup_s_1x": one["setup_seconds"], "setup_s_10x": ten["setup_seconds"],
        "requests_1x": one["requests"], "requests_10x": ten["requests"],
        "cost_ratio_10x_vs_1x": round(ten["seconds"] / one["seconds"], 2),
        "within_promise_share_1x": one["within_promise_share"],
        "within_promise_share_10x": ten["within_promise_share"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
