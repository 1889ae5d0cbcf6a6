// A page's texts and data, as base.html embeds them: #page-catalog and #page-data.
//
//   import { t, pageData, setLanguage } from "/static/common/page.js";
//   t("kiosk.waiting", { n: 3 })        // "3 人待ち"; an unknown key returns the key itself
//
// A page rendered with all_languages=True embeds {lang: catalog}; setLanguage(lang) picks one.
//
// Japanese texts are shown as HTML the server prepared (#page-catalog-html, page_data.names_html):
// phrases joined by <wbr> so lines break between phrases, and ruby readings in やさしい日本語.
//   setText(element, "kiosk.waiting", { n: 3 })     // element.innerHTML = tHtml(…)
//   nameHtml(office, "procedures", id, "name", plain) // a configured name, else plain text escaped

function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : {};
}

const embedded = readJson("page-catalog");
const embeddedHtml = readJson("page-catalog-html");   // {ja: {key: html}, "ja-easy": …}
const data = readJson("page-data");
const multi = Object.values(embedded).some((v) => typeof v === "object");
let language = document.documentElement.dataset.lang || "ja";
let catalog = multi ? (embedded[language] || embedded.ja || {}) : embedded;

const HTML_LANG = { ja: "ja", "ja-easy": "ja", en: "en", zh: "zh-Hans", ko: "ko", pt: "pt-BR", vi: "vi" };

export function pageData() {
  return data;
}

/** "HH:MM" of ``date`` (default now) in the office's time zone. */
export function officeTime(date = new Date()) {
  return new Intl.DateTimeFormat("ja-JP", { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
                                            timeZone: data.timezone || undefined }).format(date);
}

/** "YYYY/M/D HH:MM" of ``date`` in the office's time zone. */
export function officeDateTime(date) {
  const parts = new Intl.DateTimeFormat("ja-JP", { year: "numeric", month: "numeric", day: "numeric",
                                                   timeZone: data.timezone || undefined }).format(date);
  return `${parts} ${officeTime(date)}`;
}

/** "11月24日(火)" of a business day (YYYY-MM-DD), in the page's language (its <html lang>). */
export function dayText(isoDate) {
  return new Intl.DateTimeFormat(document.documentElement.lang || "ja",
                                 { month: "long", day: "numeric", weekday: "short", timeZone: "UTC" })
    .format(new Date(`${isoDate}T12:00:00Z`));
}

/** "12月3日(木) 10:00" of a booking slot ({day: "20261203", slot: "10:00"}, as the congestion view
 *  gives ``next_booking``): the congestion page and the kiosk say the next free slot alike. */
export function slotText(slot) {
  return `${dayText(`${slot.day.slice(0, 4)}-${slot.day.slice(4, 6)}-${slot.day.slice(6, 8)}`)} ${slot.slot}`;
}

/** The page's current language code ("ja", "en", …). */
export function currentLanguage() {
  return language;
}

/** The languages this page has catalogs for (pages with all_languages=True). */
export function languages() {
  return multi ? Object.keys(embedded) : [language];
}

/** Switch the page's language (needs all_languages=True); sets <html lang>. */
export function setLanguage(lang) {
  if (!multi || !embedded[lang]) return false;
  language = lang;
  catalog = embedded[lang];
  document.documentElement.lang = HTML_LANG[lang] || lang;
  document.documentElement.dataset.lang = lang;
  return true;
}

/** The catalog text of key in the page's language (Japanese if missing), with {name}s filled in. */
export function t(key, params = {}, lang = null) {
  const source = lang && multi ? (embedded[lang] || catalog) : catalog;
  let text = source[key] ?? (multi && embedded.ja ? embedded.ja[key] : undefined);
  if (text === undefined) {
    console.warn("missing catalog text", key);
    return key;
  }
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return (lang || language) === "ko" ? resolveKoreanParticles(text) : text;
}

