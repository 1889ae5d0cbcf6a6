// The back-office panel: sign in, follow the office's back-office work over the WebSocket
// ("backoffice" view) and claim, finish or give back tasks through the task endpoints.
//
// The list is shown in the order the server gives it (domain/tasks.py work_key: preparation for
// visitors already waiting, in their order in line; then preparation due soonest — booked slots,
// cards to send to a branch; then post-issuance work); the page never re-sorts. One action is in
// flight at a time and every action button is disabled meanwhile, so a double click or a held key
// never sends two presses; a press that gets no answer is resent with the same Idempotency-Key
// (counter_panel's actions.js). When two people claim the same task the server decides; the one
// who lost sees its 409 in plain words and the list as it is now.

import { api, ApiError } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { officeDateTime, officeTime, pageData, t } from "/static/common/page.js";
import { el, messageLine, renderOnNextFrame, shortcuts, staffSession } from "/static/common/staff.js";
import { sendAction } from "/static/counter/actions.js";

const MAX_ROWS = 60;
const DOUBLE_PRESS_MS = 1_500;     // the same action again this soon after it worked is a double press
const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

const page = pageData();
const office = page.office;
const tasksPath = (officeId) => `/api/offices/${encodeURIComponent(officeId)}/tasks`;
const byId = (id) => document.getElementById(id);

let me = null;                     // {username, role, display_name}
let live = null;
let subscription = null;
let busy = false;
let clockOffset = 0;               // server clock minus this PC's clock, from the views' "now"
let lastDone = { action: "", at: -Infinity };

const state = {
  ready: false,
  tasks: [],                       // open and claimed tasks, in the server's order
  peopleOnWork: 0,                 // people holding a task now
  peoplePlanned: null,             // planned back-office people ([offices.back_office] people)
  backlog: {},                     // the server's figures: {part: {tasks, minutes, hours_with_people}}
  references: new Map(),           // task key -> notice reference (GET …/tasks has them, the live view not)
  listed: new Set(),               // task keys GET …/tasks has answered for (their reference is known)
};

// --- small helpers ---------------------------------------------------------------------------

const serverNow = () => Date.now() + clockOffset;
const officeName = (id) => (page.offices[id] || { name: id }).name;
const procedureName = (officeId, id) => ((page.offices[officeId] || page.offices[office.id]).procedures[id] || id || "");
const numberOf = (ticket) => (ticket === undefined || ticket === null ? "" : String(ticket).split("|").pop());
const minutesFrom = (ms) => Math.round(ms / MINUTE_MS);

/** A task's key: ids are counted per office, and the list holds the branches' tasks too. */
const keyOf = (task) => `${task.office || office.id}|${task.id}`;

/** The day (YYYYMMDD) of ``ms`` in the office's time zone. */
function officeDay(ms) {
  const parts = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit",
                                                   timeZone: page.timezone || undefined }).format(new Date(ms));
  return parts.replaceAll("-", "");
}

/** "M/D" of a day given as YYYYMMDD. */
function shortDay(day) {
  const text = String(day || "");
  return text.length === 8 ? `${Number(text.slice(4, 6))}/${Number(text.slice(6, 8))}` : text;
}

function errorText(error, action = "") {
  const code = error instanceof ApiError ? error.code : "unavailable";
  // Two people pressed "take" on the same task: the server gave it to the other one.
  if (code === "invalid_transition" && (action === "claim" || action === "claim-next")) return t("backoffice.conflict_claim");
  if (code === "invalid_transition") return t("backoffice.conflict");
  if (code === "no_task") return t("backoffice.nothing_to_claim");
  const text = t(`error.${code}.message`);
  return text === `error.${code}.message` ? t("error.unavailable.message") : text;
}

const message = messageLine();
const showMessage = message.show;
const clearMessage = message.clear;

function showScreen(id) {
  for (const screen of ["sign-in", "panel"]) byId(screen).hidden = screen !== id;
}

// --- what a task is, for people -----------------------------------------------------------------

/** Which part of the list a task is in: visitor_waiting, due (a booking), send (a card for a branch) or post. */
function groupOf(task) {
  const group = task.group || (task.kind === "post" ? "post" : "due");
  return group === "due" && task.send_to ? "send" : group;
}

