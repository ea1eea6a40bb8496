// cairn's dashboard: refresh <main> while the page can still change.
// The page is complete without this script; it only saves a reload. The
// server says how long to wait next (X-Cairn-Poll, 0 = the page is final).
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main || !window.fetch) {
    return;
  }
  var poll = parseInt(main.getAttribute("data-poll") || "0", 10);
  var url = new URL(window.location.href);
  url.searchParams.set("fragment", "1");
  url.hash = "";
  var last = null;

  function later(seconds) {
    if (seconds > 0) {
      window.setTimeout(refresh, seconds * 1000);
    }
  }

  function refresh() {
    if (document.hidden) {
      later(poll);
      return;
    }
    fetch(url.toString(), { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        var next = parseInt(response.headers.get("X-Cairn-Poll") || "0", 10);
        return response.text().then(function (html) {
          return { html: html, next: next };
        });
      })
      .then(function (page) {
        if (page.html !== last) {
          main.innerHTML = page.html;
          last = page.html;
        }
        main.setAttribute("data-refreshed", new Date().toISOString());
        main.removeAttribute("data-error");
        poll = page.next;
        later(poll);
      })
      .catch(function (error) {
        // Keep what is shown; try again, less often.
        main.setAttribute("data-error", String(error));
        later(Math.max(poll, 5) * 2);
      });
  }

  later(poll);
})();
