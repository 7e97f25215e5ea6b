// CTCAE term picker: a search box above the plain <select> (which works without JS).
// Typing asks /ctcae/search/?q= and narrows the select to the best matches.
(function () {
  "use strict";
  var form = document.querySelector("form[data-ctcae-search]");
  var select = form && form.querySelector("select[name=term]");
  if (!select) return;
  var url = form.getAttribute("data-ctcae-search");
  var box = document.createElement("input");
  box.type = "search";
  box.id = "ctcae-search";
  box.setAttribute("aria-controls", select.id);
  box.setAttribute("autocomplete", "off");
  box.placeholder = "Search term, SOC or MedDRA code";
  var label = document.createElement("label");
  label.htmlFor = box.id;
  label.textContent = "Search the CTCAE dictionary";
  var status = document.createElement("small");
  status.className = "help";
  status.setAttribute("aria-live", "polite");
  select.parentNode.insertBefore(label, select);
  select.parentNode.insertBefore(box, select);
  select.parentNode.insertBefore(status, select);
  var all = Array.prototype.slice.call(select.options).map(function (o) { return o.cloneNode(true); });
  var timer = null;
  var seq = 0;

  function restore() {
    var chosen = select.value;
    select.innerHTML = "";
    all.forEach(function (o) { select.appendChild(o.cloneNode(true)); });
    select.value = chosen;
    status.textContent = "";
  }

  function show(results) {
    var chosen = select.value;
    select.innerHTML = "";
    results.forEach(function (t) {
      var o = document.createElement("option");
      o.value = String(t.id);
      o.textContent = t.term + " — " + t.soc + " (" + t.meddra_code + "), grades " + t.grades.join(", ");
      select.appendChild(o);
    });
    if (results.some(function (t) { return String(t.id) === chosen; })) select.value = chosen;
    status.textContent = results.length + " matching term" + (results.length === 1 ? "" : "s");
  }

  box.addEventListener("input", function () {
    clearTimeout(timer);
    var q = box.value.trim();
    if (!q) { restore(); return; }
    timer = setTimeout(function () {
      var mine = ++seq;
      fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (body) { if (mine === seq) show(body.results); })
        .catch(function () { status.textContent = "Search unavailable; choose from the list."; });
    }, 200);
  });
})();
