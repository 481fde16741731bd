// Talking to the server: REST with the user's API key, and event subscriptions that reconnect by themselves.
//
// Authentication contract (the server's, not ours): REST requests carry `Authorization: Bearer <key>`; browser
// WebSockets, which cannot set headers, append `?access_token=<key>`; 401/403 = no or an insufficient key. The key
// lives in sessionStorage only (gone when the tab closes; never in localStorage, never in the address bar).

import { t } from "./i18n.js";

const KEY = "speechsvc.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

export class AuthError extends Error {}

export class HttpError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}${detail ? ": " + detail : ""}`);
    this.status = status;
  }
}

let prompt = null;  // one dialog for every request refused at the same moment

/** Ask for a key (the <dialog> of index.html); resolves true when one was entered. */
export function askForKey(status) {
  if (prompt) return prompt;
  const dialog = document.getElementById("auth-dialog");
  const input = dialog.querySelector("input");
  dialog.querySelector("[data-auth-body]").textContent = t(status === 403 ? "auth.body403" : "auth.body401");
  input.value = "";
  prompt = new Promise((resolve) => {
    const done = (ok) => {
      dialog.removeEventListener("close", onClose);
      prompt = null;
      resolve(ok);
    };
    const onClose = () => {
      const key = input.value.trim();
      input.value = "";
      if (dialog.returnValue === "ok" && key) {
        sessionStorage.setItem(KEY, key);
        done(true);
      } else {
        done(false);
      }
    };
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
  return prompt;
}

async function detail(res) {
  try {
    const body = await res.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch {
    return res.statusText;
  }
}

/** fetch() with the key; on 401/403 asks for a key and retries. Throws AuthError when the user gives up. */
export async function request(path, options = {}) {
  for (;;) {
    const headers = new Headers(options.headers || {});
    const key = apiKey();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const res = await fetch(path, { ...options, headers, cache: "no-store" });
    if (res.status === 401 || res.status === 403) {
      if (await askForKey(res.status)) continue;
      throw new AuthError(t("auth.needed"));
    }
    if (!res.ok) throw new HttpError(res.status, await detail(res));
    return res;
  }
}

export async function getJSON(path) {
  return (await request(path)).json();
}

/** Save a server file (an output download) through fetch, so the key goes in a header, not in a link. */
export async function download(path, filename) {
  const blob = await (await request(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * A WebSocket subscription that reconnects with exponential backoff (1 s doubling to 30 s, with jitter).
 * `onOpen` runs on every (re)connection: that is when a view re-reads its snapshot, so nothing said while the
 * socket was down is missed. A socket that fails before opening may have been refused for want of a key (the
 * browser hides the handshake's status), so a REST probe then asks for one.
 */
export class Subscription {
  constructor(path, { onEvent, onOpen, onState }) {
    this.path = path;
    this.onEvent = onEvent;
    this.onOpen = onOpen || (() => {});
    this.onState = onState || (() => {});
    this.attempt = 0;
    this.closed = false;
    this.ws = null;
    this.timer = null;
    this.connect();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const key = apiKey();
    return `${scheme}//${location.host}${this.path}${key ? `?access_token=${encodeURIComponent(key)}` : ""}`;
  }

  connect() {
    if (this.closed) return;
    this.onState("connecting");
    let opened = false;
    const ws = (this.ws = new WebSocket(this.url()));
    ws.onopen = () => {
      opened = true;
      this.attempt = 0;
      this.onState("live");
      this.onOpen();
    };
    ws.onmessage = (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch {
        return;  // not an event: the protocol only sends JSON objects
      }
      this.onEvent(event);
    };
    ws.onclose = async (ev) => {
      if (this.closed || ws !== this.ws) return;
      if (!opened || ev.code === 1008) {
        const before = apiKey();
        try {
          await request("/v1/calls?active=true");  // asks for a key on 401/403
        } catch (e) {
          if (e instanceof AuthError) {
            this.onState("auth");
            return;  // the view offers a button to enter a key, which reloads it
          }
        }
        if (this.closed) return;
        if (apiKey() !== before) {  // a key was just entered: try it at once
          this.attempt = 0;
          this.connect();
          return;
        }
      }
      const delay = Math.min(30000, 1000 * 2 ** this.attempt) * (0.75 + Math.random() / 4);
      this.attempt = Math.min(this.attempt + 1, 5);
      this.onState("reconnecting", Math.ceil(delay / 1000));
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}
