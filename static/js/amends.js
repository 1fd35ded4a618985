// Amends: small progressive enhancements. The pages work without this file.
// The war-room clock and the breach countdown share the page's translated unit letters.
(function () {
  "use strict";

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  // Unit letters come translated from the page (<html data-unit-day=…>).
  function unit(name, fallback) { return document.documentElement.dataset[name] || fallback; }

  // The war-room clock: elapsed time since declaration, ticking each second.
  function tickClocks() {
    document.querySelectorAll("time.clock[data-since]").forEach(function (el) {
      var since = Date.parse(el.dataset.since);
      var until = el.dataset.until ? Date.parse(el.dataset.until) : Date.now();
      if (isNaN(since)) { return; }
      var s = Math.max(0, Math.floor((until - since) / 1000));
      var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
      var m = Math.floor((s % 3600) / 60), sec = s % 60;
      el.textContent = (d ? d + unit("unitDay", "d") + " " : "") + pad(h) + ":" + pad(m) + ":" + pad(sec);
    });
  }

  // Issue 5: the breach countdown in the war-room header, ticking down each minute.
  function hm(h, m) {
    return h + unit("unitHour", "h") + " " + pad(m) + unit("unitMinute", "m");
  }
  function tickCountdowns() {
    document.querySelectorAll("time.countdown[data-deadline]").forEach(function (el) {
      var left = Math.floor((Date.parse(el.dataset.deadline) - Date.now()) / 60000);
      if (isNaN(left)) { return; }
      if (left <= 0) { el.textContent = hm(0, 0); el.classList.add("overdue"); return; }
      var h = Math.floor(left / 60), m = left % 60;
      el.textContent = hm(h, m);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickClocks();
    tickCountdowns();
    setInterval(tickClocks, 1000);
    setInterval(tickCountdowns, 30000);
  });
  document.addEventListener("htmx:afterSettle", function () {
    tickClocks();
    tickCountdowns();
  });
})();

// War room: the step at hand is open, the others are one line. A link to a step (tracker,
// #step-3, #containment) opens it; what a person opened or closed stays so when live
// updates re-render the cards; and a live update never replaces a part someone is typing in.
(function () {
  "use strict";
  var chosen = {};  // step number -> open, as the person left it

  function openFor(hash) {
    if (!hash || hash.length < 2) { return; }
    var target = document.getElementById(decodeURIComponent(hash.slice(1)));
    if (!target) { return; }
    var card = target.closest("details.step-card") || target.querySelector("details.step-card");
    if (card && !card.open) { card.open = true; chosen[card.dataset.step] = true; }
    target.scrollIntoView({ block: "start" });
  }

  function restore(root) {
    (root || document).querySelectorAll("details.step-card").forEach(function (card) {
      if (card.dataset.step in chosen) { card.open = chosen[card.dataset.step]; }
    });
  }

  // A part is busy while the person is in it: typing in a field, an edited form, or a
  // request they started that has not finished (it may wait in the hx-sync queue, and
  // replacing its element would drop it).
  var TYPING = "textarea, select, input:not([type=checkbox]):not([type=radio])" +
               ":not([type=submit]):not([type=button]):not([type=hidden])";
  function busyIn(el) {
    var active = document.activeElement;
    if (active && el.contains(active) && active.matches(TYPING)) { return true; }
    // Reading older events or one kind of them: keep the list as the person left it.
    if (el.matches("[data-hold]") || el.querySelector("form[data-dirty], [data-hold]")) {
      return true;
    }
    // A pending mark older than 30 s belongs to a request that never left (a declined
    // confirmation): it no longer counts.
    var marks = [el].concat(Array.prototype.slice.call(el.querySelectorAll("[data-pending]")));
    return marks.some(function (m) {
      return m.dataset.pending && Date.now() - Number(m.dataset.pending) < 30000;
    });
  }
  function refreshStale() {
    document.querySelectorAll("[data-stale][data-refresh]").forEach(function (el) {
      if (!busyIn(el) && window.htmx) {
        delete el.dataset.stale;
        window.htmx.ajax("GET", el.dataset.refresh, { target: el, swap: "outerHTML" });
      }
    });
  }
  document.addEventListener("htmx:confirm", function (e) {
    var elt = e.detail.elt;
    if (elt.matches && elt.matches("form, button, input, select")) {
      elt.dataset.pending = String(Date.now());
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt && e.detail.elt.dataset) { delete e.detail.elt.dataset.pending; }
    setTimeout(refreshStale, 0);
  });

  document.addEventListener("toggle", function (e) {
    var card = e.target;
    if (card.matches && card.matches("details.step-card") && e.isTrusted !== false) {
      chosen[card.dataset.step] = card.open;
    }
  }, true);
  document.addEventListener("input", function (e) {
    var form = e.target.closest && e.target.closest("form");
    if (form) { form.dataset.dirty = "1"; }
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.target.closest && e.target.closest("form");
    if (form) { delete form.dataset.dirty; }
  });
  // Live updates arrive out of band: skip the parts someone is working in; the next
  // change brings them up to date.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    if (e.detail.target && busyIn(e.detail.target)) {
      e.detail.shouldSwap = false;
      e.detail.target.dataset.stale = "1";
    }
  });
  // A step card skipped while someone was in it catches up once they leave it.
  document.addEventListener("focusout", function () { setTimeout(refreshStale, 0); });
  document.addEventListener("htmx:afterSettle", function () { restore(); });
  window.addEventListener("hashchange", function () { openFor(location.hash); });
  document.addEventListener("DOMContentLoaded", function () {
    var focus = document.querySelector("[data-focus-step]");
    if (location.hash) { openFor(location.hash); }
    else if (focus) { openFor("#step-" + focus.dataset.focusStep); }
  });
})();

