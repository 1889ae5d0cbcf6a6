// The touch kiosk (発券機): choose a procedure, get a number, a QR code and (usually) a printed ticket.
//
// Everything comes from the public API: GET /api/offices/{office} (procedures, open now, hours),
// the WebSocket "congestion" view (waiting, estimate and paused per procedure, live), POST
// /api/offices/{office}/tickets with an Idempotency-Key made once per visitor (a double tap or a
// retried request issues one ticket), GET /api/tickets/{token} (estimate) and POST
// /api/tickets/{token}/print. A booked visitor checks in with POST /api/offices/{office}/check-in
// (「予約のかた」: the code by the keypad, or the booking QR's link typed by a reader) and gets a
// ticket shown and printed as a walk-in's. A procedure that takes bookings says on its button when
// its next free slot is (the congestion view's ``next_booking``, live), and the hours' line where to
// book; on a booking-only day (``walk_ins_today`` false: a walk-in would be refused) the button says
// so instead of offering a ticket.

import { api, ApiError, newIdempotencyKey } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { currentLanguage, escapeHtml, nameHtml, officeDateTime, officeTime, pageData, roundMinutes, setLanguage, setText, slotText, t,
         tHtml, translateDocument } from "/static/common/page.js";
import { aheadHtml, estimateHtml, hasMinutes } from "./wait.js";

const config = pageData();
const OFFICE_REFRESH_MS = 60_000;
const BUSY_SCREEN_AFTER_MS = 250;   // a quick answer goes straight to the number, without a flash
const ISSUE_ATTEMPTS = 3;

const $ = (id) => document.getElementById(id);
const screens = ["start", "checkin", "busy", "ticket", "error"];

const live = new LiveConnection(offlineSign());

const state = {
  office: null,          // GET /api/offices/{office}
  congestion: null,      // {procedure id: {waiting, estimate_minutes, paused}}
  outage: null,          // outage mode's prepared notice {lang: text}, from the congestion view
  idempotencyKey: newIdempotencyKey(),
  issuing: false,
  ticket: null,          // the issue (or check-in) answer on the ticket screen
  estimate: null,        // {median_minutes, low_minutes, high_minutes, past_closing} or null
  ticketView: null,      // the live "ticket" subscription while the ticket screen shows
  printStatus: null,     // {key, detail}
  returnTimer: null,
  returnAt: 0,
  idleTimer: null,
};

function show(name) {
  for (const screen of screens) $(`screen-${screen}`).hidden = screen !== name;
  document.body.dataset.screen = name;
}

// --- language ----------------------------------------------------------------------------

function localName(procedure, lang = currentLanguage()) {
  return (procedure.names && procedure.names[lang]) || procedure.name;
}

function localDescription(procedure, lang = currentLanguage()) {
  return (procedure.descriptions && procedure.descriptions[lang]) || procedure.description || "";
}

// The name as HTML: Japanese broken by phrase, with readings in やさしい日本語 (see page.js).
function nameHtmlOf(procedure, field = "name") {
  const plain = field === "name" ? localName(procedure) : localDescription(procedure);
  return nameHtml(config.office, "procedures", procedure.id, field, plain);
}

