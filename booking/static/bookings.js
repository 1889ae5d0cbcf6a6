// The bookings API as the booking pages and the call-centre desk use it, and how a booking is
// written for people: days, times, the code and its readings.
//
//   import * as bookings from "/static/booking/bookings.js";
//   const { days } = await bookings.availability("honcho", "pickup", "20261201", 29);   // [{day, remaining, slots}]
//   bookings.formatCode("ACDEFHJK")   // "ACDE-FHJK"
//
// Every state-changing call sends an Idempotency-Key; the caller keeps one key per intended action,
// so a retried press is applied once.

import { api } from "/static/common/api.js";

export const CODE_ALPHABET = "ACDEFHJKLMNPQRTUVWXY34679";
const CODE_CHARS = new RegExp(`^[${CODE_ALPHABET}]{8}$`);

const officePath = (office) => `/api/offices/${encodeURIComponent(office)}`;
const query = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();

// --- the public API ----------------------------------------------------------------------------

/** The bookable days of a procedure from ``from`` (YYYYMMDD) on, each with its slots and places left. */
export function availability(office, procedure, from, days) {
  return api(`${officePath(office)}/bookings/availability?${query({ procedure, from, days })}`);
}

/** Book a slot: {procedure, day, slot, reference?, lang?} → {code, secret, link, booking}. */
export function book(office, body, idempotencyKey) {
  return api(`${officePath(office)}/bookings`, { method: "POST", body, idempotencyKey });
}

const secretPath = (secret) => `/api/bookings/by-secret/${encodeURIComponent(secret)}`;

/** The booking behind a secret link: {booking}. */
export function bySecret(secret) {
  return api(secretPath(secret));
}

/** Move a booking (by its secret link) to another day and slot, in one step. */
export function changeBySecret(secret, body, idempotencyKey) {
  return api(secretPath(secret), { method: "PUT", body, idempotencyKey });
}

/** Cancel a booking by its secret link. */
export function cancelBySecret(secret, idempotencyKey) {
  return api(secretPath(secret), { method: "DELETE", idempotencyKey });
}

/**
 * A code → {booking, secret, link}. Anonymous lookups are limited per address (misses count); for
 * signed-in staff the booking carries its reference. ``office`` narrows the search to one office.
 */
export function lookup(code, office = "") {
  return api("/api/bookings/lookup", { method: "POST", body: office ? { code, office } : { code } });
}

// --- the staff API (call centre) ---------------------------------------------------------------

/** The next free slots of a procedure at every office that books it, soonest first: {slots: [{office, day, slot, remaining}]}. */
export function nextFree(procedure, limit = 12) {
  return api(`/api/callcenter/slots?${query({ procedure, limit })}`);
}

/** Book for a caller: {office, procedure, day, slot, reference?} → {code, secret, link, booking}. */
export function staffBook(body, idempotencyKey) {
  return api("/api/callcenter/bookings", { method: "POST", body, idempotencyKey });
}

const codePath = (office, code) => `${officePath(office)}/bookings/by-code/${encodeURIComponent(normaliseCode(code))}`;

/** Change a booking (staff) to another day and slot. */
export function staffChange(office, code, body, idempotencyKey) {
  return api(codePath(office, code), { method: "PUT", body, idempotencyKey });
}

/** Cancel a booking (staff). */
export function staffCancel(office, code, idempotencyKey) {
  return api(codePath(office, code), { method: "DELETE", idempotencyKey });
}

/** An office's bookings of a day (staff): {bookings: [...]}. */
export function dayList(office, day) {
  return api(`${officePath(office)}/bookings?${query({ day })}`);
}

// --- writing bookings for people -----------------------------------------------------------------

/** "ACDEFHJK" → "ACDE-FHJK". */
export function formatCode(code) {
  const plain = normaliseCode(code);
  return plain.length === 8 ? `${plain.slice(0, 4)}-${plain.slice(4)}` : plain;
}

/** What a person typed → the code's 8 characters: any case, spaces and hyphens ignored. */
export function normaliseCode(text) {
  return String(text || "").normalize("NFKC").toUpperCase().replace(/[\s\-‐－ー]/gu, "");
}

/** Whether ``text`` can be a code at all (8 characters of the alphabet); the check character is the server's. */
export function looksLikeCode(text) {
  return CODE_CHARS.test(normaliseCode(text));
}

/** "20261203" → a Date at noon UTC of that day (format it with timeZone "UTC"). */
export function dayDate(day) {
  return new Date(Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)), 12));
}

/** "YYYYMMDD" of a Date made by dayDate (or any Date, read in UTC). */
export function dayOf(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}`;
}

/** "12月3日(木)" / "Thu, December 3" in the page's language. */
export function formatDay(day, lang = document.documentElement.lang || "ja", withYear = false) {
  return new Intl.DateTimeFormat(lang, { year: withYear ? "numeric" : undefined, month: "long", day: "numeric",
                                         weekday: "short", timeZone: "UTC" }).format(dayDate(day));
}

/** "2026年12月" / "December 2026". */
export function formatMonth(date, lang = document.documentElement.lang || "ja") {
  return new Intl.DateTimeFormat(lang, { year: "numeric", month: "long", timeZone: "UTC" }).format(date);
}

/**
 * The code's characters with how to say each: ``readings`` is the catalog's "A:エー C:シー …" (letters
 * sound alike on the phone), so "AC3" → [{char: "A", reading: "エー"}, …].
 */
export function spell(code, readings) {
  const table = new Map(String(readings).split(/\s+/u).filter(Boolean).map((pair) => {
    const at = pair.indexOf(":");
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
  return [...normaliseCode(code)].map((char) => ({ char, reading: table.get(char) || char }));
}
