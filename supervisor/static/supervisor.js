// The supervisor console: sign in (role supervisor), then every office on one screen, live over the
// WebSocket view "supervisor" (one subscription, one "view" message per office whenever its figures
// change). Every action goes through the public API: pausing a procedure, opening/pausing/closing a
// counter, the procedures a counter serves today, the notice in every language, outage mode and the
// day's close-out. Figures that grow with time (longest wait, minutes in service) are recomputed
// every few seconds from the times the view carries.

import { api, ApiError, newIdempotencyKey } from "/static/common/api.js";
import { LiveConnection, offlineSign } from "/static/common/live.js";
import { officeTime, pageData, t } from "/static/common/page.js";
import { sendAction } from "/static/counter/actions.js";
import { el, messageLine, staffSession } from "/static/common/staff.js";

const page = pageData();
const byId = (id) => document.getElementById(id);
const offices = new Map(page.offices.map((o) => [o.id, o]));
const TICK_MS = 15_000;

let me = null;
let live = null;
const views = new Map();           // office id -> the latest supervisor view
let dialogCounter = null;          // {office, counter} being edited in the procedures dialog
let closing = null;                // office id whose close-out asks for confirmation
const noticeFills = new Map();     // office id -> fills its open, untouched notice editor from the view

// --- small helpers ---------------------------------------------------------------------------

/** A table cell holding ``node``. */
function cellWith(node) {
  const cell = el("td");
  cell.append(node);
  return cell;
}

function button(label, className, onClick) {
  const node = el("button", `btn sv-small ${className}`, label);
  node.type = "button";
  node.addEventListener("click", () => onClick(node));
  return node;
}

const minutesSince = (ms) => Math.max(0, Math.floor((Date.now() - ms) / 60_000));
const percent = (share) => `${Math.round(share * 100)}%`;
const oneDecimal = (n) => (Math.round(n * 10) / 10).toFixed(1);
const procedureName = (office, id) => ((offices.get(office).procedures.find((p) => p.id === id)) || { name: id }).name;
const counterName = (office, id) => ((offices.get(office).counters.find((c) => c.id === id)) || { name: id }).name;

function errorText(error) {
  const code = error instanceof ApiError ? error.code : "unavailable";
  const text = t(`error.${code}.message`);
  return text.startsWith("error.") ? t("error.unavailable.message") : text;
}

const message = messageLine();
const showMessage = (text, kind = "error") => message.show(text, kind);

/** Run an action with its button disabled; a failure shows the server's reason (``failed(error)``: the
 *  whole text instead). */
async function act(node, action, done, failed = errorText) {
  if (node) node.disabled = true;
  try {
    const answer = await action();
    if (done) showMessage(done, "info");
    return answer;
  } catch (e) {
    showMessage(failed(e));
    return null;
  } finally {
    if (node) node.disabled = false;
  }
}

const put = (path, body) => api(path, { method: "PUT", body, idempotencyKey: newIdempotencyKey() });

// --- sign-in ---------------------------------------------------------------------------------

const session = staffSession({
  signedIn: (user) => { me = user; signedIn(); },
  signedOut: () => {
    me = null;
    if (live) { live.close(); live = null; }
    byId("who").textContent = "";
    byId("sign-out").hidden = true;
    byId("console").hidden = true;
    byId("sign-in").hidden = false;
  },
  failedText: t("counter.sign_in_failed"), showMessage, clearMessage: () => message.clear(), errorText,
});
const showSignIn = () => session.showSignIn();

function signedIn() {
  byId("who").textContent = t("counter.signed_in_as", { name: me.display_name || me.username });
  byId("sign-out").hidden = false;
  byId("sign-in").hidden = true;
  if (me.role !== "supervisor") {
    showMessage(t("supervisor.not_supervisor"));
    return;
  }
  byId("console").hidden = false;
  buildOutageForm();
  buildReports();
  buildStaffing();
  for (const office of page.offices) buildOffice(office);
  const sign = offlineSign();
  live = new LiveConnection({
    onOnline: () => { sign.onOnline(); document.body.classList.remove("offline"); },
    onOffline: () => { sign.onOffline(); document.body.classList.add("offline"); },
  });
  live.subscribe({ view: "supervisor" }, {
    view: (data, msg) => {
      views.set(msg.office, data);
      renderOffice(msg.office);
      noticeFills.get(msg.office)?.();
      renderOutages();
      document.body.dataset.live = "ready";
    },
    error: (error) => {
      if (error.code === "unauthorized") showSignIn();
      showMessage(errorText(new ApiError(0, error.code, error.message)));
    },
  });
}

