// The jobs list and a job's page, live: each polls its own page's JSON and updates the
// rows in place, and dismisses jobs (DELETE). Polling, because the server pushes a job's
// completion to waiters inside itself but has no push to browsers. The pace: every second
// while a job shown runs, slowing down while nothing changes; the list keeps looking for
// new jobs ever more slowly once nothing runs; a job's page stops when its job has ended;
// nothing is fetched while the tab is hidden. Everything from the server is set as text
// (textContent, attributes), never parsed as HTML.
(function () {
  "use strict";
  var ACTIVE = { accepted: true, running: true };

  function jsonOfPage() {
    var url = new URL(window.location.href);
    url.searchParams.set("f", "json");
    return url;
  }

  function text(tag, value, className) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    node.textContent = value == null ? "" : String(value);
    return node;
  }

  function link(href, value, id) {
    var a = text("a", value);
    a.href = href;
    if (id) { a.id = id; }
    return a;
  }

  function jobHref(base, id) { return base + "/" + encodeURIComponent(id); }

  // A progress cell: the bar and the job's message beside it.
  function fillProgress(cell, progress, message) {
    var bar = cell.querySelector("progress");
    if (!bar) {
      bar = document.createElement("progress");
      bar.max = 100;
      cell.appendChild(bar);
    }
    bar.value = progress || 0;
    bar.textContent = (progress || 0) + "%";
    var note = cell.querySelector(".message");
    if (!note) { note = text("span", "", "message"); cell.appendChild(note); }
    note.textContent = message || "";
  }

  function statusCell(cell, status) {
    cell.textContent = status;
    cell.className = "status";
  }

  // Rows keyed by data-key, updated in place, created, removed and kept in the order of
  // `items`. Returns whether anything shown changed.
  function sync(tbody, items, keyOf, make, update) {
    var rows = {}, changed = false;
    Array.prototype.forEach.call(tbody.rows, function (row) { rows[row.dataset.key] = row; });
    items.forEach(function (item) {
      var key = keyOf(item), row = rows[key];
      if (!row) {
        row = make(item);
        row.dataset.key = key;
        changed = true;
      }
      delete rows[key];
      if (update(row, item)) { changed = true; }
      tbody.appendChild(row); // moves an existing row into its place
    });
    Object.keys(rows).forEach(function (key) { rows[key].remove(); changed = true; });
    return changed;
  }

  // Whether what a row shows of `item` changed since it was last drawn (the first time:
  // since the server drew it, from its data-* attributes).
  function signature(row, item) {
    var was = [row.dataset.status, row.dataset.progress, row.dataset.message].join("\u0000");
    row.dataset.status = item.status;
    row.dataset.progress = String(item.progress || 0);
    row.dataset.message = item.message || "";
    row.className = "status-" + item.status;
    return was !== [row.dataset.status, row.dataset.progress, row.dataset.message].join("\u0000");
  }

  function dismiss(base, id) {
    return window.strato.request(jobHref(base, id), "DELETE").then(async function (response) {
      // 404: gone already (dismissed elsewhere), which is what was asked.
      if (response.ok || response.status === 404) { return null; }
      return window.strato.problem(response);
    });
  }

  // --- the jobs list --------------------------------------------------------------------

  function jobsPage(table) {
    var base = table.dataset.jobs;
    var tbody = table.tBodies[0];
    var empty = document.getElementById("no-jobs");
    var notice = document.getElementById("live");
    var gone = {}; // dismissed here: not shown again by a poll answered before the DELETE

    function shown() {
      var any = tbody.rows.length > 0;
      table.hidden = !any;
      empty.hidden = any;
    }

    function dismissButton(id) {
      var button = text("button", "Dismiss", "dismiss");
      button.type = "button";
      button.dataset.job = id;
      return button;
    }

    function make(job) {
      var tr = document.createElement("tr");
      var cells = [];
      for (var i = 0; i < 7; i += 1) { cells.push(tr.insertCell()); }
      cells[0].appendChild(link(jobHref(base, job.jobID) + "?f=html", job.jobID));
      cells[1].textContent = job.processID;
      cells[4].textContent = job.created || "";
      cells[6].appendChild(dismissButton(job.jobID));
      return tr;
    }

    function update(tr, job) {
      var changed = signature(tr, job);
      statusCell(tr.cells[2], job.status);
      fillProgress(tr.cells[3], job.progress, job.message);
      var results = tr.cells[5];
      if (job.status === "successful" && !results.firstChild) {
        results.appendChild(link(jobHref(base, job.jobID) + "/results", "results"));
      }
      return changed;
    }

    async function refresh() {
      var response = await window.strato.request(jsonOfPage());
      if (!response.ok) { throw new Error(await window.strato.problem(response)); }
      var jobs = (await response.json()).jobs.filter(function (job) { return !gone[job.jobID]; });
      var changed = sync(tbody, jobs, function (job) { return job.jobID; }, make, update);
      shown();
      return { active: jobs.some(function (job) { return ACTIVE[job.status]; }), changed: changed };
    }

    tbody.addEventListener("click", async function (event) {
      var button = event.target.closest("button.dismiss");
      if (!button) { return; }
      var id = button.dataset.job;
      if (!window.confirm("Dismiss job " + id + "? A running job is cancelled; its results are deleted.")) { return; }
      button.disabled = true;
      var failure = await dismiss(base, id);
      if (failure) {
        button.disabled = false;
        notice.textContent = "Job " + id + " was not dismissed: " + failure;
        return;
      }
      gone[id] = true;
      var row = button.closest("tr");
      if (row) { row.remove(); }
      shown();
    });

    // The dismiss buttons need this script: without it they stay hidden.
    Array.prototype.forEach.call(table.querySelectorAll("button.dismiss"), function (b) { b.hidden = false; });
    window.strato.follow(refresh, notice);
  }

  // --- a job's page ---------------------------------------------------------------------

  function jobPage(job) {
    var base = job.dataset.jobs;
    var id = job.dataset.job;
    var notice = document.getElementById("live");
    var steps = document.getElementById("steps");
    var results = document.getElementById("results-line");
    var button = document.getElementById("dismiss");

    function makeStep(step) {
      var tr = document.createElement("tr");
      for (var i = 0; i < 5; i += 1) { tr.insertCell(); }
      tr.cells[0].textContent = step.name;
      tr.cells[1].textContent = step.processID;
      return tr;
    }

    function updateStep(tr, step) {
      var changed = signature(tr, step);
      statusCell(tr.cells[2], step.status);
      fillProgress(tr.cells[3], step.progress, step.message);
      var cell = tr.cells[4];
      if (step.jobID && !cell.firstChild) {
        cell.appendChild(link(jobHref(base, step.jobID) + "?f=html", step.jobID));
      }
      return changed;
    }

    function set(element, value) {
      var node = document.getElementById(element);
      if (node) { node.textContent = value || ""; }
    }

    async function refresh() {
      var response = await window.strato.request(jsonOfPage());
      if (response.status === 404) {
        set("status", "dismissed");
        notice.textContent = "This job no longer exists.";
        if (button) { button.hidden = true; }
        return { stop: true };
      }
      if (!response.ok) { throw new Error(await window.strato.problem(response)); }
      var info = await response.json();
      var changed = signature(job, info);
      set("status", info.status);
      fillProgress(document.getElementById("progress"), info.progress, info.message);
      set("finished", info.finished);
      document.getElementById("finished-row").hidden = !info.finished;
      results.hidden = info.status !== "successful";
      if (info.steps && steps) {
        steps.hidden = false;
        if (sync(steps.tBodies[0], info.steps, function (s) { return s.name; }, makeStep, updateStep)) {
          changed = true;
        }
      }
      var active = Boolean(ACTIVE[info.status]);
      return { active: active, changed: changed, stop: !active };
    }

    if (button) {
      button.hidden = false;
      button.addEventListener("click", async function () {
        if (!window.confirm("Dismiss job " + id + "? A running job is cancelled; its results are deleted.")) { return; }
        button.disabled = true;
        var failure = await dismiss(base, id);
        if (failure) {
          button.disabled = false;
          notice.textContent = "Not dismissed: " + failure;
          return;
        }
        window.location.href = base + "?f=html";
      });
    }
    if (ACTIVE[job.dataset.status]) { window.strato.follow(refresh, notice); }
  }

  var list = document.getElementById("jobs");
  if (list) { jobsPage(list); }
  var one = document.getElementById("job");
  if (one && one.dataset.job) { jobPage(one); }
})();
