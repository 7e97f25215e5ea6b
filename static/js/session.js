// Idle-session warning: shown before the server ends an idle session, with a button
// that keeps it alive. The server enforces the limit; this only warns.
(function () {
  var box = document.getElementById("session-warning");
  if (!box) return;
  var idle = Number(box.dataset.idleSeconds), warn = Number(box.dataset.warningSeconds);
  var countdown = document.getElementById("session-countdown");
  var lastActivity = Date.now();
  function csrf() { var m = document.cookie.match(/csrftoken=([^;]+)/); return m ? m[1] : ""; }
  function tick() {
    var left = idle - (Date.now() - lastActivity) / 1000;
    if (left <= 0) { window.location = box.dataset.loginUrl + "?next=" + encodeURIComponent(location.pathname); return; }
    box.hidden = left > warn;
    var m = Math.floor(left / 60), s = Math.floor(left % 60);
    countdown.textContent = m + " min " + (s < 10 ? "0" : "") + s + " s";
  }
  document.getElementById("session-stay").addEventListener("click", function () {
    fetch(box.dataset.keepaliveUrl, {method: "POST", headers: {"X-CSRFToken": csrf()}, credentials: "same-origin"})
      .then(function (r) { if (r.ok) { lastActivity = Date.now(); tick(); } });
  });
  setInterval(tick, 1000); tick();
})();