// --- reports (the visit archive's GET /api/reports/daily|monthly) ------------------------------

/** "YYYY-MM-DD" of today in the office's time zone. */
function officeDate() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: page.timezone || undefined }).format(new Date());
}

function buildReports() {
  const select = byId("report-office");
  if (select.options.length === 1) {
    for (const office of page.offices) {
      const option = el("option", "", office.name);
      option.value = office.id;
      select.append(option);
    }
  }
  byId("report-day").value ||= officeDate();
  byId("report-month").value ||= officeDate().slice(0, 7);
  updateReportLinks();
}

function updateReportLinks() {
  const office = byId("report-office").value;
  const scope = office ? `&office=${encodeURIComponent(office)}` : "";
  for (const [kind, field, value] of [["daily", "day", byId("report-day").value], ["monthly", "month", byId("report-month").value]]) {
    for (const fmt of ["xlsx", "csv"]) {
      byId(`${kind}-${fmt}`).href = `/api/reports/${kind}?${field}=${encodeURIComponent(value)}${scope}&format=${fmt}`;
    }
  }
}

byId("reports-form").addEventListener("change", updateReportLinks);
byId("reports-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const office = byId("report-office").value;
  const scope = office ? `&office=${encodeURIComponent(office)}` : "";
  const path = `/api/reports/monthly?month=${encodeURIComponent(byId("report-month").value)}${scope}&format=json`;
  const report = await act(event.submitter, () => api(path));
  if (report) renderMonthly(report);
});

const SERIES_COLOURS = 4;         // sv-series-0…3 in supervisor.css
const DAY_TABLE = "日別";          // the report's table keys (its workbook sheets)
const DAY_HEADING = "日付";

/** The month's report (月報) drawn in the page: every chart the workbook has, from the same tables,
 *  and the share called within the target wait per day against the target line. */
function renderMonthly(report) {
  const parts = [el("h2", "sv-report-title", `${report.title}（${report.period}・${report.scope}）`)];
  // A month without a visit has no figure to draw (its zero rows would only be noise).
  if (!report.tables.some((table) => table.key === DAY_TABLE && table.rows.length)) {
    parts.push(el("p", "sv-report-empty", t("supervisor.report_empty")));
    byId("report-result").replaceChildren(...parts);
    return;
  }
  const charted = report.tables.filter((table) => table.chart && table.rows.length);
  for (const shown of charted) {
    const { kind, categories, values, title, stacked } = shown.chart;
    const table = kind === "pie" ? slices(shown, categories, values) : shown;
    parts.push(barChart(table.key, title, table, categories, values.map((index) => ({ index })), { stacked }));
    if (table.key === DAY_TABLE) parts.push(shareChart(table));
  }
  byId("report-result").replaceChildren(...parts);
}

/** A pie's table with one row per slice: the rows of the same category summed (the hand-overs of one
 *  reason from several procedures are one slice). */
function slices(table, categories, values) {
  const merged = new Map();
  for (const row of table.rows) {
    const key = JSON.stringify(row.slice(0, categories + 1));
    const into = merged.get(key);
    if (into) for (const index of values) into[index] = (Number(into[index]) || 0) + (Number(row[index]) || 0);
    else merged.set(key, [...row]);
  }
  return { ...table, rows: [...merged.values()] };
}

/** A row's label: the category column, after the columns before it where they differ (the office, in
 *  the city's report). */
function categoryLabel(table, categories) {
  const differing = [...Array(categories).keys()].filter((c) => new Set(table.rows.map((r) => r[c])).size > 1);
  return (row) => [...differing, categories].map((c) => row[c]).join(" ");
}