// An owner select saves when the person leaves it (or presses Enter), not on each arrow key.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    if (e.target.matches("select[data-save-on-leave]")) { e.target.dataset.changed = "1"; }
  });
  function save(select) {
    if (select.dataset.changed) {
      delete select.dataset.changed;
      select.form.requestSubmit();
    }
  }
  document.addEventListener("focusout", function (e) {
    if (e.target.matches && e.target.matches("select[data-save-on-leave]")) { save(e.target); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target.matches && e.target.matches("select[data-save-on-leave]")) {
      e.preventDefault(); e.target.dataset.changed = "1"; save(e.target);
    }
  });
})();

// Issue 14: what htmx changes is said aloud, once. A swapped element is a new element, so a
// live region inside it says nothing (or all of it, again): parts carry their sentence in
// data-announce (or, empty, their own text), new timeline entries are read one by one, and
// the two regions at the end of <main>, never swapped, say it.
(function () {
  "use strict";
  var said = {};       // part id -> the sentence last said (or found on load)
  var newest = 0;      // the highest timeline entry id seen
  var queue = { polite: [], alert: [] };
  var flushing = false;

  function clean(text) { return (text || "").replace(/\s+/g, " ").trim(); }
  function say(text, urgent) {
    if (!text) { return; }
    queue[urgent ? "alert" : "polite"].push(text);
    if (flushing) { return; }
    flushing = true;
    setTimeout(function () {  // several parts in one response: one sentence per region
      flushing = false;
      ["polite", "alert"].forEach(function (kind) {
        var region = document.getElementById("announce-" + kind);
        if (!region || !queue[kind].length) { return; }
        region.textContent = "";  // emptied first, so the same sentence twice is said twice
        var text = queue[kind].join(" ");
        queue[kind] = [];
        setTimeout(function () { region.textContent = text; }, 50);
      });
    }, 0);
  }

  function parts(quiet) {
    document.querySelectorAll("[data-announce][id]").forEach(function (el) {
      var text = clean(el.dataset.announce || el.textContent);
      if (said[el.id] !== text) {
        if (!quiet) { say(text, false); }
        said[el.id] = text;
      }
    });
  }

  function timeline(quiet) {
    var list = document.getElementById("timeline-events");
    if (!list) { return; }
    var fresh = [];
    list.querySelectorAll("li.event[id^='event-']").forEach(function (li) {
      var id = Number(li.id.slice(6));
      if (id > newest) { fresh.push(li); }
    });
    fresh.forEach(function (li) { newest = Math.max(newest, Number(li.id.slice(6))); });
    if (quiet) { return; }
    fresh.reverse().forEach(function (li) {  // the list is newest first; say them in order
      var kind = li.querySelector(".event-meta .tag");
      var message = li.querySelector(".event-message");
      var sentence = list.dataset.newEntry || "{kind}. {message}";  // translated in the page
      // Functions, not strings, as replacements: a "$&" in a note stays as written.
      say(clean(sentence.replace("{kind}", function () { return clean(kind && kind.textContent); })
                        .replace("{message}", function () {
                          return clean(message && message.textContent);
                        })),
          li.classList.contains("event-alert"));
    });
  }

  var pending = false;
  function changed() {
    if (pending) { return; }
    pending = true;
    setTimeout(function () { pending = false; parts(false); timeline(false); }, 0);
  }
  document.addEventListener("DOMContentLoaded", function () { parts(true); timeline(true); });
  document.addEventListener("htmx:afterSettle", changed);
  document.addEventListener("htmx:oobAfterSwap", changed);
})();

// Issue 14: after a swap, focus stays where the person was. htmx puts it back by id; when
// that element is gone or hidden (a disclosure that closed, a control that changed), focus
// goes to the nearest part they were in that is still shown, never to the top of the page.
(function () {
  "use strict";
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled])," +
                  " select:not([disabled]), textarea:not([disabled]), summary, [tabindex='0']";
  var last = null, trail = [];
  document.addEventListener("focusin", function (e) {
    last = e.target;
    trail = [];
    for (var el = e.target; el && el !== document.body; el = el.parentElement) {
      if (el.id) { trail.push(el.id); }
    }
  });
  // Focus the person put nowhere on purpose (a click on the page) is theirs: forget the trail,
  // so a later live update does not pull focus back into the page.
  document.addEventListener("focusout", function (e) {
    if (e.relatedTarget) { return; }
    setTimeout(function () {
      if (e.target.isConnected && document.activeElement === document.body) { last = null; }
    }, 0);
  });
  function shown(el) { return el.getClientRects().length > 0; }
  function restore() {
    var active = document.activeElement;
    if (!last || document.contains(last) || (active && active !== document.body)) { return; }
    for (var i = 0; i < trail.length; i++) {
      var part = document.getElementById(trail[i]);
      if (!part || !shown(part)) { continue; }
      var target = part.matches(FOCUSABLE) ? part
        : Array.prototype.find.call(part.querySelectorAll(FOCUSABLE), shown);
      if (target) { target.focus({ preventScroll: true }); return; }
    }
  }
  document.addEventListener("htmx:afterSettle", function () { setTimeout(restore, 0); });
})();
