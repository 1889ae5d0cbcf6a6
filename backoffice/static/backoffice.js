// The back-office panel: sign in, follow the office's back-office work over the WebSocket
// ("backoffice" view) and claim, finish or give back tasks through the task endpoints.
//
// The list is shown in the order the server gives it (domain order: preparation for visitors
// already waiting, then what is due soonest, then post-issuance); the page never re-sorts. One
// action is in flight at a time and every action button is disabled meanwhile, so a double click
// or a held key never sends two presses; a press that gets no answer is resent with the same
// Idempotency-Key (counter_panel's actions.js). When two people claim the same task the server
// decides; the loser sees its 409 in plain words.

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
const procedures = new Map(office.procedures.map((p) => [p.id, p]));
const base = `/api/offices/${encodeURIComponent(office.id)}/tasks`;
const byId = (id) => document.getElementById(id);

let me = null;                     // {username, role, display_name}
let live = null;
let subscription = null;
let busy = false;
let clockOffset = 0;               // server clock minus this PC's clock, from event times
let lastDone = { action: "", at: -Infinity };

const state = {
  ready: false,
  tasks: [],                       // open and claimed tasks, in the server's order
  people: null,                    // people on back-office work now (the server's count, if it gives one)
  planned: null,                   // planned back-office people ([offices.back_office] people)
  backlog: null,                   // the server's backlog figures, if it gives them
};

// --- small helpers ---------------------------------------------------------------------------

const serverNow = () => Date.now() + clockOffset;
const procedureName = (id) => (procedures.get(id) || { name: id || "" }).name;
const officeName = (id) => (page.offices && page.offices[id]) || id;
const numberOf = (ticket) => (ticket === undefined || ticket === null ? "" : String(ticket).split("|").pop());

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
  const text = t(`error.${code}.message`);
  if (text !== `error.${code}.message`) return text;
  // A conflict the catalogs have no words for (a task taken or finished meanwhile): say it plainly.
  if (error instanceof ApiError && error.status === 409) {
    return t(action === "claim" || action === "claim-next" ? "backoffice.conflict_claim" : "backoffice.conflict");
  }
  return t("error.unavailable.message");
}

const message = messageLine();
const showMessage = message.show;
const clearMessage = message.clear;

function showScreen(id) {
  for (const screen of ["sign-in", "panel"]) byId(screen).hidden = screen !== id;
}

// --- what a task is, for people -----------------------------------------------------------------

/** Which part of the list a task is in: a visitor waiting now, a booking or a card to send, or post-issuance. */
function groupOf(task) {
  if (task.kind === "post") return "post";
  if (task.send_to) return "send";
  return task.ticket ? "waiting" : "due";
}

/** The ticket number or booking the task belongs to (never a name); the notice reference where there is one. */
function subjectOf(task) {
  if (task.ticket) return t("backoffice.ticket", { number: numberOf(task.ticket) });
  if (task.booking_code) return t("backoffice.booking_code", { code: task.booking_code });
  if (task.booking) return t("backoffice.booking_id", { id: task.booking });
  return "—";
}

function kindText(task) {
  const group = groupOf(task);
  if (group === "send") return t("backoffice.kind_send", { office: officeName(task.send_to) });
  return t(task.kind === "post" ? "backoffice.kind_post" : "backoffice.kind_prepare");
}

/** Age for work that is waiting to be done now, the deadline for work due later. */
function timeText(task) {
  const now = serverNow();
  const group = groupOf(task);
  if ((group === "due" || group === "send") && task.due_at) {
    const at = officeDay(task.due_at) === officeDay(now) ? officeTime(new Date(task.due_at))
      : officeDateTime(new Date(task.due_at));
    const minutes = Math.round((task.due_at - now) / MINUTE_MS);
    const left = minutes >= 0 ? t("backoffice.due_in", { n: minutes }) : t("backoffice.overdue", { n: -minutes });
    return `${t("backoffice.due_at", { time: at })}（${left}）`;
  }
  return t("backoffice.age", { n: Math.max(0, Math.floor((now - (task.created_at || now)) / MINUTE_MS)) });
}

function noteText(task) {
  const notes = [];
  if (task.send_to && task.leave_day) notes.push(t("backoffice.leave_day", { day: shortDay(task.leave_day) }));
  if (task.reference) notes.push(t("backoffice.reference", { reference: task.reference }));
  return notes.join(" ");
}

