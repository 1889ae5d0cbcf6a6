// The display's announcer: each call is the chime, then the voice clips from the announcement API,
// played one call after another — never overlapping, a recall spoken again, a burst in the order
// it happened.
//
// A burst must not leave the last call spoken half a minute late (a call takes 5–10 s to speak).
// When calls wait behind the one about to be spoken (a backlog), announcements get shorter:
//   - calls to the same counter collapse into the newest one (that counter has moved on to it;
//     the older number stays on screen), and a recall into its call; numbers not announced yet
//     go before recalls of numbers that were;
//   - the visitor's second language is left out; no chime between calls spoken back to back,
//     and a shorter pause;
//   - a call that would start more than LATE_LIMIT_MS after it happened is not spoken at all
//     (it is on the screen): a late announcement sends people to a counter that has moved on.
// Every decision is kept in `log` (the newest LOG_SIZE): what was spoken, collapsed or skipped.
//
//   const announcer = new Announcer({ office: "honcho", audio: document.querySelector("audio"),
//                                     onBlocked, onUnblocked, onSpeaking });
//   announcer.announce({ number: "300", counter: "3", lang: "en", at: 1732330000000 });
//   announcer.unblock();   // from a user's tap, after onBlocked: playback resumes where it stopped
//
// One <audio> element is reused for every clip (media elements are the usual leak in week-long
// pages). Every wait has a time limit, so a clip that never ends cannot stall the queue.

export const CHIME_URL = "/api/audio/chime.wav";
const MAX_QUEUE = 30;               // calls waiting to be spoken; beyond this the oldest is dropped
const STALE_MS = 5 * 60_000;        // a call not spoken within 5 minutes (sound blocked) is skipped
const REMEMBERED = 200;             // calls remembered as spoken, so none is spoken twice
const CLIP_LOAD_MS = 10_000;        // a clip must start within this…
const CLIP_SLACK_MS = 3_000;        // …and end within its duration plus this
const GAP_MS = 700;                 // silence between two calls
const BACKLOG_GAP_MS = 250;         // …and between two calls of a backlog
const LATE_LIMIT_MS = 10_000;       // no call starts being spoken later than this after it happened
const CONTINUING_MS = 2_000;        // a call starting this soon after the last one ended gets no chime
const LOG_SIZE = 100;
const FETCH_TIMEOUT_MS = 8_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The key of one call: a recall has its own time, so it is announced again. */
export function callKey(call) {
  return `${call.number}|${call.counter}|${call.at}`;
}

export class Announcer {
  constructor({ office, audio, onBlocked = () => {}, onUnblocked = () => {}, onSpeaking = () => {} }) {
    this.office = office;
    this.audio = audio;
    this.onBlocked = onBlocked;
    this.onUnblocked = onUnblocked;
    this.onSpeaking = onSpeaking;
    this.queue = [];
    this.seen = new Set();          // insertion-ordered: the oldest key is dropped first
    this.running = false;
    this.blocked = false;
    this.releaseBlock = null;
    this.lastEnded = -Infinity;     // performance.now() when the last announcement ended
    this.unblockedAt = -Infinity;   // performance.now() when a tap last allowed sound
    this.log = [];                  // [{number, counter, recall, outcome, late_ms, chime, langs, skipped, into}]
  }

  record(call, outcome, details = {}) {
    this.log.push({ number: call.number, counter: call.counter, recall: Boolean(call.recall), outcome,
                    late_ms: Math.round(performance.now() - call.queuedAt), ...details });
    if (this.log.length > LOG_SIZE) this.log.shift();
  }

  /** Keep only the newest queued call of each counter (the others are recorded as collapsed into it),
   *  numbers not announced yet before recalls of numbers that were. */
  collapse() {
    const newest = new Map();
    for (const call of this.queue) newest.set(call.counter, call);
    const kept = [];
    for (const call of this.queue) {
      const latest = newest.get(call.counter);
      if (latest === call) {
        kept.push(call);
        continue;
      }
      this.record(call, "merged", { into: latest.number });
      // A recall whose first call was never spoken announces that number for the first time.
      if (!call.recall && call.number === latest.number) latest.recall = false;
    }
    this.queue = [...kept.filter((call) => !call.recall), ...kept.filter((call) => call.recall)];
  }

