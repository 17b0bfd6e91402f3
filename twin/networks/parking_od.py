"""Parking arrivals from the city's OD demand: the car trips that end at an activity place.

The OD demand (:mod:`twin.networks.od_demand`) is rebuilt with the traffic layer's rules
and the same random stream (``traffic.demand``), so parking sees the trips the traffic
layer assigns. Only trips *to* activity places count: the journeys home are the
residents, whom the parking layer models from their permits, and through traffic does not
park. ``public_parking_share`` of those trips park in public places (on-street or a car
park; the others have a private space at work or at the shop: an assumption). A traffic
zone's arrivals are shared over the parking zones of its blocks in proportion to the
blocks' activity (jobs and shops, each normalised).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from twin.city.model import City
from twin.networks.parking_supply import Supply

HOURS = 24


def arrivals_from_od(city: City, supply: Supply, rng: np.random.Generator,
                     public_parking_share: float = 0.5, zone_size_m: float = 400.0,
                     rates=None) -> pd.DataFrame:
    """Visitor arrivals (veh/h) by weekday hour (index 0-23) and parking zone (columns)."""
    from twin.networks.od_demand import TripRates, activity_places, city_zones, hourly_demand
    from twin.networks.road_city import city_road_network, zone_skim_min

    places = activity_places(city, rng)
    zones = city_zones(city, places, zone_size_m)
    skim = zone_skim_min(city_road_network(city, zones))
    base = rates or TripRates()
    outbound = replace(base, work_back=np.zeros(HOURS), other_back=np.zeros(HOURS),
                       through_veh_per_gateway_day=0.0)
    demand = hourly_demand(zones, skim, outbound)
    into = demand.veh_h.sum(axis=1) * public_parking_share          # hours x traffic zones
    activity = (places["jobs"] / max(places["jobs"].sum(), 1e-9)
                + places["shops"] / max(places["shops"].sum(), 1e-9))
    out = np.zeros((HOURS, len(supply.zones)))
    column = {z: i for i, z in enumerate(supply.zones.index)}
    for j, (kind, blocks) in enumerate(zip(zones["kind"], zones["block_ids"])):
        if kind != "internal" or not blocks:
            continue
        weight = activity.loc[list(blocks)]
        if weight.sum() <= 0:
            weight = pd.Series(1.0, index=list(blocks))
        share = weight.groupby(supply.block_zone.loc[list(blocks)].to_numpy()).sum() / weight.sum()
        for pz, s in share.items():
            out[:, column[pz]] += into[:, j] * s
    return pd.DataFrame(out, index=pd.RangeIndex(HOURS, name="hour"),
                        columns=pd.Index(supply.zones.index, name="zone_id"))