const mine = (task) => task.state === "claimed" && me && task.claimed_by === me.username;
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
  subscription = live.subscribe({ view: "backoffice", office: office.id }, {
    snapshot: applyView,
    view: applyView,
    event: applyEvent,
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

/** Take the server's list (a snapshot, a view, or GET …/tasks): the order is the server's. */
function applyView(data) {
  if (!data) return;
  if (Array.isArray(data.tasks)) state.tasks = data.tasks.filter((task) => task.state === "open" || task.state === "claimed");
  if (data.people !== undefined) state.people = data.people;
  if (data.planned_people !== undefined) state.planned = data.planned_people;
  if (data.backlog !== undefined) state.backlog = data.backlog;
  if (data.now) clockOffset = data.now - Date.now();
  state.ready = true;
  document.body.dataset.live = "ready";
  scheduleRender();
}

let refreshing = null;
let refreshAgain = false;

/** Read the list again (after a task event or an action): one request at a time, the last one wins. */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        applyView(await api(base));
      } catch (e) {
        if (e instanceof ApiError && e.code === "unauthorized") { showSignIn(); break; }
      }
    } while (refreshAgain);
    refreshing = null;
  })();
  return refreshing;
}

function applyEvent(event) {
  if (event.at) clockOffset = event.at - Date.now();
  // A task changed, or a ticket did (a waiting visitor left, so the order of preparation may move):
  // the order is the server's to decide, so read it again rather than guess it here.
  if (String(event.type || "").startsWith("task.") || String(event.type || "").startsWith("ticket.")) refresh();
}

// --- actions ---------------------------------------------------------------------------------

const actionButtons = () => document.querySelectorAll(".cp-action, .bo-claim");

/** Why the panel will not send ``action`` now: a catalog key, or null. */
function refusal(action) {
  if (action === "claim-next") return state.tasks.some(claimable) ? null : "backoffice.nothing_to_claim";
  if (action === "finish" || action === "return") return myTask() ? null : "backoffice.no_task";
  return null;
}

const allowed = (action) => state.ready && !busy && refusal(action) === null;

function explainRefusal(action) {
  if (!state.ready || busy) return;             // a press in flight: this one is its double
  const key = refusal(action);
  if (key === null) return;
  if (action === lastDone.action && performance.now() - lastDone.at < DOUBLE_PRESS_MS) return;
  showMessage(t(key));
}

