"""The synthetic city generator: determinism, tables, street hierarchy, terrain, blocks."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal

from twin.city.generator import generate_city
from twin.city.model import City


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(50_000, seed=0)


def test_same_seed_gives_identical_city(city: City) -> None:
    again = generate_city(50_000, seed=0)
    assert_geodataframe_equal(city.intersections, again.intersections)
    assert_geodataframe_equal(city.streets, again.streets)
    assert_geodataframe_equal(city.blocks, again.blocks)
    assert nx.utils.graphs_equal(city.graph, again.graph)
    assert city.meta["river"].equals(again.meta["river"])


def test_different_seed_gives_different_city(city: City) -> None:
    other = generate_city(50_000, seed=1)
    assert other.population == city.population == 50_000
    assert not np.allclose(
        city.intersections["elevation_m"].to_numpy()[:100],
        other.intersections["elevation_m"].to_numpy()[:100],
    )
    n = min(len(city.intersections), len(other.intersections))
    assert not np.allclose(city.intersections.geometry.x.to_numpy()[:n],
                           other.intersections.geometry.x.to_numpy()[:n])
    assert not city.meta["river"].equals(other.meta["river"])


@pytest.mark.parametrize("population", [20_000, 50_000, 123_457])
def test_population_sums_exactly(population: int) -> None:
    c = generate_city(population, seed=3)
    assert c.population == population
    assert int(c.blocks["population"].sum()) == population
    assert (c.blocks["population"] >= 0).all()
    # about 2.2 persons per household, households only where people live
    assert c.population / c.households == pytest.approx(2.2, rel=0.05)
    assert ((c.blocks["households"] > 0) == (c.blocks["population"] > 0)).all()


def test_tables_have_documented_columns_and_crs(city: City) -> None:
    assert city.crs == "EPSG:2154"
    for gdf in (city.intersections, city.streets, city.blocks):
        assert gdf.crs.to_epsg() == 2154
    assert city.intersections.index.name == "node_id"
    assert list(city.intersections.columns) == ["elevation_m", "geometry"]
    assert city.streets.index.name == "street_id"
    assert list(city.streets.columns) == ["u", "v", "street_class", "length_m", "lanes",
                                          "speed_kph", "geometry"]
    assert city.blocks.index.name == "block_id"
    assert list(city.blocks.columns) == ["population", "households", "area_m2", "node_id", "geometry"]
    assert city.intersections.index[0] == "n0" and city.streets.index[0] == "s0"
    assert city.blocks.index[0] == "b0"
    assert set(city.intersections.geom_type) == {"Point"}
    assert set(city.streets.geom_type) == {"LineString"}
    assert set(city.blocks.geom_type) == {"Polygon"} and city.blocks.is_valid.all()


def test_streets_match_graph_and_geometry(city: City) -> None:
    g = city.graph
    assert nx.is_connected(g)
    assert set(g.nodes) == set(city.intersections.index)
    assert g.number_of_edges() == len(city.streets)
    for sid, row in city.streets.sample(50, random_state=0).iterrows():
        edge = g.edges[row["u"], row["v"]]
        assert edge["street_id"] == sid
        assert edge["length_m"] == pytest.approx(row["length_m"])
        assert edge["street_class"] == row["street_class"]
    np.testing.assert_allclose(city.streets["length_m"], city.streets.length)
    start = shapely.get_point(city.streets.geometry.values, 0)
    assert shapely.equals(start, city.intersections.geometry[city.streets["u"]].values).all()
    node = city.intersections.loc["n5"]
    assert g.nodes["n5"]["x"] == node.geometry.x and g.nodes["n5"]["elevation_m"] == node["elevation_m"]


def test_street_hierarchy(city: City) -> None:
    s = city.streets
    assert set(s["street_class"]) == {"arterial", "local"}
    arterial, local = s[s["street_class"] == "arterial"], s[s["street_class"] == "local"]
    assert (arterial["lanes"] == 2).all() and (arterial["speed_kph"] == 50).all()
    assert (local["lanes"] == 1).all() and (local["speed_kph"] == 30).all()
    assert 0.15 < len(arterial) / len(s) < 0.45
    assert 120 < local["length_m"].median() < 200
    # a few local segments were removed: their two blocks became one (more than 4 corners)
    merged = shapely.get_num_coordinates(city.blocks.geometry.values) > 5
    assert 0 < merged.sum() < 0.3 * len(city.blocks)
    assert sorted(set(dict(city.graph.degree).values())) == [2, 3, 4]


def test_district_size_and_location(city: City) -> None:
    assert 6.0 < city.meta["area_km2"] < 8.5            # ~7,000 inhabitants per km2
    assert city.blocks["area_m2"].sum() / 1e6 == pytest.approx(city.meta["area_km2"])
    x0, y0, x1, y1 = city.bounds()
    assert abs((x0 + x1) / 2 - 853_000) < 500 and abs((y0 + y1) / 2 - 6_690_000) < 500
    assert city.lonlat == pytest.approx((5.02, 47.29), abs=0.02)
    block_side_m = np.sqrt(city.blocks["area_m2"].median())
    assert 120 < block_side_m < 200


def test_elevation_is_smooth_with_river_on_the_low_side(city: City) -> None:
    e = city.intersections["elevation_m"]
    assert 20 <= e.max() - e.min() <= 60
    s = city.streets
    grade_m_per_100m = (e[s["u"]].to_numpy() - e[s["v"]].to_numpy()) / s["length_m"].to_numpy() * 100
    assert np.abs(grade_m_per_100m).max() < 3.5
    river = city.meta["river"]
    assert river.geom_type == "LineString"
    low, high = shapely.Point(city.meta["low_point"]), shapely.Point(city.meta["high_point"])
    assert river.distance(low) < river.distance(high)
    assert e[city.meta["low_node"]] == e.min() and e[city.meta["high_node"]] == e.max()
    assert not river.intersects(shapely.box(*city.bounds()).buffer(-50))


def test_population_is_denser_near_the_centre(city: City) -> None:
    b = city.blocks
    centre = shapely.Point(city.meta["centre"])
    r_m = b.centroid.distance(centre)
    density = b["population"] / b["area_m2"]
    inner, outer = density[r_m < r_m.quantile(0.25)], density[r_m > r_m.quantile(0.75)]
    assert inner.mean() > 1.3 * outer.mean()
    assert b["node_id"].isin(city.intersections.index).all()
    # each block is attached to one of its own corners
    corners = city.intersections.geometry[b["node_id"]].values
    assert (b.geometry.values.distance(corners) < 1e-6).all()


def test_large_city_is_fast() -> None:
    t0 = time.perf_counter()
    big = generate_city(300_000, seed=0)
    elapsed_s = time.perf_counter() - t0
    assert elapsed_s < 5.0
    assert big.population == 300_000
    assert 35 < big.meta["area_km2"] < 50
    assert nx.is_connected(big.graph)
    e = big.intersections["elevation_m"]
    assert 20 <= e.max() - e.min() <= 60
