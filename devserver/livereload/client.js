// devserver live reload, a tab's side. The events are described in devserver/livereload/events.py.
// One stream per browser: a SharedWorker (worker.js) holds it for every tab of the site; where
// there is none (or a Content-Security-Policy refuses it), each tab holds its own.
(function () {
  "use strict";
  var script = document.currentScript;
  if (window.__devserverLiveReload || !script) return;
  var boot = script.getAttribute("data-boot");
  var base = script.getAttribute("data-base") || "/__devserver__/";
  var live = (window.__devserverLiveReload = { boot: boot, mode: null, events: [] });
  var scrollKey = "devserver:scroll:" + location.pathname + location.search;
  var reloading = false;
  var greeted = false;

  function restoreScroll() {
    var saved = null;
    try {
      saved = sessionStorage.getItem(scrollKey);
      sessionStorage.removeItem(scrollKey);
    } catch (e) {}
    if (saved) {
      var xy = JSON.parse(saved);
      window.scrollTo(xy[0], xy[1]);
    }
  }
  if (document.readyState === "complete") restoreScroll();
  else addEventListener("load", restoreScroll);

  function reload(reason) {
    if (reloading) return;
    reloading = true;
    try {
      sessionStorage.setItem(scrollKey, JSON.stringify([window.scrollX, window.scrollY]));
    } catch (e) {}
    console.info("[devserver] reloading: " + reason);
    // The answer to a form's POST is fetched again with a GET: reloading would post it again.
    if (script.hasAttribute("data-post")) location.replace(location.href.split("#")[0]);
    else location.reload();
  }

  function sameOrigin(link) {
    return new URL(link.href, location.href).origin === location.origin;
  }

  function swap(link) {
    var url = new URL(link.href, location.href);
    url.searchParams.set("__devserver", Date.now().toString(36));
    var fresh = link.cloneNode(false);
    fresh.href = url.href;
    link.setAttribute("data-devserver-stale", "");
    // The old sheet applies until the new one has loaded: no flash of unstyled content.
    function done() {
      if (link.parentNode) link.parentNode.removeChild(link);
    }
    fresh.addEventListener("load", done);
    fresh.addEventListener("error", done);
    link.parentNode.insertBefore(fresh, link.nextSibling);
  }

  function swapStylesheets(paths) {
    var links = Array.prototype.filter.call(
      document.querySelectorAll('link[rel~="stylesheet"][href]:not([data-devserver-stale])'),
      sameOrigin
    );
    var named = links.filter(function (link) {
      return paths.indexOf(new URL(link.href, location.href).pathname) !== -1;
    });
    // A sheet no link names is @imported by another one: every sheet is fetched again.
    (named.length ? named : links).forEach(swap);
    live.swapped = (live.swapped || 0) + 1;
  }

  function handle(event) {
    live.events.push(event.type);
    if (event.type === "hello") {
      greeted = true;
      if (event.boot !== boot) reload("a new server process serves");
    } else if (event.type === "reload") {
      reload(event.reason);
    } else if (event.type === "css") {
      swapStylesheets(event.paths);
    } else if (event.type === "down" && greeted) {
      reload("the server cannot serve: its error page shows why"); // it reloads itself when fixed
    }
  }

  function direct() {
    live.mode = "tab";
    var source = new EventSource(base + "events");
    source.onmessage = function (message) {
      handle(JSON.parse(message.data));
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        handle({ type: "down" });
        if (!reloading) setTimeout(direct, 1000);
      }
    };
  }

  function shared() {
    var worker;
    try {
      worker = new SharedWorker(base + "worker.js", { name: "devserver-livereload" });
    } catch (e) {
      return false;
    }
    live.mode = "shared";
    worker.onerror = function () {
      if (!greeted && live.mode === "shared") direct();
    };
    worker.port.onmessage = function (message) {
      handle(message.data);
    };
    worker.port.start();
    addEventListener("pagehide", function () {
      worker.port.postMessage("bye");
    });
    addEventListener("pageshow", function (event) {
      if (event.persisted) worker.port.postMessage("ask"); // back from the page cache
    });
    return true;
  }

  if (!(window.SharedWorker && shared())) direct();
})();
