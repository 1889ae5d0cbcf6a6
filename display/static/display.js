// The lobby display: follows the office's "lobby" view over the WebSocket and shows the calls,
// recent calls, waiting per procedure, the clock and the notice; each new call is announced.
// The office's "congestion" view says whether it takes visitors now (and its hours), so a closed
// office's screen says so.
//
// State is kept as the server keeps it (snapshot, then events in seq order); after any outage
// live.js resubscribes and a fresh snapshot replaces everything, so the screen always shows the
// truth without a reload. The public lobby view lists no waiting tickets: it gives the calls and
// the number waiting per procedure (each ticket event brings the new counts), so what the display
// keeps does not grow with the queue. Every list is bounded; rendering is batched to one per frame.

import { LiveConnection, offlineSign } from "/static/common/live.js";
import { nameHtml, pageData, t, tHtml } from "/static/common/page.js";
import { Announcer } from "./announcer.js";

const MAX_CALL_CARDS = 6;
const MAX_RECENT = 8;               // rows at most; fewer when the screen has no room for them
const RECENT_KEPT = 30;             // calls kept to build those rows (a recall joins its call's row)
const NEWEST_FLASH_MS = 12_000;
const LATE_CALL_MS = 3 * 60_000;     // a call missed during an outage is still announced if this recent
const ANSWERED = new Set(["ticket.serving", "ticket.done", "ticket.handed_over"]);  // the visitor came

const page = pageData();
const officeId = page.office.id;
const byId = (id) => document.getElementById(id);

const office = {
  procedures: new Map(page.office.procedures.map((p) => [p.id, p])),
  counters: new Map(page.office.counters.map((c) => [c.id, c])),
};

const state = {
  ready: false,
  waitingCounts: {},        // procedure id -> how many wait
  active: new Map(),        // number -> public ticket (called or serving)
  reception: null,          // from the congestion view: {reception: open|not_yet_open|ended|closed_today, hours_today}
  recent: [],               // newest first, as the server sends it
  paused: new Set(),
  notice: "",
  notices: {},              // the notice in other languages than Japanese: lang -> text
  outage: null,             // outage mode: {procedures, notice: {lang: text}, since}
  estimates: null,
  newestAt: 0,              // the newest call time seen: what a resync compares against
  speaking: new Set(),      // the numbers being announced now
  flash: null,              // {number, until}: the newest call flashes for a while (page clock)
  clockOffset: 0,           // server clock minus this PC's clock, from event times
};

const announcer = new Announcer({
  office: officeId,
  audio: byId("announcer"),
  onBlocked: () => { byId("enable-sound").hidden = false; },
  onUnblocked: () => { byId("enable-sound").hidden = true; },
  onSpeaking: (group) => { state.speaking = new Set((group || []).map((call) => call.number)); scheduleRender(); },
});
byId("enable-sound").addEventListener("click", () => announcer.unblock());
document.addEventListener("keydown", () => announcer.unblock());

// --- state -----------------------------------------------------------------------------------

function applySnapshot(data) {
  state.waitingCounts = data.waiting_counts || {};
  state.active = new Map(data.active.map((t) => [t.number, t]));
  state.recent = data.recent.slice(0, RECENT_KEPT);
  state.paused = new Set(data.paused);
  state.notice = data.notice || "";
  state.notices = data.notices || {};
  state.outage = data.outage || null;
  if ("estimates" in data) state.estimates = data.estimates;
  const calls = [...state.recent].reverse();     // oldest first
  if (!state.ready) {
    announcer.remember(calls);                   // what was on screen before we came: not news
  } else {
    // Calls made while we were offline: announce the ones newer than anything we had seen.
    for (const call of calls) {
      if (call.at > state.newestAt && Date.now() + state.clockOffset - call.at < LATE_CALL_MS) announcer.announce(call);
    }
  }
  state.newestAt = Math.max(state.newestAt, ...state.recent.map((c) => c.at));
  state.ready = true;
  document.body.dataset.live = "ready";
  scheduleRender();
}

function applyEvent(event) {
  if (event.at) state.clockOffset = event.at - Date.now();
  if (event.waiting_counts) state.waitingCounts = event.waiting_counts;
  const ticket = event.ticket;      // only for a ticket that is or was at a counter
  if (ticket) {
    state.active.delete(ticket.number);
    if (ticket.state === "called" || ticket.state === "serving") state.active.set(ticket.number, ticket);
  }
  if (event.type === "ticket.called" || event.type === "ticket.recalled") {
    const call = { number: ticket.number, counter: event.counter.id, procedure: ticket.procedure,
                   lang: ticket.lang || "ja", at: event.at, recall: event.type === "ticket.recalled" };
    state.recent = [call, ...state.recent].slice(0, RECENT_KEPT);
    state.newestAt = Math.max(state.newestAt, call.at);
    state.flash = { number: call.number, until: performance.now() + NEWEST_FLASH_MS };
    announcer.announce(call);
  } else if (ANSWERED.has(event.type)) {
    announcer.answered(ticket.number);   // the visitor is at the counter: no need to call them any more
  } else if (event.type === "procedure.updated") {
    if (event.paused) state.paused.add(event.procedure); else state.paused.delete(event.procedure);
  } else if (event.type === "notice.updated") {
    state.notice = event.notice || "";
    state.notices = event.notices || {};
  } else if (event.type === "outage.started" || event.type === "outage.ended") {
    state.outage = event.type === "outage.started" ? event.outage : null;
    state.paused = new Set(event.paused || []);
  }
  scheduleRender();
}

