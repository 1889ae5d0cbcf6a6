// The two lines a visitor reads about their wait, shared by the kiosk's ticket screen and the
// status page: people ahead, and the estimate. They must be true and must not say the same thing
// twice: "called soon" only when a counter that serves the procedure will call (there is an
// estimate); with no such counter open, the estimate line says so. Both are HTML from tHtml
// (escaped; Japanese broken by phrase, with readings in やさしい日本語).

import { roundMinutes, tHtml } from "/static/common/page.js";

/** Whether ``estimate`` ({median_minutes, low_minutes, high_minutes, past_closing}) gives minutes. */
export function hasMinutes(estimate) {
  return Boolean(estimate && typeof estimate.median_minutes === "number");
}

/** "n ahead"; with nobody ahead, "called soon" when a counter will call, else just "nobody ahead". */
export function aheadHtml(ahead, estimate) {
  if (ahead > 0) return tHtml("common.ahead", { n: ahead });
  return hasMinutes(estimate) ? tHtml("common.ahead_none") : tHtml("common.ahead_zero");
}

/** The estimate line, or "" when there is nothing to add to the ahead line (or nothing known yet). */
export function estimateHtml(estimate, ahead) {
  if (!estimate) return "";                                 // not computed yet: say nothing
  if (!hasMinutes(estimate)) return tHtml("common.no_counter_open");
  if (estimate.median_minutes < 1) return ahead > 0 ? tHtml("common.no_wait") : "";   // "called soon" said it
  return tHtml("common.estimate", {
    median: roundMinutes(estimate.median_minutes), low: Math.max(0, Math.round(estimate.low_minutes)),
    high: roundMinutes(estimate.high_minutes),
  });
}
