// The call-centre desk: an operator on the phone books, changes and cancels for a caller.
//
// Sign in as on the other staff pages (static/common/staff.js); the role must be callcenter or supervisor.
// Every action is a staff request of the bookings API (session cookie + CSRF token + an
// Idempotency-Key per intended action), so the server records who did it and when.
// Keyboard: 1 / 2 / 3 jump to the three parts, Enter confirms (each part is a form), Esc goes
// back, ↑/↓ move through the free slots, C / X change / cancel the booking found.

import { ApiError, newIdempotencyKey } from "/static/common/api.js";
import { escapeHtml, pageData, t } from "/static/common/page.js";
import { el, staffSession } from "/static/common/staff.js";
import * as bookings from "/static/booking/bookings.js";

const page = pageData();
const offices = new Map(page.offices.map((o) => [o.id, o]));
const procedures = new Map(page.procedures.map((p) => [p.id, p]));
const ROLES = new Set(["callcenter", "supervisor"]);
const FREE_ROWS = 12;
const FREE_SEARCHED = 200;   // the API's most: an office filter (or a change at one office) picks from these
const byId = (id) => document.getElementById(id);

let me = null;
let chosen = null;           // the free slot chosen for a new booking: {office, procedure, day, slot}
let found = null;            // the booking looked up by code
let attempt = null;          // {intent, key}: a retried press reuses its Idempotency-Key
let busy = false;
let lastError = null;        // the code of the last refused action ("slot_full", …)

// --- small helpers ---------------------------------------------------------------------------

const officeName = (id) => { const o = offices.get(id); return o ? (o.short_name || o.name) : id; };
const procedureName = (id) => (procedures.get(id) || { name: id }).name;

function errorText(error) {
  const code = error instanceof ApiError ? error.code : "unavailable";
  const key = `error.${code}.message`;
  const text = t(key);
  return text === key ? `${t("error.unavailable.message")} (${code})` : text;
}

function showMessage(text, kind = "error") {
  const box = byId("message");
  box.textContent = text;
  box.className = `cp-message notice ${kind === "error" ? "notice-error" : ""}`;
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  byId("message").hidden = true;
}

function once(intent) {
  if (!attempt || attempt.intent !== intent) attempt = { intent, key: newIdempotencyKey() };
  return attempt.key;
}

/** Run one staff action at a time; its errors are said in the message line. */
async function run(action) {
  if (busy) return undefined;
  busy = true;
  document.body.classList.add("busy");
  clearMessage();
  lastError = null;
  try {
    const result = await action();
    attempt = null;
    return result;
  } catch (error) {
    lastError = error instanceof ApiError ? error.code : "unavailable";
    if (lastError === "unauthorized") showSignIn();
    showMessage(errorText(error));
    return undefined;
  } finally {
    busy = false;
    document.body.classList.remove("busy");
  }
}

/** The code written large, and each character with how to say it on the phone. */
function spelledHtml(code) {
  return bookings.spell(code, t("booking.letter_readings")).map(({ char, reading }) =>
    `<span class="cc-char"><span class="cc-char-letter">${escapeHtml(char)}</span><span class="cc-char-reading">${escapeHtml(reading)}</span></span>`).join("");
}

// --- sign-in ---------------------------------------------------------------------------------

const session = staffSession({
  signedIn: (user) => { me = user; signedIn(); },
  signedOut: () => {
    me = null;
    byId("who").textContent = "";
    byId("sign-out").hidden = true;
    byId("desk").hidden = true;
    byId("sign-in").hidden = false;
  },
  failedText: t("callcenter.sign_in_failed"), showMessage, clearMessage, errorText,
});
const showSignIn = () => session.showSignIn();

function signedIn() {
  byId("who").textContent = t("callcenter.signed_in_as", { name: me.display_name || me.username });
  byId("sign-out").hidden = false;
  byId("sign-in").hidden = true;
  if (!ROLES.has(me.role)) {
    byId("desk").hidden = true;
    showMessage(t("callcenter.wrong_role"));
    return;
  }
  byId("desk").hidden = false;
  byId("list-day").value = page.today;   // the office's day (YYYY-MM-DD), not this PC's
  byId("procedure").focus();
  document.body.dataset.ready = "true";
}

// --- free slots and booking --------------------------------------------------------------------

/** Rows of free slots, each with a button that calls ``onChoose(slot)``. */
function freeRows(slots, onChoose) {
  return slots.map((slot) => {
    const row = el("tr");
    row.dataset.office = slot.office;
    row.dataset.day = slot.day;
    row.dataset.slot = slot.slot;
    const button = el("button", "btn cp-small cc-choose", t("callcenter.choose"));
    button.type = "button";
    button.setAttribute("aria-label", t("callcenter.choose_aria", {
      office: officeName(slot.office), day: bookings.formatDay(slot.day), time: slot.slot }));
    button.addEventListener("click", () => onChoose(slot));
    const choose = el("td");
    choose.append(button);
    row.append(el("td", "", officeName(slot.office)), el("td", "", bookings.formatDay(slot.day)),
               el("td", "cc-time", slot.slot), el("td", "", t("callcenter.places", { n: slot.remaining })), choose);
    return row;
  });
}

