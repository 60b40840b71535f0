// The "Try it" forms of /api/docs: each sends its request with the key entered at the top
// (the X-API-Key header) and shows the answer: status, Content-Type and Location, the body
// pretty-printed (JSON) or as text, and an error's message and field. The key is kept in
// this tab's sessionStorage only (never a cookie, never localStorage) until Forget. A
// request other than GET asks for a confirmation first: it changes data, may move money.
(function () {
  "use strict";
  var STORE = "csms.apiKey";
  var keyField = document.getElementById("api-key");
  var keyState = document.getElementById("api-key-state");

  function storage() {
    try { return window.sessionStorage; } catch (error) { return null; }
  }
  function keep(value) {
    var store = storage();
    if (!store) { return; }
    if (value) { store.setItem(STORE, value); } else { store.removeItem(STORE); }
  }
  function showKeyState() {
    keyState.textContent = keyField.value
      ? "A key is entered; this tab keeps it until it is closed or you press Forget."
      : "No key entered: requests are sent without one, and answered 401.";
  }
  var store = storage();
  keyField.value = (store && store.getItem(STORE)) || "";
  keyField.addEventListener("input", function () { keep(keyField.value); showKeyState(); });
  document.getElementById("forget-key").addEventListener("click", function () {
    keep("");
    keyField.value = "";
    showKeyState();
    keyField.focus();
  });
  showKeyState();

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function url(form) {
    var path = form.getAttribute("data-path");
    var query = [];
    var fields = form.querySelectorAll("[data-in]");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      var value = field.value.trim();
      if (field.getAttribute("data-in") === "path") {
        path = path.split("{" + field.getAttribute("data-name") + "}").join(encodeURIComponent(value));
      } else if (value !== "") {
        query.push(encodeURIComponent(field.getAttribute("data-name")) + "=" + encodeURIComponent(value));
      }
    }
    return path + (query.length ? "?" + query.join("&") : "");
  }

  function missing(form) {
    var fields = form.querySelectorAll("[data-in][required]");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].value.trim()) { return fields[i]; }
    }
    return null;
  }

  function errorLine(status, data, form) {
    var parts = [];
    var error = data && typeof data === "object" ? data.error : null;
    if (error && typeof error === "object") {
      parts.push((error.code ? error.code + ": " : "") + (error.message || ""));
      if (error.field) { parts.push("field: " + error.field); }
    } else if (error) {
      parts.push(String(error));
    }
    var role = form.getAttribute("data-role");
    if (status === 403 && role) { parts.push("needs role " + role); }
    if (status === 401 && !keyField.value) { parts.push("no key entered at the top of the page"); }
    return parts.join("; ");
  }

  function show(form, response, text) {
    var ident = form.getAttribute("id");
    var answer = document.getElementById(ident + "-answer");
    var type = response.headers.get("Content-Type") || "";
    var data = null;
    var shown = text;
    if (type.indexOf("json") !== -1) {
      try { data = JSON.parse(text); shown = JSON.stringify(data, null, 2); } catch (error) { data = null; }
    }
    var line = "HTTP " + response.status + (response.statusText ? " " + response.statusText : "");
    var problem = response.ok ? "" : errorLine(response.status, data, form);
    document.getElementById(ident + "-status").textContent = line + (problem ? " — " + problem : "");
    answer.textContent = "";
    var headers = element("dl", "headers");
    ["Content-Type", "Location"].forEach(function (name) {
      var value = response.headers.get(name);
      if (value) {
        headers.appendChild(element("dt", "", name));
        headers.appendChild(element("dd", "", value));
      }
    });
    answer.appendChild(headers);
    if (problem) { answer.appendChild(element("p", "problem", problem)); }
    var body = element("pre", "body", shown || "(empty body)");
    body.tabIndex = 0;
    body.setAttribute("aria-label", "Response body of " + form.getAttribute("data-method") + " " + form.getAttribute("data-path"));
    answer.setAttribute("data-status", String(response.status));
    answer.appendChild(body);
  }

  function send(form) {
    var ident = form.getAttribute("id");
    var status = document.getElementById(ident + "-status");
    var absent = missing(form);
    if (absent) {
      status.textContent = "Not sent: " + absent.getAttribute("data-name") + " is required.";
      absent.focus();
      return;
    }
    var method = form.getAttribute("data-method");
    var headers = { "Accept": "application/json, text/csv, text/plain, */*" };
    if (keyField.value) { headers["X-API-Key"] = keyField.value; }
    var options = { method: method, headers: headers, credentials: "omit", cache: "no-store" };
    var bodyField = document.getElementById(ident + "-body");
    if (bodyField && bodyField.value.trim() !== "") {
      headers["Content-Type"] = "application/json";
      options.body = bodyField.value;
    }
    status.textContent = "Sending " + method + " " + url(form) + "…";
    form.setAttribute("aria-busy", "true");
    fetch(url(form), options).then(function (response) {
      return response.text().then(function (text) { show(form, response, text); });
    }).catch(function (error) {
      status.textContent = "Not answered: " + (error && error.message ? error.message : "the request failed");
    }).then(function () {
      form.removeAttribute("aria-busy");
    });
  }

  function confirmFirst(form) {
    var panel = document.getElementById(form.getAttribute("id") + "-confirm");
    panel.hidden = false;
    document.getElementById(form.getAttribute("id") + "-confirm-yes").focus();
  }

  var forms = document.querySelectorAll("form.try");
  for (var i = 0; i < forms.length; i++) {
    (function (form) {
      var panel = document.getElementById(form.getAttribute("id") + "-confirm");
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (panel) { confirmFirst(form); } else { send(form); }
      });
      if (!panel) { return; }
      document.getElementById(form.getAttribute("id") + "-confirm-yes").addEventListener("click", function () {
        panel.hidden = true;
        document.getElementById(form.getAttribute("id") + "-send").focus();
        send(form);
      });
      function cancel() {
        panel.hidden = true;
        document.getElementById(form.getAttribute("id") + "-status").textContent = "Not sent.";
        document.getElementById(form.getAttribute("id") + "-send").focus();
      }
      document.getElementById(form.getAttribute("id") + "-confirm-no").addEventListener("click", cancel);
      panel.addEventListener("keydown", function (event) {
        if (event.key === "Escape") { event.preventDefault(); cancel(); }
      });
    })(forms[i]);
  }
})();
