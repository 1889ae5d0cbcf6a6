// One booking by its secret link: shown with its code and QR code (printable); changed to another
// day and slot in one step (the old place is given back in the same step on the server), or
// cancelled after a second press.

import { ApiError, newIdempotencyKey } from "/static/common/api.js";
import { pageData, setText, tHtml } from "/static/common/page.js";
import * as bookings from "./bookings.js";
import { $, bookingRows, clearMessage, errorHtml, fillSummary, showCode, showMessage, showRules } from "./common.js";
import { SlotPicker } from "./picker.js";

const config = pageData();
const procedures = new Map(config.procedures.map((p) => [p.id, p]));
let booking = null;
let choice = null;
let attempt = null;           // {intent, key}: retrying the same change or cancel reuses its key
let busy = false;

const picker = new SlotPicker("change", {
  office: config.office,
  marks: config.calendar,
  onChoose(chosen) {
    choice = chosen;
    $("change-confirm-step").hidden = !chosen;
    if (chosen) {
      fillSummary($("change-summary"), bookingRows(procedureOf(booking), chosen.day, chosen.slot));
      $("change-confirm-step").scrollIntoView({ block: "nearest" });
    }
  },
  onError: (error) => showMessage(errorHtml(error)),
});

function procedureOf(b) {
  return procedures.get(b.procedure) || { id: b.procedure, name: b.procedure };
}

function info(key) {
  setText($("info"), key);
  $("info").hidden = false;
}

function render() {
  const active = booking.state === "booked";
  document.body.dataset.state = booking.state;
  $("booking").hidden = false;
  setText($("booking-state"), `booking.state_${booking.state}`);
  fillSummary($("booking-summary"), bookingRows(procedureOf(booking), booking.day, booking.slot));
  showCode("booking", booking.code, active ? config.secret : null);
  showRules("booking", booking);
  $("booking-qr").hidden = !active;
  $("booking-actions").querySelectorAll("#change, #cancel").forEach((b) => { b.hidden = !active; });
  $("bring").hidden = !active;
}

async function load() {
  try {
    booking = (await bookings.bySecret(config.secret)).booking;
    // A secret is unique over every office: under another office's address it is no booking here.
    if (booking.office !== config.office) throw new ApiError(404, "not_found", "another office's booking");
  } catch (error) {
    $("loading").hidden = true;
    showMessage(error instanceof ApiError && error.code === "not_found" ? tHtml("booking.link_not_found") : errorHtml(error));
    return;
  }
  // The QR code holds the link without a language: show it in the language it was booked in.
  if (!new URLSearchParams(location.search).has("lang") && booking.lang && booking.lang !== config.lang) {
    location.replace(`${location.pathname}?lang=${encodeURIComponent(booking.lang)}`);
    return;
  }
  $("loading").hidden = true;
  render();
  document.body.dataset.ready = "true";
}

function once(intent) {
  if (!attempt || attempt.intent !== intent) attempt = { intent, key: newIdempotencyKey() };
  return attempt.key;
}

function closeSteps() {
  $("change-steps").hidden = true;
  $("cancel-step").hidden = true;
  picker.hide();
  $("change-confirm-step").hidden = true;
  choice = null;
}

async function act(button, run, done) {
  if (busy) return;
  busy = true;
  button.disabled = true;
  clearMessage();
  try {
    booking = (await run()).booking;
    attempt = null;
    closeSteps();
    render();
    info(done);
    $("booking").scrollIntoView({ block: "start" });
  } catch (error) {
    showMessage(errorHtml(error));
    if (error instanceof ApiError && error.code === "slot_full") {
      attempt = null;
      await picker.refresh();
    }
  } finally {
    busy = false;
    button.disabled = false;
  }
}

$("print").addEventListener("click", () => window.print());
$("change").addEventListener("click", () => {
  $("info").hidden = true;
  $("cancel-step").hidden = true;
  $("change-steps").hidden = false;
  picker.show(booking.procedure);
  $("change-day-step").scrollIntoView({ block: "start" });
});
$("change-back").addEventListener("click", closeSteps);
$("change-confirm").addEventListener("click", (event) => {
  if (!choice) return;
  const body = { day: choice.day, slot: choice.slot };
  act(event.currentTarget, () => bookings.changeBySecret(config.secret, body, once(`change ${JSON.stringify(body)}`)),
      "booking.changed");
});
$("cancel").addEventListener("click", () => {
  $("info").hidden = true;
  closeSteps();
  $("cancel-step").hidden = false;
  $("cancel-confirm").focus();
});
$("cancel-back").addEventListener("click", closeSteps);
$("cancel-confirm").addEventListener("click", (event) => {
  act(event.currentTarget, () => bookings.cancelBySecret(config.secret, once("cancel")), "booking.cancelled");
});
load();
