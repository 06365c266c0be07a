/* socialcare console: live SLA countdowns, the wallboard's and case pages' server-sent
   events.
   Plain JavaScript, no library. Times come from the server as absolute ISO moments;
   the browser counts down against the server's clock (its offset is measured on each
   update), so a wrong clock on the wall screen does not matter. */
(function () {
  "use strict";

  var offset = 0; // the server's clock minus this browser's, in ms
  var LEVELS = ["sla-calm", "sla-warning", "sla-overdue"];

  function setNow(iso) {
    var at = Date.parse(iso);
    if (!isNaN(at)) { offset = at - Date.now(); }
  }

  // A span of time in words ("12 min 45 s"), not as digits that read like a clock time.
  function span(ms, labels) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var fill = function (name, values) {
      return labels.getAttribute(name).replace(/\{(\w+)\}/g, function (_, key) {
        return String(values[key]);
      });
    };
    if (h) { return fill("data-hours", { hours: h, minutes: m }); }
    if (m) { return fill("data-minutes", { minutes: m, seconds: s % 60 }); }
    return fill("data-seconds", { seconds: s });
  }

  function levelOf(el, now) {
    var due = Date.parse(el.getAttribute("data-due"));
    var warn = Date.parse(el.getAttribute("data-warn") || "");
    if (now >= due) { return "overdue"; }
    if (!isNaN(warn) && now >= warn) { return "warning"; }
    return "calm";
  }

  function tick() {
    var now = Date.now() + offset;
    var counts = {};
    var timed = document.querySelectorAll("[data-due]");
    for (var i = 0; i < timed.length; i++) {
      var el = timed[i];
      var level = levelOf(el, now);
      var due = Date.parse(el.getAttribute("data-due"));
      for (var j = 0; j < LEVELS.length; j++) { el.classList.remove(LEVELS[j]); }
      el.classList.add("sla-" + level);
      var labels = el.closest("[data-left]");
      var shown = el.querySelector(".countdown");
      if (labels && shown) {
        var template = level === "overdue" ? labels.getAttribute("data-overdue")
                                            : labels.getAttribute("data-left");
        shown.textContent = template.replace("{time}", span(due - now, labels));
      }
      var tier = el.getAttribute("data-tier");
      if (tier) {
        counts[tier] = counts[tier] || { warning: 0, overdue: 0 };
        if (level !== "calm") { counts[tier][level] += 1; }
      }
    }
    var tiers = document.querySelectorAll("#counters [data-tier]");
    for (var k = 0; k < tiers.length; k++) {
      var name = tiers[k].getAttribute("data-tier");
      var c = counts[name] || { warning: 0, overdue: 0 };
      tiers[k].querySelector("[data-count=warning]").textContent = c.warning;
      tiers[k].querySelector("[data-count=overdue]").textContent = c.overdue;
    }
  }

  function caseIds(rows) {
    var ids = {};
    var found = rows.querySelectorAll("tr[id]");
    for (var i = 0; i < found.length; i++) { ids[found[i].id] = true; }
    return ids;
  }

  function follow(rows) {
    var live = document.getElementById("live");
    var counters = document.getElementById("counters");
    var known = caseIds(rows);
    var source = new EventSource("/events");
    source.addEventListener("board", function (event) {
      var board = JSON.parse(event.data);
      setNow(board.now);
      rows.innerHTML = board.rows;
      counters.innerHTML = board.counters;
      var incidents = document.getElementById("incidents");
      if (incidents && board.incidents !== undefined) { incidents.innerHTML = board.incidents; }
      var now = caseIds(rows);
      for (var id in now) {
        if (!known[id]) { document.getElementById(id).classList.add("fresh"); }
      }
      known = now;
      tick();
      live.textContent = live.getAttribute("data-live");
      live.className = "live on";
    });
    source.addEventListener("signout", function () {
      source.close();
      window.location.assign("/signin?next=%2F");
    });
    source.onerror = function () {
      live.textContent = live.getAttribute("data-offline");
      live.className = "live";
      if (source.readyState === EventSource.CLOSED) {
        // Refused (the session ended?): reloading leads to the sign-in page if so.
        window.setTimeout(function () { window.location.reload(); }, 5000);
      }
    };
  }

  function formState(page) {
    var forms = page.querySelectorAll("form");
    var parts = [];
    for (var i = 0; i < forms.length; i++) {
      new FormData(forms[i]).forEach(function (value, name) {
        parts.push(i + ":" + name + "=" + value);
      });
    }
    return parts.join("&");
  }

  // A case page shows the case as it is: it reloads when the case changes, unless
  // something is being typed into its forms; then it says so and offers to reload.
  function followCase(page) {
    var untouched = formState(page);
    var source = new EventSource(page.getAttribute("data-case-events"));
    source.addEventListener("changed", function () {
      if (formState(page) !== untouched) {
        document.getElementById("case-changed").hidden = false;
      } else {
        source.close();
        window.location.reload();
      }
    });
    source.addEventListener("signout", function () {
      source.close();
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    });
  }

  var stamped = document.querySelector("[data-now]");
  if (stamped) { setNow(stamped.getAttribute("data-now")); }
  tick();
  window.setInterval(tick, 1000);
  var rows = document.getElementById("rows");
  if (rows && window.EventSource) { follow(rows); }
  var casePage = document.querySelector("[data-case-events]");
  if (casePage && window.EventSource) { followCase(casePage); }
}());
