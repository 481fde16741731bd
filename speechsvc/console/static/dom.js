// Small DOM helpers: elements are always built from text (never innerHTML with server data), times and
// numbers are formatted one way everywhere, and redacted PII is drawn as a visible tag.

import { t, label } from "./i18n.js";

/** h("div", {class: "x", onclick: f}, child, "text", [more]) → an element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);  // CSSOM: the page's CSP forbids style attributes
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

/** 75.4 → "01:15"; an hour or more → "1:02:03". */
export function duration(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const hh = Math.floor(total / 3600);
  const mm = String(Math.floor((total % 3600) / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Unix seconds → local "14:03:22" (today) or "11-23 14:03". */
export function clock(unixSeconds) {
  if (!unixSeconds) return "";
  const d = new Date(unixSeconds * 1000);
  const time = d.toLocaleTimeString("en-GB", { hour12: false });
  if (new Date().toDateString() === d.toDateString()) return time;
  const mo = String(d.getMonth() + 1).padStart(2, "0");
  const dd = String(d.getDate()).padStart(2, "0");
  return `${mo}-${dd} ${time.slice(0, 5)}`;
}

export const pct = (p) => (p === null || p === undefined ? "–" : `${Math.round(p * 100)}%`);

export const secs = (x) => t("seconds", { s: (Math.round((x || 0) * 10) / 10).toString() });

export const legName = (leg) => label("leg", leg);

/**
 * Transcript text with its redacted spans as grey tags. `redactions` offsets index the (already redacted) text in
 * Unicode code points, as the server counts them; the tag shows the text the server sent (`[PHONE]` or a mask
 * like `138****5678`), never anything else, and says what was hidden.
 */
export function transcriptText(text, redactions = []) {
  const chars = Array.from(text || "");
  const out = [];
  let at = 0;
  const spans = [...(redactions || [])].sort((a, b) => a.start - b.start);
  for (const r of spans) {
    if (r.start < at || r.end > chars.length || r.end <= r.start) continue;
    if (r.start > at) out.push(chars.slice(at, r.start).join(""));
    const kind = label("pii", r.type);
    out.push(h("span", { class: "pii", title: t("pii.hidden", { type: kind }), "aria-label": t("pii.hidden", { type: kind }),
      dataset: { type: r.type } }, chars.slice(r.start, r.end).join("")));
    at = r.end;
  }
  if (at < chars.length) out.push(chars.slice(at).join(""));
  return out;
}

/** A small labelled chip: emotion, intent, severity, state. */
export function chip(text, kind = "", extra = {}) {
  return h("span", { class: `chip ${kind}`.trim(), ...extra }, text);
}

export function emotionChip(emotion) {
  if (!emotion || !emotion.label) return null;
  const p = emotion.p_angry_smoothed ?? emotion.p_angry;
  const hot = emotion.label === "angry" || (p ?? 0) >= 0.5;
  return chip(`${label("emo", emotion.label)}${p !== undefined && p !== null ? ` · ${pct(p)}` : ""}`,
    `emo emo-${emotion.label}${hot ? " hot" : ""}`, { title: "P(angry)" });
}

/**
 * Make `container`'s children the elements of `items`, in order, keeping each key's element: an element is
 * refilled only when its item's signature changed, so a link being clicked, selected text and keyboard focus
 * survive the updates of other items (a live wall changes several times a second).
 */
export function reconcile(container, items, { key, sig, create, fill }) {
  const before = container.keyed || new Map();
  const after = new Map();
  let cursor = container.firstChild;
  for (const item of items) {
    const k = key(item);
    const el = before.get(k) || create(item);
    const signature = sig(item);
    if (el.signature !== signature) {
      fill(el, item);
      el.signature = signature;
    }
    after.set(k, el);
    if (el === cursor) cursor = cursor.nextSibling;
    else container.insertBefore(el, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
  container.keyed = after;
}

/** Give `el` the attributes, inline style and children of `fresh` (keeping `el` itself in the page). */
export function refill(el, fresh) {
  for (const a of [...el.attributes]) if (a.name !== "style" && !fresh.hasAttribute(a.name)) el.removeAttribute(a.name);
  for (const a of [...fresh.attributes]) if (a.name !== "style") el.setAttribute(a.name, a.value);
  el.style.cssText = fresh.style.cssText;
  el.replaceChildren(...fresh.childNodes);
}

/** Replace a container's content. */
export function mount(container, ...children) {
  container.replaceChildren();
  append(container, children);
  return container;
}

/** "已结束" style error box with a retry button. */
export function errorBox(message, retry) {
  return h("div", { class: "notice error", role: "alert" }, h("p", {}, message),
    retry ? h("button", { type: "button", onclick: retry }, t("error.retry")) : null);
}