/** Horizontal bars (as the staffing chart), one row per table row, with the table of its figures as the
 *  text alternative. ``series``: [{index}], one bar each — or, ``stacked``, one bar of their segments
 *  with a legend; ``target``: a share drawn as a line across the bars. */
function barChart(key, title, table, categories, series,
                  { format = String, most = null, target = null, targetLabel = "", stacked = false } = {}) {
  const figure = el("figure", "sv-chart sv-report-chart");
  figure.dataset.chart = key;
  const captionId = `chart-${key}-${series[0].index}`;
  const caption = el("figcaption", "", title);
  caption.id = captionId;
  figure.append(caption);
  const label = categoryLabel(table, categories);
  const value = (row, index) => Number(row[index]) || 0;
  const top = most ?? Math.max(1, ...table.rows.map((r) => (stacked
    ? series.reduce((sum, s) => sum + value(r, s.index), 0) : Math.max(...series.map((s) => value(r, s.index))))));
  if (stacked && series.length > 1) {
    const legend = el("p", "sv-legend");
    legend.append(...series.map((s, n) => {
      const entry = el("span", "sv-legend-entry");
      entry.append(el("span", `sv-swatch sv-series-${n % SERIES_COLOURS}`), document.createTextNode(table.headers[s.index]));
      return entry;
    }));
    figure.append(legend);
  }
  // The bars repeat the table below for the eye; screen readers read the table.
  const bars = el("ol", "sv-bars");
  bars.setAttribute("aria-hidden", "true");
  for (const row of table.rows) {
    const item = el("li", "sv-bar-row");
    const track = el("span", "sv-bar-track");
    const stack = stacked ? el("span", "sv-bar-stack") : track;
    series.forEach(({ index }, n) => {
      if (stacked && !value(row, index)) return;
      const bar = el("span", `sv-bar ${stacked ? `sv-series-${n % SERIES_COLOURS}` : "sv-bar-recommended"}`, format(row[index]));
      bar.style.width = `${(value(row, index) / top) * 100}%`;
      stack.append(bar);
    });
    if (stacked) track.append(stack);
    if (target !== null) {
      const line = el("span", "sv-target-line");
      line.style.left = `${target * 100}%`;
      track.append(line);
    }
    item.append(el("span", "sv-bar-label", label(row)), track);
    bars.append(item);
  }
  if (target !== null) figure.append(el("p", "sv-target-legend", targetLabel));
  figure.append(bars);
  const details = el("details", "sv-chart-table");
  details.append(el("summary", "", t("supervisor.report_as_table")));
  const alt = el("table", "sv-table");
  alt.setAttribute("aria-labelledby", captionId);
  const head = el("tr");
  head.append(el("th", "", table.headers[categories]), ...series.map((s) => el("th", "", table.headers[s.index])));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...table.rows.map((row) => {
    const tr = el("tr");
    tr.append(el("th", "", label(row)), ...series.map((s) => el("td", "sv-num", row[s.index] === null ? "—" : format(row[s.index]))));
    return tr;
  }));
  alt.append(thead, tbody);
  details.append(alt);
  figure.append(details);
  return figure;
}

/** Per day, the share called within the target wait (the 日別 table's last column), on a 0–100 % scale
 *  with the configured target share as a line. */
function shareChart(table) {
  const index = table.headers.length - 1;
  const title = t("supervisor.report_share_chart", { minutes: page.target_wait_minutes });
  const share = (value) => (value === null || value === undefined ? "—" : percent(value));
  return barChart("share", title, table, table.headers.indexOf(DAY_HEADING), [{ index }],
                  { format: share, most: 1, target: page.target_share,
                    targetLabel: `｜ ${t("supervisor.report_target", { share: percent(page.target_share) })}` });
}

// --- staffing advice (the archive's GET /api/staffing) ------------------------------------------

function staffingQuery(format) {
  const office = byId("staffing-office").value;
  const day = byId("staffing-day").value;
  const days = byId("staffing-days").value || "1";
  return `/api/staffing?office=${encodeURIComponent(office)}&day=${encodeURIComponent(day)}&days=${encodeURIComponent(days)}&format=${format}`;
}

