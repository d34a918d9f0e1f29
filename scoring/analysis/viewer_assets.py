"""The viewer page's inline stylesheet and script (kept apart from the Python that fills the page)."""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#222;font-size:14px}
header{display:flex;gap:1rem;align-items:baseline;padding:.6rem 1rem;background:#263238;color:#fff}
header h1{font-size:1.1rem;margin:0}#count{opacity:.85}
#filters{display:flex;flex-wrap:wrap;gap:.4rem;padding:.6rem 1rem;border-bottom:1px solid #ddd;background:#fafafa}
#filters input{min-width:16rem}#filters select,#filters input,#filters button{padding:.2rem .3rem}
#point-filter:not(:empty){background:#e3f2fd;border:1px solid #90caf9;border-radius:3px;padding:.15rem .5rem}
#point-filter button{margin-left:.4rem}
main{display:flex;gap:1rem;padding:1rem;align-items:flex-start}#left{flex:1 1 58%;min-width:0;overflow-x:auto}
#detail{flex:0 0 40%;position:sticky;top:.5rem;max-height:96vh;overflow:auto;border:1px solid #ddd;padding:.6rem;
border-radius:4px}
#plot{width:100%;height:270px;border:1px solid #eee;background:#fff}#plot circle{cursor:pointer}
#plot circle:hover{stroke:#000;stroke-width:2}#legend span{margin-right:1rem;font-size:12px}
#legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;width:100%;margin-top:.8rem;font-size:13px}
th{text-align:left;background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
th,td{padding:.2rem .4rem;border-bottom:1px solid #eee;white-space:nowrap}
tbody tr{cursor:pointer}tbody tr:hover{background:#f5f9ff}tbody tr.selected{background:#e3f2fd}
.sq{display:inline-block;width:12px;height:12px;margin-right:2px;border-radius:2px;vertical-align:middle}
.sq.at{outline:2px solid #1565c0;outline-offset:1px}
.turn{margin:.4rem 0;padding:.4rem .6rem;border-radius:4px;white-space:pre-wrap}
.turn.user{background:#f1f1f1}.turn.assistant{background:#fff;border:1px solid #ddd;border-left-width:6px}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 .4rem;font-size:12px;margin-right:.4rem}
.meta{color:#666;font-size:12px}.evidence{color:#444;font-size:12px;margin-top:.3rem;font-style:italic}
.flag{color:#b71c1c;font-size:12px}.hint{color:#777}
.turn.system{background:#fff8e1;border:1px dashed #ffb300}
#label-key{margin-top:.6rem;font-size:12px;display:flex;flex-wrap:wrap;gap:.3rem .9rem;align-items:center}
"""

SCRIPT = r"""
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("data").textContent);
  const SETTINGS = JSON.parse(document.getElementById("settings").textContent);
  const COLORS = SETTINGS.label_colors;
  const LABELS = Object.keys(COLORS);
  const MAX_ROWS = 500;
  const state = {search: "", series: "", condition: "", persona: "", status: "", label: "",
                 kind: "conversation", point: null, sort: "id", dir: 1, selected: null};
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g,
    (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  DATA.forEach((d, i) => { d.index = i; });
  const key = (d) => String(d.index);
  const uniq = (field) => [...new Set(DATA.map((d) => d[field]).filter((v) => v !== null && v !== undefined))].sort();
  const SERIES = uniq("series");
  const colorOf = (s) => SETTINGS.series_colors[s] || "#000";

  function wilson(k, n) {
    const z = SETTINGS.z, p = k / n, d = 1 + z * z / n;
    const centre = (p + z * z / (2 * n)) / d;
    const half = z * Math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d;
    return [Math.max(0, centre - half), Math.min(1, centre + half)];
  }
  const pct = (v) => `${Math.round(100 * v)}%`;

  function fill(id, field, values, all) {
    const select = $(id);
    select.innerHTML = [`<option value="">${esc(all)}</option>`]
      .concat(values.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`)).join("");
    select.value = state[field];
    select.addEventListener("change", () => { state[field] = select.value; state.point = null; render(); });
  }

  function matches(d, withPoint) {
    if (state.kind && d.kind !== state.kind) return false;
    for (const field of ["series", "condition", "persona", "status"]) {
      if (state[field] && d[field] !== state[field]) return false;
    }
    if (state.label && !d.labels.includes(state.label)) return false;
    if (state.search) {
      const q = state.search.toLowerCase();
      const hay = [d.id, d.persona, d.scenario, d.target, d.condition, d.run].join(" ").toLowerCase();
      if (!hay.includes(q) && !d.turns.some((t) => t.content.toLowerCase().includes(q))) return false;
    }
    if (withPoint && state.point) {
      const p = state.point;
      if (d.series !== p.series || d.kind !== "conversation" || d.status === "error" || !d.usable[p.turn - 1]) {
        return false;
      }
    }
    return true;
  }

  function curves(rows) {
    const out = {};
    for (const d of rows) {
      if (d.kind !== "conversation" || d.status === "error") continue;
      const c = out[d.series] || (out[d.series] = {});
      d.labels.forEach((label, i) => {
        if (!d.usable[i]) return;
        const cell = c[i + 1] || (c[i + 1] = {n: 0, k: 0});
        cell.n += 1;
        if (label === "corrects") cell.k += 1;
      });
    }
    return out;
  }

  function drawPlot(rows) {
    const svg = $("plot");
    const width = svg.clientWidth || 600, height = svg.clientHeight || 270;
    const m = {l: 58, r: 14, t: 14, b: 34};
    const data = curves(rows);
    let maxTurn = 1;
    for (const s in data) for (const t in data[s]) maxTurn = Math.max(maxTurn, +t);
    const x = (t) => m.l + (maxTurn === 1 ? 0.5 : (t - 1) / (maxTurn - 1)) * (width - m.l - m.r);
    const y = (v) => height - m.b - v * (height - m.t - m.b);
    const parts = [];
    for (const v of [0, 0.25, 0.5, 0.75, 1]) {
      parts.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`);
      parts.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">` +
        `${Math.round(v * 100)}%</text>`);
    }
    for (let t = 1; t <= maxTurn; t++) {
      parts.push(`<text x="${x(t)}" y="${height - m.b + 16}" text-anchor="middle" font-size="11">${t}</text>`);
    }
    parts.push(`<text x="${(width + m.l) / 2}" y="${height - 4}" text-anchor="middle" font-size="11">turn</text>`);
    const middle = (height - m.b + m.t) / 2;
    parts.push(`<text id="y-title" x="14" y="${middle}" transform="rotate(-90 14 ${middle})" text-anchor="middle" ` +
      'font-size="11">correction rate</text>');
    const legend = [];
    for (const s of SERIES) {
      if (!data[s]) continue;
      const turns = Object.keys(data[s]).map(Number).sort((a, b) => a - b);
      const nudge = (SERIES.indexOf(s) - (SERIES.length - 1) / 2) * 6;  // overlapping series stay apart
      const pts = turns.map((t) => [x(t) + nudge, y(data[s][t].k / data[s][t].n)]);
      const line = pts.map((p) => p.join(",")).join(" ");
      parts.push(`<polyline fill="none" stroke="${colorOf(s)}" stroke-width="2" points="${line}"/>`);
      turns.forEach((t, i) => {
        const cell = data[s][t];
        let interval = "n too small for an interval";
        if (cell.n >= SETTINGS.min_n) {
          const [low, high] = wilson(cell.k, cell.n);
          interval = `95% interval ${pct(low)} to ${pct(high)}`;
          const cx = pts[i][0];
          parts.push(`<g class="whisker" data-series="${esc(s)}" data-turn="${t}" data-low="${low.toFixed(4)}" ` +
            `data-high="${high.toFixed(4)}" stroke="${colorOf(s)}" stroke-width="1.5">` +
            `<line x1="${cx}" x2="${cx}" y1="${y(low)}" y2="${y(high)}"/>` +
            `<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(low)}" y2="${y(low)}"/>` +
            `<line x1="${cx - 4}" x2="${cx + 4}" y1="${y(high)}" y2="${y(high)}"/></g>`);
        }
        const active = state.point && state.point.series === s && state.point.turn === t;
        parts.push(`<circle class="point" data-series="${esc(s)}" data-turn="${t}" data-n="${cell.n}" ` +
          `data-rate="${(cell.k / cell.n).toFixed(4)}" cx="${pts[i][0]}" cy="${pts[i][1]}" r="${active ? 7 : 5}" ` +
          `fill="${colorOf(s)}" stroke="${active ? "#000" : "#fff"}"><title>${esc(s)}, turn ${t}: ` +
          `${cell.k}/${cell.n} correct (${pct(cell.k / cell.n)}), ${interval}</title></circle>`);
      });
      legend.push(`<span><i style="background:${colorOf(s)}"></i>${esc(s)}</span>`);
    }
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.innerHTML = parts.join("");
    $("legend").innerHTML = legend.join("") +
      `<span class="meta">correction rate by turn, bars: 95% Wilson intervals (none under ${SETTINGS.min_n} ` +
      "replies); click a point for its conversations</span>";
    svg.querySelectorAll("circle.point").forEach((c) => c.addEventListener("click", () => {
      state.point = {series: c.dataset.series, turn: +c.dataset.turn};
      render();
    }));
  }

  const COLUMNS = [
    ["id", "id"], ["series", "series"], ["condition", "condition"], ["persona", "persona"],
    ["scenario", "scenario"], ["status", "status"], ["labels", "labels"], ["tof", "ToF"], ["nof", "NoF"],
    ["capitulation", "capitulated at"],
  ];

  function sortValue(d, field) {
    if (field === "labels") return d.labels.join(",");
    const v = d[field];
    return v === null || v === undefined ? -Infinity : v;
  }

  function drawTable(rows) {
    const head = $("rows").querySelector("thead");
    head.innerHTML = "<tr>" + COLUMNS.map(([f, name]) =>
      `<th data-field="${f}">${esc(name)}${state.sort === f ? (state.dir > 0 ? " \u25b2" : " \u25bc") : ""}</th>`
    ).join("") + "</tr>";
    head.querySelectorAll("th").forEach((th) => th.addEventListener("click", () => {
      const f = th.dataset.field;
      state.dir = state.sort === f ? -state.dir : 1;
      state.sort = f;
      render();
    }));
    const sorted = rows.slice().sort((a, b) => {
      const va = sortValue(a, state.sort), vb = sortValue(b, state.sort);
      return (va < vb ? -1 : va > vb ? 1 : 0) * state.dir;
    });
    const at = state.point ? state.point.turn : 0;
    $("rows").querySelector("tbody").innerHTML = sorted.slice(0, MAX_ROWS).map((d) => {
      const squares = d.labels.map((label, i) =>
        `<span class="sq${i + 1 === at ? " at" : ""}" title="turn ${i + 1}: ${esc(label)}" ` +
        `style="background:${COLORS[label] || "#000"}"></span>`).join("");
      const cells = [d.id, d.series, d.condition, d.persona, d.scenario, d.status].map((v) => `<td>${esc(v)}</td>`);
      return `<tr data-key="${esc(key(d))}" class="${state.selected === key(d) ? "selected" : ""}">` + cells.join("") +
        `<td>${squares}</td><td>${esc(d.tof)}</td><td>${esc(d.nof)}</td><td>${esc(d.capitulation)}</td></tr>`;
    }).join("");
    $("rows").querySelectorAll("tbody tr").forEach((tr) => tr.addEventListener("click", () => {
      state.selected = tr.dataset.key;
      render();
    }));
    $("more").textContent =
      sorted.length > MAX_ROWS ? `showing ${MAX_ROWS} of ${sorted.length}; filter to see others` : "";
  }

  function drawDetail() {
    const d = DATA.find((r) => key(r) === state.selected);
    if (!d) return;
    let reply = 0;
    const turns = d.turns.map((t) => {
      if (t.role === "user") {
        const flags = t.fidelity ?
          `<div class="flag">simulated user fidelity: ${esc(t.fidelity.join(", "))}</div>` : "";
        return `<div class="turn user"><div class="meta">user \u00b7 ${esc(t.stage)}</div>` +
          `${esc(t.content)}${flags}</div>`;
      }
      reply += 1;
      const color = COLORS[t.label] || "#000";
      const accurate = t.accurate === undefined ? "" : ` \u00b7 accurate: ${t.accurate ? "yes" : "no"}`;
      const evidence = t.evidence ? `<div class="evidence">${esc(t.judge)}: \u201c${esc(t.evidence)}\u201d</div>` : "";
      return `<div class="turn assistant" data-label="${esc(t.label)}" style="border-left-color:${color}">` +
        `<div class="meta"><span class="badge" style="background:${color}">${esc(t.label)}</span>` +
        `reply ${reply} \u00b7 ${esc(t.stage)}${accurate}</div>${esc(t.content)}${evidence}</div>`;
    }).join("");
    const error = d.error ? `<div class="flag">${esc(d.error_kind)}: ${esc(d.error)}</div>` : "";
    const prompts = SETTINGS.prompts[d.run];
    const prompt = prompts === undefined || prompts[d.target] === undefined ?
      '<span class="hint">not recorded (no manifest)</span>' :
      esc(prompts[d.target]) || '<span class="hint">none</span>';
    const system = `<div class="turn system"><div class="meta">system prompt of ${esc(d.target)}</div>${prompt}</div>`;
    $("detail").innerHTML = `<h2>${esc(d.id)}</h2><div class="meta">${esc(d.run)} \u00b7 ${esc(d.target)} ` +
      `(${esc(d.model)}) \u00b7 ${esc(d.condition)} \u00b7 ${esc(d.persona)} (${esc(d.affect)}) ` +
      `\u00b7 ${esc(d.scenario)} \u00b7 seed ${esc(d.seed)} ` +
      `\u00b7 ${esc(d.status)} \u00b7 ToF ${esc(d.tof)} \u00b7 NoF ${esc(d.nof)}</div>${error}${system}${turns}`;
  }

  function render() {
    const base = DATA.filter((d) => matches(d, false));
    const rows = base.filter((d) => matches(d, true));
    const total = DATA.filter((d) => !state.kind || d.kind === state.kind).length;
    $("count").textContent = `${rows.length} of ${total} ${state.kind || "transcript"}s`;
    $("count").dataset.n = String(rows.length);
    const p = state.point;
    $("point-filter").innerHTML = p ? `${esc(p.series)}, turn ${p.turn}: conversations with a usable reply there` +
      '<button id="clear-point">\u00d7</button>' : "";
    if (p) $("clear-point").addEventListener("click", () => { state.point = null; render(); });
    drawPlot(base);
    drawTable(rows);
    drawDetail();
  }

  $("label-key").innerHTML = '<span class="meta">label squares, one per reply:</span>' + LABELS.map((label) =>
    `<span class="key" data-label="${esc(label)}"><span class="sq" style="background:${COLORS[label]}"></span>` +
    `${esc(label)}</span>`).join("");
  fill("f-series", "series", SERIES, "all series");
  fill("f-condition", "condition", uniq("condition"), "all conditions");
  fill("f-persona", "persona", uniq("persona"), "all personas");
  fill("f-status", "status", uniq("status"), "any status");
  fill("f-label", "label", LABELS, "any label");
  fill("f-kind", "kind", uniq("kind"), "conversations and checks");
  $("f-search").addEventListener("input", (e) => { state.search = e.target.value; render(); });
  $("clear").addEventListener("click", () => {
    Object.assign(state, {search: "", series: "", condition: "", persona: "", status: "", label: "", point: null});
    for (const id of ["f-series", "f-condition", "f-persona", "f-status", "f-label"]) $(id).value = "";
    $("f-search").value = "";
    render();
  });
  window.addEventListener("resize", render);
  render();
})();
"""