// Korean particles written in two forms take the one the word before them needs, as read:
// 「3번 창구(으)로」 → 「3번 창구로」, 「카드 수령」(으)로 → 「카드 수령」으로. The rules of
// queue_server/korean.py (its tests are the specification); an unreadable word keeps the notation.
const PARTICLES = { "(으)로": ["으로", "로"], "을(를)": ["을", "를"], "이(가)": ["이", "가"],
                    "은(는)": ["은", "는"], "과(와)": ["과", "와"] };
const DIGIT_ENDING = { 1: "rieul", 2: "vowel", 3: "consonant", 4: "vowel", 5: "vowel", 6: "consonant",
                       7: "rieul", 8: "rieul", 9: "vowel", 0: "consonant" };
const LETTER_ENDING = { L: "rieul", R: "rieul", M: "consonant", N: "consonant" };

function koreanEnding(word) {
  const last = word.replace(/[\s\u3000」』)）\]"'”’》〉]+$/u, "").slice(-1);
  if (!last) return null;
  const code = last.codePointAt(0);
  if (code >= 0xac00 && code <= 0xd7a3) {
    const final = (code - 0xac00) % 28;
    return final === 0 ? "vowel" : final === 8 ? "rieul" : "consonant";
  }
  if (/[0-9]/.test(last)) return DIGIT_ENDING[last];
  if (/[A-Za-z]/.test(last)) return LETTER_ENDING[last.toUpperCase()] || "vowel";
  return null;
}

export function resolveKoreanParticles(text) {
  return text.replace(/\(으\)로|을\(를\)|이\(가\)|은\(는\)|과\(와\)/gu, (notation, offset, whole) => {
    const [afterConsonant, afterVowel] = PARTICLES[notation];
    const end = koreanEnding(whole.slice(0, offset));
    if (end === null) return notation;
    return end === "vowel" || (end === "rieul" && notation === "(으)로") ? afterVowel : afterConsonant;
  });
}

/** ``text`` with &, <, >, " and ' escaped for innerHTML. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/**
 * The catalog text of key as HTML: Japanese broken by phrase (ruby in やさしい日本語) as the server
 * prepared it, other languages escaped. A param is text, or {text, html} for a name that has HTML.
 */
export function tHtml(key, params = {}, lang = null) {
  const code = lang || language;
  const prepared = embeddedHtml[code] && embeddedHtml[code][key];
  const isName = (v) => v !== null && typeof v === "object";
  if (prepared === undefined) {
    return escapeHtml(t(key, Object.fromEntries(Object.entries(params).map(([k, v]) => [k, isName(v) ? v.text : v])), lang));
  }
  let html = prepared;
  for (const [name, value] of Object.entries(params)) {
    html = html.replaceAll(`{${name}}`, isName(value) ? value.html : escapeHtml(value));
  }
  return html;
}

/** Set element's content to the catalog text of key (HTML for Japanese, see tHtml). */
export function setText(element, key, params = {}, lang = null) {
  element.innerHTML = tHtml(key, params, lang);
}

/**
 * An office's configured name as HTML in the page's language: page_data.names_html[office][kind]
 * (kind "procedures" with field "name"/"description", "counters", or "name" for the office itself),
 * else ``plain`` escaped.
 */
export function nameHtml(office, kind, id, field, plain, lang = null) {
  const code = lang || language;
  let entry = data.names_html && data.names_html[office];
  if (entry) entry = kind === "name" ? entry.name : entry[kind] && entry[kind][id];
  if (entry && field) entry = entry[field];
  return (entry && entry[code]) || escapeHtml(plain);
}

/** Fill every [data-t] element's text (and [data-t-label] aria-label) from the catalog. */
export function translateDocument(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) setText(el, el.dataset.t);
  for (const el of root.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t(el.dataset.tLabel));
}

/** Minutes as a whole number for people: at least 1. */
export function roundMinutes(minutes) {
  return Math.max(1, Math.round(minutes));
}
