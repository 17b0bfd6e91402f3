"""Fault detection from cabinet (phase) power readings, one value a minute.

Each channel's reading is divided by the power expected from the switching and dimming
schedule (the twin's program, or for a real recording the median of the other nights
at the same clock minute), so the ratio ``z`` stays near a constant while nothing
changes, whatever the dimming does. On ``z`` a two-sided CUSUM finds lasting steps:

* ``lamp_outage``: ``z`` falls by at least ``min_step_rel`` (a share of the channel's
  power: a fraction of its smallest lamp) for ``confirm_min`` minutes and the CUSUM
  passes ``h = max(threshold_sigma * noise, 2 * min_step_rel)``; the change point is
  the last time the CUSUM was at zero; the size is the drop of the baseline;
* ``restored``: the same upwards (a repair, a restart after a supply loss);
* ``supply_loss``: the channel reads under ``off_ratio`` of what is expected for two
  minutes while it should burn (a tripped phase, a cabinet without supply);
* ``data_gap`` / ``supply_interruption``: readings missing for ``min_gap_min`` minutes
  or more while the lights should burn; an interruption when the first reading after
  the gap finds the lamps off or restarting.

A night starts with a fresh baseline taken over ``init_min`` minutes after a guard;
comparing it with the last night's baseline finds lamps that failed while switched off
(they do not strike again at switch-on). The noise scale is tracked from minute to
minute differences, so slow voltage drift does not count. The scan is one compiled
loop over minutes (numba): a year of a city's feeders takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

KINDS = ("lamp_outage", "restored", "supply_loss", "data_gap", "supply_interruption")
_OUTAGE, _RESTORED, _SUPPLY_LOSS, _GAP, _INTERRUPTION = range(5)


@dataclass(frozen=True)
class DetectorSettings:
    """Tuning of :class:`OnlineDetector` (defaults measured on simulated feeders)."""

    threshold_sigma: float = 8.0
    confirm_min: int = 3
    off_ratio: float = 0.15
    guard_min: int = 4
    restart_guard_min: int = 12        # HPS lamps run up for minutes after a restart
    init_min: int = 5
    baseline_alpha: float = 0.05
    profile_change: float = 0.01       # relative change of the expected power = a new step
    min_gap_min: int = 5
    sigma_floor: float = 2e-4


_STATE_FIELDS = ("mu", "sigma", "s_dn", "s_up", "cp_dn", "cp_up", "last_mu", "prev_z",
                 "prev_e", "off_start", "gap_start", "seg_start")
_COUNT_FIELDS = ("n_init", "guard", "off_run", "gap_run", "in_fault", "ring_n")


@numba.njit(cache=True)
def _scan(t, power, expected, step_rel, st, cnt, init_buf, ring, params, out_f, out_i):
    """Scan minutes ``t`` of every channel; append events to out_* and return their count."""
    (h_sigma, confirm, off_ratio, guard_min, restart_guard, init_min, alpha, prof_change,
     min_gap, sigma_floor) = params
    confirm, guard_min, restart_guard = int(confirm), int(guard_min), int(restart_guard)
    init_min, min_gap = int(init_min), int(min_gap)
    n_ev = 0
    cap = out_i.shape[0]
    n_c, n_t = power.shape
    for c in range(n_c):
        mu, sigma, s_dn, s_up = st[c, 0], st[c, 1], st[c, 2], st[c, 3]
        cp_dn, cp_up, last_mu, prev_z = st[c, 4], st[c, 5], st[c, 6], st[c, 7]
        prev_e, off_start, gap_start, seg_start = st[c, 8], st[c, 9], st[c, 10], st[c, 11]
        n_init, guard, off_run, gap_run = cnt[c, 0], cnt[c, 1], cnt[c, 2], cnt[c, 3]
        in_fault, ring_n = cnt[c, 4], cnt[c, 5]
        delta = step_rel[c]
        for j in range(n_t):
            tj, e, p = t[j], expected[c, j], power[c, j]
            if not e > 0.0:                          # switched off: the segment ends
                if n_init >= init_min:
                    last_mu = mu
                n_init = 0
                gap_run = 0
                off_run = 0
                prev_e = 0.0
                continue
            if not prev_e > 0.0:
                guard = guard_min
                seg_start = tj
            elif abs(e - prev_e) > prof_change * prev_e:
                guard = max(guard, guard_min)
            prev_e = e
            if np.isnan(p):
                if gap_run == 0:
                    gap_start = tj
                gap_run += 1
                continue
            z = p / e
            if gap_run > 0:
                if gap_run >= min_gap and n_ev < cap:
                    kind = _INTERRUPTION if z < off_ratio or (n_init >= init_min and z < mu - 10 * delta) else _GAP
                    out_i[n_ev, 0], out_i[n_ev, 1] = c, kind
                    out_f[n_ev, 0], out_f[n_ev, 1] = gap_start, tj
                    out_f[n_ev, 2], out_f[n_ev, 3] = (mu if n_init >= init_min else 1.0), e
                    n_ev += 1
                    if kind == _INTERRUPTION:
                        guard = max(guard, restart_guard)
                gap_run = 0
            if z < off_ratio:                        # nothing burns while it should
                if off_run == 0:
                    off_start = tj
                off_run += 1
                if off_run == 2 and in_fault == 0 and n_ev < cap:
                    out_i[n_ev, 0], out_i[n_ev, 1] = c, _SUPPLY_LOSS
                    out_f[n_ev, 0], out_f[n_ev, 1] = off_start, tj
                    out_f[n_ev, 2] = (mu if n_init >= init_min else 1.0) - z
                    out_f[n_ev, 3] = e
                    n_ev += 1
                    in_fault = 1
                continue
            if off_run > 0 or in_fault == 1:
                if in_fault == 1 and n_ev < cap:
                    out_i[n_ev, 0], out_i[n_ev, 1] = c, _RESTORED
                    out_f[n_ev, 0], out_f[n_ev, 1], out_f[n_ev, 2], out_f[n_ev, 3] = tj, tj, z, e
                    n_ev += 1
                    if n_init >= init_min:
                        last_mu = mu
                    n_init = 0
                    guard = max(guard, restart_guard)
                off_run = 0
                in_fault = 0
            if guard > 0:
                guard -= 1
                s_dn = 0.0
                s_up = 0.0
                prev_z = np.nan
                continue
            if n_init < init_min:                    # a fresh baseline
                init_buf[c, n_init] = z
                n_init += 1
                if n_init == init_min:
                    mu = np.median(init_buf[c, :init_min])
                    if sigma <= 0.0:
                        d = np.abs(np.diff(init_buf[c, :init_min]))
                        sigma = max(np.median(d) / 0.954, sigma_floor)
                    if last_mu > 0.0 and abs(mu - last_mu) > delta and n_ev < cap:
                        out_i[n_ev, 0] = c
                        out_i[n_ev, 1] = _OUTAGE if mu < last_mu else _RESTORED
                        out_f[n_ev, 0], out_f[n_ev, 1] = seg_start, tj
                        out_f[n_ev, 2], out_f[n_ev, 3] = abs(last_mu - mu), e
                        n_ev += 1
                    s_dn = 0.0
                    s_up = 0.0
                    cp_dn = tj
                    cp_up = tj
                    ring_n = 0
                prev_z = z
                continue
            if not np.isnan(prev_z):                 # noise scale from minute differences
                dz = abs(z - prev_z)
                sigma = max(0.98 * sigma + 0.02 * min(dz, 5 * sigma) / 1.128, sigma_floor)
            prev_z = z
            ring[c, ring_n % confirm] = z
            ring_n += 1
            k = delta / 2.0
            h = max(h_sigma * sigma, 2.0 * delta)
            s_dn = max(0.0, s_dn + (mu - z) - k)
            s_up = max(0.0, s_up + (z - mu) - k)
            if s_dn == 0.0:
                cp_dn = tj
            if s_up == 0.0:
                cp_up = tj
            full = ring_n >= confirm
            if full and s_dn > h and np.max(ring[c, :confirm]) < mu - k:
                level = np.median(ring[c, :confirm])
                if n_ev < cap:
                    out_i[n_ev, 0], out_i[n_ev, 1] = c, _OUTAGE
                    out_f[n_ev, 0], out_f[n_ev, 1], out_f[n_ev, 2], out_f[n_ev, 3] = cp_dn, tj, mu - level, e
                    n_ev += 1
                mu = level
                s_dn = 0.0
                s_up = 0.0
                cp_up = tj
                ring_n = 0
            elif full and s_up > h and np.min(ring[c, :confirm]) > mu + k:
                level = np.median(ring[c, :confirm])
                if n_ev < cap:
                    out_i[n_ev, 0], out_i[n_ev, 1] = c, _RESTORED
                    out_f[n_ev, 0], out_f[n_ev, 1], out_f[n_ev, 2], out_f[n_ev, 3] = cp_up, tj, level - mu, e
                    n_ev += 1
                mu = level
                s_dn = 0.0
                s_up = 0.0
                cp_dn = tj
                ring_n = 0
            elif s_dn < k and s_up < k:               # follow slow drift (voltage, ageing)
                mu += alpha * min(max(z - mu, -k), k)
        st[c, 0], st[c, 1], st[c, 2], st[c, 3] = mu, sigma, s_dn, s_up
        st[c, 4], st[c, 5], st[c, 6], st[c, 7] = cp_dn, cp_up, last_mu, prev_z
        st[c, 8], st[c, 9], st[c, 10], st[c, 11] = prev_e, off_start, gap_start, seg_start
        cnt[c, 0], cnt[c, 1], cnt[c, 2], cnt[c, 3] = n_init, guard, off_run, gap_run
        cnt[c, 4], cnt[c, 5] = in_fault, ring_n
    return n_ev


class OnlineDetector:
    """The detector over many channels, fed chunk by chunk (or all at once).

    ``min_step_rel``: per channel, the smallest drop to find as a share of its expected
    power; ``lamps_per_channel`` turns a drop into a number of lamps (share x lamps);
    without it ``lamp_power_w`` does (drop in watts / lamp power).
    """

    def __init__(self, channels, min_step_rel, lamps_per_channel=None,
                 lamp_power_w: float | None = None, lamp_powers_w=None, channel_full_w=None,
                 settings: DetectorSettings | None = None) -> None:
        self.channels = np.asarray(channels, dtype=object)
        n = len(self.channels)
        self.step_rel = np.broadcast_to(np.asarray(min_step_rel, dtype=float), (n,)).copy()
        self.lamps_per_channel = (None if lamps_per_channel is None
                                  else np.asarray(lamps_per_channel, dtype=float))
        self.lamp_power_w = lamp_power_w
        self.lamp_powers_w = lamp_powers_w            # per channel: the powers of its lamps
        self.channel_full_w = channel_full_w          # per channel: all lamps at full power
        self.settings = s = settings or DetectorSettings()
        self._st = np.zeros((n, len(_STATE_FIELDS)))
        self._st[:, _STATE_FIELDS.index("prev_z")] = np.nan
        self._cnt = np.zeros((n, len(_COUNT_FIELDS)), dtype=np.int64)
        self._init = np.zeros((n, s.init_min))
        self._ring = np.zeros((n, s.confirm_min))
        self._params = np.array([s.threshold_sigma, s.confirm_min, s.off_ratio, s.guard_min,
                                 s.restart_guard_min, s.init_min, s.baseline_alpha,
                                 s.profile_change, s.min_gap_min, s.sigma_floor], dtype=float)
        self.events: list[dict] = []

    def update(self, t_s: np.ndarray, power_w: np.ndarray, expected_w: np.ndarray) -> list[dict]:
        """Feed minutes ``t_s`` (T,) of power and expected power (channels, T); the events
        found in them. Missing readings are NaN; expected <= 0 means switched off."""
        power = np.ascontiguousarray(power_w, dtype=float)
        expected = np.ascontiguousarray(expected_w, dtype=float)
        t = np.ascontiguousarray(t_s, dtype=float)
        cap = max(64, power.size // 2 + 16)
        out_f, out_i = np.zeros((cap, 4)), np.zeros((cap, 2), dtype=np.int64)
        n = _scan(t, power, expected, self.step_rel, self._st, self._cnt, self._init,
                  self._ring, self._params, out_f, out_i)
        found = []
        for (c, kind), (start, at, size_rel, e) in zip(out_i[:n], out_f[:n]):
            size_w = float(size_rel * e)
            if self.lamp_powers_w is not None and self.channel_full_w is not None:
                lamps = _fewest_lamps(size_rel * self.channel_full_w[c], self.lamp_powers_w[c])
            elif self.lamps_per_channel is not None:
                lamps = int(round(size_rel * self.lamps_per_channel[c]))
            elif self.lamp_power_w:
                lamps = int(round(size_w / self.lamp_power_w))
            else:
                lamps = 0
            found.append({"channel": str(self.channels[c]), "kind": KINDS[kind],
                          "start_s": float(start), "detected_s": float(at),
                          "size_w": size_w, "size_share": float(size_rel),
                          "n_lamps": max(lamps, 1) if KINDS[kind] == "lamp_outage" else lamps})
        found.sort(key=lambda ev: (ev["detected_s"], ev["channel"]))
        self.events.extend(found)
        return found

    def events_frame(self) -> pd.DataFrame:
        cols = ["channel", "kind", "start_s", "detected_s", "size_w", "size_share", "n_lamps"]
        return pd.DataFrame(self.events, columns=cols)


def _fewest_lamps(size_w: float, powers_w) -> int:
    """The fewest lamps of one of the channel's types whose power explains ``size_w``
    within 25 %, else the count of the channel's median lamp."""
    powers = np.unique(np.asarray(powers_w, dtype=float))
    if not powers.size:
        return 0
    for n in range(1, 200):
        if np.any(np.abs(size_w - n * powers) <= 0.25 * n * powers):
            return n
    return int(round(size_w / float(np.median(powers_w))))


