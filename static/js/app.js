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

  // An action from a page whose session ended answers 401 with a message (and a link to log in
  // that comes back here): it goes where the pressed card shows its errors, not to the alerts.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr.status !== 401 || xhr.getResponseHeader("HX-Redirect")) return;
    var card = evt.detail.elt && evt.detail.elt.closest ? evt.detail.elt.closest(".card") : null;
    if (!card) return;
    var slot = card.querySelector(".card-error");
    if (!slot) {
      slot = document.createElement("p");
      card.insertBefore(slot, card.querySelector(".card-actions"));
    }
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
    evt.detail.target = slot;
    evt.detail.swapOverride = "outerHTML";
  });

  // A poll's answer is a picture of the moment the server drew it. If an action was sent or
  // answered while the poll was out, that picture may predate the action and would undo its
  // card on screen (the booking looks ASSIGNED again after a force-cancel), so it is dropped;
  // the next poll draws the page afresh. Actions are counted when sent and when answered.
  var actionsInFlight = 0;
  var actionEvents = 0;
  var pollSentAt = new WeakMap();

  function isPoll(detail) {
    var elt = detail.elt;
    return detail.requestConfig && detail.requestConfig.verb === "get" &&
      elt && elt.hasAttribute && elt.hasAttribute("data-poll");
  }

  document.addEventListener("htmx:beforeSend", function (evt) {
    if (isPoll(evt.detail)) {
      pollSentAt.set(evt.detail.xhr, actionEvents);
    } else if (evt.detail.requestConfig && evt.detail.requestConfig.verb !== "get") {
      actionsInFlight += 1;
      actionEvents += 1;
    }
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!isPoll(evt.detail) && evt.detail.requestConfig && evt.detail.requestConfig.verb !== "get") {
      actionsInFlight = Math.max(0, actionsInFlight - 1);
      actionEvents += 1;
    }
  });

  // A poll must never wipe out what a person is in the middle of: an open action form, a
  // focused field, or an error message they have not read yet. An error holds back one poll
  // only (it stays up for at least a whole interval): holding every poll would freeze the
  // page, and new work would never appear.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (!isPoll(evt.detail)) return;
    var target = evt.detail.target;
    if (actionsInFlight > 0 || pollSentAt.get(evt.detail.xhr) !== actionEvents) {
      evt.detail.shouldSwap = false;
      return;
    }
    var busy = target.querySelector("details.action[open]") ||
      (document.activeElement && target.contains(document.activeElement) &&
        document.activeElement.matches("input, select, textarea"));
    var unread = target.querySelectorAll(".card-error:not([data-held-a-poll])");
    if (unread.length) {
      unread.forEach(function (error) { error.setAttribute("data-held-a-poll", ""); });
      busy = true;
    }
    if (busy) evt.detail.shouldSwap = false;
  });
})();

// The booking form: on today, the preset windows that have already begun are greyed out (the
// server refuses them anyway, and says so beside the choice).
(function () {
  "use strict";
  var form = document.querySelector("form[data-today]");
  if (!form) return;
  var day = form.querySelector("input[name=day]");
  function update() {
    var today = day && day.value === form.getAttribute("data-today");
    form.querySelectorAll("input[data-starts]").forEach(function (slot) {
      var passed = today && slot.getAttribute("data-starts") <= form.getAttribute("data-now");
      slot.disabled = passed;
      if (passed) slot.checked = false;
    });
  }
  if (day) day.addEventListener("change", update);
  update();
})();
