"""A storm week in the report: `twin citizens simulate --storm-days N --out DIR` draws the
backlog, open requests and busy crews from the recorded series; the storm's backlog rises,
then falls."""

from __future__ import annotations

import json

import numpy as np

from twin.agents.service_layer import simulate_city
from twin.agents.storm import storm_floods
from twin.city.generator import generate_city
from twin.cli import main
from twin.results import Results

DAY = 86400.0


def test_storm_report_shows_backlog_rising_then_falling(tmp_path):
    out = tmp_path / "storm"
    code = main(["citizens", "simulate", "--population", "40000", "--days", "14",
                 "--crews", "12", "--seed", "4", "--storm-days", "2",
                 "--storm-floods-per-day", "30", "--storm-start-day", "1",
                 "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads((out / "citizens.json").read_text())
    assert 45 <= summary["storm_floods"] <= 75 and summary["kpis"]["incidents"] == \
        summary["storm_floods"]

    figure = out / "backlog.png"
    assert figure.stat().st_size > 20_000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "backlog.png" in (out / "report.html").read_text()

    # the figure's data: the recorded backlog read back from what the command saved
    results = Results.load(out, "citizens")
    backlog = results.wide("citizens", "backlog")
    sewer, total = backlog["sewer"], backlog["all"]
    assert sewer[sewer.index < DAY].max() <= 2                  # before the storm
    peak_at = sewer.idxmax()
    assert DAY < peak_at <= 3.5 * DAY                           # during it (or just after)
    assert sewer.max() >= 15
    assert sewer[sewer.index >= 6 * DAY].max() <= 2              # cleared after it
    assert total.max() == total[(total.index > DAY) & (total.index <= 3.5 * DAY)].max()
    open_requests = results.wide("citizens", "open_requests")["all"]
    assert open_requests.idxmax() < 4 * DAY
    assert not results.wide("citizens", "crews_busy").empty


def test_storm_floods_are_spread_over_the_storm_on_distinct_streets():
    city = generate_city(population=20_000, seed=0)
    floods = storm_floods(city, DAY, 2.0, 30.0, np.random.default_rng(1))
    times = np.array([f.time_s for f in floods])
    assert 40 <= len(floods) <= 80
    assert DAY <= times.min() and times.max() <= 3 * DAY and np.all(np.diff(times) >= 0)
    streets = [f.street_ids[0] for f in floods]
    assert len(set(streets)) == len(streets) and set(streets) <= set(city.streets.index)
    assert storm_floods(city, DAY, 0.0, 30.0, np.random.default_rng(1)) == []


def test_no_storm_no_floods_and_same_run():
    a = simulate_city(population=20_000, days=3, crews=10, seed=2)
    b = simulate_city(population=20_000, days=3, crews=10, seed=2, storm_days=0)
    assert a["storm_floods"] == 0 and a["kpis"] == b["kpis"]