def score_events(found: pd.DataFrame, truth: pd.DataFrame, visible_from,
                 tolerance_s: float = 3 * 3600.0) -> dict[str, float]:
    """Detections against the true failures of a simulation.

    ``truth``: rows with ``time_s``, ``channel`` (feeder), ``kind`` ('lamp'/'feeder'),
    ``n_lamps``. A failure is detected by the first ``lamp_outage``/``supply_loss`` event on
    its channel whose change point lies between the failure and ``tolerance_s`` after it
    became visible (``visible_from(time_s)``: the first switched-on time); an event can
    explain as many failures as lamps it estimated (at least one). Delay = detection time -
    visible time. Other down-events are false alarms.
    """
    downs = found[found["kind"].isin(["lamp_outage", "supply_loss"])].copy() \
        if len(found) else pd.DataFrame(columns=["channel", "start_s", "detected_s", "n_lamps"])
    capacity = {i: max(int(r["n_lamps"]), 1) for i, r in downs.iterrows()}
    used = {i: 0 for i in downs.index}
    delays = []
    missed = 0
    for _, f in truth.sort_values("time_s").iterrows():
        seen = visible_from(float(f["time_s"]))
        if not np.isfinite(seen):
            continue                       # never switched on again within the run
        cand = downs[(downs["channel"] == f["channel"]) & (downs["detected_s"] >= seen)
                     & (downs["start_s"] >= float(f["time_s"]) - 120.0)
                     & (downs["start_s"] <= seen + tolerance_s)]
        hit = next((i for i in cand.index if used[i] < capacity[i]), None)
        if hit is None:
            missed += 1
            continue
        used[hit] += 1
        delays.append((downs.at[hit, "detected_s"] - seen) / 60.0)
    false_alarms = sum(1 for i in downs.index if used[i] == 0)
    scored = len(delays) + missed
    return {"true_faults": scored, "detected": len(delays), "missed": missed,
            "false_alarms": false_alarms,
            "detection_rate": len(delays) / scored if scored else float("nan"),
            "delay_median_min": float(np.median(delays)) if delays else float("nan"),
            "delay_p90_min": float(np.percentile(delays, 90)) if delays else float("nan")}
