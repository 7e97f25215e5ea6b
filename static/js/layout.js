// A table wider than the screen scrolls inside itself (CSS, max-width 600px); one that does
// is made reachable by the keyboard (a focusable, named region) so its hidden columns can
// be scrolled into view without a mouse (WCAG 2.1.1; axe "scrollable-region-focusable").
(function () {
  function mark() {
    document.querySelectorAll("main table").forEach(function (table) {
      var scrolls = table.scrollWidth > table.clientWidth + 1;
      if (scrolls && !table.hasAttribute("tabindex")) {
        table.setAttribute("tabindex", "0");
        table.dataset.scrollRegion = "1";
      } else if (!scrolls && table.dataset.scrollRegion) {
        table.removeAttribute("tabindex");
        delete table.dataset.scrollRegion;
      }
    });
  }
  window.addEventListener("resize", mark);
  // A table inside a closed <details> has no width until it is opened (the dashboard's chart tables).
  document.addEventListener("toggle", mark, true);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mark); else mark();
})();