function applyReception(view) {
  state.reception = { reception: view.reception, hours_today: view.hours_today };
  document.body.dataset.reception = view.reception || "";
  scheduleRender();
}

// --- rendering -------------------------------------------------------------------------------

let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function counterName(id) {
  const counter = office.counters.get(id);
  return counter ? counter.name : t("display.counter_fallback", { id });
}

function render() {
  renderCalls();
  renderWaiting();
  renderNotice();
  renderRecent();     // last: it takes the room the others leave
}
window.addEventListener("resize", scheduleRender);

// "{number}番" / "No. {number}": the digits large, the words around them smaller.
const [NUMBER_BEFORE, NUMBER_AFTER = ""] = t("display.call_number").split("{number}");

/** The tickets at the counters: those being called first, then those being served; newest first. */
function atCounters() {
  const newestFirst = (a, b) => (b.called_at || 0) - (a.called_at || 0);
  const tickets = [...state.active.values()];
  return [...tickets.filter((tk) => tk.state === "called").sort(newestFirst),
          ...tickets.filter((tk) => tk.state === "serving").sort(newestFirst)].slice(0, MAX_CALL_CARDS);
}

function renderCalls() {
  const shown = atCounters();
  const newest = shown.find((tk) => tk.state === "called");
  const cards = shown.map((ticket) => {
    const card = el("li", ticket.state === "serving" ? "call-card serving" : "call-card");
    card.dataset.number = ticket.number;
    card.dataset.counter = ticket.counter;
    if (ticket.state === "called" && state.flash && state.flash.number === ticket.number) card.classList.add("flash");
    if (ticket === newest) card.classList.add("newest");
    if (state.speaking.has(ticket.number)) card.classList.add("speaking");
    const number = el("span", "call-number number");
    if (NUMBER_BEFORE) number.append(el("span", "unit", NUMBER_BEFORE));
    number.append(el("span", "digits", ticket.number));
    if (NUMBER_AFTER) number.append(el("span", "unit", NUMBER_AFTER));
    if (ticket.booked) {
      // A booked visitor (checked in on time): a mark, never anything about the booking itself.
      const mark = el("span", "booked-mark", t("checkin.mark"));
      mark.title = t("checkin.mark_label");
      mark.setAttribute("aria-label", t("checkin.mark_label"));
      number.append(mark);
    }
    const counter = el("span", "call-counter", counterName(ticket.counter));
    const arrow = el("span", "call-arrow", "→");
    arrow.setAttribute("aria-hidden", "true");
    card.append(number, arrow, counter);
    if (ticket.state === "serving") card.append(el("span", "call-serving", t("display.serving")));
    else if (ticket.recalls > 0) card.append(el("span", "call-recall", t("display.recall")));
    return card;
  });
  byId("calls").replaceChildren(...cards);
  byId("calls").dataset.count = String(cards.length);
  byId("calls-empty").hidden = cards.length > 0;
  const [main, detail] = receptionHtml();
  byId("calls-empty-main").innerHTML = main;
  byId("calls-empty-detail").innerHTML = detail;
  byId("calls-empty-detail").hidden = !detail;
  byId("reception").innerHTML = state.reception && state.reception.reception !== "open" ? main : "";
  byId("reception").hidden = !byId("reception").textContent;
}

/** What the screen says when nobody is at a counter: wait to be called, or why nobody will be
 *  (HTML from tHtml: escaped, Japanese broken by phrase). */
function receptionHtml() {
  const reception = state.reception ? state.reception.reception : "open";
  const today = state.reception && state.reception.hours_today;
  const hours = today ? tHtml("display.hours_today", { hours: `${today.opens}〜${today.closes}` }) : "";
  if (reception === "not_yet_open") return [tHtml("display.not_yet_open"), hours];
  if (reception === "ended") return [tHtml("display.ended"), ""];
  if (reception === "closed_today") return [tHtml("display.closed_today"), ""];
  return [tHtml("display.no_calls"), ""];
}

const timeFormat = new Intl.DateTimeFormat("ja-JP", { hour: "2-digit", minute: "2-digit", timeZone: page.timezone });

