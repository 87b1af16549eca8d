// The supervisor's figures, drawn from /api/figures as SVG (no inline style:
// the page's security policy allows only its own files).
"use strict";
(function () {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, parent, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function bars(svg, groups, labels, opts) {
    // groups: [{cls, values}] stacked; labels: under each bar.
    svg.replaceChildren();
    const W = 960, H = Number(svg.getAttribute("viewBox").split(" ")[3]);
    const left = 48, right = opts.right || 16, top = 12, bottom = 28;
    const n = labels.length, slot = (W - left - right) / n;
    const totals = labels.map((_, i) => groups.reduce((s, g) => s + g.values[i], 0));
    const max = Math.max(1, ...totals);
    const y = (v) => top + (H - top - bottom) * (1 - v / max);
    el("line", {x1: left, x2: W - right, y1: y(0), y2: y(0), class: "axis"}, svg);
    for (const t of [0, 0.5, 1]) {
      el("text", {x: left - 6, y: y(max * t) + 4, "text-anchor": "end"}, svg, fmt(max * t));
    }
    labels.forEach((lab, i) => {
      let base = 0;
      const x = left + i * slot + slot * 0.12, w = slot * 0.76;
      for (const g of groups) {
        const v = g.values[i];
        if (v > 0) {
          const r = el("rect", {x, width: w, y: y(base + v), height: y(base) - y(base + v), class: g.cls}, svg);
          el("title", {}, r, `${lab}: ${fmt(v)} ${g.name}`);
        }
        base += v;
      }
      el("text", {x: x + w / 2, y: H - 10, "text-anchor": "middle"}, svg, lab);
    });
    return {left, slot, W, H, top, bottom};
  }

  function fmt(v) { return v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1); }
  function sec(v) { return v === null || v === undefined ? "–" : v.toFixed(1) + " s"; }

  function drawHours(f) {
    const days = Math.max(1, f.period.days);
    const hours = Object.keys(f.by_hour).sort();
    const rows = hours.map((h) => f.by_hour[h]);
    const g = bars($("hours"), [
      {cls: "answered", name: "answered a day", values: rows.map((r) => r.answered / days)},
      {cls: "abandoned", name: "abandoned a day", values: rows.map((r) => r.abandoned / days)},
      {cls: "other", name: "other a day", values: rows.map((r) => (r.offered - r.answered - r.abandoned) / days)},
    ], hours, {right: 40});
    // The 90th percentile time to answer, on its own scale at the right.
    const p = rows.map((r) => r.wait_p90_s);
    const pmax = Math.max(10, ...p.filter((v) => v !== null)) * 1.2;
    const py = (v) => g.top + (g.H - g.top - g.bottom) * (1 - v / pmax);
    const pts = p.map((v, i) => v === null ? null : [g.left + (i + 0.5) * g.slot, py(v)]).filter(Boolean);
    if (pts.length) {
      el("polyline", {points: pts.map((q) => q.join(",")).join(" "), class: "p90"}, $("hours"));
      for (const q of pts) el("circle", {cx: q[0], cy: q[1], r: 3, class: "dot"}, $("hours"));
      el("text", {x: g.W - 4, y: py(pmax / 1.2) + 4, "text-anchor": "end"}, $("hours"), fmt(pmax / 1.2) + " s");
    }
  }

  function drawWaits(f) {
    const h = f.wait_histogram, edges = [0, ...h.upper_edges_s.slice(0, -1)];
    const labels = edges.map((e, i) => i < edges.length - 1 ? `${e}-${edges[i + 1]}` : `${e}+`);
    const svg = $("waits");
    // answered and abandoned side by side in each bin, on one scale
    const max = Math.max(1, ...h.answered, ...h.abandoned);
    const W = 960, H = 260, left = 48, right = 16, top = 12, bottom = 28;
    const slot = (W - left - right) / labels.length;
    const y = (v) => top + (H - top - bottom) * (1 - v / max);
    svg.replaceChildren();
    el("line", {x1: left, x2: W - right, y1: y(0), y2: y(0), class: "axis"}, svg);
    for (const t of [0, 0.5, 1]) el("text", {x: left - 6, y: y(max * t) + 4, "text-anchor": "end"}, svg, fmt(max * t));
    labels.forEach((lab, i) => {
      const x = left + i * slot + slot * 0.1, w = slot * 0.4;
      for (const [cls, v, dx] of [["answered", h.answered[i], 0], ["abandoned", h.abandoned[i], w]]) {
        if (v > 0) {
          const r = el("rect", {x: x + dx, width: w, y: y(v), height: y(0) - y(v), class: cls}, svg);
          el("title", {}, r, `${lab} s: ${v} ${cls}`);
        }
      }
      el("text", {x: x + w, y: H - 10, "text-anchor": "middle"}, svg, lab);
    });
  }

  function table(id, groups, name) {
    const t = $(id);
    t.replaceChildren();
    const head = t.insertRow();
    for (const c of [name, "offered", "answered", "abandoned", "average wait", "90 % within",
                     "gave up after", "messages", "read back"]) {
      const th = document.createElement("th"); th.textContent = c; head.appendChild(th);
    }
    for (const [k, r] of Object.entries(groups)) {
      const row = t.insertRow();
      for (const v of [k, r.offered, r.answered, r.abandoned, sec(r.wait_mean_s), sec(r.wait_p90_s),
                       sec(r.abandoned_rang_mean_s), r.messages, r.read_backs]) {
        row.insertCell().textContent = v;
      }
    }
  }

  async function load() {
    const q = new URLSearchParams();
    if ($("from").value) q.set("from", $("from").value);
    if ($("to").value) q.set("to", $("to").value);
    const headers = TOKEN ? {"X-Switchboard-Token": TOKEN} : {};
    try {
      const r = await fetch("api/figures?" + q, {headers});
      const f = await r.json();
      if (!r.ok) throw new Error(f.error || r.statusText);
      $("from").value = f.period.from; $("to").value = f.period.to;
      const t = f.totals;
      $("summary").className = "";
      $("summary").textContent = `${t.offered} calls offered, ${t.answered} answered` +
        (t.answer_rate !== null ? ` (${t.answer_rate} %)` : "") + `, ${t.abandoned} abandoned; ` +
        `average wait ${sec(t.wait_mean_s)}, 90 % answered within ${sec(t.wait_p90_s)}; ` +
        `${t.messages} messages taken, ${t.read_backs} read back.`;
      drawHours(f); drawWaits(f);
      table("by-line", f.by_line, "line"); table("by-position", f.by_position, "position");
      document.body.dataset.loaded = "yes";
    } catch (e) {
      $("summary").className = "error";
      $("summary").textContent = `cannot show the figures: ${e.message}`;
    }
  }

  const params = new URLSearchParams(location.search);
  if (params.get("from")) $("from").value = params.get("from");
  if (params.get("to")) $("to").value = params.get("to");
  if (TOKEN) $("board-link").href = "./?token=" + encodeURIComponent(TOKEN);
  $("period").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
  load();
})();