function buildStaffing() {
  const select = byId("staffing-office");
  if (!select.options.length) {
    for (const office of page.offices) {
      const option = el("option", "", office.name);
      option.value = office.id;
      select.append(option);
    }
  }
  if (!byId("staffing-day").value) {
    const tomorrow = new Date(Date.now() + 86_400_000);
    byId("staffing-day").value = new Intl.DateTimeFormat("en-CA", { timeZone: page.timezone || undefined }).format(tomorrow);
  }
  updateStaffingLinks();
}

function updateStaffingLinks() {
  byId("staffing-xlsx").href = staffingQuery("xlsx");
  byId("staffing-csv").href = staffingQuery("csv");
}

byId("staffing-form").addEventListener("change", updateStaffingLinks);
byId("staffing-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const report = await act(event.submitter, () => api(staffingQuery("json")));
  if (report) renderStaffing(report);
});

const RECOMMENDED = "推奨窓口数";       // the archive's column headings (Japanese, as in the workbook)
const CURRENT = "現在の配置（窓口数）";

/** The staffing table, and a bar chart of recommended against current counters per hour. */
function renderStaffing(report) {
  const parts = [el("h2", "sv-staffing-title", report.title)];
  for (const table of report.tables) {
    const recommended = table.headers.indexOf(RECOMMENDED);
    const current = table.headers.indexOf(CURRENT);
    if (recommended >= 0) parts.push(staffingChart(table, recommended, current));
    parts.push(dataTable(table));
  }
  byId("staffing-result").replaceChildren(...parts);
}

function staffingChart(table, recommended, current) {
  const figure = el("figure", "sv-chart");
  figure.append(el("figcaption", "", `${t("supervisor.staffing_chart")}（■ ${t("supervisor.staffing_recommended")}　□ ${t("supervisor.staffing_current")}）`));
  const most = Math.max(1, ...table.rows.map((r) => Math.max(Number(r[recommended]) || 0, Number(r[current]) || 0)));
  const hour = table.headers.indexOf("時間帯");
  const day = table.headers.indexOf("日付");
  const bars = el("ol", "sv-bars");
  for (const row of table.rows) {
    const item = el("li", "sv-bar-row");
    const label = [day >= 0 ? String(row[day]).slice(5) : "", hour >= 0 ? row[hour] : ""].join(" ").trim();
    const pair = el("span", "sv-bar-pair");
    for (const [index, className, name] of [[recommended, "sv-bar-recommended", "staffing_recommended"],
                                            [current, "sv-bar-current", "staffing_current"]]) {
      if (index < 0) continue;
      const value = Number(row[index]) || 0;
      const bar = el("span", `sv-bar ${className}`, String(value));
      bar.style.width = `${(value / most) * 100}%`;
      bar.title = `${t(`supervisor.${name}`)} ${value}`;
      pair.append(bar);
    }
    item.append(el("span", "sv-bar-label", label), pair);
    bars.append(item);
  }
  figure.append(bars);
  return figure;
}

/** A report table ({title, headers, rows}) as an HTML table. */
function dataTable(table) {
  const node = el("table", "sv-table sv-report-table");
  node.append(el("caption", "", table.title));
  const head = el("tr");
  for (const heading of table.headers) head.append(el("th", "", heading));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...table.rows.map((cells) => {
    const row = el("tr");
    for (const value of cells) row.append(el("td", typeof value === "number" ? "sv-num" : "", value === null ? "—" : String(value)));
    return row;
  }));
  node.append(thead, tbody);
  return node;
}

// --- outage mode -----------------------------------------------------------------------------

function check(name, value, label, checked = false) {
  const wrap = el("label", "sv-check");
  const input = el("input");
  input.type = "checkbox";
  input.name = name;
  input.value = value;
  input.checked = checked;
  wrap.append(input, document.createTextNode(` ${label}`));
  return wrap;
}