/** The ticket number or booking the task belongs to (never a name). */
function subjectOf(task) {
  if (task.number || task.ticket) return t("backoffice.ticket", { number: task.number || numberOf(task.ticket) });
  if (task.booking !== undefined && task.booking !== null && task.booking !== "") return t("backoffice.booking_id", { id: task.booking });
  return "—";
}

function kindText(task) {
  if (groupOf(task) === "send") return t("backoffice.kind_send", { office: officeName(task.send_to) });
  return t(task.kind === "post" ? "backoffice.kind_post" : "backoffice.kind_prepare");
}

/** Age for work to be done now, the deadline for preparation due later. */
function timeText(task) {
  const now = serverNow();
  if (task.kind !== "post" && task.due_at && groupOf(task) !== "visitor_waiting") {
    const at = officeDay(task.due_at) === officeDay(now) ? officeTime(new Date(task.due_at))
      : officeDateTime(new Date(task.due_at));
    const minutes = minutesFrom(task.due_at - now);
    const left = minutes < 0 ? t("backoffice.overdue", { n: -minutes })
      : minutes < 120 ? t("backoffice.due_in", { n: minutes }) : t("backoffice.due_in_hours", { n: Math.floor(minutes / 60) });
    return t("backoffice.due_at", { time: at, left });
  }
  return t("backoffice.age", { n: Math.max(0, Math.floor((now - (task.created_at || now)) / MINUTE_MS)) });
}

/** The branch and day a card must leave, the notice reference where the booking has one, the office of a branch's task. */
function noteText(task) {
  const notes = [procedureName(task.office, task.procedure)];
  if (task.send_to && task.leave_day) notes.push(t("backoffice.leave_day", { day: shortDay(task.leave_day) }));
  const reference = task.reference || state.references.get(keyOf(task));
  if (reference) notes.push(t("backoffice.reference", { reference }));
  if (task.office && task.office !== office.id && !task.send_to) notes.push(officeName(task.office));
  return notes.filter(Boolean).join(" ");
}

const mine = (task) => task.state === "claimed" && me !== null && task.claimed_by === me.username;
const myTask = () => state.tasks.find(mine) || null;
const claimable = (task) => task.state === "open";

// --- sign-in ---------------------------------------------------------------------------------

const session = staffSession({
  signedIn: (user) => { me = user; signedIn(); },
  signedOut: () => {
    me = null;
    if (live) { live.close(); live = null; subscription = null; }
    byId("who").textContent = "";
    byId("sign-out").hidden = true;
    showScreen("sign-in");
  },
  failedText: t("backoffice.sign_in_failed"), showMessage, clearMessage, errorText,
});
const showSignIn = () => session.showSignIn();

function signedIn() {
  byId("who").textContent = t("backoffice.signed_in_as", { name: me.display_name || me.username });
  byId("sign-out").hidden = false;
  state.ready = false;
  delete document.body.dataset.live;
  if (!live) {
    const sign = offlineSign();
    live = new LiveConnection({
      onOnline: () => { sign.onOnline(); document.body.classList.remove("offline"); },
      onOffline: () => { sign.onOffline(); document.body.classList.add("offline"); },
    });
  }
  if (subscription) subscription.close();
  // The view is sent whole whenever the work changes (and after every reconnect): it is the truth.
  subscription = live.subscribe({ view: "backoffice", office: office.id }, {
    view: (data) => applyView(data),
    snapshot: (data) => applyView(data),
    error: (error) => {
      if (error.code === "unauthorized") showSignIn();
      showMessage(errorText(new ApiError(0, error.code, error.message)));
    },
  });
  showScreen("panel");
  byId("panel").focus();
  scheduleRender();
}

// --- state -----------------------------------------------------------------------------------

/** Take the server's work list (the live view, or GET …/tasks with ``listed``); the order is the server's. */
function applyView(data, listed = false) {
  if (!data || !Array.isArray(data.tasks)) return;
  state.tasks = data.tasks.filter((task) => task.state === "open" || task.state === "claimed");
  state.peopleOnWork = data.people_on_work || 0;
  state.peoplePlanned = data.people_planned ?? null;
  state.backlog = data.backlog || {};
  if (data.now) clockOffset = data.now - Date.now();
  for (const task of state.tasks) {
    if (task.reference) state.references.set(keyOf(task), task.reference);
    if (listed) state.listed.add(keyOf(task));
  }
  state.ready = true;
  document.body.dataset.live = "ready";
  scheduleRender();
  // The live view leaves out notice references (read from the bookings): ask once for each new booking's.
  const unknown = state.tasks.filter((task) => task.booking && !state.listed.has(keyOf(task)));
  if (unknown.length) {
    for (const task of unknown) state.listed.add(keyOf(task));
    refresh();
  }
}

