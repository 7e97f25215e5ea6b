// Behaviour shared by every form page (loaded by base.html; no inline script: CSP).
// 1. Enter in a search box never submits the form around it. A search box that is its
//    own search form (a GET form with role="search", e.g. the patient list) still
//    searches on Enter; a search box inside a data-entry form (the CTCAE term search
//    in the AE form) only searches.
// 2. The error summary (templates/core/error_summary.html) takes the focus on load,
//    so a keyboard or screen-reader user starts from the list of every problem.
(function () {
  "use strict";
  function isOwnSearchForm(form) {
    return form.getAttribute("role") === "search" && (form.method || "get").toLowerCase() === "get";
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter") return;
    var target = event.target;
    if (!target || target.tagName !== "INPUT") return;
    var isSearch = target.type === "search" || target.hasAttribute("data-search");
    if (!isSearch || !target.form || isOwnSearchForm(target.form)) return;
    event.preventDefault();
  });
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
})();