function buildOutageForm() {
  byId("outage-offices").replaceChildren(...page.offices.map((o) => check("office", o.id, o.short_name || o.name, true)));
  const procedures = new Map();
  for (const office of page.offices) {
    for (const p of office.procedures) if (!procedures.has(p.id)) procedures.set(p.id, p);
  }
  byId("outage-procedures").replaceChildren(...[...procedures.values()].map((p) => check("procedure", p.id, p.name, !p.city_staff_only)));
  const select = byId("outage-notice");
  select.replaceChildren(...page.outage_notices.map((n) => {
    const option = el("option", "", n.text.ja);
    option.value = n.id;
    return option;
  }));
  byId("outage-no-notices").hidden = page.outage_notices.length > 0;
  byId("outage-start").disabled = page.outage_notices.length === 0;
}

const checked = (form, name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

byId("outage-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { offices: checked(form, "office"), procedures: checked(form, "procedure"), notice: byId("outage-notice").value };
  await act(byId("outage-start"), () => sendAction("/api/outage", body), t("supervisor.outage_started"));
});

function renderOutages() {
  const items = [];
  for (const [id, view] of views) {
    if (!view.outage) continue;
    const item = el("li", "notice notice-error sv-outage-item");
    item.dataset.office = id;
    const since = officeTime(new Date(view.outage.since));
    item.append(el("strong", "", `${offices.get(id).short_name || offices.get(id).name}：${t("supervisor.outage_active", { since })}`),
                el("span", "sv-outage-procs", view.outage.procedures.map((p) => procedureName(id, p)).join("・")),
                el("span", "sv-outage-text", view.outage.notice.ja),
                button(t("supervisor.outage_end"), "sv-outage-end", (node) => act(node,
                  () => sendAction("/api/outage/end", { offices: [id] }), t("supervisor.outage_ended"))));
    items.push(item);
  }
  byId("outage-active").replaceChildren(...items);
}

// --- one office ------------------------------------------------------------------------------

function table(className, headings) {
  const node = el("table", `sv-table ${className}`);
  const head = el("thead");
  const row = el("tr");
  for (const heading of headings) row.append(el("th", "", t(heading)));
  head.append(row);
  node.append(head, el("tbody"));
  return node;
}

function buildOffice(office) {
  const section = el("section", "card sv-office");
  section.dataset.office = office.id;
  section.setAttribute("aria-labelledby", `office-${office.id}`);
  const heading = el("h2", "", office.name);
  heading.id = `office-${office.id}`;
  const figures = el("div", "sv-figures");
  const procedures = table("sv-procedures", ["supervisor.col_procedure", "supervisor.col_waiting", "supervisor.col_longest",
                                             "supervisor.col_estimate", "supervisor.col_status", "supervisor.col_action"]);
  const counters = table("sv-counters", ["supervisor.col_counter", "supervisor.col_status", "supervisor.col_staff",
                                         "supervisor.col_ticket", "supervisor.col_in_service", "supervisor.col_serves",
                                         "supervisor.col_action"]);
  section.append(heading, figures, procedures, counters, noticeEditor(office), closeout(office));
  byId("offices").append(section);
}