let refreshing = null;
let refreshAgain = false;

/** Read the list with GET …/tasks (after an action, or for references): one request at a time. */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        applyView(await api(tasksPath(office.id)), true);
      } catch (e) {
        if (e instanceof ApiError && e.code === "unauthorized") { showSignIn(); break; }
      }
    } while (refreshAgain);
    refreshing = null;
  })();
  return refreshing;
}

// --- actions ---------------------------------------------------------------------------------

/** Why the panel will not send ``action`` now: a catalog key, or null. */
function refusal(action) {
  // One task at a time: the card in hand is finished or given back before the next is taken.
  if (action === "claim-next" || action === "claim") return myTask() ? "backoffice.finish_first"
    : action === "claim" || state.tasks.some(claimable) ? null : "backoffice.nothing_to_claim";
  if (action === "finish" || action === "return") return myTask() ? null : "backoffice.no_task";
  return null;
}

const allowed = (action) => state.ready && !busy && refusal(action) === null;

/** A press the panel refuses says why, unless it repeats one that just worked (a double press). */
function explainRefusal(action) {
  if (!state.ready || busy) return;             // a press in flight: this one is its double
  const key = refusal(action);
  if (key === null) return;
  if (action === lastDone.action && performance.now() - lastDone.at < DOUBLE_PRESS_MS) return;
  showMessage(t(key));
}

const DONE_TEXT = { claim: "done_claimed", "claim-next": "done_claimed", finish: "done_finished", return: "done_returned" };

/** Send one action: claim-next (this office), or claim/finish/return of one task (at the task's own office). */
async function press(action, task = null) {
  if (!allowed(action)) {
    explainRefusal(action);
    return;
  }
  const target = action === "claim" ? task : action === "claim-next" ? null : myTask();
  busy = true;                                  // before any await: a second click finds every button disabled
  renderButtons();
  const path = target ? `${tasksPath(target.office || office.id)}/${encodeURIComponent(target.id)}/${action}`
    : `${tasksPath(office.id)}/claim-next`;
  try {
    const result = await sendAction(path, undefined, { onRetry: () => showMessage(t("backoffice.retrying"), "info") });
    await refresh();
    showMessage(t(`backoffice.${DONE_TEXT[action]}`, { task: subjectOf((result && result.task) || target) }), "info");
    lastDone = { action, at: performance.now() };
  } catch (e) {
    if (e instanceof ApiError && e.code === "unauthorized") showSignIn();
    showMessage(errorText(e, action));
    refresh();                                  // someone else was quicker: show the list as it is now
  } finally {
    busy = false;
    scheduleRender();
  }
}

for (const button of document.querySelectorAll(".bo-actions .cp-action")) {
  button.addEventListener("click", () => press(button.dataset.action));
}

byId("work").addEventListener("click", (event) => {
  const button = event.target.closest("button.bo-claim");
  if (!button) return;
  const task = state.tasks.find((tk) => keyOf(tk) === button.dataset.task);
  if (task) press("claim", task);
});

// Keyboard shortcuts: the letter shown on each button; never while typing.
shortcuts(document.querySelector(".bo-actions"), { active: () => !byId("panel").hidden, refused: explainRefusal });

// --- rendering -------------------------------------------------------------------------------

const scheduleRender = renderOnNextFrame(render);

function render() {
  if (!me) return;
  renderMine();
  renderButtons();
  renderList();
  renderFigures();
}

function renderMine() {
  const task = myTask();
  byId("mine").hidden = !task;
  byId("mine-none").hidden = Boolean(task);
  if (!task) return;
  byId("mine").dataset.task = keyOf(task);
  byId("mine-subject").textContent = subjectOf(task);
  byId("mine-kind").textContent = kindText(task);
  byId("mine-time").textContent = task.claimed_at
    ? t("backoffice.working_for", { n: Math.max(0, Math.floor((serverNow() - task.claimed_at) / MINUTE_MS)) }) : "";
  byId("mine-note").textContent = `${noteText(task)} ${timeText(task)}`.trim();
}

