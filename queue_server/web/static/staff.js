// What the staff pages (counter panel, back-office panel, supervisor console, call-centre desk)
// share: sign-in, the message line, small DOM helpers.
//
// Sign-in: the session on load, the #sign-in-form (staff.html's sign_in macro), the #sign-out
// button, the CSRF token.
//
//   const session = staffSession({
//     signedIn(me) {},                 // {username, role, display_name, csrf_token}, after load or sign-in
//     signedOut() {},                  // show the form (after sign-out, or when the server says 401)
//     forget() {},                     // what a deliberate sign-out clears on this PC
//     failedText, showMessage, clearMessage, errorText,
//   });
//   session.start();                   // and session.showSignIn() after a 401
//
// A server that does not answer (restarting) is asked again by itself; the password field is
// cleared after a sign-in, and a double click on the button signs in once.

import { api, ApiError, setCsrfToken } from "./api.js";

const RETRY_MS = 5_000;
const INFO_MS = 5_000;

/** A new element with a class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * The page's #message line (role=alert): show(text, "error"|"info") and clear(). An error stays
 * until the next message; information goes away by itself.
 */
export function messageLine(box = document.getElementById("message")) {
  let timer = null;
  return {
    show(text, kind = "error") {
      box.textContent = text;
      box.className = `cp-message notice ${kind === "error" ? "notice-error" : ""}`;
      box.dataset.kind = kind;
      box.hidden = false;
      clearTimeout(timer);
      if (kind !== "error") timer = setTimeout(() => { box.hidden = true; }, INFO_MS);
    },
    clear() {
      clearTimeout(timer);
      box.hidden = true;
    },
  };
}

/**
 * Keyboard shortcuts: a letter presses the button in ``container`` whose ``data-key`` it is (one
 * that is disabled is ``refused(action)`` instead, so the page can say why); ``keys`` maps other
 * letters to functions. Never while typing in a field, with a modifier, on key repeat, or while
 * ``active()`` is false (another screen, a dialog open).
 */
export function shortcuts(container, { active = () => true, refused = () => {}, keys = {} } = {}) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.altKey || event.metaKey || event.repeat || !active()) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    const key = event.key.toLowerCase();
    const button = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!button && !keys[key]) return;
    event.preventDefault();
    if (keys[key]) keys[key]();
    else if (!button.disabled) button.click();
    else refused(button.dataset.action);
  });
}

/** ``render`` at the next animation frame, once however often this is asked for before it. */
export function renderOnNextFrame(render) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  };
}

export function staffSession({ signedIn, signedOut, forget = () => {}, failedText, showMessage, clearMessage, errorText }) {
  const form = document.getElementById("sign-in-form");

  function enter(me) {
    setCsrfToken(me.csrf_token);
    signedIn(me);
  }

  function showSignIn() {
    setCsrfToken("");
    signedOut();
    form.elements.username.focus();
  }

  async function start() {
    let me;
    try {
      me = await api("/api/session");
    } catch (e) {
      if (e instanceof ApiError && e.code === "unauthorized") {
        showSignIn();
      } else {
        showMessage(errorText(e));
        setTimeout(start, RETRY_MS);    // the server is restarting: try again by itself
      }
      return;
    }
    enter(me);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    if (button.disabled) return;
    button.disabled = true;
    try {
      const me = await api("/api/session", { method: "POST",
                                             body: { username: form.elements.username.value, password: form.elements.password.value } });
      form.elements.password.value = "";
      clearMessage();
      enter(me);
    } catch (e) {
      showMessage(e instanceof ApiError && e.code === "unauthorized" ? failedText : errorText(e));
    } finally {
      button.disabled = false;
    }
  });

  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("/api/session", { method: "DELETE" });
    } catch {
      // signed out already, or offline: the page forgets the session either way
    }
    forget();
    showSignIn();
  });

  return { start, showSignIn };
}
