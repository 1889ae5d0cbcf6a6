// The counter panel: sign in, choose a counter, follow it over the WebSocket ("counter" view) and
// act on it through the counter actions of the public API.
//
// The office state is kept as the server keeps it (a snapshot, then events in seq order; a fresh
// snapshot after every reconnect). One action is in flight at a time and every action button is
// disabled meanwhile, so a double click or a held key never sends two presses; a press that gets
// no answer is resent with the same Idempotency-Key (actions.js).

import { ApiError } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { pageData, t } from "/static/common/page.js";
import { el, messageLine, renderOnNextFrame, shortcuts, staffSession } from "/static/common/staff.js";
import { sendAction } from "./actions.js";

const MAX_WAITING_ROWS = 40;
const SETTLE_MS = 2_000;           // after an answer, wait this long at most for its event
const DOUBLE_PRESS_MS = 1_500;     // the same action again this soon after it worked is a double press

const page = pageData();
const office = page.office;
const procedures = new Map(office.procedures.map((p) => [p.id, p]));
const counters = new Map(office.counters.map((c) => [c.id, c]));
const storageKey = `madoguchi.counter.${office.id}`;
const byId = (id) => document.getElementById(id);

let me = null;                     // {username, role, display_name}
let counterId = null;
let live = null;
let subscription = null;
let busy = false;
let clockOffset = 0;               // server clock minus this PC's clock, from event times
let settleWaiters = [];
let lastDone = { action: "", at: -Infinity };   // the last action that worked, for double presses

const state = {
  ready: false,
  waiting: new Map(),              // number -> public ticket
  active: new Map(),               // number -> public ticket
  counters: new Map(),             // id -> {id, status, ticket: "day|number", since}
  paused: new Set(),
  estimates: null,
};

// --- small helpers ---------------------------------------------------------------------------

const serverNow = () => Date.now() + clockOffset;

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(hh ? 2 : 1, "0");
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

const minutesSince = (ms) => Math.max(0, Math.floor((serverNow() - ms) / 60_000));
const procedureName = (id) => (procedures.get(id) || { name: id }).name;
const counterName = (id) => (counters.get(id) || { name: id }).name;

function errorText(error) {
  const code = error instanceof ApiError ? error.code : "unavailable";
  const key = `error.${code}.message`;
  const text = t(key);
  return text === key ? t("error.unavailable.message") : text;
}

const message = messageLine();
const showMessage = message.show;
const clearMessage = message.clear;

function showScreen(id) {
  for (const screen of ["sign-in", "choose", "panel"]) byId(screen).hidden = screen !== id;
}

// --- sign-in and counter choice --------------------------------------------------------------

const session = staffSession({
  signedIn: (user) => { me = user; signedIn(); },
  signedOut: () => {
    me = null;
    if (live) { live.close(); live = null; subscription = null; }
    byId("who").textContent = "";
    byId("sign-out").hidden = byId("change-counter").hidden = true;
    showScreen("sign-in");
  },
  forget: () => localStorage.removeItem(storageKey),
  failedText: t("counter.sign_in_failed"), showMessage, clearMessage, errorText,
});
const showSignIn = () => session.showSignIn();

function allowedCounters() {
  return office.counters.filter((c) => me.role === "supervisor" || c.staff === me.role);
}

function signedIn() {
  byId("who").textContent = t("counter.signed_in_as", { name: me.display_name || me.username });
  byId("sign-out").hidden = false;
  byId("review").hidden = !(me.role === "city" || me.role === "supervisor");
  if (!live) {
    const sign = offlineSign();
    live = new LiveConnection({
      onOnline: () => { sign.onOnline(); document.body.classList.remove("offline"); },
      onOffline: () => { sign.onOffline(); document.body.classList.add("offline"); },
    });
  }
  const wanted = new URLSearchParams(location.search).get("counter") || localStorage.getItem(storageKey);
  if (wanted && allowedCounters().some((c) => c.id === wanted)) chooseCounter(wanted);
  else showChooser();
}

