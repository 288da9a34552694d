// Ops Portal's only script (same-origin, no inline code, no eval): htmx does the rest.
(function () {
  "use strict";

  function showAlert(message) {
    var region = document.getElementById("alerts");
    if (!region) return;
    var p = document.createElement("p");
    p.className = "alert alert-error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    region.prepend(p);
  }

  // Answers htmx does not swap (401 without redirect, 5xx, network loss) become a visible alert.
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr.status === 401) return; // HX-Redirect takes the person to the login page
    var retry = xhr.getResponseHeader("Retry-After");
    showAlert(
      xhr.status === 503
        ? "The service is busy or unavailable; nothing was changed. Try again" + (retry ? " in " + retry + " s." : " shortly.")
        : "Something went wrong (" + xhr.status + "); nothing was changed. Reload the page and try again."
    );
  });
  document.addEventListener("htmx:sendError", function () {
    showAlert("No connection: your last action was not sent. Check the network and try again.");
  });

  // A poll must never wipe out what a person is in the middle of: an open action form, a
  // focused field, or an error message they have not read yet.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    var fromPoll = evt.detail.requestConfig && evt.detail.requestConfig.verb === "get" &&
      target && target.hasAttribute("data-poll");
    if (!fromPoll) return;
    var busy = target.querySelector("details.action[open], .card-error") ||
      (document.activeElement && target.contains(document.activeElement) &&
        document.activeElement.matches("input, select, textarea"));
    if (busy) evt.detail.shouldSwap = false;
  });
})();
