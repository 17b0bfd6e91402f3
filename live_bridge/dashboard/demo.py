"""The live demo: L-Town readings with a leak replayed onto MQTT, the bridge and the
shadow twin following them, and the dashboard showing the leak appear and get flagged.

:func:`leak_recording` writes the recording (three days of generated L-Town SCADA data,
the BattLeDIM sensor layout, an abrupt leak on the third morning); :func:`replay` is the
publisher, paced so a day of readings passes in ``seconds_per_day``.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from twin.errors import BadInput

REPO = Path(__file__).resolve().parents[2]
LEAK_PIPE = "p673"
START = dt.datetime(2018, 1, 1)
LEAK_AT = dt.datetime(2018, 1, 3, 6, 0)


@dataclass(frozen=True)
class Recording:
    inp: Path
    scada: Path
    registry: Path


def shared_data() -> Path:
    """Where the reference data lives: ``TWIN_SHARED_DATA``, else ``../shared/data``."""
    return Path(os.environ.get("TWIN_SHARED_DATA", REPO.parent / "shared" / "data"))


def leak_recording(folder: str | Path, data: str | Path | None = None, days: int = 3,
                   leak_pipe: str = LEAK_PIPE, leak_at: dt.datetime = LEAK_AT,
                   seed: int = 3) -> Recording:
    """Generate ``days`` of L-Town readings with one abrupt leak into ``folder``."""
    from live_bridge.leak_config import LeakConfig, LeakSpec, load_leak_config
    from live_bridge.leak_dataset import generate_dataset
    from live_bridge.replay import registry_from_scada

    base = Path(data) if data is not None else shared_data()
    inp = base / "battledim" / "L-TOWN.inp"
    config_file = base / "battledim" / "config" / "dataset_configuration_historical_2018.yalm"
    if not inp.is_file() or not config_file.is_file():
        raise BadInput(f"the live demo needs {inp} and {config_file} (the BattLeDIM files); "
                       "set TWIN_SHARED_DATA to the folder holding battledim/")
    layout = load_leak_config(config_file)
    end = START + dt.timedelta(days=days) - dt.timedelta(minutes=5)
    leak = LeakSpec(leak_pipe, leak_at, end + dt.timedelta(days=1), 0.02, "abrupt", leak_at)
    config = LeakConfig(start=START, end=end, leaks=(leak,),
                        pressure_sensors=layout.pressure_sensors,
                        flow_sensors=layout.flow_sensors, level_sensors=layout.level_sensors,
                        amrs=layout.amrs, source="dashboard demo")
    folder = Path(folder)
    scada = folder / "scada"
    generate_dataset(inp, config, seed=seed).save(scada)
    registry = registry_from_scada(scada).save(folder / "sensors.csv")
    return Recording(inp, scada, registry)


def replay(recording: Recording, settings, seconds_per_day: float | None = 60.0,
           stop: threading.Event | None = None) -> threading.Thread:
    """Publish the recording onto MQTT in a thread (``None``: as fast as possible)."""
    from live_bridge.mqtt import Publisher
    from live_bridge.replay import ReplaySource

    readings = list(ReplaySource.from_scada(recording.scada))
    speed = None if not seconds_per_day else 86400.0 / seconds_per_day
    stop = stop or threading.Event()

    def publish() -> None:
        with Publisher(settings, client_id=f"{settings.client_id}-replay") as pub:
            step = 288 * 119          # about a day of readings per call, so stop is heard
            for i in range(0, len(readings), step):
                if stop.is_set():
                    return
                pub.publish_readings(readings[i:i + step], batch=500, speed=speed,
                                     source="demo")

    thread = threading.Thread(target=publish, name="dashboard-replay", daemon=True)
    thread.start()
    return thread
