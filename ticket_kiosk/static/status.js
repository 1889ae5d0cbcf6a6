// The visitor's status page: their ticket live over the WebSocket "ticket" view, in the language
// chosen at the kiosk, with an alert (banner, page title, beep, vibration) when the turn is near
// (at most near_turn_ahead people ahead) and when the number is called, naming the counter.

import { api } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { escapeHtml, nameHtml, pageData, setLanguage, setText, t, tHtml, translateDocument } from "/static/common/page.js";
import { aheadHtml, estimateHtml, hasMinutes } from "./wait.js";

const config = pageData();
const $ = (id) => document.getElementById(id);
const LEVELS = { none: 0, near: 1, called: 2 };

const state = {
  office: null,        // GET /api/offices/{office}: names of procedures and counters
  view: null,          // the latest ticket view
  level: "none",
  myCalls: 0,          // how often my number is among the latest calls (a recall adds one)
  audio: null,
};

function counterName(id) {
  const counter = state.office && state.office.counters.find((c) => c.id === id);
  return t("common.counter", { id, name: counter ? counter.name : id });
}

// The counter as a catalog param: its text, and its HTML (phrases, readings in やさしい日本語).
function counterParam(id) {
  const counter = state.office && state.office.counters.find((c) => c.id === id);
  const name = counter ? counter.name : id;
  const html = state.office ? nameHtml(state.office.id, "counters", id, null, name) : escapeHtml(name);
  return { text: counterName(id), html: tHtml("common.counter", { id, name: { text: name, html } }) };
}

function procedureName(id, lang) {
  const procedure = state.office && state.office.procedures.find((p) => p.id === id);
  if (!procedure) return "";
  const plain = (procedure.names && procedure.names[lang]) || procedure.name;
  return nameHtml(state.office.id, "procedures", id, "name", plain, lang);
}

function alertLevel(view) {
  if (view.state === "called") return "called";
  if (view.state === "waiting" && typeof view.ahead === "number" && view.ahead <= config.near_turn_ahead) return "near";
  return "none";
}

// --- alerting ----------------------------------------------------------------------------------

function beep() {
  try {
    state.audio = state.audio || new AudioContext();
    const audio = state.audio;
    if (audio.state === "suspended") audio.resume();
    const start = audio.currentTime + 0.05;
    for (let i = 0; i < 3; i++) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = 880;
      const at = start + i * 0.35;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.4, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.25);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.3);
    }
  } catch {
    // No sound on this phone: the banner, the title and vibration remain.
  }
}

function alertNow() {
  beep();
  if (navigator.vibrate) {
    try { navigator.vibrate([300, 150, 300, 150, 300]); } catch { /* not allowed here */ }
  }
}

async function enableAlerts() {
  // A touch lets the page play sound and vibrate later; the screen stays on while waiting.
  try {
    state.audio = state.audio || new AudioContext();
    await state.audio.resume();
  } catch { /* no Web Audio */ }
  try {
    if (navigator.wakeLock) await navigator.wakeLock.request("screen");
  } catch { /* not granted */ }
  $("enable-alerts").hidden = true;
  $("alerts-on").hidden = false;
  beep();
}

// --- rendering -----------------------------------------------------------------------------------

function render() {
  const view = state.view;
  const lang = document.documentElement.dataset.lang;
  document.body.dataset.state = view.state;
  $("ticket").hidden = false;
  $("calling").hidden = false;
  $("alerts-control").hidden = !["waiting", "called"].includes(view.state);
  $("number").textContent = view.number;
  $("procedure").innerHTML = procedureName(view.procedure, lang);
  // A pickup waits for its card first (back office): the page says so while it is prepared.
  const card = view.state === "waiting" && view.prep ? { pending: "status.card_preparing", ready: "status.card_ready" }[view.prep] : null;
  setText($("state"), card || `status.state_${view.state}`);

  const waiting = view.state === "waiting" && typeof view.ahead === "number";
  $("ahead").hidden = !waiting;
  const estimate = view.estimate;
  if (waiting) $("ahead").innerHTML = aheadHtml(view.ahead, estimate);
  $("estimate").innerHTML = waiting ? estimateHtml(estimate, view.ahead) : "";
  $("estimate").hidden = !$("estimate").textContent;
  // Without a median (no counter open) there is no closing-time warning either.
  $("past-closing").hidden = !(waiting && hasMinutes(estimate) && estimate.past_closing);

  const calls = view.now_calling || [];
  $("calling-none").hidden = calls.length > 0;
  $("calling-list").replaceChildren(...calls.map((call) => {
    const item = document.createElement("li");
    setText(item, "status.calling_at", { number: call.number, counter: counterParam(call.counter) });
    if (call.number === view.number) item.classList.add("mine");
    return item;
  }));

  const level = alertLevel(view);
  const box = $("alert");
  box.hidden = level === "none";
  box.className = `alert alert-${level}`;
  document.body.dataset.alert = level;
  if (level === "called") {
    const counter = counterName(view.counter);
    setText($("alert-title"), "status.state_called");
    setText($("alert-body"), "status.called_body", { counter: counterParam(view.counter) });
    document.title = t("status.page_title_called", { number: view.number, counter });
  } else if (level === "near") {
    setText($("alert-title"), "status.near_title");
    setText($("alert-body"), "status.near_body");
    document.title = t("status.page_title_near", { number: view.number });
  } else {
    document.title = `${t("status.title")} ${view.number}`;
  }
}

function onView(view) {
  const previous = state.level;
  state.view = view;
  const level = alertLevel(view);
  const myCalls = (view.now_calling || []).filter((c) => c.number === view.number).length;
  const recalled = level === "called" && previous === "called" && myCalls > state.myCalls;
  state.level = level;
  state.myCalls = myCalls;
  render();
  if (LEVELS[level] > LEVELS[previous] || recalled) alertNow();
}

// --- start -----------------------------------------------------------------------------------

async function start() {
  translateDocument();
  let first;
  try {
    first = await api(`/api/tickets/${encodeURIComponent(config.token)}`);
  } catch (e) {
    $("loading").hidden = true;
    $("not-found").hidden = e.code !== "not_found";
    if (e.code !== "not_found") {
      $("not-found").hidden = false;
      setText($("not-found"), `error.${e.code}.message`);
    }
    return;
  }
  // The language chosen at the kiosk, unless the link asked for another one.
  setLanguage(config.lang || first.lang || "ja");
  translateDocument();
  try {
    state.office = await api(`/api/offices/${encodeURIComponent(first.office)}`);
    $("office-name").innerHTML = nameHtml(state.office.id, "name", null, null, state.office.name);
  } catch {
    // Names are a nicety: numbers and counter ids still show.
  }
  $("loading").hidden = true;
  onView(first);
  const live = new LiveConnection(offlineSign());
  live.subscribe({ view: "ticket", token: config.token }, {
    view: onView,
    error(error) {
      if (error.code === "not_found") $("not-found").hidden = false;
    },
  });
  document.body.dataset.ready = "true";
}

$("enable-alerts").addEventListener("click", enableAlerts);
start();