function showChooser() {
  const buttons = allowedCounters().map((c) => {
    const button = el("button", "btn cp-choice");
    button.type = "button";
    button.dataset.counter = c.id;
    button.append(el("strong", "", c.name),
                  el("span", "cp-choice-procs", c.procedures.map(procedureName).join("・")));
    button.addEventListener("click", () => chooseCounter(c.id));
    return button;
  });
  byId("counter-choices").replaceChildren(...buttons);
  byId("change-counter").hidden = true;
  showScreen("choose");
}

byId("change-counter").addEventListener("click", () => {
  if (subscription) { subscription.close(); subscription = null; }
  counterId = null;
  showChooser();
});

function chooseCounter(id) {
  counterId = id;
  localStorage.setItem(storageKey, id);
  const url = new URL(location.href);
  url.searchParams.set("counter", id);
  history.replaceState(null, "", url);
  byId("counter-name").textContent = counterName(id);
  byId("change-counter").hidden = false;
  state.ready = false;
  delete document.body.dataset.live;
  if (subscription) subscription.close();
  subscription = live.subscribe({ view: "counter", office: office.id, counter: id }, {
    snapshot: applySnapshot,
    event: applyEvent,
    estimates: (data) => { state.estimates = data; scheduleRender(); },
    error: (error) => {
      if (error.code === "unauthorized") showSignIn();
      showMessage(errorText(new ApiError(0, error.code, error.message)));
    },
  });
  showScreen("panel");
  scheduleRender();
}

// --- state -----------------------------------------------------------------------------------

function applySnapshot(data) {
  state.waiting = new Map(data.waiting.map((tk) => [tk.number, tk]));
  state.active = new Map(data.active.map((tk) => [tk.number, tk]));
  state.counters = new Map(data.counters.map((c) => [c.id, c]));
  state.paused = new Set(data.paused);
  state.day = data.day;
  if ("estimates" in data) state.estimates = data.estimates;
  state.ready = true;
  document.body.dataset.live = "ready";
  settled();
  scheduleRender();
}

function applyEvent(event) {
  if (event.at) clockOffset = event.at - Date.now();
  if (event.day) state.day = event.day;
  if (event.counter) state.counters.set(event.counter.id, event.counter);
  const ticket = event.ticket;
  if (ticket) {
    state.waiting.delete(ticket.number);
    state.active.delete(ticket.number);
    if (ticket.state === "waiting") state.waiting.set(ticket.number, ticket);
    else if (ticket.state === "called" || ticket.state === "serving") state.active.set(ticket.number, ticket);
  }
  if (event.type === "procedure.updated") {
    if (event.paused) state.paused.add(event.procedure); else state.paused.delete(event.procedure);
  }
  settled();
  scheduleRender();
}

/** Resolve the presses whose result the live state now shows. */
function settled() {
  settleWaiters = settleWaiters.filter((waiter) => !waiter.check());
}

function untilShown(result) {
  const since = result && result.counter ? result.counter.since : null;
  return new Promise((resolve) => {
    const waiter = {
      check: () => {
        const c = state.counters.get(counterId);
        if (since !== null && !(c && c.since >= since)) return false;
        clearTimeout(waiter.timer);
        resolve();
        return true;
      },
    };
    waiter.timer = setTimeout(() => { settleWaiters = settleWaiters.filter((w) => w !== waiter); resolve(); }, SETTLE_MS);
    if (!waiter.check()) settleWaiters.push(waiter);
  });
}

function myCounter() {
  return state.counters.get(counterId) || { id: counterId, status: "closed" };
}

function ticketAt(counter) {
  if (!counter || !counter.ticket) return null;
  const number = String(counter.ticket).split("|").pop();
  return state.active.get(number) || null;
}

/** When a booked ticket goes before the walk-ins (domain/policy.py precedence_from), or null. */
function precedenceFrom(ticket) {
  if (!ticket.booked || ticket.handed_over_from || !ticket.slot_start) return null;
  return page.booked_before_slot === "at_check_in" ? ticket.issued_at : ticket.slot_start;
}

