// The day-and-slot picker of the booking pages (_booking.html's picker macro): a month calendar
// marking which days have room (○), are full (×), closed or past (－), and holiday openings (休);
// then the chosen day's slots with their remaining places. Full slots and unavailable days are
// shown but cannot be chosen.
//
//   const picker = new SlotPicker("book", { office, onChoose(choice) {} });   // choice: {day, slot, …} or null
//   await picker.show("pickup");

import { escapeHtml, tHtml } from "/static/common/page.js";
import * as bookings from "./bookings.js";

const $ = (id) => document.getElementById(id);

/** The first day (UTC noon) of the month of ``date``. */
function monthStart(date) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1, 12));
}

function addMonths(date, n) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + n, 1, 12));
}

/**
 * Every day of the booking window with its state: ``open`` (a slot with room), ``full`` (slots, none
 * with room), ``closed`` (the office is closed), ``past``, or ``unavailable`` (open, but booking has
 * closed or not opened: the answer lists only days with a bookable slot). Holiday openings and
 * booking-only days are marked.
 */
function dayStates(available, marks, procedure) {
  const listed = new Map(available.map((d) => [d.day, d]));
  const closed = new Set(marks.closed);
  const holidays = new Set(marks.holiday_openings);
  const only = new Set((marks.booking_only || {})[procedure] || []);
  const days = new Map();
  const first = bookings.dayDate(marks.today);
  for (let date = monthStart(first); bookings.dayOf(date) <= marks.last; date = new Date(date.getTime() + 86_400_000)) {
    const day = bookings.dayOf(date);
    const found = listed.get(day);
    const state = day < marks.today ? "past" : found ? (found.remaining > 0 ? "open" : "full")
      : closed.has(day) ? "closed" : "unavailable";
    days.set(day, { day, state, slots: found ? found.slots : [], holiday_opening: holidays.has(day),
                    booking_only: only.has(day) });
  }
  return days;
}

const DAY_MARK = { open: "○", full: "×", closed: "－", past: "－", unavailable: "－" };

