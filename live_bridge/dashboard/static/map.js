// The map: networks as vector layers and sensors coloured by residual score.
// Two renderers draw the same picture: "canvas" (batched: one path per layer and per
// colour, networks cached on their own canvas, an update redraws the sensors only) and
// "svg" (naive: one SVG node per element, everything rebuilt on each draw), the
// baseline of benchmarks/dashboard_render.py.
"use strict";

const TwinMap = (() => {
  const LAYER_COLOURS = { water: "#2f6db5", sewer: "#7a5230", lighting: "#c9a400",
    waste: "#3c8d4a", roads: "#9aa3ad", traffic: "#9aa3ad", parking: "#8e44ad" };
  const OTHER = ["#16a085", "#d35400", "#2c3e50", "#7f8c8d"];
  const BINS = 11, SCORE_MAX = 5;

  function colourOf(score) {            // diverging: blue below the twin, red above
    if (score === null || score === undefined || !isFinite(score)) return "#9099a2";
    const t = Math.max(-1, Math.min(1, score / SCORE_MAX));
    const a = Math.abs(t);
    const base = t < 0 ? [33, 102, 172] : [178, 24, 43];
    const c = base.map(v => Math.round(247 + (v - 247) * a));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  function binOf(score) {
    if (score === null || score === undefined || !isFinite(score)) return -1;
    const t = Math.max(-1, Math.min(1, score / SCORE_MAX));
    return Math.round((t + 1) / 2 * (BINS - 1));
  }
  const binColours = Array.from({ length: BINS }, (_, i) => colourOf(((i / (BINS - 1)) * 2 - 1) * SCORE_MAX));

  // geometry: each layer -> {lines: [Float64Array xy...], points: Float64Array xy}
  function prepare(geojson) {
    const lines = [], pts = [];
    for (const f of geojson.features) {
      const g = f.geometry; if (!g) continue;
      if (g.type === "LineString") lines.push(Float64Array.from(g.coordinates.flat()));
      else if (g.type === "MultiLineString") g.coordinates.forEach(c => lines.push(Float64Array.from(c.flat())));
      else if (g.type === "Polygon") lines.push(Float64Array.from(g.coordinates[0].flat()));
      else if (g.type === "MultiPolygon") g.coordinates.forEach(p => lines.push(Float64Array.from(p[0].flat())));
      else if (g.type === "Point") pts.push(g.coordinates[0], g.coordinates[1]);
    }
    return { lines, points: Float64Array.from(pts), count: geojson.features.length };
  }

  class View {
    constructor(bounds) { this.bounds = bounds; this.scale = 1; this.tx = 0; this.ty = 0; }
    fit(w, h) {
      const [x0, y0, x1, y1] = this.bounds;
      const pad = 20;
      this.scale = Math.min((w - 2 * pad) / Math.max(x1 - x0, 1e-9), (h - 2 * pad) / Math.max(y1 - y0, 1e-9));
      this.tx = pad + ((w - 2 * pad) - (x1 - x0) * this.scale) / 2 - x0 * this.scale;
      this.ty = pad + ((h - 2 * pad) - (y1 - y0) * this.scale) / 2 + y1 * this.scale;
    }
    sx(x) { return x * this.scale + this.tx; }
    sy(y) { return this.ty - y * this.scale; }
    zoom(f, px, py) { this.tx = px - (px - this.tx) * f; this.ty = py - (py - this.ty) * f; this.scale *= f; }
  }

  class CanvasRenderer {
    constructor(el) {
      this.base = el.querySelector("#map-base"); this.top = el.querySelector("#map-top");
      this.el = el;
    }
    resize() {
      const r = this.el.getBoundingClientRect(), d = window.devicePixelRatio || 1;
      for (const c of [this.base, this.top]) {
        c.width = Math.round(r.width * d); c.height = Math.round(r.height * d);
        c.getContext("2d").setTransform(d, 0, 0, d, 0, 0);
      }
      return [r.width, r.height];
    }
    drawNetworks(layers, visible, view) {
      const ctx = this.base.getContext("2d");
      ctx.clearRect(0, 0, this.base.width, this.base.height);
      let k = 0;
      for (const [name, geo] of Object.entries(layers)) {
        const colour = LAYER_COLOURS[name] || OTHER[k++ % OTHER.length];
        if (!visible[name]) continue;
        ctx.strokeStyle = colour; ctx.fillStyle = colour;
        ctx.lineWidth = name === "roads" ? 2.5 : 1.2;
        ctx.globalAlpha = name === "roads" ? 0.55 : 0.9;
        ctx.beginPath();
        for (const xy of geo.lines) {
          ctx.moveTo(view.sx(xy[0]), view.sy(xy[1]));
          for (let i = 2; i < xy.length; i += 2) ctx.lineTo(view.sx(xy[i]), view.sy(xy[i + 1]));
        }
        ctx.stroke();
        const p = geo.points;
        if (p.length) {
          ctx.beginPath();
          for (let i = 0; i < p.length; i += 2) ctx.rect(view.sx(p[i]) - 1.5, view.sy(p[i + 1]) - 1.5, 3, 3);
          ctx.fill();
        }
      }
      ctx.globalAlpha = 1;
    }
    drawSensors(sensors, scores, view, selected, mark) {
      const ctx = this.top.getContext("2d");
      ctx.clearRect(0, 0, this.top.width, this.top.height);
      const bins = Array.from({ length: BINS + 1 }, () => []);
      for (let i = 0; i < sensors.length; i++) {
        const s = sensors[i]; if (s.x === null) continue;
        bins[binOf(scores[i]) + 1].push(i);
      }
      ctx.lineWidth = 1; ctx.strokeStyle = "#1d2733";
      bins.forEach((idx, b) => {
        if (!idx.length) return;
        ctx.fillStyle = b === 0 ? "#9099a2" : binColours[b - 1];
        ctx.beginPath();
        for (const i of idx) {
          const x = view.sx(sensors[i].x), y = view.sy(sensors[i].y);
          ctx.moveTo(x + 5, y); ctx.arc(x, y, 5, 0, 2 * Math.PI);
        }
        ctx.fill(); ctx.stroke();
      });
      if (selected) { ring(ctx, view.sx(selected.x), view.sy(selected.y), 9, "#1d2733", 2.5); }
      if (mark) { ring(ctx, view.sx(mark[0]), view.sy(mark[1]), 14, "#c0392b", 3); }
    }
  }
  function ring(ctx, x, y, r, colour, w) {
    ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.strokeStyle = colour; ctx.lineWidth = w; ctx.stroke();
  }

  const NS = "http://www.w3.org/2000/svg";
  class SvgRenderer {              // naive baseline: a node per element, rebuilt each draw
    constructor(el) { this.el = el; this.holder = el.querySelector("#map-svg"); this.svg = null; }
    resize() { const r = this.el.getBoundingClientRect(); return [r.width, r.height]; }
    drawNetworks(layers, visible, view) {
      this.holder.innerHTML = "";
      this.svg = document.createElementNS(NS, "svg");
      this.net = document.createElementNS(NS, "g"); this.sens = document.createElementNS(NS, "g");
      this.svg.append(this.net, this.sens); this.holder.append(this.svg);
      let k = 0;
      for (const [name, geo] of Object.entries(layers)) {
        const colour = LAYER_COLOURS[name] || OTHER[k++ % OTHER.length];
        if (!visible[name]) continue;
        for (const xy of geo.lines) {
          const pl = document.createElementNS(NS, "polyline");
          let pts = "";
          for (let i = 0; i < xy.length; i += 2) pts += `${view.sx(xy[i])},${view.sy(xy[i + 1])} `;
          pl.setAttribute("points", pts); pl.setAttribute("fill", "none");
          pl.setAttribute("stroke", colour); pl.setAttribute("stroke-width", name === "roads" ? 2.5 : 1.2);
          this.net.append(pl);
        }
        const p = geo.points;
        for (let i = 0; i < p.length; i += 2) {
          const r = document.createElementNS(NS, "rect");
          r.setAttribute("x", view.sx(p[i]) - 1.5); r.setAttribute("y", view.sy(p[i + 1]) - 1.5);
          r.setAttribute("width", 3); r.setAttribute("height", 3); r.setAttribute("fill", colour);
          this.net.append(r);
        }
      }
    }
    drawSensors(sensors, scores, view, selected, mark) {
      if (!this.svg) return;
      this.sens.innerHTML = "";
      for (let i = 0; i < sensors.length; i++) {
        const s = sensors[i]; if (s.x === null) continue;
        const c = document.createElementNS(NS, "circle");
        c.setAttribute("cx", view.sx(s.x)); c.setAttribute("cy", view.sy(s.y)); c.setAttribute("r", 5);
        c.setAttribute("fill", colourOf(scores[i])); c.setAttribute("stroke", "#1d2733");
        if (selected === s) c.setAttribute("stroke-width", 3);
        this.sens.append(c);
      }
    }
  }

  return { prepare, View, CanvasRenderer, SvgRenderer, colourOf, LAYER_COLOURS };
})();
