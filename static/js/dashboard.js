// Dashboard charts, drawn from the JSON the API serves (uPlot for curves, SVG for the
// swimmer plot) and CSV export of any table marked "exportable".
(function () {
  var root = document.getElementById("dashboard");
  if (!root) return;
  var MONTH = 30.4375;
  var LEVEL_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"];

  function width(el) { return Math.max(280, el.clientWidth || 360); }

  function curve(elId, block, label, isIncidence) {
    var el = document.getElementById(elId);
    if (!el || !block || !block.curve || block.curve.length === 0) { if (el) el.textContent = "No data yet."; return; }
    var xs = [], est = [], lo = [], hi = [], cens = [];
    block.curve.forEach(function (p) {
      xs.push(p.t_days / MONTH); est.push(p.estimate);
      lo.push(p.lower === null ? null : p.lower); hi.push(p.upper === null ? null : p.upper);
      cens.push(p.censored > 0 ? p.estimate : null);
    });
    var step = uPlot.paths.stepped({align: 1});
    new uPlot({
      width: width(el), height: 240, legend: {show: false},
      scales: {x: {time: false}, y: {range: [0, 1]}},
      axes: [{label: "Months from " + (block.origin === "first_dose" ? "first dose" : "HCT")}, {label: label}],
      series: [
        {},
        {label: label, stroke: "#1f5fa8", width: 2, paths: step, points: {show: false}},
        {label: "lower 95%", stroke: "rgba(31,95,168,0.3)", paths: step, points: {show: false}},
        {label: "upper 95%", stroke: "rgba(31,95,168,0.3)", paths: step, points: {show: false}},
        {label: isIncidence ? "" : "censored", stroke: "#1d2733", paths: function () { return null; },
         points: {show: !isIncidence, size: 7, fill: "#fff"}},
      ],
      bands: [{series: [3, 2], fill: "rgba(31,95,168,0.12)"}],
    }, [xs, est, lo, hi, cens], el);
  }

  function riskTable(elId, block) {
    var el = document.getElementById(elId);
    if (!el || !block || !block.at_risk_grid) return;
    var head = "<tr><th scope='row'>Months</th>", body = "<tr><th scope='row'>At risk</th>";
    block.at_risk_grid.forEach(function (g) {
      head += "<td>" + Math.round(g.t_days / MONTH) + "</td>"; body += "<td>" + g.at_risk + "</td>";
    });
    // Focusable and named: on a phone the row of months scrolls inside itself (keyboard users too).
    el.innerHTML = "<table class='risk exportable' tabindex='0' aria-label='Number at risk by month' data-name='" + elId + "'>" + head + "</tr>" + body + "</tr></table>";
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
  fetch(root.dataset.survivalUrl, {credentials: "same-origin", headers: {"X-Trialdesk-Background": "1", "Accept": "application/json"}})
    .then(function (r) { return r.json(); })
    .then(function (s) {
      curve("chart-os", s.os, "Overall survival", false); riskTable("risk-os", s.os);
      curve("chart-pfs", s.pfs, "Progression-free survival", false); riskTable("risk-pfs", s.pfs);
      curve("chart-nrm", s.nrm, "Cumulative incidence", true);
      csvButtons();
    })
    .catch(function () { document.getElementById("chart-os").textContent = "Survival data unavailable."; csvButtons(); });
  csvButtons();
})();
