// CTCAE term picker: a search box above the plain <select> (which works without JS).
// Typing asks /ctcae/search/?q= (term, synonym, abbreviation, MedDRA code, SOC: the
// server's ctcae.search) and narrows the select to the matches. Nothing is ever chosen
// for the coordinator: the blank first option stays selected until they pick a term.
// The grade select then offers only the grades that term defines (blank first).
// Enter in the search box never submits the AE form (forms.js guards every search box;
// here Enter also moves to the narrowed list).
(function () {
  "use strict";
  var form = document.querySelector("form[data-ctcae-search]");
  var select = form && form.querySelector("select[name=term]");
  if (!select) return;
  var grade = form.querySelector("select[name=grade]");
  var url = form.getAttribute("data-ctcae-search");
  var box = document.createElement("input");
  box.type = "search";
  box.id = "ctcae-search";
  box.setAttribute("aria-controls", select.id);
  box.setAttribute("autocomplete", "off");
  box.placeholder = "Term, synonym (VOD, ALT, ANC), SOC or MedDRA code";
  var label = document.createElement("label");
  label.htmlFor = box.id;
  label.textContent = "Search the CTCAE dictionary";
  var status = document.createElement("small");
  status.className = "help";
  status.id = "ctcae-search-status";
  status.setAttribute("aria-live", "polite");
  select.parentNode.insertBefore(label, select);
  select.parentNode.insertBefore(box, select);
  select.parentNode.insertBefore(status, select);
  var options = Array.prototype.slice.call(select.options);
  var blank = options.filter(function (o) { return o.value === ""; })[0];
  var blankText = blank ? blank.textContent : "— choose a term —";
  var all = options.filter(function (o) { return o.value !== ""; }).map(function (o) { return o.cloneNode(true); });
  var gradeBlank = grade && grade.options.length && grade.options[0].value === "" ? grade.options[0].textContent : "";
  var timer = null;
  var seq = 0;

  function blankOption(text) {
    var o = document.createElement("option");
    o.value = "";
    o.textContent = text;
    return o;
  }

  function fill(opts, blankLabel) {
    var chosen = select.value;
    select.innerHTML = "";
    select.appendChild(blankOption(blankLabel));
    opts.forEach(function (o) { select.appendChild(o); });
    // Keep the coordinator's choice if it is still listed; otherwise the blank one.
    var kept = opts.some(function (o) { return o.value === chosen; });
    select.value = kept ? chosen : "";
    if (!kept && chosen) syncGrades();
  }

  function restore() {
    fill(all.map(function (o) { return o.cloneNode(true); }), blankText);
    status.textContent = "";
  }

  function show(body) {
    var results = body.results;
    fill(results.map(function (t) {
      var o = document.createElement("option");
      o.value = String(t.id);
      o.setAttribute("data-grades", t.grades.join(" "));
      o.textContent = t.term + " — " + t.soc + " (" + t.meddra_code + "), grades " + t.grades.join(", ");
      return o;
    }), results.length ? "— choose one of " + results.length + " matches —" : "— no match —");
    var text = results.length + " matching term" + (results.length === 1 ? "" : "s") + "; choose one below";
    status.textContent = body.hint ? text + ". " + body.hint : text;
  }

  // Only the chosen term's grades, blank first; a grade already chosen stays if allowed.
  function syncGrades() {
    if (!grade) return;
    var option = select.options[select.selectedIndex];
    var defined = option && option.getAttribute("data-grades");
    var allowed = defined ? defined.split(" ") : ["1", "2", "3", "4", "5"];
    var chosen = grade.value;
    grade.innerHTML = "";
    grade.appendChild(blankOption(gradeBlank || "— choose a grade —"));
    allowed.forEach(function (g) {
      var o = document.createElement("option");
      o.value = g;
      o.textContent = g;
      grade.appendChild(o);
    });
    grade.value = allowed.indexOf(chosen) >= 0 ? chosen : "";
  }

  select.addEventListener("change", syncGrades);
  if (select.value) syncGrades();

  box.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      select.focus();
    }
  });

  box.addEventListener("input", function () {
    clearTimeout(timer);
    var q = box.value.trim();
    if (!q) { restore(); return; }
    timer = setTimeout(function () {
      var mine = ++seq;
      fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (body) { if (mine === seq) show(body); })
        .catch(function () { status.textContent = "Search unavailable; choose from the list."; });
    }, 200);
  });
})();
