// The public congestion page: GET /api/congestion (or one office) for the first paint, then the
// WebSocket "congestion" view of each office keeps its rows current. Each office says whether it
// takes visitors now and its hours today; each procedure, the numbers being called.

import { api } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { currentLanguage, dayText, nameHtml, officeTime, pageData, roundMinutes, setText, slotText, t, tHtml }
  from "/static/common/page.js";

const config = pageData();
const $ = (id) => document.getElementById(id);

function cell(className, ...children) {
  const td = document.createElement("td");
  td.className = className;
  td.append(...children);
  return td;
}

function htmlCell(className, html) {
  const td = document.createElement("td");
  td.className = className;
  td.innerHTML = html;
  return td;
}

// A span holding plain text (a ticket number).
function textSpan(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

// A span holding HTML from tHtml/nameHtml (escaped and phrase-broken there).
function span(className, html) {
  const element = document.createElement("span");
  element.className = className;
  element.innerHTML = html;
  return element;
}

/** Whether the office takes visitors now, and its hours today (HTML from tHtml: escaped, phrase-broken). */
function receptionText(view) {
  const hours = view.hours_today ? `${view.hours_today.opens}〜${view.hours_today.closes}` : "";
  if (view.reception === "open") {
    return hours ? tHtml("congestion.reception_open", { hours }) : tHtml("congestion.reception_open_always");
  }
  if (view.reception === "closed_today" || !hours) return tHtml("congestion.reception_closed_today");
  return tHtml(`congestion.reception_${view.reception}`, { hours });
}

/** "次に予約できる枠: 12月3日(木) 10:00", a link to the office's booking page (procedures that take bookings). */
function nextBooking(office, procedure) {
  const line = document.createElement("p");
  line.className = "next-booking";
  const next = procedure.next_booking;
  if (!next) {
    line.innerHTML = tHtml("congestion.next_slot_none");
    return line;
  }
  const link = document.createElement("a");
  link.href = `/book/${encodeURIComponent(office)}?lang=${encodeURIComponent(currentLanguage())}`;
  link.innerHTML = tHtml("congestion.next_slot", { when: slotText(next) });
  line.append(link);
  return line;
}

function render(view) {
  const body = $(`rows-${view.office}`);
  if (!body) return;
  const lang = currentLanguage();
  const reception = $(`reception-${view.office}`);
  if (view.reception) {
    reception.innerHTML = receptionText(view);
    reception.dataset.reception = view.reception;
    reception.hidden = false;
  }
  if (view.date) $(`date-${view.office}`).textContent = dayText(view.date);
  // Outage mode's prepared notice and the lobby's notice, in the page's language (else Japanese).
  for (const [id, texts] of [[`outage-${view.office}`, view.outage_notice], [`notice-${view.office}`, view.notice]]) {
    const box = $(id);
    if (!box || texts === undefined) continue;
    box.hidden = !texts;
    if (texts) box.textContent = texts[lang] || texts.ja;
  }
  body.replaceChildren(...view.procedures.map((p) => {
    const row = document.createElement("tr");
    row.dataset.procedure = p.id;
    row.dataset.level = p.paused ? "paused" : p.level;
    const name = nameHtml(view.office, "procedures", p.id, "name", (p.names && p.names[lang]) || p.name);
    const estimate = p.wait_unknown ? [span("paused", tHtml("congestion.paused")), span("wait-unknown", tHtml("common.wait_unknown"))]
      : p.paused ? [span("paused", tHtml("congestion.paused"))]
      : view.open === false && typeof p.estimate_minutes !== "number" ? [span("closed", tHtml("congestion.closed_short"))] : [
      span("estimate-minutes", typeof p.estimate_minutes !== "number" ? tHtml("congestion.no_estimate")
        : p.estimate_minutes < 1 ? tHtml("common.no_wait")
          : tHtml("congestion.estimate_minutes", { minutes: roundMinutes(p.estimate_minutes) })),
      ...(p.level === "unknown" ? [] : [span(`level level-${p.level}`, tHtml(`congestion.level_${p.level}`))]),
    ];
    const box = document.createElement("div");
    box.className = "estimate-box";
    box.append(...estimate);
    const calling = document.createElement("div");
    calling.className = "calling-box";
    calling.dataset.label = t("congestion.now_calling");
    calling.append(...((p.now_calling || []).length ? p.now_calling.map((number) => textSpan("number calling-number", number))
      : [span("calling-none", tHtml("congestion.no_estimate"))]));
    // The name alone in .procedure-name; a bookable procedure's next free slot below it.
    const nameCell = cell("procedure", span("procedure-name", name));
    if (p.bookable) nameCell.append(nextBooking(view.office, p));
    row.append(nameCell, htmlCell("waiting", tHtml("congestion.waiting_count", { n: p.waiting })),
               cell("estimate", box), cell("calling", calling));
    return row;
  }));
  setText($(`updated-${view.office}`), "congestion.updated_at", { time: officeTime() });
}

async function start() {
  try {
    const first = config.offices.length === 1
      ? { offices: [await api(`/api/offices/${encodeURIComponent(config.offices[0])}/congestion`)] }
      : await api("/api/congestion");
    first.offices.forEach(render);
  } catch {
    // The live views below bring the same data as soon as the connection works.
  }
  const live = new LiveConnection(offlineSign());
  for (const office of config.offices) live.subscribe({ view: "congestion", office }, { view: render });
  document.body.dataset.ready = "true";
}

start();
