// The display's announcer: the chime, then the voice clips from the announcement API, one
// announcement after another — never overlapping, a recall spoken again (saying so), a burst in the
// order it happened, and every call spoken.
//
// A call takes 5–10 s to speak, so a burst must not queue calls one by one (the last would be half a
// minute late). Whatever waits when an announcement ends is spoken next, together, in one
// announcement (`takeGroup`; the server words it, `queue_server/speech/phrases.py`):
//   「101 番、102 番のかた、3 番窓口へお越しください。」 several numbers to one counter;
//   「101 番のかたは 3 番、205 番のかたは 5 番窓口へお越しください。」 several counters;
//   recalls after them, saying they are called again (「…、もう一度、…」). A number is said once, at
//   its newest counter (a recall joins its call). Each group asks for its audio as soon as it forms,
//   while the announcement before it plays; when its turn comes and a call of the last moment has
//   made a group whose audio is still rendering, the group as it stood before (rendered) goes first.
// After the Japanese clip with every number, each visitor language of the group follows with its
// own numbers — unless calls wait and that clip would make the calls behind it late (`timeFor`);
// then it is left out. Calls spoken back to back get no chime.
// A call is not spoken only when there is no point: its visitor reached the counter first
// (`answered`), sound was blocked for five minutes, or more than MAX_QUEUE calls wait.
// Every call's fate is kept in `log` (the newest LOG_SIZE): its group, when it started, what was
// spoken or left out.
//
//   const announcer = new Announcer({ office: "honcho", audio: document.querySelector("audio"),
//                                     onBlocked, onUnblocked, onSpeaking });
//   announcer.announce({ number: "300", counter: "3", lang: "en", at: 1732330000000 });
//   announcer.answered("300");  // the visitor is at the counter: a call still waiting needs no voice
//   announcer.unblock();        // from a user's tap, after onBlocked: playback resumes where it stopped
//
// One <audio> element is reused for every clip (media elements are the usual leak in week-long
// pages). Every wait has a time limit, so a clip that never ends cannot stall the queue.

export const CHIME_URL = "/api/audio/chime.wav";
export const MAX_GROUP = 8;         // calls spoken together at most (the announcement API's limit)
const MAX_QUEUE = 30;               // calls waiting to be spoken; beyond this the oldest is dropped
const STALE_MS = 5 * 60_000;        // a call not spoken within 5 minutes (sound blocked) is skipped
const REMEMBERED = 200;             // calls remembered as spoken, so none is spoken twice
const CLIP_LOAD_MS = 10_000;        // a clip must start within this…
const CLIP_SLACK_MS = 3_000;        // …and end within its duration plus this
const GAP_MS = 700;                 // silence between two announcements
const BACKLOG_GAP_MS = 250;         // …and between two announcements of a backlog
export const LATE_LIMIT_MS = 10_000; // no call should start being spoken later than this after it happened
// A visitor language is played while calls wait only if the oldest of them still starts within
// LATE_LIMIT_MS − NEXT_RESERVE_MS: the delay also pushes back every call behind it and lets the next
// announcement grow (calls arriving while it plays wait its whole length). With the reserve at 0 the
// burst of benchmarks/announce_latency.py --burst (11 calls in 27 s) had its last call start 10.9 s late.
const NEXT_RESERVE_MS = 5_000;
const NEXT_START_MS = 600;          // allowance for the next announcement's answer after a visitor language
const CONTINUING_MS = 2_000;        // an announcement starting this soon after the last one gets no chime
const LOG_SIZE = 100;
const FETCH_TIMEOUT_MS = 8_000;
const PREFETCHED = 4;               // group answers kept ahead

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The key of one call: a recall has its own time, so it is announced again. */
export function callKey(call) {
  return `${call.number}|${call.counter}|${call.at}`;
}

/** The next group from `queue` (oldest first): at most `max` numbers, each once — at its newest
 *  counter, a first call if any of its calls is. Returns {group, taken, rest}: `taken` are the
 *  queued calls the group speaks (several for a number called and recalled while waiting). */
