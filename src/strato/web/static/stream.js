// The streams page, live: polls GET /api/stream/sessions and redraws each session's
// listeners, bytes and rates in place, adds sessions that appear and removes those that
// ended; the release buttons post to the API instead of the page's own form. The pace:
// every second while sessions are shown (their bytes and rates move), slowing down to
// ten seconds while there are none; nothing is fetched while the tab is hidden.
// Everything from the server is set as text (textContent, attributes), never as HTML.
(function () {
  "use strict";
  var FAST = 1000, IDLE_MAX = 10000;
  var UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  // As the server draws them (strato.stream.api.views.size / speed).
  function size(n) {
    if (n === null || n === undefined) { return "\u2013"; }
    var value = Number(n), unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) { value /= 1024; unit += 1; }
    return unit === 0 ? Math.floor(value) + " B" : value.toFixed(1) + " " + UNITS[unit];
  }

  function speed(n) { return n === null || n === undefined ? "\u2013" : size(n) + "/s"; }

  function el(tag, className, value) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (value !== undefined) { node.textContent = value === null ? "" : String(value); }
    return node;
  }

  function setText(root, selector, value) {
    var node = root.querySelector(selector);
    if (node) { node.textContent = value === null || value === undefined ? "" : String(value); }
  }

  function page(table) {
    var api = table.dataset.api;
    var pageUrl = table.dataset.page;
    var empty = document.getElementById("no-sessions");
    var notice = document.getElementById("live");
    var portsFree = document.getElementById("ports-free");
    var gone = {}; // released here: not drawn again by a poll answered before the release

    function shown() {
      var any = table.tBodies.length > 0;
      table.hidden = !any;
      empty.hidden = any;
      return any;
    }

    // A session's head row, as the server draws it.
    function makeSession(s) {
      var body = document.createElement("tbody");
      body.dataset.key = s.uid;
      var row = body.insertRow();
      row.className = "session";
      var head = el("th");
      head.colSpan = 7;
      head.appendChild(el("code", "uid", s.uid));
      head.appendChild(document.createTextNode(" "));
      var facts = el("span", "facts");
      facts.appendChild(el("span", "role", s.role));
      facts.appendChild(document.createTextNode(" \u00b7 "));
      facts.appendChild(el("span", "state", s.state));
      facts.appendChild(el("span", "reason", ""));
      facts.appendChild(document.createTextNode(" \u00b7 owner "));
      facts.appendChild(el("span", "owner", s.owner));
      facts.appendChild(document.createTextNode(" \u00b7 since "));
      facts.appendChild(el("span", "created", s.created));
      facts.appendChild(document.createTextNode(" \u00b7 in "));
      facts.appendChild(el("span", "total-in", ""));
      facts.appendChild(document.createTextNode(" "));
      facts.appendChild(el("span", "rate-in", ""));
      facts.appendChild(document.createTextNode(" \u00b7 out "));
      facts.appendChild(el("span", "total-out", ""));
      facts.appendChild(document.createTextNode(" "));
      facts.appendChild(el("span", "rate-out", ""));
      facts.appendChild(document.createTextNode(" "));
      facts.appendChild(el("span", "counters-error bad", ""));
      head.appendChild(facts);
      var form = el("form", "release");
      form.method = "post";
      form.action = pageUrl + "/" + encodeURIComponent(s.uid) + "/release";
      form.dataset.uid = s.uid;
      var button = el("button", "", "Release");
      button.type = "submit";
      form.appendChild(button);
      head.appendChild(form);
      row.appendChild(head);
      return body;
    }

    function makeListener() {
      var tr = document.createElement("tr");
      tr.className = "listener";
      var classes = ["listener-address", "target", "connections number", "bytes-in number",
        "bytes-out number", "rate-in number", "rate-out number"];
      classes.forEach(function (name) { tr.appendChild(el("td", name)); });
      tr.cells[0].appendChild(el("code"));
      tr.cells[1].appendChild(el("code"));
      return tr;
    }

    function bytesCell(cell, n) {
      cell.dataset.value = String(n);
      cell.title = n + " bytes";
      cell.textContent = size(n);
    }

    function drawListener(tr, l) {
      tr.dataset.listener = l.listener;
      tr.cells[0].firstChild.textContent = l.listener;
      tr.cells[1].firstChild.textContent = l.target || "\u2013";
      tr.cells[2].textContent = String(l.connections);
      bytesCell(tr.cells[3], l.bytes_in);
      bytesCell(tr.cells[4], l.bytes_out);
      tr.cells[5].textContent = speed(l.rate_in);
      tr.cells[6].textContent = speed(l.rate_out);
    }

    function drawSession(body, s) {
      var head = body.rows[0];
      head.className = "session state-" + s.state;
      setText(head, ".state", s.state);
      setText(head, ".reason", s.reason ? ": " + s.reason : "");
      setText(head, ".total-in", size(s.bytes_in));
      setText(head, ".rate-in", speed(s.rate_in));
      setText(head, ".total-out", size(s.bytes_out));
      setText(head, ".rate-out", speed(s.rate_out));
      setText(head, ".counters-error", s.counters_error || "");
      // Listener rows after the head, one per listener, in order.
      while (body.rows.length - 1 > s.listeners.length) { body.deleteRow(body.rows.length - 1); }
      s.listeners.forEach(function (l, i) {
        var tr = body.rows[i + 1];
        if (!tr) { tr = makeListener(); body.appendChild(tr); }
        drawListener(tr, l);
      });
    }

    async function refresh() {
      var response = await window.strato.request(api);
      if (!response.ok) { throw new Error(await window.strato.problem(response)); }
      var doc = await response.json();
      if (!doc.serving) {
        notice.textContent = doc.detail;
        return { stop: true };
      }
      if (portsFree) { portsFree.textContent = String(doc.gateway.ports_free); }
      var bodies = {}, listed = {};
      Array.prototype.forEach.call(table.tBodies, function (b) { bodies[b.dataset.key] = b; });
      doc.sessions.forEach(function (s) {
        listed[s.uid] = true;
        if (gone[s.uid]) { return; }
        var body = bodies[s.uid] || makeSession(s);
        delete bodies[s.uid];
        drawSession(body, s);
        table.appendChild(body); // appends a new one, moves an existing one into order
      });
      Object.keys(bodies).forEach(function (uid) { bodies[uid].remove(); });
      // Once the server no longer lists a released session, a new one may take its uid.
      Object.keys(gone).forEach(function (uid) { if (!listed[uid]) { delete gone[uid]; } });
      return { active: shown() };
    }

    // Release through the API; the form's own post is what a page without script does.
    table.addEventListener("submit", async function (event) {
      var form = event.target.closest("form.release");
      if (!form) { return; }
      event.preventDefault();
      var uid = form.dataset.uid;
      if (!window.confirm("Release session " + uid + "? Its listeners close, open connections are cut and its ports go back to the pool.")) { return; }
      var button = form.querySelector("button");
      button.disabled = true;
      var response = await window.strato.request(api + "/" + encodeURIComponent(uid) + "/release", "POST");
      // 404: released already (elsewhere, or its TTL), which is what was asked.
      if (!response.ok && response.status !== 404) {
        button.disabled = false;
        notice.textContent = "Session " + uid + " was not released: " + await window.strato.problem(response);
        return;
      }
      gone[uid] = true;
      var body = form.closest("tbody");
      if (body) { body.remove(); }
      shown();
      if (response.ok) {
        var answer = await response.json();
        if (portsFree) { portsFree.textContent = String(answer.ports_free); }
        notice.textContent = "Session " + uid + " released; ports " + answer.ports.join(", ") + " are free again.";
      }
    });

    // Active: every second, for the rates; idle: up to every ten.
    window.strato.follow(refresh, notice, { runningMax: FAST, idleMax: IDLE_MAX });
  }

  var table = document.getElementById("sessions");
  if (table && table.dataset.api) { page(table); }
})();
