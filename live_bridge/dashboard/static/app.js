// The operator dashboard page: loads networks and sensors, follows the server's events,
// colours sensors by residual at the slider's hour, lists open alerts, charts measured vs
// simulated for the chosen sensor, runs what-ifs and sends approvals.
"use strict";

(() => {
  const $ = id => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const metrics = { first_render_ms: null, updates: [] };
  const S = {
    layers: {}, visible: {}, sensors: [], byId: {}, scores: [], residuals: null,
    hour: -1, follow: true, selected: null, alert: null, alerts: [], view: null,
    renderer: null, version: null, whatif: null,
  };
  window.__dashboard = { metrics, state: S };

  async function api(path, opts = {}) {
    const r = await fetch(path, opts);
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
    return body;
  }
  function message(text, error = false) {
    const m = $("message"); m.textContent = text; m.className = "message" + (error ? " error" : "");
  }
  const fmt = t => new Date(t * 1000).toISOString().replace("T", " ").slice(0, 16);

  // ---- map ------------------------------------------------------------------------
  function redrawNetworks() { S.renderer.drawNetworks(S.layers, S.visible, S.view); }
  function redrawSensors() {
    const mark = S.alert && S.alert.x !== null ? [S.alert.x, S.alert.y] : null;
    S.renderer.drawSensors(S.sensors, S.scores, S.view, S.selected, mark);
  }
  function scoresAt(hour) {
    const R = S.residuals, out = new Array(S.sensors.length).fill(null);
    if (!R || hour < 0 || hour >= R.hours_s.length) return out;
    const row = R.score[hour];
    R.sensor_ids.forEach((sid, j) => { const i = S.byId[sid]; if (i !== undefined) out[i] = row[j]; });
    return out;
  }
  function setHour(h) {
    const R = S.residuals;
    S.hour = h;
    S.scores = scoresAt(h);
    $("time-label").textContent = R && R.hours_s.length ? `${fmt(R.hours_s[h])} UTC` : "no residuals yet";
  }

  async function loadMap() {
    const [nets, sensors] = await Promise.all([api("/api/networks"), api("/api/sensors")]);
    const geo = await Promise.all(nets.layers.map(l => api(`/api/networks/${encodeURIComponent(l.name)}`)));
    const box = $("layers"); box.innerHTML = "";
    nets.layers.forEach((l, i) => {
      S.layers[l.name] = TwinMap.prepare(geo[i]);
      S.visible[l.name] = true;
      const lab = document.createElement("label");
      lab.innerHTML = `<input type="checkbox" checked data-layer="${l.name}"> ${l.name} <span class="muted">(${l.elements})</span>`;
      lab.querySelector("input").addEventListener("change", e => {
        S.visible[l.name] = e.target.checked; redrawNetworks();
      });
      box.append(lab);
    });
    S.sensors = sensors;
    S.byId = Object.fromEntries(sensors.map((s, i) => [s.sensor_id, i]));
    S.scores = new Array(sensors.length).fill(null);
    const pts = sensors.filter(s => s.x !== null);
    let b = nets.bounds;
    if (!b && pts.length) b = [Math.min(...pts.map(s => s.x)), Math.min(...pts.map(s => s.y)),
      Math.max(...pts.map(s => s.x)), Math.max(...pts.map(s => s.y))];
    S.view = new TwinMap.View(b || [0, 0, 1, 1]);
    const [w, h] = S.renderer.resize();
    S.view.fit(w, h);
    redrawNetworks();
  }

  function wireMap() {
    const el = $("map");
    let drag = null;
    el.addEventListener("wheel", e => {
      e.preventDefault();
      const r = el.getBoundingClientRect();
      S.view.zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
      redrawNetworks(); redrawSensors();
    }, { passive: false });
    el.addEventListener("mousedown", e => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
    window.addEventListener("mouseup", e => {
      if (drag && !drag.moved) pick(e);
      drag = null;
    });
    window.addEventListener("mousemove", e => {
      if (!drag) return hover(e);
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) < 3 && !drag.moved) return;
      drag.moved = true; S.view.tx += dx; S.view.ty += dy; drag.x = e.clientX; drag.y = e.clientY;
      redrawNetworks(); redrawSensors();
    });
    window.addEventListener("resize", () => {
      const [w, h] = S.renderer.resize(); S.view.fit(w, h); redrawNetworks(); redrawSensors();
    });
  }
  function sensorAt(e) {
    const r = $("map").getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    if (px < 0 || py < 0 || px > r.width || py > r.height) return null;
    let best = null, bd = 100;
    for (const s of S.sensors) {
      if (s.x === null) continue;
      const d = (S.view.sx(s.x) - px) ** 2 + (S.view.sy(s.y) - py) ** 2;
      if (d < bd) { bd = d; best = s; }
    }
    return best;
  }
  function pick(e) { const s = sensorAt(e); if (s) selectSensor(s.sensor_id); }
  function hover(e) {
    const s = sensorAt(e), tip = $("tooltip");
    if (!s) { tip.hidden = true; return; }
    const i = S.byId[s.sensor_id], sc = S.scores[i];
    tip.textContent = `${s.sensor_id} · ${s.quantity} (${s.unit}) · ${sc === null ? "no residual" : sc.toFixed(1) + " σ"}`;
    const r = $("map").getBoundingClientRect();
    tip.style.left = `${e.clientX - r.left + 12}px`; tip.style.top = `${e.clientY - r.top + 12}px`;
    tip.hidden = false;
  }

  // ---- residuals, alerts, chart ---------------------------------------------------
  async function loadResiduals() {
    S.residuals = await api("/api/residuals");
    const n = S.residuals.hours_s.length, slider = $("time");
    slider.max = Math.max(n - 1, 0);
    if (S.follow || S.hour >= n) { slider.value = Math.max(n - 1, 0); }
    setHour(Math.min(+slider.value, Math.max(n - 1, 0)));
  }

  async function loadAlerts() {
    S.alerts = await api("/api/alerts?status=open");
    $("alert-count").textContent = S.alerts.length;
    const ul = $("alerts"); ul.innerHTML = "";
    for (const a of S.alerts) {
      const li = document.createElement("li");
      li.className = `alert sev-${a.severity}` + (S.alert && S.alert.id === a.id ? " selected" : "");
      li.dataset.id = a.id; li.dataset.kind = a.kind; li.dataset.element = a.element || "";
      li.innerHTML = `<div><b>${a.severity}</b> · ${a.kind} · ${a.element || ""}</div>` +
        `<div>${escapeHtml(a.message)}</div><div class="when">${a.time}</div>`;
      li.addEventListener("click", () => selectAlert(a));
      ul.append(li);
    }
  }
  function escapeHtml(t) { const d = document.createElement("div"); d.textContent = t; return d.innerHTML; }

  async function selectAlert(a) {
    S.alert = a;
    document.querySelectorAll("#alerts li").forEach(li => li.classList.toggle("selected", +li.dataset.id === a.id));
    const R = S.residuals;
    if (R && R.hours_s.length) {         // move the slider to the alert's hour
      let h = R.hours_s.findIndex(t => t > a.time_s) - 1;
      if (h < 0) h = R.hours_s.length - 1;
      S.follow = false; $("follow").checked = false; $("time").value = h; setHour(h);
    }
    if (a.sensors.length) await selectSensor(a.sensors[0]); else redrawSensors();
  }

  async function selectSensor(sid) {
    const i = S.byId[sid];
    S.selected = i === undefined ? null : S.sensors[i];
    redrawSensors();
    await drawChart(sid);
  }

  async function drawChart(sid) {
    const d = await api(`/api/sensors/${encodeURIComponent(sid)}/series`);
    $("chart-title").textContent = `Sensor ${d.sensor_id}: ${d.quantity} (${d.unit}) at ${d.element}`;
    const c = $("chart"), ctx = c.getContext("2d"), dpr = window.devicePixelRatio || 1;
    const W = c.clientWidth || 460, H = c.clientHeight || 220;
    c.width = W * dpr; c.height = H * dpr; ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    const t = d.time_s, ys = d.measured.concat(d.simulated).filter(v => v !== null);
    c.dataset.points = t.length;
    c.dataset.simulated = d.simulated.filter(v => v !== null).length;
    if (!t.length || !ys.length) { ctx.fillText("no readings in this window", 10, 20); return; }
    const L = 48, R = 8, T = 8, B = 22;
    const t0 = t[0], t1 = Math.max(t[t.length - 1], t0 + 1);
    let y0 = Math.min(...ys), y1 = Math.max(...ys); if (y1 - y0 < 1e-9) { y0 -= 1; y1 += 1; }
    const X = v => L + (v - t0) / (t1 - t0) * (W - L - R), Y = v => T + (y1 - v) / (y1 - y0) * (H - T - B);
    ctx.strokeStyle = "#ccd3da"; ctx.strokeRect(L, T, W - L - R, H - T - B);
    ctx.fillStyle = "#1d2733"; ctx.font = "10px sans-serif";
    ctx.fillText(y1.toPrecision(4), 2, T + 8); ctx.fillText(y0.toPrecision(4), 2, H - B);
    ctx.fillText(fmt(t0), L, H - 6); ctx.textAlign = "right"; ctx.fillText(fmt(t1), W - R, H - 6); ctx.textAlign = "left";
    const line = (vals, colour) => {
      ctx.beginPath(); let pen = false;
      for (let k = 0; k < t.length; k++) {
        const v = vals[k]; if (v === null) { pen = false; continue; }
        if (pen) ctx.lineTo(X(t[k]), Y(v)); else ctx.moveTo(X(t[k]), Y(v));
        pen = true;
      }
      ctx.strokeStyle = colour; ctx.lineWidth = 1.2; ctx.stroke();
    };
    line(d.measured, "#1d2733"); line(d.simulated, "#e67e22");
    if (S.alert && S.alert.time_s >= t0 && S.alert.time_s <= t1) {
      ctx.strokeStyle = "#c0392b"; ctx.setLineDash([4, 3]); ctx.beginPath();
      ctx.moveTo(X(S.alert.time_s), T); ctx.lineTo(X(S.alert.time_s), H - B); ctx.stroke(); ctx.setLineDash([]);
    }
  }

  // ---- what-if and approvals ------------------------------------------------------
  function login() {
    const op = $("operator").value.trim(), tok = $("token").value;
    sessionStorage.setItem("operator", op); sessionStorage.setItem("token", tok);
    $("login-state").textContent = tok && op ? `operator ${op}` : "read-only";
    return { op, tok };
  }
  async function post(path, body) {
    const { op, tok } = login();
    const headers = { "Content-Type": "application/json" };
    if (tok) headers.Authorization = `Bearer ${tok}`;
    return api(path, { method: "POST", headers, body: JSON.stringify({ operator: op, ...body }) });
  }
  async function runWhatif() {
    if (!S.alert) return message("select a leak alert first", true);
    message("running the what-if on forks of the live state…");
    try { renderWhatif(await post("/api/whatif", { alert_id: S.alert.id })); message("what-if done"); }
    catch (e) { message(e.message, true); }
  }
  async function loadWhatif() { renderWhatif(await api("/api/whatif")); }
  function renderWhatif(w) {
    S.whatif = w;
    const box = $("whatif");
    $("run-whatif").disabled = !w.available;
    if (!w.result) { box.innerHTML = w.available ? "<p class='muted'>no what-if yet</p>" : "<p class='muted'>what-if needs the network (--inp)</p>"; return; }
    const r = w.result, names = r.ranking;
    const kpis = Object.keys(r.candidates[names[0]].kpis);
    const byCand = Object.fromEntries(w.proposals.map(p => [p.candidate, p]));
    let html = `<div class="muted">forked at ${r.at}, ${r.horizon_s / 3600} h ahead; ${r.ranking_rule}</div><table class="kpis"><tr><th>KPI</th>`;
    html += names.map(n => `<th>#${r.candidates[n].rank} ${n}</th>`).join("") + "</tr>";
    for (const k of kpis) {
      html += `<tr><td>${k}</td>` + names.map(n => {
        const v = r.candidates[n].kpis[k]; return `<td>${v === null ? "–" : (+v).toFixed(2)}</td>`;
      }).join("") + "</tr>";
    }
    html += "<tr><td></td>" + names.map(n => {
      const p = byCand[n];
      if (!p) return "<td class='muted'>baseline</td>";
      return p.status === "proposed" ? `<td><button class="approve" data-id="${p.proposal_id}">approve</button></td>`
        : `<td>${p.status} (${p.decided_by})</td>`;
    }).join("") + "</tr></table>";
    box.innerHTML = html;
    box.querySelectorAll("button.approve").forEach(b => b.addEventListener("click", async () => {
      try {
        const res = await post(`/api/proposals/${b.dataset.id}/approve`, {});
        message(`approved: ${res.commands.length} command(s) ${res.status}`); await loadWhatif();
      } catch (e) { message(e.message, true); }
    }));
  }

  // ---- live updates -----------------------------------------------------------------
  let busy = false, pending = null;
  async function onUpdate(v) {
    if (busy) { pending = v; return; }
    busy = true;
    const t0 = performance.now();
    try {
      const old = S.version || {};
      const jobs = [];
      if (v.steps !== old.steps || v.latest !== old.latest) jobs.push(loadResiduals());
      if (v.alerts !== old.alerts || v.changes !== old.changes) jobs.push(loadAlerts());
      if (v.changes !== old.changes) jobs.push(loadWhatif());
      await Promise.all(jobs);
      const t1 = performance.now();
      redrawSensors();
      const t2 = performance.now();
      S.version = v;
      $("status").textContent = `live · data to ${v.latest ? fmt(v.latest) + " UTC" : "–"} · ${S.sensors.length} sensors · ${v.alerts} alerts`;
      $("status").className = "status live";
      if (S.selected && S.follow && v.steps !== old.steps) drawChart(S.selected.sensor_id).catch(() => {});
      await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
      if (jobs.length) metrics.updates.push({ fetch_ms: t1 - t0, draw_ms: t2 - t1, total_ms: performance.now() - t0, steps: v.steps });
    } catch (e) { message(e.message, true); }
    busy = false;
    if (pending) { const p = pending; pending = null; onUpdate(p); }
  }

  async function main() {
    const useSvg = params.get("renderer") === "svg";
    S.renderer = useSvg ? new TwinMap.SvgRenderer($("map")) : new TwinMap.CanvasRenderer($("map"));
    $("operator").value = sessionStorage.getItem("operator") || "";
    $("token").value = sessionStorage.getItem("token") || "";
    login();
    $("login").addEventListener("input", login);
    $("login").addEventListener("submit", e => e.preventDefault());
    $("run-whatif").addEventListener("click", runWhatif);
    $("time").addEventListener("input", e => {
      S.follow = +e.target.value === +e.target.max; $("follow").checked = S.follow;
      setHour(+e.target.value); redrawSensors();
    });
    $("follow").addEventListener("change", e => {
      S.follow = e.target.checked;
      if (S.follow) { $("time").value = $("time").max; setHour(+$("time").max); redrawSensors(); }
    });
    const lg = $("legend").getContext("2d");
    for (let i = 0; i < 160; i++) { lg.fillStyle = TwinMap.colourOf((i / 159 * 2 - 1) * 5); lg.fillRect(i, 0, 1, 10); }
    wireMap();
    await loadMap();
    const v = await api("/api/status");
    await onUpdate(v.version);
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));
    metrics.first_render_ms = performance.now();
    metrics.updates = [];
    document.body.dataset.ready = "1";
    const es = new EventSource("/api/events");
    es.addEventListener("update", e => onUpdate(JSON.parse(e.data)));
    window.addEventListener("pagehide", () => es.close());
    es.onerror = () => { $("status").textContent = "reconnecting…"; $("status").className = "status"; };
  }
  main().catch(e => message(`the dashboard could not load: ${e.message}`, true));
})();
