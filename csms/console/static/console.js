// Live values for every console page: server-sent events from /console/events carry
// {key: text} for what changed; each element whose data-live names a key gets the text
// and data-state. Pages may listen to the "console:live" event for more.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var source = null;
  function apply(values) {
    Object.keys(values).forEach(function (key) {
      var nodes = document.querySelectorAll('[data-live="' + CSS.escape(key) + '"]');
      for (var i = 0; i < nodes.length; i++) {
        if (nodes[i].textContent !== values[key]) { nodes[i].textContent = values[key]; }
        nodes[i].setAttribute("data-state", values[key]);
      }
    });
    refreshSections(values);
    document.dispatchEvent(new CustomEvent("console:live", { detail: values }));
  }
  // Sections drawn from more than the live values say are fetched again and put in place
  // (the rest of the page left as it is) when they are out of date:
  // - data-live-section="PREFIX": it lists what may grow (a charger's connectors, once
  //   reported): a key of that prefix arrives with no element for it yet;
  // - data-live-refresh="KEY" with data-live-shown="VALUE": it was drawn when KEY was VALUE
  //   (a session's summary and actions, drawn in one state): KEY now has another value.
  function refreshSections(values) {
    var stale = [];
    var sections = document.querySelectorAll("[data-live-section][id], [data-live-refresh][id]");
    for (var i = 0; i < sections.length; i++) {
      var section = sections[i];
      var prefix = section.getAttribute("data-live-section");
      var key = section.getAttribute("data-live-refresh");
      var outdated = prefix !== null ? Object.keys(values).some(function (k) {
        return k.indexOf(prefix) === 0 &&
          !document.querySelector('[data-live="' + CSS.escape(k) + '"]');
      }) : (key in values && values[key] !== section.getAttribute("data-live-shown"));
      if (outdated && !section.hasAttribute("data-refreshing")) { stale.push(section); }
    }
    if (stale.length) { refresh(stale); }
  }
  function refresh(sections) {
    sections.forEach(function (s) { s.setAttribute("data-refreshing", "yes"); });
    function done() { sections.forEach(function (s) { s.removeAttribute("data-refreshing"); }); }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        sections.forEach(function (section) {
          var fresh = page.getElementById(section.id);
          if (fresh && !section.contains(document.activeElement)) { section.replaceWith(fresh); }
        });
        done();
      })
      .catch(done);
  }
  // The page's main element names the key prefixes it follows, separated by commas (never
  // in a charger's id) in data-live-watch; a page with nothing live opens no stream.
  function connect() {
    var live = document.querySelector("[data-live], [data-live-section], [data-live-refresh]");
    if (!live) { return; }
    var main = document.querySelector("[data-live-watch]");
    var prefixes = main ? main.getAttribute("data-live-watch").split(",").filter(Boolean) : [];
    var query = prefixes.map(function (p) { return "watch=" + encodeURIComponent(p); }).join("&");
    source = new EventSource("/console/events" + (query ? "?" + query : ""));
    source.onmessage = function (event) { apply(JSON.parse(event.data)); };
    source.onopen = function () { document.documentElement.setAttribute("data-live-connected", "yes"); };
    // Refused for good (the login ended: logged out in another tab, or expired): the page
    // would look live while frozen, so it says so and how to go on.
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED || document.getElementById("live-stopped")) { return; }
      document.documentElement.setAttribute("data-live-connected", "no");
      var notice = document.createElement("p");
      notice.id = "live-stopped";
      notice.className = "flash warning";
      notice.setAttribute("role", "alert");
      notice.textContent = "Live updates stopped: what this page shows may be out of date"
        + " (your login may have ended). ";
      var reload = document.createElement("a");
      reload.id = "live-stopped-reload";
      reload.href = window.location.href;
      reload.textContent = "Reload the page";
      notice.appendChild(reload);
      var main = document.getElementById("main");
      if (main) { main.insertBefore(notice, main.firstChild); }
    };
  }
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  connect();
})();
