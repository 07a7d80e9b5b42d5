// The pipelines pages, live. A submission page checks its JSON config against the
// pipeline's schema as one types, keeps the generated form and the JSON in step, fills
// dataFiles from a sample sheet (CSV read here, .xlsx read by the server) and submits
// through Centro's API; the runs page and a run's page poll the runs API (every second
// while something changes, slower while nothing does, nothing while the tab is hidden,
// as jobs.js does) and a run's page tails the log of the task one picks and cancels,
// resumes or retries its run. Everything from the server or a file is set as text
// (textContent, attributes, values), never parsed as HTML.
//
// The schema check is a small validator for the part of JSON Schema pipeline schemas use:
// type, required, properties, additionalProperties, enum, const, pattern,
// minLength/maxLength, minimum/maximum (and exclusive), items, minItems/maxItems. What it
// does not know it does not check: the server checks the whole schema and is the judge.
(function () {
  "use strict";
  var LOG_TAIL = 16384;
  var ACTIVE = { queued: true, running: true, cancelling: true };

  function request(url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    return fetch(url, options);
  }

  async function problemOf(response) {
    try {
      var body = await response.json();
      return { detail: body.detail || body.title || response.statusText, errors: body.errors || [] };
    } catch (error) {
      return { detail: response.status + " " + response.statusText, errors: [] };
    }
  }

  // --- a small JSON Schema validator --------------------------------------------------

  function kindOf(value) {
    if (value === null) { return "null"; }
    if (Array.isArray(value)) { return "array"; }
    if (typeof value === "number") { return Number.isInteger(value) ? "integer" : "number"; }
    return typeof value; // string, boolean, object
  }

  function typeMatches(value, type) {
    var kind = kindOf(value);
    return kind === type || (type === "number" && kind === "integer");
  }

  function fieldName(where, key) {
    if (typeof key === "number") { return where + "[" + key + "]"; }
    return where ? where + "." + key : key;
  }

  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  function check(value, schema, where, errors) {
    if (!schema || typeof schema !== "object") { return; }
    var at = where || "(the config)";
    if (schema.type !== undefined) {
      var types = Array.isArray(schema.type) ? schema.type : [schema.type];
      if (!types.some(function (t) { return typeMatches(value, t); })) {
        errors.push({ field: at, message: "is " + kindOf(value) + ", not " + types.join(" or ") });
        return;
      }
    }
    if (schema.enum && !schema.enum.some(function (v) { return same(v, value); })) {
      errors.push({ field: at, message: "is not one of " + schema.enum.map(function (v) { return JSON.stringify(v); }).join(", ") });
    }
    if (schema.const !== undefined && !same(schema.const, value)) {
      errors.push({ field: at, message: "must be " + JSON.stringify(schema.const) });
    }
    var kind = kindOf(value);
    if (kind === "string") {
      var length = Array.from(value).length;
      if (schema.minLength !== undefined && length < schema.minLength) {
        errors.push({ field: at, message: schema.minLength === 1 ? "is empty" : "is shorter than " + schema.minLength });
      }
      if (schema.maxLength !== undefined && length > schema.maxLength) {
        errors.push({ field: at, message: "is longer than " + schema.maxLength });
      }
      if (schema.pattern !== undefined) {
        var pattern = null;
        try { pattern = new RegExp(schema.pattern, "u"); } catch (error) { pattern = null; }
        if (pattern && !pattern.test(value)) {
          errors.push({ field: at, message: "does not match " + schema.pattern });
        }
      }
    }
    if (kind === "number" || kind === "integer") {
      if (schema.minimum !== undefined && value < schema.minimum) { errors.push({ field: at, message: "is less than " + schema.minimum }); }
      if (schema.maximum !== undefined && value > schema.maximum) { errors.push({ field: at, message: "is more than " + schema.maximum }); }
      if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) { errors.push({ field: at, message: "is not more than " + schema.exclusiveMinimum }); }
      if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) { errors.push({ field: at, message: "is not less than " + schema.exclusiveMaximum }); }
    }
    if (kind === "array") {
      if (schema.minItems !== undefined && value.length < schema.minItems) { errors.push({ field: at, message: "has fewer than " + schema.minItems + " items" }); }
      if (schema.maxItems !== undefined && value.length > schema.maxItems) { errors.push({ field: at, message: "has more than " + schema.maxItems + " items" }); }
      if (schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) {
        value.forEach(function (item, i) { check(item, schema.items, fieldName(where, i), errors); });
      }
    }
    if (kind === "object") {
      var props = schema.properties || {};
      (schema.required || []).forEach(function (name) {
        if (!Object.prototype.hasOwnProperty.call(value, name)) {
          errors.push({ field: fieldName(where, name), message: "is required" });
        }
      });
      Object.keys(value).forEach(function (name) {
        if (Object.prototype.hasOwnProperty.call(props, name)) {
          check(value[name], props[name], fieldName(where, name), errors);
        } else if (schema.additionalProperties === false) {
          errors.push({ field: fieldName(where, name), message: "is not a field of this config" });
        } else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
          check(value[name], schema.additionalProperties, fieldName(where, name), errors);
        }
      });
    }
  }

  function validate(value, schema) {
    var errors = [];
    check(value, schema, "", errors);
    return errors;
  }

  // --- sample sheets -------------------------------------------------------------------

  // RFC 4180 CSV (quoted fields, doubled quotes, CRLF); a tab-separated sheet is taken
  // when its first line has tabs and no comma.
  function parseCsv(text) {
    text = text.replace(/^\uFEFF/, "");
    var firstLine = text.split(/\r?\n/, 1)[0];
    var sep = firstLine.indexOf(",") < 0 && firstLine.indexOf("\t") >= 0 ? "\t" : ",";
    var rows = [], row = [], field = "", quoted = false, i = 0;
    while (i < text.length) {
      var c = text[i];
      if (quoted) {
        if (c === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          quoted = false; i += 1; continue;
        }
        field += c; i += 1; continue;
      }
      if (c === '"' && field === "") { quoted = true; i += 1; continue; }
      if (c === sep) { row.push(field); field = ""; i += 1; continue; }
      if (c === "\r" || c === "\n") {
        row.push(field); rows.push(row); row = []; field = "";
        i += (c === "\r" && text[i + 1] === "\n") ? 2 : 1;
        continue;
      }
      field += c; i += 1;
    }
    if (field !== "" || row.length) { row.push(field); rows.push(row); }
    return rows;
  }

  // Rows (a header row first) as objects, empty cells and empty rows left out.
  function records(rows) {
    if (!rows.length) { throw new Error("the sheet is empty"); }
    var columns = rows[0].map(function (c) { return c.trim(); });
    if (!columns.some(Boolean)) { throw new Error("its first row names no column"); }
    var out = [];
    rows.slice(1).forEach(function (cells) {
      var record = {}, any = false;
      columns.forEach(function (name, i) {
        var cell = cells[i];
        if (name && cell !== undefined && cell !== "") { record[name] = cell; any = true; }
      });
      if (any) { out.push(record); }
    });
    return out;
  }

  // --- the submission page -------------------------------------------------------------

  function submitPage(form) {
    var schema = JSON.parse(document.getElementById("schema").textContent);
    var editor = document.getElementById("config");
    var problems = document.getElementById("problems");
    var answer = document.getElementById("answer");
    var inputs = Array.prototype.slice.call(form.querySelectorAll("[data-field]"));
    var sheetInput = document.getElementById("sheet");
    var sheetAnswer = document.getElementById("sheet-answer");

    function parsed() {
      try {
        var value = JSON.parse(editor.value);
        return { value: value };
      } catch (error) {
        return { error: "not JSON: " + error.message };
      }
    }

    function show(errors, note) {
      problems.textContent = "";
      form.querySelectorAll("[data-error-for]").forEach(function (cell) { cell.textContent = ""; });
      if (note) { problems.appendChild(item(note)); }
      errors.forEach(function (e) {
        problems.appendChild(item(e.field + ": " + e.message));
        var top = String(e.field).split(/[.[]/)[0];
        form.querySelectorAll("[data-error-for]").forEach(function (cell) {
          if (cell.dataset.errorFor === top) { cell.textContent = e.message; }
        });
      });
      editor.setAttribute("aria-invalid", errors.length || note ? "true" : "false");
    }

    function item(text) {
      var li = document.createElement("li");
      li.textContent = text;
      return li;
    }

    function recheck() {
      var config = parsed();
      if (config.error) { show([], config.error); return null; }
      if (kindOf(config.value) !== "object") { show([], "the config is a JSON object"); return null; }
      show(validate(config.value, schema));
      return config.value;
    }

    function fillForm(config) {
      inputs.forEach(function (input) {
        if (input === document.activeElement) { return; }
        var value = config[input.dataset.field];
        if (input.dataset.type === "boolean") { input.checked = value === true; }
        else if (input.tagName === "SELECT") { input.value = value === undefined ? "" : JSON.stringify(value); }
        else { input.value = value === undefined || value === null || typeof value === "object" ? "" : String(value); }
      });
    }

    function fromInput(input) {
      var type = input.dataset.type;
      if (type === "boolean") { return input.checked; }
      if (input.tagName === "SELECT") { return input.value === "" ? undefined : JSON.parse(input.value); }
      if (input.value === "") { return type === "string" ? "" : undefined; }
      if (type === "number" || type === "integer") {
        var number = Number(input.value);
        return Number.isFinite(number) ? number : input.value; // the check names what is wrong
      }
      return input.value;
    }

    function write(config) {
      editor.value = JSON.stringify(config, null, 2);
      recheck();
    }

    editor.addEventListener("input", function () {
      var config = recheck();
      if (config) { fillForm(config); }
    });
    inputs.forEach(function (input) {
      input.addEventListener(input.tagName === "SELECT" || input.type === "checkbox" ? "change" : "input", function () {
        var config = parsed();
        if (config.error || kindOf(config.value) !== "object") { show([], "fix the JSON before using the form: " + (config.error || "not an object")); return; }
        var value = fromInput(input);
        if (value === undefined) { delete config.value[input.dataset.field]; }
        else { config.value[input.dataset.field] = value; }
        write(config.value);
      });
    });

    async function sheetRows(file) {
      if (/\.xlsx$/i.test(file.name)) {
        var response = await request(form.dataset.sheet, {
          method: "POST",
          headers: { "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
          body: file,
        });
        if (!response.ok) { throw new Error((await problemOf(response)).detail); }
        return (await response.json()).rows;
      }
      return records(parseCsv(await file.text()));
    }

    sheetInput.addEventListener("change", async function () {
      var file = sheetInput.files[0];
      if (!file) { return; }
      sheetAnswer.textContent = "reading " + file.name + "…";
      try {
        var rows = await sheetRows(file);
        var config = parsed();
        if (config.error || kindOf(config.value) !== "object") { throw new Error("fix the JSON first"); }
        config.value.dataFiles = rows;
        write(config.value);
        sheetAnswer.textContent = rows.length + " rows of " + file.name + " in dataFiles";
      } catch (error) {
        sheetAnswer.textContent = file.name + ": " + error.message;
      }
    });

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      answer.textContent = "";
      var config = parsed();
      if (config.error) { show([], config.error); answer.textContent = "Not submitted: " + config.error; return; }
      var button = document.getElementById("submit-button");
      button.disabled = true;
      try {
        var response = await request(form.dataset.newRun, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(config.value),
        });
        if (response.status === 201) {
          var run = await response.json();
          window.location.href = form.dataset.runs + "/" + encodeURIComponent(run.id);
          return;
        }
        var problem = await problemOf(response);
        answer.textContent = "Not submitted (" + response.status + "): " + problem.detail;
        if (problem.errors.length) { show(problem.errors); }
      } catch (error) {
        answer.textContent = "Not submitted: " + error.message;
      } finally {
        button.disabled = false;
      }
    });

    var initial = recheck();
    if (initial) { fillForm(initial); }
  }

  // --- the runs page -------------------------------------------------------------------

  function runsPage(table) {
    var tbody = table.tBodies[0];
    var empty = document.getElementById("no-runs");
    var notice = document.getElementById("live");

    function make(run) {
      var tr = document.createElement("tr");
      for (var i = 0; i < 7; i += 1) { tr.insertCell(); }
      var a = document.createElement("a");
      a.href = table.dataset.page + "/" + encodeURIComponent(run.id);
      a.textContent = run.id.slice(0, 12);
      tr.cells[0].appendChild(a);
      tr.cells[1].textContent = run.pipeline;
      tr.cells[2].textContent = run.project == null ? "" : String(run.project);
      tr.cells[3].textContent = run.submitter;
      tr.cells[4].className = "state";
      tr.cells[5].textContent = run.created || "";
      tr.cells[6].className = "finished";
      tr.dataset.key = run.id;
      return tr;
    }

    async function refresh() {
      var response = await request(table.dataset.runs);
      if (!response.ok) { throw new Error((await problemOf(response)).detail); }
      var found = (await response.json()).runs;
      var rows = {}, changed = false;
      Array.prototype.forEach.call(tbody.rows, function (row) { rows[row.dataset.key] = row; });
      found.forEach(function (run) {
        var row = rows[run.id];
        if (!row) { row = make(run); changed = true; }
        delete rows[run.id];
        if (row.dataset.state !== run.state) {
          row.dataset.state = run.state;
          row.className = "state-" + run.state;
          row.querySelector(".state").textContent = run.state;
          changed = true;
        }
        row.querySelector(".finished").textContent = run.finished || "";
        tbody.appendChild(row);
      });
      Object.keys(rows).forEach(function (key) { rows[key].remove(); changed = true; });
      table.hidden = !tbody.rows.length;
      empty.hidden = Boolean(tbody.rows.length);
      return { active: found.some(function (r) { return ACTIVE[r.state]; }), changed: changed };
    }
    window.strato.follow(refresh, notice);
  }

  // --- a run's page --------------------------------------------------------------------

  function runPage(box) {
    var notice = document.getElementById("live");
    var tbody = document.getElementById("tasks").tBodies[0];
    var logSection = document.getElementById("log-section");
    var logText = document.getElementById("log");
    var buttons = { cancel: document.getElementById("cancel"), resume: document.getElementById("resume"), retry: document.getElementById("retry") };
    var selected = null, follower = null;

    function set(id, value) { document.getElementById(id).textContent = value == null ? "" : String(value); }

    function showButtons(state) {
      buttons.cancel.hidden = !(state === "queued" || state === "running");
      buttons.resume.hidden = Boolean(ACTIVE[state]);
      buttons.retry.hidden = !(state === "failed" || state === "cancelled");
    }

    function node(name) {
      return Array.prototype.find.call(document.querySelectorAll("#graph g.task"), function (g) { return g.dataset.task === name; });
    }

    function row(name) {
      return Array.prototype.find.call(tbody.rows, function (r) { return r.dataset.key === name; });
    }

    function drawTask(task) {
      var tr = row(task.name);
      if (!tr) { return false; }
      var changed = tr.dataset.state !== task.state || tr.querySelector(".attempts").textContent !== String(task.attempts);
      tr.dataset.state = task.state;
      tr.className = "state-" + task.state + (task.name === selected ? " selected" : "");
      tr.querySelector(".state").textContent = task.state;
      tr.querySelector(".attempts").textContent = String(task.attempts);
      tr.querySelector(".exit").textContent = task.exit_code == null ? "" : String(task.exit_code);
      tr.querySelector(".started").textContent = task.started || "";
      tr.querySelector(".finished").textContent = task.finished || "";
      tr.querySelector(".reason").textContent = task.reason || "";
      var g = node(task.name);
      if (g) {
        g.setAttribute("class", "task state-" + task.state + (task.name === selected ? " selected" : ""));
        g.querySelector("title").textContent = task.name + ": " + task.state;
      }
      return changed;
    }

    async function tail() {
      if (selected === null) { return; }
      var tr = row(selected);
      var url = tr.querySelector("a.log").href + "?tail=" + LOG_TAIL;
      var response = await request(url, { headers: { Accept: "text/plain" } });
      if (response.ok) { logText.textContent = await response.text(); }
      else { logText.textContent = "(" + (await problemOf(response)).detail + ")"; }
    }

    function select(name) {
      var previous = selected;
      selected = name;
      [previous, name].forEach(function (n) {
        if (n === null) { return; }
        var tr = row(n), g = node(n);
        if (tr) { tr.classList.toggle("selected", n === name); }
        if (g) { g.classList.toggle("selected", n === name); }
      });
      set("log-task", name);
      logSection.hidden = false;
      logText.textContent = "";
      tail();
      if (follower) { follower.kick(); }
    }

    async function refresh() {
      var answers = await Promise.all([request(box.dataset.run), request(box.dataset.tasks)]);
      for (var i = 0; i < answers.length; i += 1) {
        if (!answers[i].ok) { throw new Error((await problemOf(answers[i])).detail); }
      }
      var run = await answers[0].json();
      var tasks = (await answers[1].json()).tasks;
      var changed = box.dataset.state !== run.state;
      box.dataset.state = run.state;
      set("state", run.state);
      document.getElementById("state").className = "state-" + run.state;
      set("finished", run.finished);
      set("reason", run.reason);
      showButtons(run.state);
      tasks.forEach(function (task) { if (drawTask(task)) { changed = true; } });
      await tail();
      var active = Boolean(ACTIVE[run.state]);
      return { active: active, changed: changed, stop: !active };
    }

    function act(name, question) {
      var button = buttons[name];
      button.hidden = false;
      button.addEventListener("click", async function () {
        if (question && !window.confirm(question)) { return; }
        button.disabled = true;
        try {
          var response = await request(button.dataset.url, { method: "POST" });
          if (!response.ok) { notice.textContent = name + ": " + (await problemOf(response)).detail; }
          else { notice.textContent = ""; }
        } finally {
          button.disabled = false;
        }
        follower.kick();
      });
    }

    act("cancel", "Cancel this run? Its running tasks are stopped.");
    act("resume", null);
    act("retry", null);
    showButtons(box.dataset.state);
    tbody.addEventListener("click", function (event) {
      var link = event.target.closest("a.log");
      var tr = event.target.closest("tr");
      if (!tr) { return; }
      if (link) { event.preventDefault(); }
      select(tr.dataset.key);
    });
    var graph = document.getElementById("graph");
    if (graph) {
      graph.addEventListener("click", function (event) {
        var g = event.target.closest("g.task");
        if (g) { select(g.dataset.task); }
      });
      graph.addEventListener("keydown", function (event) {
        var g = event.target.closest("g.task");
        if (g && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); select(g.dataset.task); }
      });
    }
    follower = window.strato.follow(refresh, notice);
    if (!ACTIVE[box.dataset.state]) {
      // Nothing will change by itself: no polling until a button or a task is picked.
      follower.kick();
    }
  }

  var form = document.getElementById("submit-run");
  if (form) { submitPage(form); }
  var runs = document.getElementById("runs");
  if (runs) { runsPage(runs); }
  var run = document.getElementById("run");
  if (run && run.dataset.run) { runPage(run); }
})();