async function search(event) {
  event.preventDefault();
  const procedure = byId("procedure").value;
  const office = byId("office-filter").value;
  const answer = await run(() => bookings.nextFree(procedure, office ? FREE_SEARCHED : FREE_ROWS));
  if (!answer) return;
  byId("book-form").hidden = true;
  byId("result").hidden = true;
  const rows = freeRows(answer.slots.filter((s) => !office || s.office === office).slice(0, FREE_ROWS), chooseSlot);
  byId("free").replaceChildren(...rows);
  byId("free-table").hidden = rows.length === 0;
  byId("free-none").hidden = rows.length > 0;
  const first = byId("free").querySelector("button");
  if (first) first.focus();
}

function chooseSlot(slot) {
  chosen = { ...slot, procedure: byId("procedure").value };
  byId("chosen").textContent = t("callcenter.chosen", {
    office: officeName(chosen.office), procedure: procedureName(chosen.procedure),
    day: bookings.formatDay(chosen.day), time: chosen.slot });
  byId("reference").value = "";
  const takesReference = (procedures.get(chosen.procedure) || {}).reference;
  for (const id of ["reference", "reference-help"]) byId(id).hidden = !takesReference;
  byId("book-form").querySelector("label[for=reference]").hidden = !takesReference;
  byId("book-form").hidden = false;
  (takesReference ? byId("reference") : byId("book-submit")).focus();
}

async function bookChosen(event) {
  event.preventDefault();
  if (!chosen) return;
  const body = { procedure: chosen.procedure, day: chosen.day, slot: chosen.slot };
  const reference = byId("reference").value.trim();
  if (reference && !byId("reference").hidden) body.reference = reference;
  body.office = chosen.office;
  const answer = await run(() => bookings.staffBook(body, once(`book ${JSON.stringify(body)}`)));
  if (!answer) {
    // Taken meanwhile by another caller or the web page: the list again, without that slot.
    if (lastError === "slot_full") {
      await search(new Event("submit"));
      showMessage(t("error.slot_full.message"));
    }
    return;
  }
  showResult("callcenter.booked", answer.booking);
  byId("book-form").hidden = true;
  byId("free-table").hidden = true;
  chosen = null;
}

function showResult(headingKey, booking) {
  byId("result-heading").textContent = t(headingKey);
  byId("result-what").textContent = t("callcenter.chosen", {
    office: officeName(booking.office), procedure: procedureName(booking.procedure),
    day: bookings.formatDay(booking.day), time: booking.slot });
  byId("result-code").textContent = booking.code ? bookings.formatCode(booking.code) : "";
  byId("result-spelled").innerHTML = booking.code ? spelledHtml(booking.code) : "";
  byId("result").hidden = false;
  byId("result").focus();
}

// --- find by code, change, cancel ----------------------------------------------------------------

function renderFound() {
  const b = found;
  const rows = [
    ["callcenter.code", bookings.formatCode(b.code)], ["callcenter.office", officeName(b.office)],
    ["callcenter.procedure", procedureName(b.procedure)], ["callcenter.col_day", bookings.formatDay(b.day)],
    ["callcenter.col_time", b.slot], ["callcenter.col_state", t(`booking.state_${b.state}`)],
    ["callcenter.reference", b.reference || "—"],
    ["callcenter.channel", b.channel ? t(`callcenter.channel_${b.channel}`) : "—"], ["callcenter.actor", b.actor || "—"],
  ];
  byId("found-details").replaceChildren(...rows.flatMap(([key, value]) => {
    const dd = el("dd", "", value);
    dd.dataset.field = key.split(".").pop();
    return [el("dt", "", t(key)), dd];
  }));
  const active = b.state === "booked";
  byId("found-actions").hidden = !active;
  byId("reference-form").hidden = !active;
  byId("found-reference").value = b.reference || "";
  byId("change-box").hidden = true;
  byId("cancel-box").hidden = true;
  byId("found").hidden = false;
}

async function find(event) {
  event.preventDefault();
  const input = byId("find-code");
  const error = byId("find-error");
  error.hidden = true;
  input.removeAttribute("aria-invalid");
  if (!bookings.looksLikeCode(input.value)) {
    error.textContent = t("booking.code_malformed");
    error.hidden = false;
    input.setAttribute("aria-invalid", "true");
    return;
  }
  const answer = await run(() => bookings.lookup(bookings.normaliseCode(input.value)));
  if (!answer) {
    byId("found").hidden = true;
    return;
  }
  found = answer.booking;
  renderFound();
}

