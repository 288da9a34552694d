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

  // A redraw must never wipe out what a person is in the middle of. A card with an open
  // timeline or action form, typed text or the focus stays on the page as it is (the very
  // element, swapped back in for its redrawn copy) while its booking has not changed
  // (data-version); a card whose booking changed is drawn afresh. An error not yet read holds
  // back one redraw (it stays up for at least a whole interval, even if its card is to leave
  // the list), but only one: new work must still appear.
  var keptCards = null;
  var keptFocus = null;

  function edited(field) {
    if (field.type === "hidden") return false;
    if (field.type === "checkbox" || field.type === "radio") return field.checked !== field.defaultChecked;
    if (field.tagName === "SELECT") {
      return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
    }
    return field.value !== field.defaultValue;
  }

  function inUse(card) {
    return Boolean(card.querySelector("details[open]") || card.contains(document.activeElement) ||
      Array.prototype.some.call(card.querySelectorAll("input, select, textarea"), edited));
  }

  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (!isPoll(evt.detail)) return;
    if (actionsInFlight > 0 || pollSentAt.get(evt.detail.xhr) !== actionEvents) {
      evt.detail.shouldSwap = false;
      document.dispatchEvent(new CustomEvent("live-redraw-held", {detail: {ms: 1500}}));
      return;
    }
    var unread = evt.detail.target.querySelectorAll(".card-error:not([data-held-a-poll])");
    if (unread.length) {
      unread.forEach(function (error) { error.setAttribute("data-held-a-poll", ""); });
      evt.detail.shouldSwap = false;
      // Long enough to read the error before the redraw takes it away.
      document.dispatchEvent(new CustomEvent("live-redraw-held", {detail: {ms: 10000}}));
      return;
    }
    keptCards = {};
    evt.detail.target.querySelectorAll("article.card[id]").forEach(function (card) {
      if (inUse(card)) keptCards[card.id] = card;
    });
    var active = document.activeElement;
    keptFocus = active && active !== document.body && evt.detail.target.contains(active)
      ? {elt: active, start: active.selectionStart, end: active.selectionEnd} : null;
  });

  // An out-of-band part of an answer (the duty toggle, the automation switch, the provider
  // panel) never replaces what a person is using: focused, typed in or open.
  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    if (evt.detail.target && inUse(evt.detail.target)) evt.detail.shouldSwap = false;
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (!keptCards) return;
    var kept = keptCards;
    keptCards = null;
    Object.keys(kept).forEach(function (id) {
      var fresh = document.getElementById(id);
      var card = kept[id];
      if (!fresh || fresh.getAttribute("data-version") !== card.getAttribute("data-version")) return;
      fresh.replaceWith(card);
      htmx.process(card); // the swap let go of its htmx behaviour with the old region
    });
    if (keptFocus && document.contains(keptFocus.elt)) {
      keptFocus.elt.focus({preventScroll: true});
      if (keptFocus.start != null && keptFocus.elt.setSelectionRange) {
        try { keptFocus.elt.setSelectionRange(keptFocus.start, keptFocus.end); } catch (e) { /* not a text field */ }
      }
    }
    keptFocus = null;
    focusActedOn();
    acted = null; // the redraw after the action has placed the card where it belongs
  });

  // After an action the focus goes to its card (swapped in place), and after the redraw that
  // follows to the card where it now is, or to its lane (or the list) when it left the view;
  // unless the person has moved on to something else meanwhile.
  var acted = null;

  function focusActedOn() {
    if (!acted) return;
    var active = document.activeElement;
    if (active && active !== document.body && !active.hasAttribute("data-acted-on")) return;
    var place = document.getElementById("booking-" + acted.id) ||
      document.getElementById("lane-" + acted.status) || document.querySelector("[data-poll]");
    if (!place) return;
    if (!place.hasAttribute("tabindex")) place.setAttribute("tabindex", "-1");
    place.setAttribute("data-acted-on", "");
    place.focus();
  }

  var clearConfirmation = null;
  document.addEventListener("booking-acted", function (evt) {
    acted = {id: evt.detail.id, status: evt.detail.status};
    focusActedOn();
    // The confirmation stays long enough to read, then leaves the screen (the live region
    // stays, empty, for the next one).
    clearTimeout(clearConfirmation);
    clearConfirmation = setTimeout(function () {
      var region = document.getElementById("confirmation");
      if (region) region.textContent = "";
    }, 10000);
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

// An offer's countdown: data-offer-seconds is what was left when the server drew the card, told
// in the server's words ("4 min left", "expired"). When an offer runs out, the page redraws its
// lists a moment later, once automation has had its turn to expire it.
(function () {
  "use strict";
  var REDRAW_AFTER_MS = 2500;
  var deadlines = new WeakMap();

  function words(seconds) {
    if (seconds <= 0) return "expired";
    return seconds < 60 ? seconds + " s left" : Math.floor(seconds / 60) + " min left";
  }

  function tick() {
    var now = Date.now();
    var ranOut = false;
    document.querySelectorAll("[data-offer-seconds]").forEach(function (clock) {
      if (!deadlines.has(clock)) {
        deadlines.set(clock, now + Number(clock.getAttribute("data-offer-seconds")) * 1000);
      }
      var left = Math.max(0, Math.ceil((deadlines.get(clock) - now) / 1000));
      var text = words(left);
      if (clock.textContent === text) return;
      clock.textContent = text;
      if (!left) {
        clock.parentNode.classList.add("offer-expired");
        ranOut = true;
      }
    });
    if (ranOut && window.htmx) {
      setTimeout(function () { htmx.trigger(document.body, "bookings-changed"); }, REDRAW_AFTER_MS);
    }
  }

  tick();
  setInterval(tick, 1000);
})();

// Live pages: the server rings when something this person may see has changed (a same-origin
// EventSource on the page's stream, #live), and the page redraws its region as it always has
// ("bookings-changed"), at most once per COALESCE_MS however many rings a burst brings, and not
// while the tab is hidden (once, when it shows again). Should the stream be blocked (a proxy
// that buffers, a refusal), the page asks the cheap poll every few seconds instead and says so,
// until the stream opens again.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource || !window.htmx) return;
  var COALESCE_MS = 500;
  var BLOCKED_AFTER_MS = 2000; // an error with no open stream for this long: fall back
  var READY_WITHIN_MS = 3000; // an open stream whose first event is held back this long: a
                              // proxy buffers it, so fall back
  var REOPEN_MS = [15000, 30000]; // a refused stream is asked again after a random wait
  var cursor = live.getAttribute("data-cursor");
  var notice = document.getElementById("live-notice");
  var fallbackMs = Number(live.getAttribute("data-fallback-seconds")) * 1000;
  var lastRedraw = 0;
  var redrawTimer = null;
  var missedWhileHidden = false;

  function redraw() {
    if (document.hidden) { missedWhileHidden = true; return; }
    if (redrawTimer) return;
    redrawTimer = setTimeout(function () {
      redrawTimer = null;
      lastRedraw = Date.now();
      htmx.trigger(document.body, "bookings-changed");
    }, Math.max(0, lastRedraw + COALESCE_MS - Date.now()));
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && missedWhileHidden) { missedWhileHidden = false; redraw(); }
  });
  // A region redraw the page held back (an action was on its way, an error not yet read) is
  // asked for again a little later, not left to the slow safety poll.
  document.addEventListener("live-redraw-held", function (evt) { setTimeout(redraw, evt.detail.ms); });

  // Told that something changed, as of `told` (what to ask from next): every telling is news,
  // even at the same cursor (one may hold back for an earlier change still to commit).
  function heard(told) {
    if (told) cursor = told;
    redraw();
  }

  var source = null;
  var openedAt = 0;
  var erredAt = 0;
  var pollTimer = null;

  function streamUrl() {
    var url = new URL(live.getAttribute("data-stream"), window.location.href);
    url.searchParams.set("after", cursor);
    return url.toString();
  }

  function poll() {
    var url = new URL(live.getAttribute("data-poll"), window.location.href);
    url.searchParams.set("after", cursor);
    fetch(url.toString(), {credentials: "same-origin", cache: "no-store"}).then(function (answer) {
      if (answer.status === 200) return answer.text().then(heard);
      if (answer.status === 401) redraw(); // the redraw leads to the login page
    }).catch(function () { /* offline: the next poll tries again */ });
  }

  function fallBack() {
    if (pollTimer) return;
    if (notice) notice.hidden = false;
    poll();
    pollTimer = setInterval(poll, fallbackMs);
  }

  function recover() {
    if (!pollTimer) return;
    clearInterval(pollTimer);
    pollTimer = null;
    if (notice) notice.hidden = true;
  }

  function open() {
    source = new EventSource(streamUrl());
    var readyTimer = null;
    source.addEventListener("open", function () {
      openedAt = Date.now();
      clearTimeout(readyTimer);
      readyTimer = setTimeout(fallBack, READY_WITHIN_MS);
    });
    source.addEventListener("ready", function () { clearTimeout(readyTimer); recover(); });
    source.addEventListener("changed", function (evt) { heard(evt.data); });
    source.addEventListener("error", function () {
      erredAt = Date.now();
      if (source.readyState === EventSource.CLOSED) {
        // Refused (204: not served here; 401; 503: full): poll, and ask again later.
        source = null;
        fallBack();
        var wait = REOPEN_MS[0] + Math.random() * (REOPEN_MS[1] - REOPEN_MS[0]);
        setTimeout(open, wait);
        return;
      }
      // The browser reconnects by itself (after the server's random retry); if the stream
      // does not open again soon, it is blocked: poll meanwhile.
      setTimeout(function () {
        if (openedAt <= erredAt && source && source.readyState !== EventSource.OPEN) fallBack();
      }, BLOCKED_AFTER_MS);
    });
  }

  window.addEventListener("pagehide", function () { if (source) source.close(); });
  open();
})();