/** The calling order now (domain/policy.py effective_score): priority class, then a visitor handed over
 *  with their place kept ("returning"), then a booked visitor whose slot has started, then time in line.
 *  The list is sorted again every second, so a booked ticket moves up when its slot starts. */
function sortKey(ticket) {
  const priority = page.calling_order === "waited" ? 0 : -(ticket.priority || 0);
  const from = precedenceFrom(ticket);
  const kept = from !== null && page.booked_before_slot === "keep_for_slot";  // last of the class until the slot
  const tier = ticket.returning ? 0 : from !== null && from <= serverNow() ? 1 : kept ? 3 : 2;
  return [priority, tier, ticket.order || 0, ticket.seq || 0];
}

/** A booked ticket's slot time (HH:MM, office clock) for its 「予」 mark. */
function slotTime(ms) {
  return new Date(ms).toLocaleTimeString("ja-JP", { timeZone: page.timezone, hour: "2-digit", minute: "2-digit" });
}

function byQueueOrder(a, b) {
  const ka = sortKey(a), kb = sortKey(b);
  for (let i = 0; i < ka.length; i += 1) if (ka[i] !== kb[i]) return ka[i] - kb[i];
  return 0;
}

// --- actions ---------------------------------------------------------------------------------

const actionButtons = () => document.querySelectorAll(".cp-action");

/** What a button does now: pause/resume and open/close share a button each. */
function resolveAction(name) {
  const status = myCounter().status;
  if (name === "pause") return status === "paused" ? "resume" : "pause";
  if (name === "open") return status === "closed" ? "open" : "close";
  return name;
}

function allowed(name) {
  if (!state.ready || busy || !counterId) return false;
  return refusal(name) === null;
}

/** Why the server would refuse ``name`` now: its error code (the same words as its answer), or null. */
function refusal(name) {
  const counter = myCounter();
  const current = ticketAt(counter);
  switch (name) {
    case "call-next": case "call":
      return current ? "counter_busy" : counter.status !== "open" ? "counter_not_open" : null;
    case "recall": case "start":
      return !current ? "no_ticket" : current.state !== "called" ? "invalid_transition" : null;
    case "no-show":
      if (!current) return "no_ticket";
      if (current.state !== "called") return "invalid_transition";
      return (current.recalls || 0) < page.max_recalls ? "not_recalled_enough" : null;
    case "finish": return !current ? "no_ticket" : current.state !== "serving" ? "invalid_transition" : null;
    case "hand-over": case "hand-over-submit": return current ? null : "no_ticket";
    case "pause": return current ? "counter_busy" : counter.status === "closed" ? "counter_not_open" : null;
    case "open": return counter.status === "closed" || !current ? null : "counter_busy";
    default: return "invalid_request";
  }
}

/** A press the panel refuses says why, as the server would, unless it repeats one that just worked. */
function explainRefusal(name) {
  if (!state.ready || busy || !counterId) return;       // a press in flight: this one is its double
  const code = refusal(name);
  if (code === null) return;
  const action = name === "hand-over-submit" ? "hand-over" : resolveAction(name);
  if (action === lastDone.action && performance.now() - lastDone.at < DOUBLE_PRESS_MS) return;
  showMessage(errorText(new ApiError(0, code, "")));
}

function successText(action, result) {
  const number = result.ticket ? result.ticket.number : "";
  const status = t(`counter.status_${result.counter.status}`);
  const texts = {
    "call-next": ["counter.done_called", { number }], call: ["counter.done_called", { number }],
    recall: ["counter.done_recalled", { number }], start: ["counter.done_started", { number }],
    finish: ["counter.done_finished", { number }], "no-show": ["counter.done_no_show", { number }],
    "hand-over": ["counter.done_handed_over", { number, procedure: result.ticket ? procedureName(result.ticket.procedure) : "" }],
  };
  const [key, params] = texts[action] || ["counter.done_status", { status }];
  return t(key, params);
}