/** One row per number and counter, newest first: a recall moves its call's row up and counts there. */
function recentRows() {
  const rows = new Map();
  for (const call of state.recent) {        // newest first
    const key = `${call.number}|${call.counter}`;
    const row = rows.get(key);
    if (!row) rows.set(key, { number: call.number, counter: call.counter, at: call.at, recalls: call.recall ? 1 : 0 });
    else if (call.recall) row.recalls += 1;
  }
  return [...rows.values()].slice(0, MAX_RECENT);
}

function renderRecent() {
  const list = byId("recent");
  const items = recentRows().map((call, index) => {
    const item = el("li", index === 0 ? "recent-item latest" : "recent-item");
    item.dataset.number = call.number;
    item.dataset.counter = call.counter;
    item.append(el("span", "recent-number number", call.number),
                el("span", "recent-counter", counterName(call.counter)),
                el("span", "recent-time", timeFormat.format(new Date(call.at))));
    if (call.recalls) {
      item.append(el("span", "recent-recall", call.recalls > 1 ? t("display.recalled_times", { n: call.recalls })
        : t("display.recall")));
    }
    return item;
  });
  list.replaceChildren(...items);
  // The waiting table always shows every procedure: recent calls get the room that is left.
  const room = byId("recent-section").getBoundingClientRect().bottom;
  while (list.lastElementChild && list.lastElementChild.getBoundingClientRect().bottom > room + 0.5) {
    list.lastElementChild.remove();
  }
}

function renderWaiting() {
  const estimates = (state.estimates && state.estimates.procedures) || {};
  const rows = [...office.procedures.values()].map((procedure) => {
    const row = el("tr", "waiting-row");
    row.dataset.procedure = procedure.id;
    const n = state.waitingCounts[procedure.id] || 0;
    const name = el("th", "waiting-name");
    name.innerHTML = nameHtml(officeId, "procedures", procedure.id, "name", procedure.name);   // broken by phrase
    row.append(name,
               el("td", "waiting-count", t("display.waiting_count", { n })));
    const estimate = estimates[procedure.id];
    let note = "";
    if (state.paused.has(procedure.id)) note = t("display.paused");
    else if (estimate && n > 0 && Number.isFinite(estimate.median_minutes)) {
      note = t("display.estimate", { minutes: Math.max(1, Math.round(estimate.median_minutes)) });
    }
    row.append(el("td", state.paused.has(procedure.id) ? "waiting-note paused" : "waiting-note", note));
    return row;
  });
  byId("waiting").replaceChildren(...rows);
}

function renderNotice() {
  // The display's language's text when the notice has one (Japanese otherwise); outage mode's first.
  const lang = document.documentElement.dataset.lang || "ja";
  const outage = state.outage ? state.outage.notice[lang] || state.outage.notice.ja : "";
  showLine(byId("outage"), byId("outage-text"), outage);
  showLine(byId("notice"), byId("notice-text"), (lang !== "ja" && state.notices[lang]) || state.notice);
}

function showLine(line, text, value) {
  line.hidden = !value;
  if (text.textContent !== value) {
    text.textContent = value;
    // A notice longer than the screen scrolls; a short one stands still.
    line.classList.toggle("scrolling", text.scrollWidth > line.clientWidth);
  }
}

// --- clock -----------------------------------------------------------------------------------

const dateFormat = new Intl.DateTimeFormat("ja-JP", { month: "long", day: "numeric", weekday: "short",
                                                      timeZone: page.timezone });
function tick() {
  const now = new Date();
  byId("clock-date").textContent = dateFormat.format(now);
  byId("clock-time").textContent = timeFormat.format(now);
  // The newest call's flash ends on time even when nothing else happens.
  if (state.flash && performance.now() > state.flash.until) {
    state.flash = null;
    scheduleRender();
  }
  setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
}
tick();

// --- live connection -------------------------------------------------------------------------

/** Names of procedures and counters may change with the server's configuration: read them again. */
async function refreshOffice() {
  try {
    const response = await fetch(`/api/offices/${encodeURIComponent(officeId)}`, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const info = await response.json();
    office.procedures = new Map(info.procedures.map((p) => [p.id, p]));
    office.counters = new Map(info.counters.map((c) => [c.id, c]));
    scheduleRender();
  } catch {
    // offline again: the next reconnect tries once more
  }
}

const sign = offlineSign();
const live = new LiveConnection({
  onOnline: () => { sign.onOnline(); document.body.classList.remove("offline"); refreshOffice(); },
  onOffline: () => { sign.onOffline(); document.body.classList.add("offline"); },
});
live.subscribe({ view: "lobby", office: officeId }, {
  snapshot: applySnapshot,
  event: applyEvent,
  estimates: (data) => { state.estimates = data; scheduleRender(); },
  error: (error) => console.error("display: subscription failed", error),
});
live.subscribe({ view: "congestion", office: officeId }, {
  view: applyReception,
  error: (error) => console.error("display: congestion view failed", error),
});

// What the announcer did with each call (spoken in which group, when, in which languages; or why
// not: answered, stale, dropped), for the people who maintain the display and for its tests.
window.madoguchiDisplay = { announcements: announcer.log };
