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
    document.dispatchEvent(new CustomEvent("console:live", { detail: values }));
  }
  function connect() {
    source = new EventSource("/console/events");
    source.onmessage = function (event) { apply(JSON.parse(event.data)); };
    source.onopen = function () { document.documentElement.setAttribute("data-live-connected", "yes"); };
  }
  window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  connect();
})();