function chooseLanguage(lang) {
  if (!setLanguage(lang)) return;
  for (const button of document.querySelectorAll("button.language")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  translateDocument();
  renderAll();
  armIdleReset();
}

function armIdleReset() {
  clearTimeout(state.idleTimer);
  if (currentLanguage() === config.default_lang) return;
  state.idleTimer = setTimeout(() => {
    if (document.body.dataset.screen === "start") chooseLanguage(config.default_lang);
  }, config.idle_reset_seconds * 1000);
}

// --- the start screen ------------------------------------------------------------------------

function counterName(id) {
  const counter = state.office && state.office.counters.find((c) => c.id === id);
  return t("common.counter", { id, name: counter ? counter.name : id });
}

function procedureStatus(procedure) {
  const live = state.congestion && state.congestion[procedure.id];
  const paused = live ? live.paused : procedure.paused;
  if (!state.office.open_now) return "closed";
  if (paused) return "paused";
  if (procedure.walk_ins_today === false) return "booking_only";
  return "open";
}

function renderHours() {
  const hours = state.office && state.office.hours_today;
  // Without hours today but open anyway (a demo, or always_open), no hours line at all.
  $("hours").innerHTML = !state.office ? "" : hours ? tHtml("kiosk.hours_today", { hours: `${hours.opens}–${hours.closes}` })
    : state.office.open_now ? "" : tHtml("kiosk.no_hours_today");
  $("closed-banner").hidden = !state.office || state.office.open_now;
}

/** 「予約は <the booking page> または電話 <the booking line>（受付 <its hours>）でできます」, where the
 *  office has procedures that take bookings (without a configured line: 「…または電話でできます」). */
function renderBookingHow() {
  const how = $("booking-how");
  how.hidden = !(config.booking_url && state.office && state.office.procedures.some((p) => p.bookable));
  const phone = config.booking_phone;
  how.innerHTML = how.hidden ? "" : phone ? tHtml("kiosk.book_how_phone", { url: config.booking_url, phone: phoneName(phone) })
    : tHtml("kiosk.book_how", { url: config.booking_url });
}

/** The booking line as a name for tHtml: the number kept on one line, then when it answers (the
 *  visitor's language, else the Japanese). */
function phoneName(phone) {
  const hours = phone.hours && (phone.hours[currentLanguage()] || phone.hours.ja);
  const after = hours ? t("common.booking_phone_hours", { hours }) : "";
  return { text: phone.number + after,
           html: `<span class="booking-phone-number">${escapeHtml(phone.number)}</span>${escapeHtml(after)}` };
}

function renderProcedures() {
  const box = $("procedures");
  if (!state.office) return;
  const visible = state.office.procedures.filter((p) => !p.city_staff_only);
  box.replaceChildren(...visible.map((procedure) => {
    const status = procedureStatus(procedure);
    const live = state.congestion && state.congestion[procedure.id];
    const button = document.createElement("button");
    button.type = "button";
    button.className = `procedure procedure-${status}`;
    button.dataset.procedure = procedure.id;
    if (status !== "open") button.setAttribute("aria-disabled", "true");

    const name = document.createElement("span");
    name.className = "procedure-name";
    name.innerHTML = nameHtmlOf(procedure);
    const description = document.createElement("span");
    description.className = "procedure-description";
    description.innerHTML = nameHtmlOf(procedure, "description");
    const meta = document.createElement("span");
    meta.className = "procedure-meta";
    if (status === "open") {
      if (live) {
        const parts = [tHtml("kiosk.waiting", { n: live.waiting })];
        if (typeof live.estimate_minutes === "number") {
          parts.push(live.estimate_minutes < 1 ? tHtml("common.no_wait")
            : tHtml("kiosk.estimate_short", { minutes: roundMinutes(live.estimate_minutes) }));
        }
        meta.innerHTML = parts.join(" ・ ");
      }
    } else {
      meta.classList.add("procedure-unavailable");
      setText(meta, `kiosk.${status}`);
    }
    button.append(name, description, meta);
    if (procedure.bookable && live) button.append(nextBooking(live));
    if (status === "open" && config.warn_past_closing && live && live.past_closing
        && typeof live.estimate_minutes === "number") {
      // Warn before the touch: a ticket taken now would likely not be called before closing.
      const warning = document.createElement("span");
      warning.className = "procedure-warning";
      setText(warning, "common.past_closing");
      button.append(warning);
    }
    button.addEventListener("click", () => issue(procedure, button));
    return button;
  }));
  fitProcedureText(box);
}

/** "次に予約できる枠: 12月3日(木) 10:00" (or that none is free): the visitor deciding whether to wait
 *  reads it on the button (the congestion page's texts and date format); where to book is said once,
 *  on the hours' line (renderBookingHow), so that every button still fits a portrait kiosk. */
function nextBooking(live) {
  const line = document.createElement("span");
  line.className = "procedure-booking";
  const next = live.next_booking;
  line.innerHTML = next ? tHtml("congestion.next_slot", { when: slotText(next) }) : tHtml("congestion.next_slot_none");
  return line;
}

const FIT_STEP = 0.04;
const FIT_SMALLEST = 0.72;

/** Shrink the procedures' text (the --fit scale) until it fits: translated names and descriptions
 *  are longer than the Japanese ones the layout was drawn for, and a kiosk screen must not scroll.
 *  First the whole list (portrait: the buttons take their text's height), then each button
 *  (landscape: the buttons share the height). */
function fitProcedureText(box) {
  const buttons = [...box.querySelectorAll("button.procedure")];
  box.style.removeProperty("--fit");
  for (const button of buttons) button.style.removeProperty("--fit");
  let scale = 1;
  while (box.scrollHeight > box.clientHeight && scale > FIT_SMALLEST) {
    scale -= FIT_STEP;
    box.style.setProperty("--fit", scale.toFixed(2));
  }
  for (const button of buttons) {
    let own = scale;
    while (button.scrollHeight > button.clientHeight && own > FIT_SMALLEST) {
      own -= FIT_STEP;
      button.style.setProperty("--fit", own.toFixed(2));
    }
  }
}

/** Outage mode's notice, in the kiosk's language (Japanese when it has none in it). */
function renderOutage() {
  const banner = $("outage-banner");
  banner.hidden = !state.outage;
  if (state.outage) banner.textContent = state.outage[currentLanguage()] || state.outage.ja;
}

function renderAll() {
  renderHours();
  renderBookingHow();
  renderOutage();
  renderProcedures();
  if (state.ticket) renderTicket();
}

window.addEventListener("resize", () => fitProcedureText($("procedures")));

async function loadOffice() {
  try {
    state.office = await api(`/api/offices/${encodeURIComponent(config.office)}`);
    renderAll();
  } catch (e) {
    if (!state.office) setText($("procedures"), `error.${e.code}.message`);
  }
}

function followCongestion() {
  live.subscribe({ view: "congestion", office: config.office }, {
    view(data) {
      state.congestion = Object.fromEntries(data.procedures.map((p) => [p.id, p]));
      state.outage = data.outage_notice || null;
      renderOutage();
      if (state.office) {
        // The live view is newer than the office answer for paused procedures.
        for (const p of state.office.procedures) if (state.congestion[p.id]) p.paused = state.congestion[p.id].paused;
      }
      renderProcedures();
    },
  });
}

// --- issuing ---------------------------------------------------------------------------------

async function issue(procedure, button) {
  if (state.issuing || document.body.dataset.screen !== "start") return;   // a second tap does nothing
  const status = procedureStatus(procedure);
  if (status !== "open") {
    button.classList.remove("shake");
    void button.offsetWidth;
    button.classList.add("shake");
    return;
  }
  state.issuing = true;
  document.body.classList.add("issuing");
  button.setAttribute("aria-busy", "true");
  const busyTimer = setTimeout(() => show("busy"), BUSY_SCREEN_AFTER_MS);
  let answer = null;
  let failure = null;
  for (let attempt = 1; attempt <= ISSUE_ATTEMPTS && !answer; attempt++) {
    try {
      answer = await api(`/api/offices/${encodeURIComponent(config.office)}/tickets`, {
        method: "POST", body: { procedure: procedure.id, lang: currentLanguage() },
        idempotencyKey: state.idempotencyKey,
      });
    } catch (e) {
      failure = e;
      // Only a lost answer is retried, with the same key: the server applies it once.
      if (!(e instanceof ApiError) || !["network", "unavailable"].includes(e.code)) break;
      await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
    }
  }
  clearTimeout(busyTimer);
  button.removeAttribute("aria-busy");
  document.body.classList.remove("issuing");
  if (!answer) {
    state.issuing = false;
    showError(failure);
    return;
  }
  state.ticket = { ...answer, procedureInfo: procedure, lang: currentLanguage() };
  state.estimate = answer.estimate || null;   // the procedure's outlook at issue; the ticket's own follows
  state.printStatus = null;
  renderTicket();
  show("ticket");
  startReturnCountdown();
  followTicket(answer.token);
  printTicket(answer.token);
}

function showError(error) {
  const code = error && error.code;
  const specific = code && code !== "network" && code !== "unavailable" && t(`error.${code}.message`);
  $("error-message").innerHTML = specific && !specific.startsWith("error.")
    ? `${tHtml(`error.${code}.message`)} ${tHtml("kiosk.issue_failed")}` : tHtml("kiosk.issue_failed");
  show("error");
  startReturnCountdown();
  loadOffice();   // a closed office or a paused procedure shows on the buttons from now on
}

function followTicket(token) {
  // The ticket's own estimate is computed just after issue: follow the ticket while it is shown.
  if (state.ticketView) state.ticketView.close();
  state.ticketView = live.subscribe({ view: "ticket", token }, {
    view(view) {
      if (!state.ticket || state.ticket.token !== token) return;
      if (view.estimate) state.estimate = view.estimate;
      if (typeof view.ahead === "number") state.ticket.ahead = view.ahead;
      renderTicket();
    },
  });
}

function renderTicket() {
  const ticket = state.ticket;
  $("ticket-number").textContent = ticket.ticket.number;
  $("ticket-procedure").innerHTML = nameHtmlOf(ticket.procedureInfo);
  renderBooked(ticket);
  const estimate = state.estimate;
  $("ticket-ahead").innerHTML = aheadHtml(ticket.ahead, estimate);
  $("ticket-estimate").innerHTML = estimateHtml(estimate, ticket.ahead);
  $("ticket-estimate").hidden = !$("ticket-estimate").textContent;
  // Without a median (no counter open) there is no closing-time warning either.
  $("ticket-past-closing").hidden = !(hasMinutes(estimate) && estimate.past_closing);
  const qr = `/kiosk/qr/${encodeURIComponent(ticket.token)}.svg`;
  $("ticket-qr").src = qr;
  $("ticket-qr").alt = t("kiosk.qr_caption");
  $("ticket-qr").dataset.statusUrl = ticket.status_url;
  renderPrintStatus();
  renderPrintLayout(qr);
}

function renderPrintLayout(qr) {
  const ticket = state.ticket;
  const ja = "ja";
  $("pt-heading").textContent = t("kiosk.print_heading", {}, ja);
  $("pt-number").textContent = ticket.ticket.number;
  $("pt-procedure").textContent = ticket.procedureInfo.name;
  const local = localName(ticket.procedureInfo, ticket.lang);
  $("pt-procedure-local").textContent = local !== ticket.procedureInfo.name ? local : "";
  $("pt-booked").textContent = ticket.booking && !ticket.late ? t("checkin.print_booked", { slot: ticket.booking.slot }, ja) : "";
  const time = officeDateTime(new Date(ticket.ticket.issued_at));
  $("pt-issued").textContent = t("kiosk.print_issued", { time }, ja);
  $("pt-ahead").textContent = ticket.ahead > 0 ? t("common.ahead", { n: ticket.ahead }, ja) : "";
  $("pt-qr").src = qr;
  $("pt-hint").textContent = t("kiosk.print_hint", {}, ja);
}

// --- printing ----------------------------------------------------------------------------------

function renderPrintStatus() {
  const status = state.printStatus;
  $("print-message").innerHTML = status ? tHtml(status.key) : "";
  $("print-message").className = `print-message${status && status.key === "kiosk.print_failed" ? " notice notice-error" : ""}`;
  $("print-detail").hidden = !(status && status.detail);
  $("print-detail").textContent = (status && status.detail) || "";
}

function browserPrint() {
  // The QR image must be loaded before the print layout is handed to the printer.
  const img = $("pt-qr");
  const go = () => window.print();
  if (img.complete) go(); else img.addEventListener("load", go, { once: true });
}

async function printTicket(token) {
  const mode = config.print_mode;
  if (mode === "off") {
    state.printStatus = { key: "kiosk.no_printer" };
  } else if (mode === "browser") {
    state.printStatus = { key: "kiosk.printed" };
    browserPrint();
  } else {
    state.printStatus = { key: "kiosk.printing" };
    renderPrintStatus();
    try {
      const answer = await api(`/api/tickets/${encodeURIComponent(token)}/print`, { method: "POST", body: {}, timeoutMs: 30_000 });
      state.printStatus = { key: answer.printed ? "kiosk.printed" : "kiosk.no_printer" };
    } catch (e) {
      // The printer failed: say so plainly, show staff the cause, and try the browser's printer.
      state.printStatus = { key: "kiosk.print_failed", detail: e.code === "printer_error" ? e.message : "" };
      document.body.dataset.printFallback = "browser";
      if (state.ticket && state.ticket.token === token) browserPrint();
    }
  }
  if (state.ticket && state.ticket.token === token) renderPrintStatus();
}

// --- back to the start -------------------------------------------------------------------------

function startReturnCountdown() {
  clearInterval(state.returnTimer);
  state.returnAt = Date.now() + config.return_seconds * 1000;
  const tick = () => {
    const left = Math.max(0, Math.ceil((state.returnAt - Date.now()) / 1000));
    setText($("returning"), "kiosk.returning", { seconds: left });
    if (left <= 0) backToStart();
  };
  tick();
  state.returnTimer = setInterval(tick, 250);
}

function backToStart() {
  clearInterval(state.returnTimer);
  clearTimeout(checkin.idleTimer);
  checkin.busy = false;
  checkin.key = null;
  if (state.ticketView) state.ticketView.close();
  state.ticketView = null;
  state.ticket = null;
  state.estimate = null;
  state.printStatus = null;
  state.issuing = false;
  state.idempotencyKey = newIdempotencyKey();   // the next visitor's touch is a new ticket
  delete document.body.dataset.printFallback;
  $("ticket-qr").removeAttribute("src");
  if (currentLanguage() !== config.default_lang) chooseLanguage(config.default_lang);
  show("start");
  renderAll();
}

// --- check-in of a booked visitor ------------------------------------------------------------

const CODE_LENGTH = 8;
const checkin = { busy: false, key: null, submitted: "", idleTimer: null };

/** What was typed or read: a booking's link (its QR code holds /book/{office}/b/{secret}), or a code. */
function readCheckin(value) {
  const link = value.match(/\/b\/([A-Za-z0-9_-]{16,64})/);
  if (link) return { secret: link[1] };
  const code = value.toUpperCase().replace(/[^A-Z0-9]/g, "");
  return { code };
}

/** The code as it is read out: XXXX-XXXX (a link is left as the reader typed it). */
function showCode(value) {
  if (/[/:]/.test(value)) return value;
  const code = value.toUpperCase().replace(/[^A-Z0-9]/g, "").slice(0, CODE_LENGTH);
  return code.length > 4 ? `${code.slice(0, 4)}-${code.slice(4)}` : code;
}

function checkinMessage(html) {
  $("checkin-message").innerHTML = html || "";
  $("checkin-message").hidden = !html;
}

function armCheckinIdle() {
  clearTimeout(checkin.idleTimer);
  checkin.idleTimer = setTimeout(() => {
    if (document.body.dataset.screen === "checkin" && !checkin.busy) backToStart();
  }, config.idle_reset_seconds * 1000);
}

function openCheckin() {
  if (document.body.dataset.screen !== "start" || !config.checkin) return;
  $("checkin-rule-open").innerHTML = tHtml("checkin.rules_open", { minutes: config.checkin.early_minutes });
  $("checkin-rule-late").innerHTML = tHtml("checkin.rules_late", { minutes: config.checkin.late_minutes });
  $("checkin-code").value = "";
  checkinMessage("");
  show("checkin");
  $("checkin-code").focus();   // a reader that types like a keyboard types here
  armCheckinIdle();
}

function typeKey(char) {
  const input = $("checkin-code");
  input.value = showCode(input.value + char);
  checkinMessage("");
  armCheckinIdle();
}

function dateText(day) {
  return t("checkin.date", { month: Number(day.slice(4, 6)), day: Number(day.slice(6, 8)) });
}

/** Why a check-in was refused, in the visitor's words (the rule and its time, from the answer). */
function checkinErrorHtml(error) {
  const d = (error && error.details) || {};
  switch (error && error.code) {
    case "check_in_too_early": return tHtml("checkin.too_early", { time: d.opens });
    case "wrong_office": return tHtml("checkin.wrong_office", { office: d.office_name, date: dateText(d.day), slot: d.slot });
    case "wrong_day": return tHtml("checkin.wrong_day", { date: dateText(d.day), slot: d.slot });
    case "already_checked_in": return tHtml("checkin.already", { number: d.number });
    case "booking_not_active": return tHtml("checkin.not_active");
    case "not_found": return tHtml("checkin.unknown");
    case "invalid_code": return tHtml("checkin.invalid");
    default: {
      const key = `error.${error && error.code}.message`;
      const text = t(key);
      return text === key ? tHtml("kiosk.issue_failed") : tHtml(key);
    }
  }
}

async function submitCheckin(event) {
  event.preventDefault();
  if (checkin.busy || document.body.dataset.screen !== "checkin") return;
  const value = $("checkin-code").value.trim();
  const read = readCheckin(value);
  if (read.code !== undefined && read.code.length !== CODE_LENGTH) {
    checkinMessage(tHtml("checkin.invalid"));
    return;
  }
  // The same code sent again (a lost answer, a double tap) keeps its key: one ticket.
  if (value !== checkin.submitted) { checkin.key = newIdempotencyKey(); checkin.submitted = value; }
  checkin.busy = true;
  document.body.classList.add("issuing");
  checkinMessage(tHtml("checkin.checking"));
  $("checkin-message").classList.remove("notice-error");
  let answer = null;
  let failure = null;
  for (let attempt = 1; attempt <= ISSUE_ATTEMPTS && !answer; attempt++) {
    try {
      answer = await api(`/api/offices/${encodeURIComponent(config.office)}/check-in`, {
        method: "POST", body: { ...read, lang: currentLanguage() }, idempotencyKey: checkin.key,
      });
    } catch (e) {
      failure = e;
      if (!(e instanceof ApiError) || !["network", "unavailable"].includes(e.code)) break;
      await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
    }
  }
  checkin.busy = false;
  document.body.classList.remove("issuing");
  $("checkin-message").classList.add("notice-error");
  if (!answer) {
    checkinMessage(checkinErrorHtml(failure));
    armCheckinIdle();
    return;
  }
  clearTimeout(checkin.idleTimer);
  const procedure = (state.office && state.office.procedures.find((p) => p.id === answer.ticket.procedure))
    || { id: answer.ticket.procedure, name: answer.ticket.procedure };
  state.issuing = true;
  state.ticket = { ...answer, procedureInfo: procedure, lang: currentLanguage() };
  state.estimate = answer.estimate || null;
  state.printStatus = null;
  renderTicket();
  show("ticket");
  startReturnCountdown();
  followTicket(answer.token);
  printTicket(answer.token);
}

/** On the ticket screen of a checked-in visitor: their booking, and where they stand in line. */
function renderBooked(ticket) {
  const box = $("ticket-booked");
  box.hidden = !ticket.booking;
  if (!ticket.booking) return;
  box.innerHTML = ticket.late ? tHtml("checkin.late_note")
    : `${tHtml("checkin.booked_note", { slot: ticket.booking.slot })}<br>${tHtml("checkin.booked_first")}`;
}

if (config.checkin) {
  $("checkin-start").addEventListener("click", openCheckin);
  $("checkin-form").addEventListener("submit", submitCheckin);
  $("checkin-back").addEventListener("click", backToStart);
  $("checkin-delete").addEventListener("click", () => {
    const input = $("checkin-code");
    input.value = showCode(input.value.replace(/-$/, "").slice(0, -1));
    armCheckinIdle();
  });
  for (const key of document.querySelectorAll("#keypad [data-key]")) {
    key.addEventListener("click", () => typeKey(key.dataset.key));
  }
  $("checkin-code").addEventListener("input", () => {
    const input = $("checkin-code");
    input.value = showCode(input.value);
    checkinMessage("");
    armCheckinIdle();
  });
}

// --- clock -----------------------------------------------------------------------------------

function tickClock() {
  $("clock").textContent = officeTime();
}

// --- start -----------------------------------------------------------------------------------

for (const button of document.querySelectorAll("button.language")) {
  button.addEventListener("click", () => chooseLanguage(button.dataset.lang));
}
$("back").addEventListener("click", backToStart);
$("error-back").addEventListener("click", backToStart);
document.addEventListener("contextmenu", (e) => e.preventDefault());   // a long press opens no menu
show("start");
tickClock();
setInterval(tickClock, 10_000);
loadOffice().then(() => document.body.dataset.ready = "true");
setInterval(loadOffice, OFFICE_REFRESH_MS);
followCongestion();