async function showChange() {
  if (!found || found.state !== "booked") return;
  byId("cancel-box").hidden = true;
  const answer = await run(() => bookings.nextFree(found.procedure, FREE_SEARCHED));
  if (!answer) return;
  // A change stays at the booking's office (one step there); its own slot is no change.
  const rows = freeRows(answer.slots.filter((s) => s.office === found.office && !(s.day === found.day && s.slot === found.slot))
    .slice(0, FREE_ROWS), changeTo);
  byId("change-free").replaceChildren(...rows);
  byId("change-none").hidden = rows.length > 0;
  byId("change-box").hidden = false;
  const first = byId("change-free").querySelector("button");
  if (first) first.focus();
}

async function changeTo(slot) {
  const body = { day: slot.day, slot: slot.slot };
  const answer = await run(() => bookings.staffChange(found.office, found.code, body, once(`change ${found.code} ${JSON.stringify(body)}`)));
  if (!answer) return;
  found = { ...found, ...answer.booking };
  renderFound();
  showResult("callcenter.changed", found);
}

async function saveReference(event) {
  event.preventDefault();
  if (!found) return;
  const body = { reference: byId("found-reference").value.trim() };   // empty: the number is removed
  const answer = await run(() => bookings.staffChange(found.office, found.code, body, once(`reference ${found.code} ${body.reference}`)));
  if (!answer) return;
  found = { ...found, ...answer.booking };
  if (!("reference" in answer.booking)) delete found.reference;
  renderFound();
  showMessage(t("callcenter.reference_saved"), "info");
}

function showCancel() {
  if (!found || found.state !== "booked") return;
  byId("change-box").hidden = true;
  byId("cancel-box").hidden = false;
  byId("cancel-confirm").focus();
}

async function cancelFound() {
  const answer = await run(() => bookings.staffCancel(found.office, found.code, once(`cancel ${found.code}`)));
  if (!answer) return;
  found = { ...found, ...answer.booking };
  renderFound();
  showMessage(t("callcenter.cancelled", { code: bookings.formatCode(found.code) }), "info");
  byId("find-code").focus();
}

// --- an office's bookings of a day ----------------------------------------------------------------

async function list(event) {
  event.preventDefault();
  const office = byId("list-office").value;
  const day = byId("list-day").value.replaceAll("-", "");
  const answer = await run(() => bookings.dayList(office, day));
  if (!answer) return;
  const rows = answer.bookings.map((b) => {
    const row = el("tr");
    row.dataset.code = b.code;
    row.dataset.state = b.state;
    row.append(el("td", "cc-time", b.slot), el("td", "cc-list-code", bookings.formatCode(b.code)),
               el("td", "", procedureName(b.procedure)), el("td", "", t(`booking.state_${b.state}`)));
    return row;
  });
  byId("list").replaceChildren(...rows);
  byId("list-table").hidden = rows.length === 0;
  byId("list-none").hidden = rows.length > 0;
}

// --- keyboard ------------------------------------------------------------------------------------

const typing = (target) => target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement
  || target instanceof HTMLSelectElement;

document.addEventListener("keydown", (event) => {
  if (byId("desk").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") {
    if (!byId("book-form").hidden) { byId("book-form").hidden = true; byId("free").querySelector("button")?.focus(); }
    else if (!byId("cancel-box").hidden) { byId("cancel-box").hidden = true; byId("find-code").focus(); }
    else if (!byId("change-box").hidden) { byId("change-box").hidden = true; byId("find-code").focus(); }
    event.preventDefault();
    return;
  }
  if (event.key === "Enter" && event.target instanceof HTMLSelectElement && event.target.form) {
    // A form submits on Enter in a text field, not in a list: here it does in both.
    event.target.form.requestSubmit();
    event.preventDefault();
    return;
  }
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const row = event.target.closest && event.target.closest("tbody tr");
    if (!row) return;
    const next = event.key === "ArrowDown" ? row.nextElementSibling : row.previousElementSibling;
    if (next && next.querySelector("button")) { next.querySelector("button").focus(); event.preventDefault(); }
    return;
  }
  if (typing(event.target)) return;
  const jump = { 1: "procedure", 2: "find-code", 3: "list-office" }[event.key];
  if (jump) { byId(jump).focus(); event.preventDefault(); return; }
  const key = event.key.toLowerCase();
  if (key === "c" && !byId("found").hidden) { showChange(); event.preventDefault(); }
  if (key === "x" && !byId("found").hidden) { showCancel(); event.preventDefault(); }
});

byId("search-form").addEventListener("submit", search);
byId("book-form").addEventListener("submit", bookChosen);
byId("book-back").addEventListener("click", () => { byId("book-form").hidden = true; });
byId("find-form").addEventListener("submit", find);
byId("reference-form").addEventListener("submit", saveReference);
byId("found-change").addEventListener("click", showChange);
byId("found-cancel").addEventListener("click", showCancel);
byId("cancel-confirm").addEventListener("click", cancelFound);
byId("cancel-back").addEventListener("click", () => { byId("cancel-box").hidden = true; });
byId("list-form").addEventListener("submit", list);
session.start();
