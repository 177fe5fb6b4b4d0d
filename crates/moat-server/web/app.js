// moat dashboard: progressive enhancement only. Every table, link and filter works without this file.
// 1. Filter forms submit when a select changes. 2. The overview polls /ui/live.json and shows a banner
// when new runtime alerts or admission denials arrived since the page was rendered.
(function () {
  "use strict";
  document.querySelectorAll("form.filters select").forEach(function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  var live = document.getElementById("live");
  if (!live) return;
  var seen = live.getAttribute("data-stamp");
  function poll() {
    fetch("/ui/live.json", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j) return;
        if (String(j.stamp) !== seen) {
          live.textContent = j.alerts + " runtime alerts, " + j.denials + " admission denials in the store: reload for the latest.";
          live.hidden = false;
        }
      })
      .catch(function () {});
  }
  setInterval(poll, 15000);
})();
