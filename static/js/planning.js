// The planning page (issue 17): follow a simulation run's progress by polling its small
// JSON status (analysis.views.simulation_run_status); reload once it has ended, so the
// server-rendered results appear. Without JavaScript the page refreshes itself (noscript).
(function () {
  "use strict";
  var box = document.getElementById("simulation-progress");
  if (!box) return;
  var finished = ["done", "cancelled", "failed"];
  if (finished.indexOf(box.dataset.status) >= 0) return;
  var bar = document.getElementById("simulation-bar");
  var percent = document.getElementById("simulation-percent");
  var statusText = document.getElementById("simulation-status");
  var labels = {queued: "Queued", running: "Running", done: "Done", cancelled: "Cancelled", failed: "Failed"};
  var failures = 0;

  function poll() {
    fetch(box.dataset.statusUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (body) {
        failures = 0;
        if (bar) bar.value = body.progress;
        if (percent) percent.textContent = Math.round(body.progress * 100) + "%";
        if (statusText) statusText.textContent = labels[body.status] || body.status;
        if (body.finished) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 500);
      })
      .catch(function () {
        failures += 1;  // a network hiccup: back off, the refresh link stays
        if (failures < 10) window.setTimeout(poll, 2000);
      });
  }
  window.setTimeout(poll, 300);
})();