  /** Queue a call unless it was already queued or spoken; returns whether it was queued. */
  announce(call) {
    const key = callKey(call);
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.values().next().value);
    this.queue.push({ ...call, key, queuedAt: performance.now() });
    if (this.queue.length > MAX_QUEUE) {
      const dropped = this.queue.shift();
      console.warn("announcer: queue full, not announcing", dropped.number);
      this.record(dropped, "dropped");
    }
    this.run();
    return true;
  }

  /** Remember calls as already spoken (those on screen when the page starts). */
  remember(calls) {
    for (const call of calls) {
      this.seen.add(callKey(call));
      if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.values().next().value);
    }
  }

  /** Called from a user gesture: the page may play sound now. */
  unblock() {
    if (!this.blocked) return;
    this.blocked = false;
    this.unblockedAt = performance.now();
    this.onUnblocked();
    if (this.releaseBlock) this.releaseBlock();
  }

  async run() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        this.collapse();
        const call = this.queue.shift();
        const late = performance.now() - call.queuedAt;
        if (late > STALE_MS) {
          console.warn("announcer: skipping a stale call", call.number);
          this.record(call, "stale");
          continue;
        }
        // Time the browser blocked sound does not count: after the tap, what waited is spoken.
        if (performance.now() - Math.max(call.queuedAt, this.unblockedAt) > LATE_LIMIT_MS) {
          console.warn("announcer: too late to announce", call.number);
          this.record(call, "late");
          continue;
        }
        const backlog = this.queue.length > 0;
        const chime = performance.now() - this.lastEnded > CONTINUING_MS;
        const entry = { backlog, chime, langs: [], skipped: [] };
        this.record(call, "spoken", entry);
        try {
          await this.speak(call, entry);
        } catch (e) {
          console.error("announcer: call failed", call.number, e);
        }
        this.lastEnded = performance.now();
        await sleep(this.queue.length ? BACKLOG_GAP_MS : GAP_MS);
      }
    } finally {
      this.running = false;
      this.onSpeaking(null);
    }
  }

  /** Speak one call; ``entry`` (its log entry) learns which languages were spoken or left out. */
  async speak(call, entry) {
    this.onSpeaking(call);
    const clips = this.fetchClips(call);    // rendered (or found warm) while the chime plays
    if (entry.chime) await this.play(CHIME_URL);
    for (const [index, clip] of (await clips).entries()) {
      // The first clip is Japanese; the visitor's language follows only when nobody else waits.
      if (index > 0 && this.queue.length > 0) {
        entry.skipped.push(clip.lang);
        continue;
      }
      entry.langs.push(clip.lang);
      await this.play(clip.url);
    }
  }

  /** The voice clips of a call, in order; none (chime only) when the API cannot answer. */
  async fetchClips(call) {
    const query = new URLSearchParams({ number: call.number, counter: call.counter });
    if (call.lang) query.set("lang", call.lang);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(`/api/offices/${encodeURIComponent(this.office)}/announcement?${query}`,
                                   { signal: controller.signal, headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) throw new Error(data && data.error ? `${data.error.code}: ${data.error.message}` : response.status);
      return data.audio.filter((clip) => clip.kind !== "chime").map((clip) => ({ url: clip.url, lang: clip.lang }));
    } catch (e) {
      console.warn("announcer: no voice for", call.number, String(e));
      return [];
    } finally {
      clearTimeout(timer);
    }
  }

  /** Play one clip to its end; waits (for a tap) while the browser blocks sound. */
  async play(url) {
    for (;;) {
      const outcome = await this.playOnce(url);
      if (outcome !== "blocked") return outcome;
      if (!this.blocked) {
        this.blocked = true;
        this.onBlocked();
      }
      await new Promise((resolve) => { this.releaseBlock = resolve; });
      this.releaseBlock = null;
    }
  }

  playOnce(url) {
    const audio = this.audio;
    return new Promise((resolve) => {
      let settled = false;
      let guard = null;
      const finish = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        audio.onended = audio.onerror = audio.onloadedmetadata = null;
        resolve(outcome);
      };
      const limit = (ms) => { clearTimeout(guard); guard = setTimeout(() => finish("timeout"), ms); };
      audio.onended = () => finish("ended");
      audio.onerror = () => finish("error");
      audio.onloadedmetadata = () => {
        if (Number.isFinite(audio.duration)) limit(audio.duration * 1000 + CLIP_SLACK_MS);
      };
      limit(CLIP_LOAD_MS);
      audio.src = url;
      const playing = audio.play();
      if (playing) {
        playing.catch((e) => finish(e && e.name === "NotAllowedError" ? "blocked" : "error"));
      }
    });
  }
}
