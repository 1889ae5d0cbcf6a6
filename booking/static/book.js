// The citizen's booking page: procedure → day → slot → (the notice postcard's reference) → confirm
// → the code, large and spelled out, and the QR code of the secret link; printable. A code typed
// into "予約の確認・変更・取り消し" opens the booking's own page.

import { ApiError, newIdempotencyKey } from "/static/common/api.js";
import { pageData, tHtml } from "/static/common/page.js";
import * as bookings from "./bookings.js";
import { $, bookingRows, clearMessage, errorHtml, fillSummary, linkPath, procedureHtml, showCode, showMessage,
         showRules } from "./common.js";
import { SlotPicker } from "./picker.js";

const config = pageData();
const procedures = new Map(config.procedures.map((p) => [p.id, p]));
let choice = null;            // {procedure, day, slot}
let attempt = null;           // {choice, key}: one Idempotency-Key per booking the visitor means to make
let busy = false;

const picker = new SlotPicker("book", {
  office: config.office,
  marks: config.calendar,
  onChoose(chosen) {
    choice = chosen;
    showConfirm();
  },
  onError: (error) => showMessage(errorHtml(error)),
});

function renderProcedures() {
  const box = $("procedures");
  $("procedures-none").hidden = procedures.size > 0;
  box.replaceChildren(...[...procedures.values()].map((procedure) => {
    const label = document.createElement("label");
    label.className = "procedure-choice";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "procedure";
    input.value = procedure.id;
    input.addEventListener("change", () => chooseProcedure(procedure.id));
    const name = document.createElement("span");
    name.className = "procedure-name";
    name.innerHTML = procedureHtml(procedure);
    label.append(input, name);
    return label;
  }));
}

function chooseProcedure(id) {
  clearMessage();
  choice = null;
  showConfirm();
  const procedure = procedures.get(id);
  $("reference-box").hidden = !procedure.reference;
  $("reference").value = "";
  picker.show(id);
}

function showConfirm() {
  const step = $("confirm-step");
  step.hidden = !choice;
  if (!choice) return;
  fillSummary($("summary"), bookingRows(procedures.get(choice.procedure), choice.day, choice.slot));
  step.scrollIntoView({ block: "nearest" });
}

async function confirm() {
  if (busy || !choice) return;
  busy = true;
  const button = $("confirm");
  button.disabled = true;
  clearMessage();
  const reference = $("reference-box").hidden ? "" : $("reference").value.trim();
  const body = { procedure: choice.procedure, day: choice.day, slot: choice.slot, lang: config.lang };
  if (reference) body.reference = reference;
  // The same key for the same booking retried (a lost answer); a new one once anything changed.
  const intent = JSON.stringify(body);
  if (!attempt || attempt.intent !== intent) attempt = { intent, key: newIdempotencyKey() };
  try {
    const answer = await bookings.book(config.office, body, attempt.key);
    attempt = null;
    showDone(answer, body);
  } catch (error) {
    showMessage(errorHtml(error));
    if (error instanceof ApiError && error.code === "slot_full") {
      attempt = null;
      await picker.refresh();   // show the slot as full now, and what is still free
    }
  } finally {
    busy = false;
    button.disabled = false;
  }
}

function showDone(answer, body) {
  const booking = answer.booking || {};
  $("booking-steps").hidden = true;
  $("manage").hidden = true;
  fillSummary($("done-summary"), bookingRows(procedures.get(body.procedure), booking.day || body.day, booking.slot || body.slot));
  showCode("done", answer.code, answer.secret);
  showRules("done", booking);
  $("done-link").href = linkPath(answer.secret);
  $("done").hidden = false;
  // Read from the top: the card is taller than a phone's screen.
  $("done").focus({ preventScroll: true });
  $("done").scrollIntoView({ block: "start" });
  document.body.dataset.booked = "true";
}

async function findByCode(event) {
  event.preventDefault();
  const input = $("code-input");
  const error = $("code-error");
  error.hidden = true;
  input.removeAttribute("aria-invalid");
  if (!bookings.looksLikeCode(input.value)) {
    error.innerHTML = tHtml("booking.code_malformed");
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  try {
    const answer = await bookings.lookup(bookings.normaliseCode(input.value), config.office);
    location.assign(linkPath(answer.secret));
  } catch (e) {
    error.innerHTML = e instanceof ApiError && (e.code === "not_found" || e.code === "invalid_code")
      ? tHtml("booking.code_not_found") : errorHtml(e);
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
  }
}

$("confirm").addEventListener("click", confirm);
$("print").addEventListener("click", () => window.print());
$("code-form").addEventListener("submit", findByCode);
renderProcedures();
// One bookable procedure: nothing to choose.
if (procedures.size === 1) {
  const only = $("procedures").querySelector("input");
  only.checked = true;
  chooseProcedure(only.value);
}
document.body.dataset.ready = "true";
