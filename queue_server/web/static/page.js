// A page's texts and data, as base.html embeds them: #page-catalog and #page-data.
//
//   import { t, pageData, setLanguage } from "/static/common/page.js";
//   t("kiosk.waiting", { n: 3 })        // "3 人待ち"; an unknown key returns the key itself
//
// A page rendered with all_languages=True embeds {lang: catalog}; setLanguage(lang) picks one.

function readJson(id) {
  const element = document.getElementById(id);
  return element ? JSON.parse(element.textContent) : {};
}

const embedded = readJson("page-catalog");
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
  return text;
}

/** Fill every [data-t] element's text (and [data-t-label] aria-label) from the catalog. */
export function translateDocument(root = document) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  for (const el of root.querySelectorAll("[data-t-label]")) el.setAttribute("aria-label", t(el.dataset.tLabel));
}

/** Minutes as a whole number for people: at least 1. */
export function roundMinutes(minutes) {
  return Math.max(1, Math.round(minutes));
}
