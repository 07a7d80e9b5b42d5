// What the live pages share (the jobs pages, the pipeline runs pages, the streams page):
// their JSON requests and, above all, their polling loop:
// each page's refresh() fetches its JSON, updates what is shown and resolves to
// {active, changed, stop}. The pace: at once again after a change; while something shown
// is active and nothing changed, slower and slower up to `runningMax`; while nothing is
// active, up to `idleMax`; nothing at all while the tab is hidden (a look at once when it
// is shown again); no more after {stop: true} until kick(). Polling, because the server
// pushes to waiters inside itself but has no push to browsers. A failed refresh says so in
// `notice`, and only that complaint is cleared by the next refresh that works (a message
// the page itself put there stays).
(function () {
  "use strict";
  var strato = (window.strato = window.strato || {});

  // A JSON request of the page's own API; the page's credentials (the browser's Basic or
  // Authorization header) go with it, as with every same-origin fetch.
  strato.request = function (url, method) {
    return fetch(url, {
      method: method || "GET",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  };

  // What a refusal says (a problem document's detail), for the page to show as text.
  strato.problem = async function (response) {
    try {
      var body = await response.json();
      return body.detail || body.title || response.statusText;
    } catch (error) {
      return response.status + " " + response.statusText;
    }
  };

  strato.follow = function (refresh, notice, pace) {
    pace = Object.assign({ fast: 1000, runningMax: 5000, idleMax: 60000 }, pace || {});
    var delay = pace.fast, timer = null, busy = false, stopped = false, failing = false;
    async function tick() {
      timer = null;
      if (busy || stopped || document.hidden) { return; }
      busy = true;
      var state;
      try {
        state = await refresh();
        if (failing) { notice.textContent = ""; }
        failing = false;
      } catch (error) {
        state = { active: false, changed: false };
        failing = true;
        notice.textContent = "Could not refresh: " + error.message;
      }
      busy = false;
      if (state.stop) { stopped = true; return; }
      if (state.changed) { delay = pace.fast; }
      else if (state.active) { delay = Math.min(delay * 1.5, pace.runningMax); }
      else { delay = Math.min(delay * 2, pace.idleMax); }
      timer = window.setTimeout(tick, delay);
    }
    function kick() {
      if (timer !== null) { window.clearTimeout(timer); timer = null; }
      stopped = false;
      delay = pace.fast;
      tick();
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && !stopped) { kick(); }
    });
    timer = window.setTimeout(tick, pace.fast);
    return { kick: kick };
  };
})();