async function press(action, task = null) {
  if (action !== "claim" && !allowed(action)) {
    explainRefusal(action);
    return;
  }
  if (action === "claim" && (busy || !state.ready)) return;
  const target = action === "claim" ? task : action === "claim-next" ? null : myTask();
  busy = true;                                  // before any await: a second click finds every button disabled
  renderButtons();
  const path = target ? `${base}/${encodeURIComponent(target.id)}/${action}` : `${base}/claim-next`;
  try {
    const result = await sendAction(path, undefined, { onRetry: () => showMessage(t("backoffice.retrying"), "info") });
    const done = (result && result.task) || target || {};
    await refresh();
    const key = { claim: "done_claimed", "claim-next": "done_claimed", finish: "done_finished", return: "done_returned" }[action];
    showMessage(t(`backoffice.${key}`, { task: subjectOf(done) }), "info");
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
  const task = state.tasks.find((tk) => String(tk.id) === button.dataset.task);
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
  byId("mine").dataset.task = task.id;
  byId("mine-subject").textContent = subjectOf(task);
  byId("mine-kind").textContent = kindText(task);
  byId("mine-procedure").textContent = procedureName(task.procedure);
  byId("mine-time").textContent = task.claimed_at
    ? t("backoffice.working_for", { n: Math.max(0, Math.floor((serverNow() - task.claimed_at) / MINUTE_MS)) }) : "";
  byId("mine-note").textContent = [timeText(task), noteText(task)].filter(Boolean).join(" ");
}

function renderButtons() {
  for (const button of actionButtons()) {
    const action = button.dataset.action || "claim";
    button.disabled = action === "claim" ? busy || !state.ready : !allowed(action);
    button.setAttribute("aria-busy", String(busy));
  }
  document.body.classList.toggle("busy", busy);
}

function renderList() {
  const tasks = state.tasks;
  let previous = "";
  const rows = [];
  for (const task of tasks.slice(0, MAX_ROWS)) {
    const group = groupOf(task);
    if (group !== previous) {
      const heading = el("tr", "bo-group");
      const cell = el("th", "", t(`backoffice.group_${group}`));
      cell.colSpan = 4;
      cell.scope = "rowgroup";
      heading.append(cell);
      rows.push(heading);
      previous = group;
    }
    const row = el("tr", `bo-task bo-${group}${mine(task) ? " bo-mine-row" : ""}`);
    row.dataset.task = task.id;
    row.dataset.group = group;
    row.dataset.state = task.state;
    const subject = el("td", "number cp-number", subjectOf(task));
    const work = el("td");
    work.append(el("div", "", kindText(task)), el("div", "cp-note", [procedureName(task.procedure), noteText(task)].filter(Boolean).join(" ")));
    const stateCell = el("td");
    if (claimable(task)) {
      const claim = el("button", "btn cp-small bo-claim", t("backoffice.claim_this"));
      claim.type = "button";
      claim.dataset.task = task.id;
      claim.dataset.action = "claim";
      claim.disabled = busy || !state.ready;
      claim.setAttribute("aria-label", t("backoffice.claim_this_aria", { task: subjectOf(task) }));
      stateCell.append(claim);
    } else {
      stateCell.append(el("span", `level ${mine(task) ? "level-low" : "level-medium"}`,
                          t(mine(task) ? "backoffice.state_mine" : "backoffice.state_claimed")));
    }
    row.append(subject, work, el("td", "cp-waited", timeText(task)), stateCell);
    rows.push(row);
  }
  byId("work").replaceChildren(...rows);
  byId("work-total").textContent = t("backoffice.count", { n: tasks.length });
  byId("work-none").hidden = tasks.length > 0;
  const more = byId("work-more");
  more.hidden = tasks.length <= MAX_ROWS;
  more.textContent = t("backoffice.more", { n: tasks.length - MAX_ROWS });
}

/** People on back-office work now: the server's figure, else those holding a task. */
function peopleNow() {
  if (typeof state.people === "number") return state.people;
  return new Set(state.tasks.filter((task) => task.state === "claimed").map((task) => task.claimed_by)).size;
}

/** Minutes one task of ``kind`` takes: the server's measured figure when it gives one, else the prior. */
function taskMinutes(task) {
  const measured = state.backlog && state.backlog.minutes && state.backlog.minutes[task.procedure];
  if (measured && Number.isFinite(measured[task.kind])) return measured[task.kind];
  const procedure = procedures.get(task.procedure) || {};
  return task.kind === "post" ? procedure.post_minutes || 0 : procedure.prep_minutes || 0;
}

function renderFigures() {
  const now = serverNow();
  const people = peopleNow();
  const planned = typeof state.planned === "number" ? state.planned : null;
  byId("people").textContent = planned === null ? t("backoffice.people_now", { n: people })
    : `${t("backoffice.people_now", { n: people })} ${t("backoffice.people_planned", { n: planned })}`;
  const tomorrowEnd = officeDay(now + DAY_MS);
  const count = (group, test = () => true) => state.tasks.filter((task) => groupOf(task) === group && test(task)).length;
  byId("backlog-waiting").textContent = t("backoffice.count", { n: count("waiting") });
  byId("backlog-tomorrow").textContent = t("backoffice.count",
    { n: count("due", (task) => !task.due_at || officeDay(task.due_at) <= tomorrowEnd) });
  byId("backlog-send").textContent = t("backoffice.count", { n: count("send") });
  const post = state.tasks.filter((task) => task.kind === "post");
  const serverMinutes = state.backlog && state.backlog.post_minutes;
  const minutes = Number.isFinite(serverMinutes) ? serverMinutes
    : post.reduce((sum, task) => sum + taskMinutes(task), 0) / Math.max(1, people || planned || 1);
  byId("backlog-post").textContent = post.length
    ? t("backoffice.backlog_post_time", { n: post.length, minutes: Math.ceil(minutes) })
    : t("backoffice.count", { n: 0 });
  const carried = byId("carried-over");
  carried.hidden = !(page.closing_at && now >= page.closing_at);
  if (!carried.hidden) {
    const prepare = state.tasks.filter((task) => task.kind !== "post").length;
    carried.textContent = t("backoffice.carried_over", { prepare, post: post.length });
  }
}

// Ages and deadlines tick once a minute would do; every 15 s keeps "overdue" honest.
setInterval(() => { if (me && state.ready) scheduleRender(); }, 15_000);

session.start();
