// The public congestion page: GET /api/congestion (or one office) for the first paint, then the
// WebSocket "congestion" view of each office keeps its rows current. Each office says whether it
// takes visitors now and its hours today; each procedure, the numbers being called.

import { api } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { currentLanguage, officeTime, pageData, roundMinutes, t } from "/static/common/page.js";

const config = pageData();
const $ = (id) => document.getElementById(id);

function cell(className, ...children) {
  const td = document.createElement("td");
  td.className = className;
  td.append(...children);
  return td;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

/** "11月24日(火)" of the office's business day (YYYY-MM-DD), in the page's language. */
function dayText(isoDate) {
  const html = document.documentElement.lang || "ja";
  return new Intl.DateTimeFormat(html, { month: "long", day: "numeric", weekday: "short", timeZone: "UTC" })
    .format(new Date(`${isoDate}T12:00:00Z`));
}

/** Whether the office takes visitors now, and its hours today. */
function receptionText(view) {
  const hours = view.hours_today ? `${view.hours_today.opens}〜${view.hours_today.closes}` : "";
  if (view.reception === "open") {
    return hours ? t("congestion.reception_open", { hours }) : t("congestion.reception_open_always");
  }
  if (view.reception === "closed_today" || !hours) return t("congestion.reception_closed_today");
  return t(`congestion.reception_${view.reception}`, { hours });
}

function render(view) {
  const body = $(`rows-${view.office}`);
  if (!body) return;
  const lang = currentLanguage();
  const reception = $(`reception-${view.office}`);
  if (view.reception) {
    reception.textContent = receptionText(view);
    reception.dataset.reception = view.reception;
    reception.hidden = false;
  }
  if (view.date) $(`date-${view.office}`).textContent = dayText(view.date);
  body.replaceChildren(...view.procedures.map((p) => {
    const row = document.createElement("tr");
    row.dataset.procedure = p.id;
    row.dataset.level = p.paused ? "paused" : p.level;
    const name = (p.names && p.names[lang]) || p.name;
    const estimate = p.paused ? [span("paused", t("congestion.paused"))]
      : view.open === false && typeof p.estimate_minutes !== "number" ? [span("closed", t("congestion.closed_short"))] : [
      span("estimate-minutes", typeof p.estimate_minutes !== "number" ? t("congestion.no_estimate")
        : p.estimate_minutes < 1 ? t("common.no_wait")
          : t("congestion.estimate_minutes", { minutes: roundMinutes(p.estimate_minutes) })),
      ...(p.level === "unknown" ? [] : [span(`level level-${p.level}`, t(`congestion.level_${p.level}`))]),
    ];
    const box = document.createElement("div");
    box.className = "estimate-box";
    box.append(...estimate);
    const calling = document.createElement("div");
    calling.className = "calling-box";
    calling.dataset.label = t("congestion.now_calling");
    calling.append(...((p.now_calling || []).length ? p.now_calling.map((number) => span("number calling-number", number))
      : [span("calling-none", t("congestion.no_estimate"))]));
    row.append(cell("procedure-name", name), cell("waiting", t("congestion.waiting_count", { n: p.waiting })),
               cell("estimate", box), cell("calling", calling));
    return row;
  }));
  $(`updated-${view.office}`).textContent = t("congestion.updated_at", { time: officeTime() });
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