async function press(name, body) {
  if (!allowed(name)) {
    explainRefusal(name);
    return;
  }
  busy = true;                      // before any await: a second click finds every button disabled
  renderButtons();
  const action = name === "hand-over-submit" ? "hand-over" : resolveAction(name);
  const path = `/api/offices/${encodeURIComponent(office.id)}/counters/${encodeURIComponent(counterId)}/${action}`;
  try {
    const result = await sendAction(path, body, { onRetry: () => showMessage(t("counter.retrying"), "info") });
    await untilShown(result);
    showMessage(successText(action, result), "info");
    lastDone = { action, at: performance.now() };
    if (action === "call") {
      byId("call-number").value = "";
      // Back to the panel, so the next shortcut (S, F…) acts instead of typing into the field.
      if (document.activeElement instanceof HTMLInputElement) byId("panel").focus();
    }
  } catch (e) {
    if (e instanceof ApiError && e.code === "unauthorized") showSignIn();
    showMessage(errorText(e));
  } finally {
    busy = false;
    scheduleRender();
  }
}

for (const button of document.querySelectorAll(".cp-actions .cp-action")) {
  button.addEventListener("click", () => {
    const name = button.dataset.action;
    if (name === "hand-over") openHandOver();
    else press(name);
  });
}

function callByNumber() {
  const number = byId("call-number").value.trim().toUpperCase();
  if (number) press("call", { number });
}
byId("call-number-form").addEventListener("submit", (event) => {
  event.preventDefault();
  callByNumber();
});
// Enter in the field: the browser does not submit a form whose button is disabled, and a refused
// call must still say why (this counter still has a ticket, or is not open).
byId("call-number").addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.isComposing) return;
  event.preventDefault();
  callByNumber();
});

// Check-in of a booked visitor by staff (lost QR code, no phone): the ticket joins the waiting list.
let checkingIn = false;
byId("checkin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = byId("checkin-code").value.trim();
  if (!code || checkingIn || !counterId) return;
  checkingIn = true;
  byId("checkin-submit").disabled = true;
  try {
    const result = await sendAction(`/api/offices/${encodeURIComponent(office.id)}/check-in`,
                                    { code, counter: counterId },
                                    { onRetry: () => showMessage(t("counter.retrying"), "info") });
    const number = result.ticket.number;
    showMessage(result.late ? t("checkin.staff_done_late", { number })
      : t("checkin.staff_done", { number, slot: result.booking.slot }), "info");
    byId("checkin-code").value = "";
  } catch (e) {
    if (e instanceof ApiError && e.code === "unauthorized") showSignIn();
    const details = (e instanceof ApiError && e.details) || {};
    showMessage(e.code === "check_in_too_early" ? t("checkin.too_early", { time: details.opens })
      : e.code === "already_checked_in" ? t("checkin.already", { number: details.number }) : errorText(e));
  } finally {
    checkingIn = false;
    byId("checkin-submit").disabled = false;
  }
});

// Hand-over: to city staff (審査・暗証番号) or to another procedure, with a reason.
const dialog = byId("hand-over-dialog");

function openHandOver() {
  const current = ticketAt(myCounter());
  if (!current || !allowed("hand-over")) return;
  byId("hand-over-number").textContent = current.number;
  const options = office.procedures.filter((p) => p.id !== current.procedure).map((p) => {
    const option = el("option", "", p.city_staff_only ? `${p.name}（${t("counter.city_staff")}）` : p.name);
    option.value = p.id;
    return option;
  });
  byId("hand-over-to").replaceChildren(...options);
  const toCity = office.procedures.find((p) => p.city_staff_only && p.id !== current.procedure);
  if (toCity) byId("hand-over-to").value = toCity.id;
  byId("hand-over-reason").value = "";
  // Reason categories (configured): what the archive and the monthly report keep of why.
  const categories = page.hand_over_categories || [];
  const none = el("option", "", t("counter.hand_over_category_none"));
  none.value = "";
  byId("hand-over-category").replaceChildren(none, ...categories.map((c) => {
    const option = el("option", "", c.name);
    option.value = c.id;
    return option;
  }));
  byId("hand-over-category-label").hidden = categories.length === 0;
  dialog.showModal();
  byId("hand-over-reason").focus();
}

