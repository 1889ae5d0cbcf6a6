// What the citizen's two booking pages share: messages, the summary list, the code and QR code.

import { ApiError } from "/static/common/api.js";
import { escapeHtml, nameHtml, officeTime, pageData, t, tHtml } from "/static/common/page.js";
import * as bookings from "./bookings.js";

const config = pageData();
export const $ = (id) => document.getElementById(id);

/** An API error as a sentence for the visitor, in the page's language. */
export function errorHtml(error) {
  const code = error instanceof ApiError ? error.code : "unavailable";
  const key = `error.${code}.message`;
  return t(key) === key ? tHtml("error.unavailable.message") : tHtml(key);
}

export function showMessage(html) {
  const box = $("message");
  box.innerHTML = html;
  box.hidden = false;
}

export function clearMessage() {
  $("message").hidden = true;
}

/** A procedure's name as HTML in the page's language. */
export function procedureHtml(procedure) {
  const lang = document.documentElement.dataset.lang;
  const plain = (procedure.names && procedure.names[lang]) || procedure.name || procedure.id;
  return nameHtml(config.office, "procedures", procedure.id, "name", plain);
}

/** Fill a <dl> with rows of [label key, value HTML]. */
export function fillSummary(list, rows) {
  list.replaceChildren(...rows.flatMap(([key, html]) => {
    const dt = document.createElement("dt");
    dt.innerHTML = tHtml(key);
    const dd = document.createElement("dd");
    dd.innerHTML = html;
    dd.dataset.field = key.split(".").pop();
    return [dt, dd];
  }));
}

/** The rows of a booking's summary: procedure, date, time. */
export function bookingRows(procedure, day, slot) {
  return [["booking.summary_procedure", procedureHtml(procedure)],
          ["booking.summary_day", escapeHtml(bookings.formatDay(day, undefined, true))],
          ["booking.summary_time", escapeHtml(slot)]];
}

/** Show the code large, spelled character by character, and the QR code of the secret link. */
export function showCode(prefix, code, secret) {
  $(`${prefix}-code`).textContent = bookings.formatCode(code);
  const spelled = bookings.spell(code, t("booking.letter_readings"));
  const half = (part) => `<span class="spelled-half">${part.map(({ char, reading }) =>
    `<span class="spelled"><span class="spelled-char">${escapeHtml(char)}</span><span class="spelled-reading">${escapeHtml(reading)}</span></span>`).join("")}</span>`;
  // In the code's two halves, as it is written (XXXX-XXXX): a narrow phone breaks between them only.
  $(`${prefix}-code-spelled`).innerHTML = half(spelled.slice(0, 4)) + half(spelled.slice(4));
  const qr = $(`${prefix}-qr`);
  if (secret) {
    qr.src = `/book/${encodeURIComponent(config.office)}/b/${encodeURIComponent(secret)}/qr.svg`;
    qr.hidden = false;
  }
}

/** The check-in rules of a booked visit in plain words: from when, and until when it is kept. */
export function showRules(prefix, booking) {
  const box = $(`${prefix}-rules`);
  box.hidden = !(booking.state === "booked" && booking.checkin_opens && booking.late_after);
  if (!box.hidden) {
    box.innerHTML = tHtml("booking.rules", { opens: officeTime(new Date(booking.checkin_opens)),
                                             late: officeTime(new Date(booking.late_after)) });
  }
}

/** The secret link's page, in this page's language. */
export function linkPath(secret) {
  return `/book/${encodeURIComponent(config.office)}/b/${encodeURIComponent(secret)}?lang=${encodeURIComponent(config.lang)}`;
}
