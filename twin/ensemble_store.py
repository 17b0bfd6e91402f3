"""An ensemble's results on disk: a manifest, Parquet partitions written as batches land.

Layout of the output folder::

    manifest.json            the scenario, the hash of its base, every member's id, seed, params
    members/part-*.parquet   one row per member: id, status, error, seconds, params, KPIs
    elements/part-*.parquet  per member and element: lowest and highest value of a quantity
    summary.json             what the last run did

Each partition is written to a temporary name and renamed, so a crash never leaves half
a file; a member's id is a hash of its parameters and seed, so a re-run knows what is done.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin.ensemble_members import Member, base_hash
from twin.errors import BadInput

if TYPE_CHECKING:
    import pyarrow as pa

    from twin.scenario import ScenarioSpec

__all__ = ["ResultStore", "load_members", "load_elements", "load_manifest", "load_network"]

ROW_COLUMNS = ["member_id", "status", "error", "seconds", "worker_pid", "seed", "element",
               "sweep", "params"]


def _write_atomic(table: "pd.DataFrame | pa.Table", path: Path) -> None:
    """Write a frame or an Arrow table as Parquet under a temporary name, then rename it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    if isinstance(table, pa.Table):
        pq.write_table(table, tmp)
    else:
        table.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def flat_rows(members: list[Member] | list[Any], results: list[dict[str, Any]]
              ) -> tuple[list[dict[str, Any]], dict[str, np.ndarray] | None]:
    """Members' results as rows of the ``members`` table (id, status, error, seconds,
    worker, seed, element, sweep, params as JSON and one column per parameter, KPIs) and
    their element extremes as one set of columns (``member_id, element, quantity, min,
    max``) or None. Made where the members ran (a worker), so the client only writes.
    ``members`` carry ``member_id``, ``seed``, ``element``, ``sweep`` and ``params``."""
    table, extremes = [], []
    for member, row in zip(members, results):
        flat = {"member_id": member.member_id, "status": row["status"],
                "error": row["error"], "seconds": row["seconds"],
                "worker_pid": row["worker_pid"], "seed": member.seed,
                "element": member.element, "sweep": member.sweep,
                "params": json.dumps(member.params, sort_keys=True, default=str)}
        for key, value in member.params.items():
            flat[f"param:{key}"] = value if isinstance(value, (int, float)) else str(value)
        flat.update(row["kpis"])
        table.append(flat)
        values = row.get("elements")
        if values is not None and len(values["element"]):
            extremes.append((member.member_id, values))
    if not extremes:
        return table, None
    columns = {key: np.concatenate([e[key] for _, e in extremes]) for key in extremes[0][1]}
    columns["member_id"] = np.repeat(np.array([mid for mid, _ in extremes], dtype=object),
                                     [len(e["element"]) for _, e in extremes])
    return table, columns


class ResultStore:
    """Writes one ensemble's results into ``out``; knows which members are done there."""

    def __init__(self, out: Path, spec: "ScenarioSpec", members: list[Member]) -> None:
        self.out = out
        (out / "members").mkdir(parents=True, exist_ok=True)
        (out / "elements").mkdir(parents=True, exist_ok=True)
        self.base_hash = base_hash(spec)
        manifest_path = out / "manifest.json"
        if manifest_path.exists():
            old = json.loads(manifest_path.read_text())
            if old.get("base_hash") != self.base_hash:
                raise BadInput(f"{out}: holds the results of another scenario "
                               f"({old.get('scenario')}, base {old.get('base_hash')}); "
                               f"choose another --out or delete it")
        manifest = {"scenario": str(spec.source_path or spec.name), "name": spec.name,
                    "base_hash": self.base_hash, "written": dt.datetime.now().isoformat(),
                    "rank_by": spec.ensemble.rank_by if spec.ensemble else "",
                    "service_pressure_m": spec.policies.water.service_pressure_m,
                    "members": [{"member_id": m.member_id, "seed": m.seed, "params": m.params,
                                 "element": m.element, "sweep": m.sweep} for m in members]}
        tmp = manifest_path.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(manifest, default=str))
        os.replace(tmp, manifest_path)
        rows = load_members(out)
        self.done_ids = set(rows.loc[rows["status"] == "done", "member_id"]) if len(rows) else set()

    def write_batch(self, rows: list[dict[str, Any]],
                    elements: list[dict[str, np.ndarray]] = ()) -> Path:
        """Write landed members' rows (:func:`flat_rows`) and their element extremes as one
        partition each; returns the members' partition."""
        name = f"part-{rows[0]['member_id']}-{len(rows)}.parquet"
        path = self.out / "members" / name
        _write_atomic(pd.DataFrame(rows), path)
        elements = [e for e in elements if e is not None and len(e["member_id"])]
        if elements:       # one table from the batches' arrays (not a frame per member),
            import pyarrow as pa          # straight to Arrow: a frame turned its 40,000
                                          # strings a batch into Python objects and back
            _write_atomic(pa.table({key: np.concatenate([e[key] for e in elements])
                                    for key in elements[0]}), self.out / "elements" / name)
        self.done_ids.update(r["member_id"] for r in rows if r["status"] == "done")
        return path

    def write_network(self, frames: dict[str, Any]) -> None:
        """The network's element tables (GeoParquet), for the report's maps."""
        folder = self.out / "network"
        folder.mkdir(exist_ok=True)
        for kind, frame in frames.items():
            frame.to_parquet(folder / f"{kind}.parquet")

    def write_summary(self, summary: dict[str, Any]) -> None:
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


def load_members(out: str | Path) -> pd.DataFrame:
    """One row per member (its latest result: done if it ever succeeded here)."""
    files = sorted((Path(out) / "members").glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=ROW_COLUMNS)
    frames = [pd.read_parquet(p).assign(_written=p.stat().st_mtime_ns) for p in files]
    rows = pd.concat(frames, ignore_index=True)
    rows["_ok"] = rows["status"] == "done"
    rows = rows.sort_values(["_ok", "_written"], kind="stable")
    rows = rows.drop_duplicates("member_id", keep="last")
    return rows.drop(columns=["_ok", "_written"]).sort_values("member_id").reset_index(drop=True)


def load_elements(out: str | Path, member_ids: set[str] | None = None) -> pd.DataFrame:
    """Per member and element extremes (``member_id, element, quantity, min, max``)."""
    files = sorted((Path(out) / "elements").glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["member_id", "element", "quantity", "min", "max"])
    table = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    table = table.drop_duplicates(["member_id", "element", "quantity"], keep="last")
    if member_ids is not None:
        table = table[table["member_id"].isin(member_ids)]
    return table.reset_index(drop=True)


def load_manifest(out: str | Path) -> dict[str, Any]:
    path = Path(out) / "manifest.json"
    if not path.is_file():
        raise BadInput(f"{out}: no manifest.json: not the output folder of `twin ensemble`")
    return json.loads(path.read_text())


def load_network(out: str | Path) -> dict[str, Any]:
    """The element tables :meth:`ResultStore.write_network` wrote (empty if none)."""
    import geopandas as gpd

    return {p.stem: gpd.read_parquet(p) for p in sorted((Path(out) / "network").glob("*.parquet"))}
