// Sending a counter action so that it is applied exactly once.
//
// Every press gets a fresh Idempotency-Key; when the answer does not come (timeout, network, the
// server restarting) the same request is sent again with the same key, so the server applies it
// once whatever happened to the first attempt. The caller disables its buttons while in flight,
// so a double click never sends two presses.

import { api, ApiError, newIdempotencyKey } from "/static/common/api.js";

const ATTEMPTS = 4;
const TIMEOUT_MS = 8_000;
const RETRY_DELAYS_MS = [500, 1_500, 3_000];
const RETRIED = new Set(["network", "unavailable"]);    // no answer, or the store briefly down

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** POST a counter action; ``onRetry(attempt)`` is told before each resend. Throws ApiError. */
export async function sendAction(path, body, { onRetry = () => {} } = {}) {
  const key = newIdempotencyKey();
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await api(path, { method: "POST", body, idempotencyKey: key, timeoutMs: TIMEOUT_MS });
    } catch (e) {
      const retry = e instanceof ApiError && RETRIED.has(e.code) && attempt < ATTEMPTS;
      if (!retry) throw e;
      onRetry(attempt);
      await sleep(RETRY_DELAYS_MS[Math.min(attempt - 1, RETRY_DELAYS_MS.length - 1)]);
    }
  }
}
