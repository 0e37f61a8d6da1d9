// Kumo dashboard: progressive bits only. Every page works without this file
// except the live log tail and the in-place Test invoke.
"use strict";

(function () {
  // Live tail: poll for lines after the last one shown, append them.
  function startTail(box) {
    var url = box.getAttribute("data-tail");
    var after = box.getAttribute("data-after") || "0";
    var status = document.getElementById("tail-status");
    function poll() {
      fetch(url + "?after=" + encodeURIComponent(after), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (data) {
          var stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
          data.events.forEach(function (e) {
            var line = document.createElement("span");
            line.className = "line fresh";
            var t = document.createElement("time");
            t.textContent = e.time;
            line.appendChild(t);
            line.appendChild(document.createTextNode(e.message));
            box.appendChild(line);
            after = String(e.id);
          });
          if (stick && data.events.length) { box.scrollTop = box.scrollHeight; }
          if (status) { status.textContent = "Live: following new lines."; }
        })
        .catch(function () { if (status) { status.textContent = "Live tail paused (retrying)."; } })
        .then(function () { setTimeout(poll, 1000); });
    }
    box.scrollTop = box.scrollHeight;
    poll();
  }

  function refreshRecent() {
    var recent = document.getElementById("recent");
    var src = recent && recent.getAttribute("data-src");
    if (!src) { return Promise.resolve(); }
    return fetch(src, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { recent.innerHTML = html; });
  }

  // Test page: submit the form in place, show the result, refresh the list.
  function startTest(form) {
    var payload = document.getElementById("payload");
    var sample = document.getElementById("sample");
    var load = document.getElementById("load-sample");
    if (load && sample && payload) {
      load.addEventListener("click", function (ev) {
        var opt = sample.options[sample.selectedIndex];
        var text = opt && opt.getAttribute("data-event");
        if (text) { ev.preventDefault(); payload.value = text; }
      });
    }
    form.addEventListener("submit", function (ev) {
      var submitter = ev.submitter;
      if (submitter && submitter.value === "sample") { return; }
      ev.preventDefault();
      var button = document.getElementById("invoke");
      var result = document.getElementById("result");
      var body = new URLSearchParams(new FormData(form));
      body.set("action", "invoke");
      if (button) { button.disabled = true; button.textContent = "Invoking…"; }
      fetch(form.getAttribute("action"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "x-kumo-fragment": "1", "content-type": "application/x-www-form-urlencoded" },
        body: body.toString()
      })
        .then(function (r) { return r.text(); })
        .then(function (html) { result.innerHTML = html; return refreshRecent(); })
        .catch(function (e) { result.textContent = "Invoke failed: " + e; })
        .then(function () { if (button) { button.disabled = false; button.textContent = "Invoke"; } });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var tail = document.getElementById("tail");
    if (tail && tail.getAttribute("data-tail")) { startTail(tail); }
    var form = document.getElementById("test-form");
    if (form) { startTest(form); }
  });
})();
