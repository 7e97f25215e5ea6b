// CDISC packages page: a build in progress polls its job (GET /api/v1/trials/<id>/cdisc-packages/<id>/)
// every two seconds and moves its progress bar; when the job is done or failed the page reloads
// to show the download link or the error. Without JavaScript, reloading the page does the same.
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-package-poll]");
  Array.prototype.forEach.call(boxes, function (box) {
    var url = box.getAttribute("data-package-poll");
    var bar = box.querySelector("progress");
    var step = box.querySelector(".package-step");
    var label = box.querySelector(".package-status");
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (job) {
          if (!job) { window.setTimeout(poll, 5000); return; }
          bar.value = job.progress;
          bar.textContent = Math.round(job.progress * 100) + "%";
          step.textContent = job.step;
          label.textContent = job.status === "running" ? "Running" : job.status === "queued" ? "Queued" : job.status;
          if (job.status === "done" || job.status === "failed") { window.location.reload(); return; }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  });
})();