byId("hand-over-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { to: form.elements.to.value, reason: form.elements.reason.value.trim(),
                 keep_place: form.elements.keep_place.checked };
  if (form.elements.category.value) body.category = form.elements.category.value;
  dialog.close();
  press("hand-over-submit", body);
});
byId("hand-over-cancel").addEventListener("click", () => dialog.close());

// 引き継ぎ待ち: call a handed-over ticket to this counter by its row's button.
byId("review-list").addEventListener("click", (event) => {
  const button = event.target.closest("button.cp-call-this");
  if (button) press("call", { number: button.dataset.number });
});

// Keyboard shortcuts: the letter shown on each button, C for the number field; never while typing or in the dialog.
shortcuts(document.querySelector(".cp-actions"), {
  active: () => !dialog.open && !byId("panel").hidden,
  refused: explainRefusal,
  keys: { c: () => byId("call-number").focus() },
});

// --- rendering -------------------------------------------------------------------------------

const scheduleRender = renderOnNextFrame(render);

function render() {
  if (!counterId) return;
  renderCurrent();
  renderButtons();
  renderWaiting();
  renderReview();
  renderCounters();
}

const STATUS_LEVEL = { open: "level-low", paused: "level-medium", closed: "level-unknown" };

function renderCurrent() {
  const counter = myCounter();
  const status = byId("counter-status");
  status.textContent = t(`counter.status_${counter.status}`);
  status.className = `level ${STATUS_LEVEL[counter.status] || ""}`;
  const current = ticketAt(counter);
  byId("current").hidden = !current;
  byId("current-none").hidden = Boolean(current);
  if (!current) return;
  byId("current-number").textContent = current.number;
  const stateLabel = byId("current-state");
  stateLabel.textContent = t(`counter.state_${current.state}`);
  stateLabel.className = `level ${current.state === "serving" ? "level-low" : "level-medium"}`;
  byId("current-procedure").textContent = procedureName(current.procedure);
  const since = current.state === "serving" ? current.started_at : current.called_at;
  byId("current-elapsed").textContent = since
    ? t(current.state === "serving" ? "counter.elapsed_serving" : "counter.elapsed_called", { time: clock(serverNow() - since) })
    : "";
  byId("current-recalls").textContent = current.state === "called"
    ? t("counter.recalls", { n: current.recalls || 0, max: page.max_recalls }) : "";
  const note = byId("current-handover");
  note.hidden = !current.handed_over_from;
  if (current.handed_over_from) {
    note.textContent = t("counter.handed_over_from", { procedure: procedureName(current.handed_over_from),
                                                       reason: current.hand_over_reason || "—" });
  }
}

function renderButtons() {
  for (const button of actionButtons()) {
    const name = button.dataset.action;
    button.disabled = !allowed(name);
    button.setAttribute("aria-busy", String(busy));
    const label = button.querySelector("[data-label]");
    if (label) label.textContent = t(`counter.${resolveAction(name).replace("-", "_")}`);
  }
  document.body.classList.toggle("busy", busy);
}

function waitedText(ticket) {
  return t("counter.minutes", { n: minutesSince(ticket.issued_at) });
}