function renderButtons() {
  for (const button of document.querySelectorAll(".bo-actions .cp-action")) {
    button.disabled = !allowed(button.dataset.action);
    button.setAttribute("aria-busy", String(busy));
  }
  for (const button of document.querySelectorAll(".bo-claim")) button.disabled = !allowed("claim");
  document.body.classList.toggle("busy", busy);
}

function taskRow(task) {
  const group = groupOf(task);
  const row = el("tr", `bo-task${mine(task) ? " bo-mine-row" : ""}`);
  row.dataset.task = keyOf(task);
  if (task.number) row.dataset.number = task.number;
  if (task.booking) row.dataset.booking = task.booking;
  row.dataset.group = group;
  row.dataset.state = task.state;
  const work = el("td");
  work.append(el("div", "", kindText(task)), el("div", "cp-note", noteText(task)));
  const stateCell = el("td");
  if (claimable(task)) {
    const claim = el("button", "btn cp-small bo-claim", t("backoffice.claim_this"));
    claim.type = "button";
    claim.dataset.task = keyOf(task);
    claim.disabled = !allowed("claim");
    claim.setAttribute("aria-label", t("backoffice.claim_this_aria", { task: subjectOf(task) }));
    stateCell.append(claim);
  } else {
    stateCell.append(el("span", `level ${mine(task) ? "level-low" : "level-medium"}`,
                        t(mine(task) ? "backoffice.state_mine" : "backoffice.state_claimed")));
  }
  row.append(el("td", "number cp-number", subjectOf(task)), work, el("td", "cp-waited", timeText(task)), stateCell);
  return row;
}

function renderList() {
  const tasks = state.tasks;
  const rows = [];
  let previous = "";
  for (const task of tasks.slice(0, MAX_ROWS)) {
    const group = groupOf(task);
    if (group !== previous) {                   // a heading row where the list moves to its next part
      const heading = el("tr", "bo-group");
      const cell = el("th", "", t(`backoffice.group_${group}`));
      cell.colSpan = 4;
      cell.scope = "rowgroup";
      heading.append(cell);
      rows.push(heading);
      previous = group;
    }
    rows.push(taskRow(task));
  }
  byId("work").replaceChildren(...rows);
  byId("work-total").textContent = t("backoffice.count", { n: tasks.length });
  byId("work-none").hidden = tasks.length > 0;
  const more = byId("work-more");
  more.hidden = tasks.length <= MAX_ROWS;
  more.textContent = t("backoffice.more", { n: tasks.length - MAX_ROWS });
}

/** "n 件", with how long the work takes at the measured rate with the planned people when there is any. */
function backlogText(figures) {
  const tasks = (figures && figures.tasks) || 0;
  if (!tasks) return t("backoffice.count", { n: 0 });
  const hours = figures.hours_with_people;
  const minutes = Math.max(1, Math.ceil(hours === null || hours === undefined ? figures.minutes : hours * 60));
  return t(hours === null || hours === undefined ? "backoffice.backlog_work" : "backoffice.backlog_time",
           { n: tasks, minutes });
}

function renderFigures() {
  const now = serverNow();
  const planned = state.peoplePlanned;
  byId("people").textContent = planned === null ? t("backoffice.people_now", { n: state.peopleOnWork })
    : `${t("backoffice.people_now", { n: state.peopleOnWork })} ${t("backoffice.people_planned", { n: planned })}`;
  const backlog = state.backlog;
  const byDay = backlog.prepare_due_by_day || {};
  byId("backlog-waiting").textContent = backlogText(backlog.prepare_waiting);
  byId("backlog-today").textContent = backlogText(byDay[officeDay(now)]);
  byId("backlog-tomorrow").textContent = backlogText(byDay[officeDay(now + DAY_MS)]);
  byId("backlog-send").textContent = backlogText(backlog.to_send);
  byId("backlog-post").textContent = backlogText(backlog.post);
  // After today's closing time (not on the next morning): what goes over to the next day. Visitors
  // still waiting are served to the end today, so only bookings' preparation and post-issuance work.
  const carried = byId("carried-over");
  carried.hidden = !(page.closing_at && now >= page.closing_at && officeDay(now) === officeDay(page.closing_at));
  if (!carried.hidden) {
    carried.textContent = t("backoffice.carried_over", { prepare: (backlog.prepare_due || {}).tasks || 0,
                                                         post: (backlog.post || {}).tasks || 0 });
  }
}

// Ages and deadlines move on with the clock.
setInterval(() => { if (me && state.ready) scheduleRender(); }, 15_000);

session.start();