function noticeEditor(office) {
  const details = el("details", "sv-notice");
  details.append(el("summary", "", t("supervisor.notice_heading")));
  const form = el("form", "sv-form sv-notice-form");
  const ja = el("label", "", t("supervisor.notice_ja"));
  const jaInput = el("textarea");
  jaInput.name = "ja";
  jaInput.maxLength = 200;
  jaInput.rows = 2;
  ja.append(jaInput);
  const others = el("fieldset", "sv-notice-others");
  others.append(el("legend", "", t("supervisor.notice_other")));
  for (const lang of page.notice_languages) {
    const label = el("label", "", t("common.language_name", {}, lang));
    const input = el("input");
    input.name = lang;
    input.maxLength = 200;
    input.lang = lang;
    label.append(input);
    others.append(label);
  }
  const save = el("button", "btn btn-primary", t("supervisor.notice_save"));
  save.type = "submit";
  // A failed save, beside the form (the page's message line may be scrolled out of sight).
  const failure = el("p", "sv-notice-failed notice notice-error");
  failure.setAttribute("role", "alert");
  failure.hidden = true;
  form.append(ja, others, save, failure);
  // Once the supervisor has typed, the form is theirs: a live view (or the details' "toggle" event,
  // which the browser fires a moment after the click, possibly after the first keys) never
  // overwrites it; a saved or closed form follows the office's notice again.
  let edited = false;
  form.addEventListener("input", () => { edited = true; });
  const fill = () => {
    const view = views.get(office.id);
    if (edited || !details.open || !view) return;
    jaInput.value = view.notice || "";
    for (const lang of page.notice_languages) form.elements[lang].value = (view.notices || {})[lang] || "";
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (save.disabled) return;
    const texts = Object.fromEntries(page.notice_languages.map((lang) => [lang, form.elements[lang].value]));
    failure.hidden = true;
    const failed = (error) => {
      failure.textContent = t("supervisor.notice_save_failed", { reason: errorText(error) });
      failure.hidden = false;
      return failure.textContent;
    };
    const saved = await act(save, () => put(`/api/offices/${encodeURIComponent(office.id)}/notice`, { text: jaInput.value, texts }),
                            t("supervisor.notice_saved"), failed);
    if (saved) edited = false;           // kept as typed otherwise, to try again
  });
  details.addEventListener("toggle", () => {
    if (!details.open) edited = false;
    fill();
  });
  noticeFills.set(office.id, fill);
  details.append(form);
  return details;
}

function closeout(office) {
  const box = el("section", "sv-closeout");
  box.append(el("h3", "", t("supervisor.closeout_heading")), el("p", "sv-still-summary"), el("ol", "sv-still-waiting"),
             el("p", "sv-counters-open"), el("p", "sv-backlog-left"),
             button(t("supervisor.close_day"), "btn-primary sv-close-day", (node) => closeDay(office.id, false, node)),
             el("div", "sv-report"));
  return box;
}

function renderOffice(id) {
  const view = views.get(id);
  const section = document.querySelector(`.sv-office[data-office="${id}"]`);
  if (!view || !section) return;
  section.dataset.outage = view.outage ? "on" : "off";
  renderFigures(section.querySelector(".sv-figures"), view);
  renderProcedures(section.querySelector(".sv-procedures tbody"), id, view);
  renderCounters(section.querySelector(".sv-counters tbody"), id, view);
  renderCloseout(section.querySelector(".sv-closeout"), id, view);
}

function renderFigures(box, view) {
  const today = view.today;
  const level = today.service_level;
  const lines = [el("span", "sv-issued", t("supervisor.issued", { n: today.issued }))];
  if (level.called) {
    const line = el("span", "sv-service-level", t("supervisor.service_level", {
      minutes: level.target_wait_minutes, share: percent(level.share), within: level.within_target, called: level.called }));
    const target = percent(level.target_share);
    lines.push(line, el("span", `level ${level.met ? "level-low" : "level-high"} sv-met`,
                        t(level.met ? "supervisor.target_met" : "supervisor.target_not_met", { target })));
  } else {
    lines.push(el("span", "sv-service-level", t("supervisor.service_level_none")));
  }
  // Bookings and the back office: only for an office that has them (no figure is not a zero).
  if (view.bookings) {
    const b = view.bookings;
    const parts = [t("supervisor.bookings_to_come", { n: b.to_come })];
    if (b.past_slot_start) parts.push(t("supervisor.bookings_late", { n: b.past_slot_start }));
    if (b.next_slot) parts.push(t("supervisor.next_slot", { slot: b.next_slot }));
    lines.push(el("span", "sv-bookings", parts.join("・")));
  }
  if (view.back_office) {
    const backlog = view.back_office;
    const parts = [t("supervisor.back_office", { n: backlog.total }),
                   ...Object.entries(backlog.kinds).map(([kind, counts]) => t("supervisor.back_office_kind", {
                     kind: t(`supervisor.kind_${kind}`), open: counts.open, claimed: counts.claimed }))];
    if (backlog.overdue) parts.push(t("supervisor.overdue", { n: backlog.overdue }));
    lines.push(el("span", "sv-back-office", parts.join("・")));
  }
  const accuracy = today.estimates;
  lines.push(el("span", "sv-accuracy", accuracy.compared
    ? t("supervisor.accuracy", { error: oneDecimal(accuracy.mean_abs_error), bias: oneDecimal(accuracy.bias),
                                 share: percent(accuracy.within_range), n: accuracy.compared })
    : t("supervisor.accuracy_none")));
  box.replaceChildren(...lines);
}

