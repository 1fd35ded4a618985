// Amends: small progressive enhancements. The pages work without this file.
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // The war-room clock: elapsed time since declaration, ticking each second.
  function tickClocks() {
    document.querySelectorAll("time.clock[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      var until = el.dataset.until ? Date.parse(el.dataset.until) : Date.now();
      if (isNaN(since)) { return; }
      var s = Math.max(0, Math.floor((until - since) / 1000));
      var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
      var m = Math.floor((s % 3600) / 60), sec = s % 60;
      el.textContent = (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(sec);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickClocks();
    setInterval(tickClocks, 1000);
  });
  document.addEventListener("htmx:afterSettle", tickClocks);
})();

// Issue 5: the breach countdown in the war-room header, ticking down each minute.
(function () {
  "use strict";
  function tickCountdowns() {
    document.querySelectorAll("time.countdown[data-deadline]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.deadline) - Date.now()) / 60000);
      if (isNaN(left)) { return; }
      if (left <= 0) { el.textContent = "0h 00m"; el.classList.add("overdue"); return; }
      var h = Math.floor(left / 60), m = left % 60;
      el.textContent = h + "h " + (m < 10 ? "0" : "") + m + "m";
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    setInterval(tickCountdowns, 30000);
  });
  document.addEventListener("htmx:afterSettle", tickCountdowns);
})();
