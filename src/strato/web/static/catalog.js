// The live activity view: polls the node's activity JSON and redraws the table in place.
(function () {
  "use strict";
  var table = document.getElementById("activity");
  if (!table) { return; }
  var form = document.getElementById("activity-form");
  var errorsOnly = document.getElementById("errors-only");
  var status = document.getElementById("live-status");
  var empty = document.getElementById("activity-empty");
  var body = table.tBodies[0];
  var source = table.getAttribute("data-source");
  var INTERVAL = 2000;
  var timer = null;
  var seen = null;
  document.documentElement.classList.add("js");

  function cell(row, content) {
    var td = document.createElement("td");
    if (content) { td.appendChild(content); }
    row.appendChild(td);
    return td;
  }

  function text(value, className) {
    var span = document.createElement("span");
    if (className) { span.className = className; }
    span.textContent = value;
    return span;
  }

  function rowFor(e, fresh) {
    var tr = document.createElement("tr");
    tr.className = "outcome-" + e.outcome + (fresh ? " fresh" : "");
    tr.setAttribute("data-event", e.event_id);
    var time = document.createElement("time");
    time.setAttribute("datetime", e.time);
    time.textContent = e.time.replace("T", " ").replace("Z", " UTC");
    cell(tr, time);
    cell(tr, text(e.outcome, "badge badge-" + e.outcome));
    cell(tr, text(e.status + " " + e.title));
    var item = cell(tr, null);
    if (e.item_url) {
      var a = document.createElement("a");
      a.href = e.item_url;
      a.textContent = e.item_id;
      item.appendChild(a);
    } else {
      item.appendChild(text(e.item_id));
    }
    item.appendChild(document.createElement("br"));
    item.appendChild(text(e.collection_id, "muted"));
    cell(tr, text(e.detail));
    return tr;
  }

  function render(data) {
    var known = seen || {};
    var next = {};
    var rows = document.createDocumentFragment();
    data.events.forEach(function (e) {
      next[e.event_id] = true;
      rows.appendChild(rowFor(e, seen !== null && !known[e.event_id]));
    });
    seen = next;
    body.replaceChildren(rows);
    empty.hidden = data.events.length > 0;
    document.getElementById("applied-total").textContent = data.applied;
    document.getElementById("rejected-total").textContent = data.rejected;
    status.textContent = "· updated " + new Date().toLocaleTimeString();
  }

  function poll() {
    var url = source + "?limit=50&errors=" + (errorsOnly.checked ? "true" : "false");
    fetch(url, { headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(render)
      .catch(function (err) { status.textContent = "· live updates paused (" + err.message + ")"; })
      .finally(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, INTERVAL);
  }

  // The rows the server rendered count as seen: only later events are marked fresh.
  seen = {};
  Array.prototype.forEach.call(body.rows, function (tr) { seen[tr.getAttribute("data-event")] = true; });

  errorsOnly.addEventListener("change", function () {
    var url = new URL(window.location.href);
    if (errorsOnly.checked) { url.searchParams.set("errors", "true"); } else { url.searchParams.delete("errors"); }
    history.replaceState(null, "", url);
    seen = null;
    clearTimeout(timer);
    poll();
  });
  form.addEventListener("submit", function (ev) { ev.preventDefault(); poll(); });
  schedule();
})();
