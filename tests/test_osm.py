"""OpenStreetMap import: Monaco from ../shared/data/osm, tag parsing, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file
from twin.errors import BadInput
from twin.networks.osm import load_osm, parse_lanes, parse_maxspeed_kph
from twin.networks.road_city import ROAD_CLASSES, zone_skim_min

MINI_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="43.7300" lon="7.4200"/>
  <node id="2" lat="43.7310" lon="7.4200"/>
  <node id="3" lat="43.7310" lon="7.4215"/>
  <node id="4" lat="43.7300" lon="7.4215"/>
  {ways}
</osm>
"""


def _way(way_id: int, nodes: list[int], **tags: str) -> str:
    refs = "".join(f'<nd ref="{n}"/>' for n in nodes)
    kv = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{way_id}">{refs}{kv}</way>'


@pytest.fixture(scope="module")
def monaco():
    return load_osm(shared_file("osm", "monaco.osm.gz"))


def test_monaco_drivable_network(monaco):
    net, streets = monaco.network, monaco.streets
    assert str(monaco.crs).upper() == "EPSG:32632"            # UTM 32N, metres
    street_links = net.links[net.links["street_id"].notna()]
    # the README counts 1,310 drivable directed edges (96.7 km) before keeping the largest
    # strongly connected part; every kept link is one of those
    assert 700 <= len(street_links) <= 1310
    km = street_links["length_m"].sum() / 1000
    assert 75.0 <= km <= 96.7
    assert set(streets["street_class"]) <= set(ROAD_CLASSES)
    assert {"primary", "secondary", "residential"} <= set(streets["street_class"])
    assert streets["oneway"].sum() > 100                       # Monaco has many one-way streets
    # a one-way street has one link, a two-way street two
    per_street = street_links.groupby("street_id").size()
    assert (per_street[streets.index[streets["oneway"]]] == 1).all()
    assert (per_street[streets.index[~streets["oneway"]]] == 2).all()
    assert (street_links["free_flow_time_min"] > 0).all()
    primary = street_links[street_links["street_class"] == "primary"]
    assert (primary["capacity_veh_h"] == primary["lanes"] * 900.0).all()


def test_monaco_zones_reach_each_other_without_passing_through(monaco):
    net = monaco.network
    assert net.zones >= 10
    assert not net.nodes.loc[net.zone_nodes, "through"].any()
    assert net.nodes["through"].sum() == len(net.nodes) - net.zones
    skim = zone_skim_min(net)
    assert np.isfinite(skim).all()          # strongly connected: every zone reaches every other
    assert 1.0 < skim.max() < 30.0


def test_tag_parsing():
    assert parse_maxspeed_kph("50") == 50.0
    assert parse_maxspeed_kph("30 mph") == pytest.approx(48.28032)
    assert parse_maxspeed_kph(["50", "30"]) == 30.0
    assert parse_maxspeed_kph("70;50") == 50.0
    assert np.isnan(parse_maxspeed_kph("FR:urban"))
    assert np.isnan(parse_maxspeed_kph(None))
    assert parse_lanes("2;3") == 2.0
    assert parse_lanes(["4", "2"]) == 2.0
    assert np.isnan(parse_lanes("none"))


def test_small_file_lanes_speeds_and_oneway(tmp_path: Path):
    ways = (_way(10, [1, 2, 3], highway="secondary", lanes="4", maxspeed="30 mph")
            + _way(11, [3, 4, 1], highway="residential", oneway="yes")
            + _way(12, [2, 4], highway="footway"))
    path = tmp_path / "mini.osm.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(MINI_OSM.format(ways=ways))
    osm = load_osm(path, zone_size_m=10_000)
    s = osm.streets
    assert set(s["street_class"]) == {"secondary", "residential"}     # no footway
    secondary = s[s["street_class"] == "secondary"]
    assert (secondary["lanes"] == 2.0).all()            # 4 lanes, both directions
    assert secondary["speed_kph"].iloc[0] == pytest.approx(48.28032)
    residential = s[s["street_class"] == "residential"]
    assert residential["oneway"].all()
    assert (residential["speed_kph"] == 30.0).all() and (residential["lanes"] == 1).all()
    links = osm.network.links
    assert len(links[links["street_id"].isin(residential.index)]) == len(residential)
    assert osm.network.zones == 1


def test_no_drivable_streets_is_bad_input(tmp_path: Path):
    path = tmp_path / "paths.osm"
    path.write_text(MINI_OSM.format(ways=_way(10, [1, 2, 3, 4], highway="footway")
                                    + _way(11, [1, 3], highway="cycleway")), encoding="utf-8")
    with pytest.raises(BadInput, match=r"paths\.osm: no drivable streets"):
        load_osm(path)


def test_not_osm_and_missing_files_are_bad_input(tmp_path: Path):
    text = tmp_path / "notes.osm"
    text.write_text("just some notes, not a map\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"notes\.osm: not OpenStreetMap XML"):
        load_osm(text)
    broken = tmp_path / "broken.osm.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(BadInput, match=r"broken\.osm\.gz: cannot read"):
        load_osm(broken)
    with pytest.raises(BadInput, match=r"absent\.osm: no such"):
        load_osm(tmp_path / "absent.osm")


def test_osm_command_json_and_bad_file(tmp_path: Path, capsys):
    from twin.cli import main

    path = shared_file("osm", "monaco.osm.gz")
    assert main(["traffic", "osm", str(path), "--trips", "2000", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["streets"] > 500 and out["oneway_streets"] > 100
    assert out["assignment"]["relative_gap"] <= 1e-4
    assert out["assignment"]["unserved_demand_veh_h"] == 0
    footway = tmp_path / "footway.osm"
    footway.write_text(MINI_OSM.format(ways=_way(10, [1, 2], highway="footway")))
    assert main(["traffic", "osm", str(footway)]) == 2
    assert "no drivable streets" in capsys.readouterr().err


def test_clipped_extract_and_motorway(tmp_path: Path):
    # a way running on to a node the extract does not hold (clipped to a box) keeps the rest
    clipped = tmp_path / "clipped.osm"
    clipped.write_text(MINI_OSM.format(
        ways=_way(10, [1, 2, 3, 99], highway="residential") + _way(11, [3, 4], highway="road")
        + _way(12, [4, 1], highway="motorway_link", maxspeed="none", oneway="no")))
    osm = load_osm(clipped)
    assert set(osm.streets["street_class"]) == {"residential", "road", "motorway"}
    links = osm.network.links.set_index("street_class")
    assert (links.loc["motorway", "junction_delay_s"] == 0).all()       # grade-separated
    assert (links.loc["motorway", "capacity_veh_h"] == 2 * 2000.0).all()
    one_way_only = tmp_path / "oneway.osm"
    one_way_only.write_text(MINI_OSM.format(ways=_way(10, [1, 2], highway="residential",
                                                      oneway="yes")))
    with pytest.raises(BadInput, match="no strongly connected street network"):
        load_osm(one_way_only)