function renderWaiting() {
  // The procedures a supervisor set for today (the counter's procedures_day), else the configured ones.
  const live = myCounter();
  const mine = new Set(live.procedures && live.procedures_day === state.day ? live.procedures
    : (counters.get(counterId) || { procedures: [] }).procedures);
  const waiting = [...state.waiting.values()].filter((tk) => mine.has(tk.procedure)).sort(byQueueOrder);
  const ticketEstimates = (state.estimates && state.estimates.tickets) || {};
  const rows = waiting.slice(0, MAX_WAITING_ROWS).map((ticket) => {
    const row = el("tr");
    row.dataset.number = ticket.number;
    const number = el("td", "number cp-number", ticket.number);
    if (ticket.priority > 0) number.append(el("span", "cp-priority", t("counter.priority")));
    if (ticket.booked) {
      // 「予」 and the slot's start: a booked visitor, called before walk-ins once the slot runs.
      number.append(el("span", "cp-booked", t("checkin.mark")), el("span", "cp-slot", slotTime(ticket.slot_start)));
    }
    // Not callable until the back office has prepared the card (call-next passes over it).
    if (ticket.prep === "pending") number.append(el("span", "cp-card-not-ready", t("counter.card_not_ready")));
    let note = ticket.handed_over_from
      ? t("counter.handed_over_from", { procedure: procedureName(ticket.handed_over_from), reason: ticket.hand_over_reason || "—" })
      : "";
    const estimate = ticketEstimates[ticket.number];
    if (!note && estimate && Number.isFinite(estimate.median_minutes)) {
      note = t("counter.estimate", { minutes: Math.max(1, Math.round(estimate.median_minutes)) });
    }
    row.append(number, el("td", "", procedureName(ticket.procedure)), el("td", "cp-waited", waitedText(ticket)),
               el("td", "cp-note", note));
    return row;
  });
  byId("waiting").replaceChildren(...rows);
  byId("waiting-total").textContent = t("counter.people", { n: waiting.length });
  byId("waiting-none").hidden = waiting.length > 0;
  const more = byId("waiting-more");
  more.hidden = waiting.length <= MAX_WAITING_ROWS;
  more.textContent = t("counter.more", { n: waiting.length - MAX_WAITING_ROWS });
  const procEstimates = (state.estimates && state.estimates.procedures) || {};
  byId("waiting-summary").textContent = [...mine].map((id) => {
    const n = waiting.filter((tk) => tk.procedure === id).length;
    const estimate = procEstimates[id];
    const paused = state.paused.has(id) ? ` ${t("counter.paused")}` : "";
    const est = estimate && n > 0 && Number.isFinite(estimate.median_minutes)
      ? ` ${t("counter.estimate", { minutes: Math.max(1, Math.round(estimate.median_minutes)) })}` : "";
    return `${procedureName(id)} ${t("counter.people", { n })}${est}${paused}`;
  }).join(" ・ ");
}

function renderReview() {
  if (byId("review").hidden) return;
  const handed = [...state.waiting.values()]
    .filter((tk) => tk.handed_over_from || (procedures.get(tk.procedure) || {}).city_staff_only).sort(byQueueOrder);
  const canCall = allowed("call");
  const rows = handed.slice(0, MAX_WAITING_ROWS).map((ticket) => {
    const row = el("tr");
    row.dataset.number = ticket.number;
    const call = el("button", "btn cp-small cp-call-this", t("counter.call_this_number"));
    call.type = "button";
    call.dataset.number = ticket.number;
    call.disabled = !canCall;
    call.setAttribute("aria-label", t("counter.call_number_aria", { number: ticket.number }));
    const action = el("td");
    action.append(call);
    row.append(el("td", "number cp-number", ticket.number),
               el("td", "", ticket.handed_over_from ? procedureName(ticket.handed_over_from) : "—"),
               el("td", "cp-note", ticket.hand_over_reason || "—"),
               el("td", "cp-waited", waitedText(ticket)), action);
    return row;
  });
  byId("review-list").replaceChildren(...rows);
  byId("review-total").textContent = t("counter.people", { n: handed.length });
  byId("review-none").hidden = handed.length > 0;
}

function renderCounters() {
  const rows = office.counters.filter((c) => c.id !== counterId).map((c) => {
    const live = state.counters.get(c.id) || { status: "closed" };
    const current = ticketAt(live);
    const row = el("tr");
    row.dataset.counter = c.id;
    const status = el("span", `level ${STATUS_LEVEL[live.status] || ""}`, t(`counter.status_${live.status}`));
    const statusCell = el("td");
    statusCell.append(status);
    const ticket = current ? `${current.number} ${t(`counter.state_${current.state}`)}` : "—";
    const since = current && live.since ? clock(serverNow() - live.since) : "";
    row.append(el("th", "", c.name), statusCell, el("td", "number", ticket), el("td", "cp-waited", since));
    return row;
  });
  byId("counters").replaceChildren(...rows);
}

// Elapsed times tick once a second.
setInterval(() => { if (counterId && state.ready) scheduleRender(); }, 1_000);

session.start();