export class SlotPicker {
  constructor(prefix, { office, marks, onChoose = () => {}, onError = () => {} }) {
    this.prefix = prefix;
    this.office = office;
    this.marks = marks;           // page_data.calendar: today, last, days, closed, holiday_openings, booking_only
    this.onChoose = onChoose;
    this.onError = onError;
    this.procedure = null;
    this.days = new Map();        // day → {day, state, free, holiday_opening, booking_only}
    this.month = null;            // Date: the month shown
    this.first = null;            // the first and last month with days of the window
    this.last = null;
    this.day = null;              // the chosen day
    this.slot = null;             // the chosen slot
    this.el = (name) => $(`${prefix}-${name}`);
    this.el("prev").addEventListener("click", () => this.showMonth(addMonths(this.month, -1)));
    this.el("next").addEventListener("click", () => this.showMonth(addMonths(this.month, 1)));
    const lang = document.documentElement.lang || "ja";
    // Sunday first, as Japanese calendars are.
    const weekday = new Intl.DateTimeFormat(lang, { weekday: "short", timeZone: "UTC" });
    this.el("weekdays").replaceChildren(...Array.from({ length: 7 }, (_, i) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = weekday.format(new Date(Date.UTC(2026, 10, 1 + i, 12)));   // 2026-11-01 is a Sunday
      if (i === 0) th.className = "sunday";
      if (i === 6) th.className = "saturday";
      return th;
    }));
  }

  /** Show the calendar of ``procedure`` (the slot step stays hidden until a day is chosen). */
  async show(procedure) {
    this.procedure = procedure;
    this.day = this.slot = null;
    this.el("day-step").hidden = false;
    this.el("slot-step").hidden = true;
    this.onChoose(null);
    const { today, last } = this.marks;
    let answer;
    try {
      answer = await bookings.availability(this.office, procedure, today, this.marks.days);
    } catch (error) {
      this.onError(error);
      return;
    }
    if (this.procedure !== procedure) return;   // another procedure was chosen meanwhile
    this.days = dayStates(answer.days, this.marks, procedure);
    const firstOpen = [...this.days.values()].find((d) => d.state === "open");
    this.first = monthStart(bookings.dayDate(today));
    this.last = monthStart(bookings.dayDate(last));
    this.showMonth(monthStart(bookings.dayDate(firstOpen ? firstOpen.day : today)));
    document.body.dataset.calendar = "ready";
  }

  /** Read the calendar again, and the chosen day's slots (after a refusal: the slot filled up meanwhile). */
  async refresh() {
    const { day } = this;
    await this.show(this.procedure);
    if (day && this.days.get(day)) this.chooseDay(day);
  }

  showMonth(month) {
    if (month < this.first) month = this.first;
    if (month > this.last) month = this.last;
    this.month = month;
    this.el("month").textContent = bookings.formatMonth(month);
    this.el("prev").disabled = month <= this.first;
    this.el("next").disabled = month >= this.last;
    const rows = [];
    let row = document.createElement("tr");
    for (let i = 0; i < month.getUTCDay(); i++) row.append(document.createElement("td"));
    for (let date = new Date(month); date.getUTCMonth() === month.getUTCMonth();
      date = new Date(date.getTime() + 86_400_000)) {
      row.append(this.dayCell(bookings.dayOf(date), date));
      if (date.getUTCDay() === 6) { rows.push(row); row = document.createElement("tr"); }
    }
    if (row.children.length) {
      while (row.children.length < 7) row.append(document.createElement("td"));
      rows.push(row);
    }
    this.el("days").replaceChildren(...rows);
  }

  dayCell(day, date) {
    const info = this.days.get(day) || { day, state: "unavailable" };
    const td = document.createElement("td");
    td.dataset.day = day;
    td.dataset.state = info.state;
    if (info.holiday_opening) td.dataset.holiday = "true";
    const choosable = info.state === "open";
    const cell = document.createElement(choosable ? "button" : "span");
    cell.className = `day day-${info.state}`;
    const holiday = info.holiday_opening
      ? `<span class="day-holiday" aria-hidden="true">休</span><span class="visually-hidden">${tHtml("booking.holiday_opening")}</span>` : "";
    const only = info.booking_only ? `<span class="visually-hidden">${tHtml("booking.booking_only")}</span>` : "";
    cell.innerHTML = `<span class="day-number">${date.getUTCDate()}</span>`
      + `<span class="day-mark" aria-hidden="true">${DAY_MARK[info.state] || "－"}</span>${holiday}`
      + `<span class="visually-hidden">${escapeHtml(bookings.formatDay(day))} ${tHtml(`booking.day_${info.state}`)}</span>${only}`;
    if (choosable) {
      cell.type = "button";
      cell.setAttribute("aria-pressed", String(day === this.day));
      cell.addEventListener("click", () => this.chooseDay(day));
    }
    td.append(cell);
    return td;
  }

  chooseDay(day) {
    this.day = day;
    this.slot = null;
    this.onChoose(null);
    for (const button of this.el("days").querySelectorAll("button.day")) {
      button.setAttribute("aria-pressed", String(button.parentElement.dataset.day === day));
    }
    const info = this.days.get(day) || {};
    const notes = [info.holiday_opening ? tHtml("booking.holiday_opening") : "", info.booking_only ? tHtml("booking.booking_only") : ""]
      .filter(Boolean).join(" ・ ");
    this.el("chosen-day").innerHTML = escapeHtml(bookings.formatDay(day)) + (notes ? ` <span class="day-note">${notes}</span>` : "");
    this.el("slot-step").hidden = false;
    const buttons = (info.slots || []).map((slot) => this.slotButton(slot));
    this.el("slots").replaceChildren(...buttons);
    this.el("slots-none").hidden = buttons.length > 0;
    const first = this.el("slots").querySelector("button:not([disabled])");
    if (first) first.focus();
  }

  slotButton(slot) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn slot";
    button.dataset.slot = slot.slot;
    const free = Math.max(0, slot.remaining);
    const available = free > 0;
    button.dataset.state = available ? "open" : "full";
    button.innerHTML = `<span class="slot-time">${escapeHtml(slot.slot)}</span>`
      + `<span class="slot-free">${available ? tHtml("booking.slot_free", { n: free }) : tHtml("booking.slot_full")}</span>`;
    if (!available) {
      button.disabled = true;
    } else {
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        this.slot = slot;
        for (const other of this.el("slots").querySelectorAll("button.slot")) {
          if (!other.disabled) other.setAttribute("aria-pressed", String(other === button));
        }
        this.onChoose({ procedure: this.procedure, day: this.day, slot: slot.slot, free });
      });
    }
    return button;
  }

  hide() {
    this.el("day-step").hidden = true;
    this.el("slot-step").hidden = true;
  }
}

