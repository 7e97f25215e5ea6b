// Dashboard charts, drawn from the JSON in the page (the survival API's curves, printed as
// tables beside each chart; uPlot for curves, SVG for the swimmer plot) and CSV export of any table marked "exportable".
(function () {
  var root = document.getElementById("dashboard");
  if (!root) return;
  var MONTH = 30.4375;
  var LEVEL_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"];

  function width(el) { return Math.max(200, el.clientWidth || 360); }

  var RISK_GAP = 30;  // px: the least room between two time ticks (and their at-risk numbers)

  // The time ticks drawn at the plot's current width: the at-risk grid's months (every 3),
  // every k-th of them when they would crowd; the at-risk numbers are drawn under exactly these.
  function thinned(u, ticks) {
    if (ticks.length < 2) return ticks.slice();
    var step = Math.abs(u.valToPos(ticks[1], "x") - u.valToPos(ticks[0], "x"));
    var k = step > 0 ? Math.max(1, Math.ceil(RISK_GAP / step)) : 1;
    return ticks.filter(function (t, i) { return i % k === 0; });
  }

  // Each at-risk number centred under its tick: the position comes from uPlot's own x scale
  // (valToPos, CSS pixels from the plotting area's left edge), redrawn on every draw (resize).
  function riskRow(u, key, grid, shown) {
    var strip = document.getElementById("risk-" + key);
    if (!strip) return;
    var row = strip.querySelector(".risk-row");
    var base = u.over.getBoundingClientRect().left - row.getBoundingClientRect().left;
    var byMonth = {};
    grid.forEach(function (g) { byMonth[g.x] = g.n; });
    row.textContent = "";
    shown.forEach(function (x) {
      var span = document.createElement("span");
      span.textContent = String(byMonth[x]);
      span.dataset.months = String(Math.round(x));
      span.dataset.x = String(x);
      span.style.left = (base + u.valToPos(x, "x")).toFixed(1) + "px";
      row.appendChild(span);
    });
  }

  var charts = {};  // key -> uPlot instance (read by the browser tests: ticks and positions)
  window.trialdeskCharts = charts;

  function curve(key, block, label, isIncidence) {
    var el = document.getElementById("chart-" + key);
    if (!el || !block || !block.curve || block.curve.length === 0) { if (el) el.textContent = "No data yet."; return; }
    var xs = [], est = [], lo = [], hi = [], cens = [];
    block.curve.forEach(function (p) {
      xs.push(p.t_days / MONTH); est.push(p.estimate);
      lo.push(p.lower === null ? null : p.lower); hi.push(p.upper === null ? null : p.upper);
      cens.push(p.censored > 0 ? p.estimate : null);
    });
    var grid = (block.at_risk_grid || []).map(function (g) { return {x: g.t_days / MONTH, n: g.at_risk}; });
    var ticks = grid.map(function (g) { return g.x; });
    var xmax = Math.max(xs[xs.length - 1], ticks.length ? ticks[ticks.length - 1] : 0) || 1;
    var shown = [];
    var xAxis = {label: "Months from " + (block.origin === "first_dose" ? "first dose" : "HCT")};
    if (ticks.length) {
      xAxis.splits = function (u) { shown = thinned(u, ticks); return shown; };
      xAxis.values = function (u, vals) { return vals.map(function (v) { return String(Math.round(v)); }); };
    }
    var step = uPlot.paths.stepped({align: 1});
    var u = new uPlot({
      width: width(el), height: 240, legend: {show: false},
      // Room on the right for the last tick's label and at-risk number (never clipped).
      padding: [12, 20, 0, 0],
      scales: {x: {time: false, range: [0, xmax]}, y: {range: [0, 1]}},
      axes: [xAxis, {label: label}],
      series: [
        {},
        {label: label, stroke: "#1f5fa8", width: 2, paths: step, points: {show: false}},
        {label: "lower 95%", stroke: "rgba(31,95,168,0.3)", paths: step, points: {show: false}},
        {label: "upper 95%", stroke: "rgba(31,95,168,0.3)", paths: step, points: {show: false}},
        {label: isIncidence ? "" : "censored", stroke: "#1d2733", paths: function () { return null; },
         points: {show: !isIncidence, size: 7, fill: "#fff"}},
      ],
      bands: [{series: [3, 2], fill: "rgba(31,95,168,0.12)"}],
      hooks: {draw: [function (u) { if (ticks.length) riskRow(u, key, grid, shown); }]},
    }, [xs, est, lo, hi, cens], el);
    charts[key] = u;
    var last = width(el);
    var resize = function () {
      var now = width(el);
      if (now !== last) { last = now; u.setSize({width: now, height: 240}); }
    };
    if (window.ResizeObserver) new ResizeObserver(resize).observe(el); else window.addEventListener("resize", resize);
  }

  function swimmer() {
    var el = document.getElementById("swimmer");
    var rows = JSON.parse(document.getElementById("swimmer-data").textContent);
    if (!rows.length) { el.textContent = "No enrolled patients."; return; }
    var max = Math.max.apply(null, rows.map(function (r) { return r.end_day; })) || 1;
    var W = width(el), left = 80, right = 20, rowH = 18, H = rows.length * rowH + 30;
    var sx = function (d) { return left + (W - left - right) * d / max; };
    var svg = "<svg xmlns='http://www.w3.org/2000/svg' width='" + W + "' height='" + H + "' font-size='11'>";
    rows.forEach(function (r, i) {
      var y = 10 + i * rowH, colour = LEVEL_COLOURS[((r.dose_level || 1) - 1) % LEVEL_COLOURS.length];
      svg += "<text x='0' y='" + (y + 10) + "'>" + r.subject_id + " L" + r.dose_level + "</text>";
      svg += "<rect x='" + sx(0) + "' y='" + y + "' width='" + (sx(r.end_day) - sx(0)) + "' height='12' fill='" + colour + "' opacity='0.75'><title>" + r.subject_id + "</title></rect>";
      r.cycles.forEach(function (c) { svg += "<line x1='" + sx(c.day) + "' x2='" + sx(c.day) + "' y1='" + (y - 2) + "' y2='" + (y + 14) + "' stroke='#000'/>"; });
      if (r.relapse_day !== null) svg += "<text x='" + (sx(r.relapse_day) - 4) + "' y='" + (y + 10) + "' fill='#8a5a00'>▲</text>";
      if (r.death_day !== null) svg += "<text x='" + (sx(r.end_day) + 2) + "' y='" + (y + 10) + "' fill='#b3261e'>✕</text>";
      else svg += "<text x='" + (sx(r.end_day) + 2) + "' y='" + (y + 10) + "' fill='#1e7a3c'>▶</text>";
    });
    svg += "<text x='" + left + "' y='" + (H - 4) + "'>0</text><text x='" + (W - right - 30) + "' y='" + (H - 4) + "'>" + max + " d</text></svg>";
    el.innerHTML = svg;
  }

  function csvButtons() {
    document.querySelectorAll("table.exportable").forEach(function (table) {
      if (table.dataset.csv) return;
      table.dataset.csv = "1";
      var button = document.createElement("button");
      button.type = "button"; button.className = "button secondary csv"; button.textContent = "Download CSV";
      button.addEventListener("click", function () {
        var lines = Array.from(table.rows).map(function (row) {
          return Array.from(row.cells).map(function (cell) {
            return '"' + cell.innerText.replace(/"/g, '""').trim() + '"';
          }).join(",");
        });
        var link = document.createElement("a");
        link.href = URL.createObjectURL(new Blob([lines.join("\n")], {type: "text/csv"}));
        link.download = (table.dataset.name || "table") + ".csv";
        link.click();
      });
      table.insertAdjacentElement("afterend", button);
    });
  }

  swimmer();
  // The curves' numbers are in the page (the tables under each chart print the same JSON).
  var survival = JSON.parse(document.getElementById("survival-data").textContent);
  curve("os", survival.os, "Overall survival", false);
  curve("pfs", survival.pfs, "Progression-free survival", false);
  curve("nrm", survival.nrm, "Cumulative incidence", true);
  csvButtons();
})();