export function takeGroup(queue, max = MAX_GROUP) {
  const byNumber = new Map();
  let index = 0;
  for (; index < queue.length; index++) {
    const call = queue[index];
    const earlier = byNumber.get(call.number);
    if (!earlier && byNumber.size >= max) break;
    byNumber.set(call.number, earlier
      ? { ...call, recall: earlier.recall && call.recall, taken: [...earlier.taken, call] }
      : { ...call, taken: [call] });
  }
  const group = [...byNumber.values()];
  return { group, taken: group.flatMap((call) => call.taken), rest: queue.slice(index) };
}

/** The announcement API's query for a group: calls=101:3,102:3&recalls=205:5 (ids need no escaping). */
export function groupQuery(group) {
  const items = (recall) => group.filter((call) => call.recall === recall).map((call) => `${call.number}:${call.counter}`);
  const parts = [];
  if (items(false).length) parts.push(`calls=${items(false).join(",")}`);
  if (items(true).length) parts.push(`recalls=${items(true).join(",")}`);
  return parts.join("&");
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
    this.groups = 0;                // announcements made: each call's log entry names its group
    // Group query -> {count, clips (the answer's promise), ready}: asked for while the previous announcement
    // plays, each for the first `count` calls of the queue as it stood (only appended to until the next take).
    this.prefetched = new Map();
    this.prefetchTimer = null;
    // [{number, counter, recall, lang, at, outcome, late_ms, group, size, chime, langs, skipped}]
    this.log = [];
  }

  record(call, outcome, details = {}) {
    const entry = { number: call.number, counter: call.counter, recall: Boolean(call.recall), lang: call.lang || "ja",
                    at: call.at, outcome, late_ms: Math.round(performance.now() - call.queuedAt), ...details };
    this.log.push(entry);
    if (this.log.length > LOG_SIZE) this.log.shift();
    return entry;
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
      this.prefetched.clear();
      console.warn("announcer: queue full, not announcing", dropped.number);
      this.record(dropped, "dropped");
    }
    if (this.running) this.schedulePrefetch();
    this.run();
    return true;
  }

  /** The visitor of ``number`` reached the counter: calls of it still waiting are not spoken. */
  answered(number) {
    const waiting = this.queue.filter((call) => call.number === number);
    if (!waiting.length) return;
    this.queue = this.queue.filter((call) => call.number !== number);
    this.prefetched.clear();         // they were asked for as prefixes of the queue as it was
    for (const call of waiting) this.record(call, "answered");
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

  /** Ask for the audio of the group that waits now, so it renders while the current one plays. */
  schedulePrefetch() {
    clearTimeout(this.prefetchTimer);
    // A moment's wait: calls arriving together (a resync, a busy second) make one request.
    this.prefetchTimer = setTimeout(() => {
      const { group, rest } = takeGroup(this.queue);
      if (!group.length || this.prefetched.has(groupQuery(group))) return;
      const ahead = { count: this.queue.length - rest.length, clips: this.fetchClips(group), ready: false };
      ahead.clips.then((clips) => { ahead.ready = clips.length > 0; });
      this.prefetched.set(groupQuery(group), ahead);
      if (this.prefetched.size > PREFETCHED) this.prefetched.delete(this.prefetched.keys().next().value);
    }, 150);
  }

  /** The next group and its answer: everything waiting; but when that group's audio is not ready and
   *  an earlier group of the same queue (without the calls of the last moment) is, that one — the
   *  calls it leaves wait for the next announcement rather than everyone for a render. */
  nextGroup() {
    const full = takeGroup(this.queue);
    const asked = this.prefetched.get(groupQuery(full.group));
    if (!(asked && asked.ready)) {
      const ready = [...this.prefetched.values()].filter((ahead) => ahead.ready).sort((a, b) => b.count - a.count)[0];
      const earlier = ready && takeGroup(this.queue.slice(0, ready.count));
      if (earlier && this.prefetched.get(groupQuery(earlier.group)) === ready) {
        return { ...earlier, rest: [...earlier.rest, ...this.queue.slice(ready.count)], clips: ready.clips };
      }
    }
    return { ...full, clips: asked ? asked.clips : this.fetchClips(full.group) };
  }

  async run() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const now = performance.now();
        const stale = this.queue.filter((c) => now - c.queuedAt > STALE_MS);
        if (stale.length) {
          for (const call of stale) {
            console.warn("announcer: skipping a stale call", call.number);
            this.record(call, "stale");
          }
          this.queue = this.queue.filter((c) => !stale.includes(c));
          this.prefetched.clear();
          continue;
        }
        const { group, taken, rest, clips } = this.nextGroup();
        this.queue = rest;
        this.prefetched.clear();
        if (this.queue.length) this.schedulePrefetch();   // calls left for the next announcement
        const query = groupQuery(group);
        const chime = now - this.lastEnded > CONTINUING_MS;
        this.groups += 1;
        const spoken = taken.map((call) => ({ call, entry: this.record(call, "spoken", {
          group: this.groups, size: group.length, chime, langs: [], skipped: [] }) }));
        try {
          await this.speak(group, spoken, clips, chime);
        } catch (e) {
          console.error("announcer: announcement failed", query, e);
        }
        this.lastEnded = performance.now();
        await sleep(this.queue.length ? BACKLOG_GAP_MS : GAP_MS);
      }
    } finally {
      this.running = false;
      this.onSpeaking(null);
    }
  }

  /** Speak one group; its calls' log entries (``spoken``: [{call, entry}]) learn when it started
   *  (late_ms: from the call's arrival to the group's first sound) and which languages were spoken. */
  async speak(group, spoken, clipsPromise, chime) {
    this.onSpeaking(group);
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      const now = performance.now();
      for (const { call, entry } of spoken) entry.late_ms = Math.round(now - call.queuedAt);
    };
    if (chime) {
      start();
      await this.play(CHIME_URL);
    }
    const clips = await clipsPromise;           // rendered (or found warm) while the chime played
    if (!clips.length && !chime) {
      start();
      await this.play(CHIME_URL);               // no voice: at least the chime says something was called
    }
    for (const [index, clip] of clips.entries()) {
      const own = spoken.filter(({ call }) => clip.numbers.includes(call.number)).map(({ entry }) => entry);
      // The first clip is Japanese with every number; a visitor language only if the next calls can wait.
      if (index > 0 && !(await this.timeFor(clip))) {
        for (const entry of own) entry.skipped.push(clip.lang);
        continue;
      }
      start();
      for (const entry of own) entry.langs.push(clip.lang);
      await this.play(clip.url);
    }
  }

  /** Whether a visitor-language clip can play: nobody waits, or the oldest waiting call still starts
   *  within LATE_LIMIT_MS − NEXT_RESERVE_MS of its arrival after it. */
  async timeFor(clip) {
    if (!this.queue.length) return true;
    const duration = clip.duration_ms ?? await this.clipDuration(clip.url);
    if (duration == null) return false;
    const oldest = this.queue.reduce((a, b) => (a.queuedAt <= b.queuedAt ? a : b));
    const nextStart = performance.now() + duration + BACKLOG_GAP_MS + NEXT_START_MS;
    return nextStart - Math.max(oldest.queuedAt, this.unblockedAt) <= LATE_LIMIT_MS - NEXT_RESERVE_MS;
  }

  /** A clip's length in ms from the server (HEAD waits for its render), or null. */
  async clipDuration(url) {
    try {
      const response = await fetch(url, { method: "HEAD" });
      const ms = Number(response.headers.get("X-Clip-Duration-Ms"));
      return response.ok && ms > 0 ? ms : null;
    } catch {
      return null;
    }
  }

  /** The voice clips of a group, in order; none (chime only) when the API cannot answer. */
  async fetchClips(group) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(`/api/offices/${encodeURIComponent(this.office)}/announcement?${groupQuery(group)}`,
                                   { signal: controller.signal, headers: { Accept: "application/json" } });
      const data = await response.json();
      if (!response.ok) throw new Error(data && data.error ? `${data.error.code}: ${data.error.message}` : response.status);
      return data.audio.filter((clip) => clip.kind !== "chime");
    } catch (e) {
      console.warn("announcer: no voice for", groupQuery(group), String(e));
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
