// Calling the JSON API from a page: JSON in and out, the CSRF header for staff pages, and an
// Idempotency-Key so a retried or doubled request is applied once.
//
//   import { api, ApiError, newIdempotencyKey, setCsrfToken } from "/static/common/api.js";
//   const data = await api("/api/offices/honcho/tickets", { method: "POST", body: {procedure: "pickup"},
//                                                          idempotencyKey: newIdempotencyKey() });
//   try { ... } catch (e) { if (e instanceof ApiError) show(t(`error.${e.code}.message`)); }
//
// A failure always throws ApiError with the server's error code, or "network" when there was no
// answer (offline, timeout) and "unavailable" for an answer that is not our JSON.

let csrfToken = "";

/** Use this CSRF token (from POST/GET /api/session) on every state-changing request. */
export function setCsrfToken(token) {
  csrfToken = token || "";
}

export class ApiError extends Error {
  constructor(status, code, message, field = null, details = null) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = field;
    this.details = details;   // what a page needs to say why in the reader's language (e.g. a time)
  }
}

/** A random key of 32 hex digits (crypto.randomUUID needs HTTPS; a kiosk on the LAN may not have it). */
export function newIdempotencyKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** fetch a JSON API path; returns the parsed answer or throws ApiError. */
export async function api(path, { method = "GET", body, idempotencyKey, timeoutMs = 10_000, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET" && method !== "HEAD" && csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  if (idempotencyKey) init.headers["Idempotency-Key"] = idempotencyKey;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  init.signal = controller.signal;
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message || e));
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    throw new ApiError(response.status, "unavailable", `HTTP ${response.status}`);
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || "unavailable", error.message, error.field || null,
                       error.details || null);
  }
  return data;
}