function renderProcedures(body, office, view) {
  body.replaceChildren(...offices.get(office).procedures.map((p) => {
    const figures = view.procedures[p.id] || { waiting: 0, paused: false };
    const paused = view.paused.includes(p.id);
    const row = el("tr");
    row.dataset.procedure = p.id;
    row.dataset.paused = String(paused);
    const estimate = figures.estimate_minutes;
    row.append(el("th", "", p.name), el("td", "sv-num", t("counter.people", { n: figures.waiting })),
               el("td", "sv-num sv-longest", figures.oldest_issued_at ? t("counter.minutes", { n: minutesSince(figures.oldest_issued_at) }) : "—"),
               el("td", "sv-num", typeof estimate === "number" ? t("counter.minutes", { n: Math.round(estimate) }) : "—"),
               cellWith(el("span", `level ${paused ? "level-high" : "level-low"}`,
                              t(paused ? "supervisor.procedure_paused" : "supervisor.procedure_open"))));
    const action = paused ? "resume" : "pause";
    const cell = el("td");
    cell.append(button(t(`counter.${action}`), `sv-${action}`, (node) => act(node, () => sendAction(
      `/api/offices/${encodeURIComponent(office)}/procedures/${encodeURIComponent(p.id)}/${action}`, {}))));
    row.append(cell);
    return row;
  }));
}

function renderCounters(body, office, view) {
  const live = new Map(view.counters.map((c) => [c.id, c]));
  body.replaceChildren(...offices.get(office).counters.map((configured) => {
    const c = live.get(configured.id) || { id: configured.id, status: "closed" };
    const row = el("tr");
    row.dataset.counter = c.id;
    row.dataset.status = c.status;
    const ticket = c.ticket;
    const serving = ticket ? (ticket.started_at || ticket.called_at) : null;
    const serves = c.procedures ? t("supervisor.procedures_today", { procedures: c.procedures.map((p) => procedureName(office, p)).join("・") })
      : configured.procedures.map((p) => procedureName(office, p)).join("・");
    const status = el("span", `level ${c.status === "open" ? "level-low" : c.status === "paused" ? "level-medium" : "level-unknown"}`,
                      t(`counter.status_${c.status}`));
    const ticketCell = el("td", "sv-ticket");
    if (ticket) {
      ticketCell.append(el("span", "number", ticket.number),
                        el("span", "sv-ticket-state", ` ${t(`counter.state_${ticket.state}`)}`));
    }
    row.append(el("th", "", configured.name), cellWith(status), el("td", "sv-staff", c.staff || ""), ticketCell,
               el("td", "sv-num sv-in-service", serving ? t("counter.minutes", { n: minutesSince(serving) }) : ""),
               el("td", c.procedures ? "sv-serves sv-today" : "sv-serves", serves));
    const actions = el("td", "sv-actions");
    const path = (action) => `/api/offices/${encodeURIComponent(office)}/counters/${encodeURIComponent(c.id)}/${action}`;
    const statusAction = (action, label) => button(t(label), `sv-counter-${action}`, (node) => act(node, () => sendAction(path(action), {})));
    if (c.status !== "open") actions.append(statusAction("open", "counter.open"));
    if (c.status === "open") actions.append(statusAction("pause", "counter.pause"));
    if (c.status !== "closed") actions.append(statusAction("close", "counter.close"));
    actions.append(button(t("supervisor.change_procedures"), "sv-change", () => openProceduresDialog(office, configured, c)));
    row.append(actions);
    return row;
  }));
}

function renderCloseout(box, office, view) {
  const still = view.still_waiting;
  box.querySelector(".sv-still-summary").textContent = still.count || still.active
    ? `${t("supervisor.still_waiting", { n: still.count })}　${t("supervisor.at_counters", { n: still.active })}`
    : t("supervisor.none_waiting");
  const items = still.numbers.map((n) => {
    const item = el("li", "");
    item.append(el("span", "number", n.number), el("span", "sv-still-proc", ` ${procedureName(office, n.procedure)}`));
    return item;
  });
  if (still.count > still.numbers.length) items.push(el("li", "sv-more", t("supervisor.more", { n: still.count - still.numbers.length })));
  box.querySelector(".sv-still-waiting").replaceChildren(...items);
  const open = view.counters.filter((c) => c.status !== "closed").map((c) => counterName(office, c.id));
  box.querySelector(".sv-counters-open").textContent = open.length
    ? t("supervisor.counters_open", { counters: open.join("・") }) : t("supervisor.no_counters_open");
  // Unfinished back-office work, where the office has a back office.
  const backlog = box.querySelector(".sv-backlog-left");
  backlog.hidden = !view.back_office;
  backlog.textContent = view.back_office ? t("supervisor.back_office", { n: view.back_office.total }) : "";
}

// --- a counter's procedures today --------------------------------------------------------------

function openProceduresDialog(office, configured, live) {
  dialogCounter = { office, counter: configured.id };
  byId("procedures-heading").textContent = t("supervisor.procedures_heading", { counter: configured.name });
  const serving = new Set(live.procedures || configured.procedures);
  const allowed = offices.get(office).procedures.filter((p) => !p.city_staff_only || configured.staff === "city");
  byId("procedures-choices").replaceChildren(...allowed.map((p) => check("procedure", p.id, p.name, serving.has(p.id))));
  byId("procedures-dialog").showModal();
}

async function saveProcedures(procedures, node) {
  const { office, counter } = dialogCounter;
  const answer = await act(node, () => put(`/api/offices/${encodeURIComponent(office)}/counters/${encodeURIComponent(counter)}/procedures`,
                                           { procedures }), t("supervisor.saved"));
  if (answer) byId("procedures-dialog").close();
}

byId("procedures-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveProcedures(checked(event.target, "procedure"), event.submitter);
});
byId("procedures-reset").addEventListener("click", (event) => saveProcedures(null, event.target));
byId("procedures-cancel").addEventListener("click", () => byId("procedures-dialog").close());

// --- closing the day -------------------------------------------------------------------------

async function closeDay(office, confirm, node) {
  if (node) node.disabled = true;
  try {
    const report = await sendAction(`/api/offices/${encodeURIComponent(office)}/day/close`, { confirm });
    byId("close-dialog").close();
    showReport(office, report);
    showMessage(t("supervisor.day_closed", { day: report.day }), "info");
  } catch (e) {
    if (e instanceof ApiError && e.code === "visitors_waiting") {
      const view = views.get(office);
      closing = office;
      byId("close-question").textContent = t("supervisor.close_confirm", {
        n: view ? view.still_waiting.count + view.still_waiting.active : "?" });
      byId("close-dialog").showModal();
    } else {
      showMessage(errorText(e));
    }
  } finally {
    if (node) node.disabled = false;
  }
}

byId("close-confirm").addEventListener("click", (event) => closeDay(closing, true, event.target));
byId("close-cancel").addEventListener("click", () => byId("close-dialog").close());

function showReport(office, report) {
  const box = document.querySelector(`.sv-office[data-office="${office}"] .sv-report`);
  const parts = [el("h4", "", `${t("supervisor.report_heading")} (${report.day})`)];
  const links = el("p", "sv-downloads");
  for (const [fmt, key] of [["xlsx", "supervisor.daily_xlsx"], ["csv", "supervisor.daily_csv"]]) {
    const link = el("a", `btn sv-small sv-download-${fmt}`, t(key));
    link.href = report.downloads[fmt];
    link.download = "";
    links.append(link);
  }
  parts.push(links);
  // The archive's day report (日報): its first tables (the visitors and the waits per procedure).
  for (const table of (report.archive_report ? report.archive_report.tables.slice(0, 2) : [])) parts.push(dataTable(table));
  box.replaceChildren(...parts);
}

// Longest waits and minutes in service grow with time, without any event.
setInterval(() => { for (const id of views.keys()) renderOffice(id); }, TICK_MS);

session.start();
