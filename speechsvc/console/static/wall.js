// The live wall (#/): every active call as a card, riskiest first, then the recently ended ones.
//
// State comes from GET /v1/calls (at load, on every reconnection, and shortly after any event that changes a
// call's risk, so the order is always the server's) and from the /v1/events subscription in between, so a
// transcript line, an emotion or an escalation shows at once.

import { getJSON, Subscription } from "./api.js";
import { h, mount, chip, emotionChip, duration, clock, pct, legName, transcriptText, errorBox, reconcile } from "./dom.js";
import { t, label } from "./i18n.js";

const SHOWN_ENDED = 12;

export function level(call) {
  if (call.escalations.length) return "red";
  if (call.qa_failed.length) return "amber";
  return "calm";
}

function newCall(e) {
  return { call_id: e.call_id, transport: e.transport || "", legs: e.legs || [], metadata: e.metadata || {},
    started_at: e.emitted_at, ended_at: null, end_reason: null, active: true, duration_s: 0, emotion: {},
    intent: null, escalations: [], qa_failed: [], qa_score: null, last_text: {}, risk: 0 };
}

/** Fold one event into a call's card state; returns what happened worth telling the user, if anything. */
export function applyEvent(calls, e) {
  let call = calls.get(e.call_id);
  if (e.type === "ready") {
    if (!call) calls.set(e.call_id, (call = newCall(e)));
    return { changed: true, unknown: false };
  }
  if (!call) return { changed: false, unknown: true };
  switch (e.type) {
    case "transcript.partial":
    case "transcript.final":
      call.last_text[e.leg] = { text: e.text, redactions: e.redactions || [], leg: e.leg };
      call.last_leg = e.leg;
      break;
    case "emotion":
      call.emotion[e.leg] = { label: e.label, p_angry_smoothed: e.p_angry_smoothed };
      break;
    case "intent":
      if (e.leg === "customer" || e.leg === "mixed") call.intent = { label: e.label, probability: e.probability };
      break;
    case "escalation": {
      if (call.escalations.some((x) => x.kind === e.kind && x.at === e.emitted_at)) return { changed: false };
      const text = e.evidence && e.evidence.length ? e.evidence[0].text : "";
      call.escalations.push({ kind: e.kind, score: e.score, reasons: e.reasons || [], at: e.emitted_at, text });
      return { changed: true, escalation: call.escalations[call.escalations.length - 1] };
    }
    case "qa":
      if (e.passed !== false || call.qa_failed.some((x) => x.rule === e.rule && x.at === e.emitted_at)) break;
      call.qa_failed.push({ rule: e.rule, severity: e.severity, category: e.category, at: e.emitted_at,
        note: e.note || "", text: e.evidence && e.evidence.length ? e.evidence[0].text : "" });
      break;
    case "qa.summary":
      call.qa_score = e.score;
      break;
    case "ended":
      call.active = false;
      call.ended_at = e.emitted_at;
      call.end_reason = e.reason;
      break;
    default:
      return { changed: false };
  }
  return { changed: true };
}

// Server text that carries `[PHONE]`-style tags but no offsets (the snapshot's last_text): tag them anyway.
const TAG = /\[(PHONE|ID_CARD|BANK_CARD|EMAIL|NAME|ADDRESS|VERIFICATION_CODE|PASSPORT|LICENSE_PLATE)\]/g;

function lastLine(call) {
  const legs = Object.keys(call.last_text);
  if (!legs.length) return null;
  const leg = call.last_leg && call.last_text[call.last_leg] ? call.last_leg : legs.includes("customer") ? "customer" : legs[0];
  let item = call.last_text[leg];
  if (typeof item === "string") {
    const chars = Array.from(item);
    const redactions = [];
    const text = chars.join("");
    for (const m of text.matchAll(TAG)) {
      const start = Array.from(text.slice(0, m.index)).length;
      redactions.push({ type: m[1], start, end: start + Array.from(m[0]).length });
    }
    item = { text, redactions };
  }
  return h("p", { class: "last-said" }, h("span", { class: "who" }, `${legName(leg)}${t("sep.colon")}`),
    h("span", { class: "said" }, transcriptText(item.text, item.redactions)));
}

function alertItem(kind, title, detail, text, at) {
  return h("li", { class: `alert ${kind}` },
    h("div", { class: "alert-head" }, h("strong", {}, title), h("time", {}, clock(at))),
    detail ? h("div", { class: "alert-detail" }, detail) : null,
    text ? h("blockquote", {}, transcriptText(text, [])) : null);
}

/** The parts of a card that never change (its link above all, so a click is never lost to an update). */
function createCard(call) {
  const id = call.call_id;
  const link = h("a", { href: `#/calls/${encodeURIComponent(id)}`, title: t("card.open", { id }) }, id);
  return h("article", { class: "card", role: "listitem", dataset: { callId: id } },
    h("header", {}, h("h3", {}, link), h("span", { class: "level-chip" }), h("span", { class: "dur" })),
    h("div", { class: "card-body" }));
}

function fillCard(el, call) {
  const lvl = level(call);
  const id = call.call_id;
  // Platform ids (the call id itself is in the title already).
  const ids = Object.entries(call.metadata || {}).filter(([, v]) => v !== id).slice(0, 4).map(([k, v]) => `${k} ${v}`);
  const escalations = [...call.escalations].reverse();
  const failed = [...call.qa_failed].reverse();
  const alerts = [
    ...escalations.slice(0, 2).map((x) => alertItem("red", label("esc", x.kind), (x.reasons || []).join(t("sep.reasons")), x.text, x.at)),
    ...failed.slice(0, lvl === "red" ? 1 : 2).map((x) => alertItem("amber",
      `${t("card.qa")} · ${label("rule", x.rule)}`, [label("sev", x.severity), x.note].filter(Boolean).join(" · "), x.text, x.at)),
  ];
  const hidden = call.escalations.length + call.qa_failed.length - alerts.length;
  const levelName = escalations[0] ? label("esc", escalations[0].kind) : t(`card.risk.${lvl}`);
  el.className = `card level-${lvl}${call.active ? "" : " ended"}`;
  el.dataset.level = lvl;
  el.setAttribute("aria-label", `${t("call.title", { id })} · ${levelName}`);
  const chipEl = el.querySelector(".level-chip");
  chipEl.className = `level-chip ${lvl}`;
  chipEl.textContent = levelName;
  el.querySelector(".dur").textContent = call.active ? duration(call.duration_s + (performance.now() - call.base_at) / 1000)
    : t("card.ended");
  mount(el.querySelector(".card-body"),
    h("div", { class: "ids" }, [call.transport, ...ids].filter(Boolean).join(" · ")),
    h("div", { class: "facts" },
      (call.legs.length ? call.legs : Object.keys(call.emotion)).map((leg) => h("span", { class: "leg" },
        h("span", { class: "leg-name" }, legName(leg)), emotionChip(call.emotion[leg]) || chip("–", "emo")))),
    h("div", { class: "facts" }, h("span", { class: "k" }, `${t("card.intent")}${t("sep.colon")}`),
      call.intent ? chip(`${label("intent", call.intent.label)} ${pct(call.intent.probability)}`, "intent")
        : h("span", { class: "muted" }, t("card.noIntent")),
      call.qa_score !== null && call.qa_score !== undefined ? chip(`${t("call.qaScore")} ${call.qa_score}`, "score") : null),
    lastLine(call),
    alerts.length ? h("ul", { class: "alerts" }, alerts, hidden > 0 ? h("li", { class: "more" }, `+${hidden}`) : null) : null);
}

const CARD = {
  key: (c) => c.call_id,
  sig: (c) => JSON.stringify({ ...c, base_at: 0, duration_s: 0 }),
  create: createCard,
  fill: fillCard,
};

const RANK = { red: 2, amber: 1, calm: 0 };

function order(a, b) {
  return RANK[level(b)] - RANK[level(a)] || (b.risk || 0) - (a.risk || 0) || b.started_at - a.started_at;
}

export function wallView(main, ctx) {
  const calls = new Map();
  let loaded = false;
  let replay = null;  // events received while a snapshot is in flight, re-applied after it
  let refreshTimer = null;
  let frame = null;
  const grid = h("div", { class: "cards", role: "list" });
  const endedList = h("div", { class: "cards ended-cards", role: "list" });
  const count = h("span", { class: "count" });
  const empty = h("p", { class: "empty" }, t("wall.empty"));
  const endedHead = h("h2", {}, t("wall.ended"));
  const body = h("div", { class: "wall-body" }, h("p", { class: "muted" }, t("loading")));
  mount(main, h("section", { class: "wall", "aria-labelledby": "wall-title" },
    h("div", { class: "page-head" }, h("h1", { id: "wall-title" }, t("wall.title")), count,
      h("span", { class: "muted small" }, t("wall.sorted"))), body));

  function render() {
    frame = null;
    if (!loaded) return;
    const active = [...calls.values()].filter((c) => c.active).sort(order);
    const ended = [...calls.values()].filter((c) => !c.active).sort((a, b) => (b.ended_at || 0) - (a.ended_at || 0))
      .slice(0, SHOWN_ENDED);
    count.textContent = t("wall.active", { n: active.length });
    reconcile(grid, active, CARD);
    reconcile(endedList, ended, CARD);
    empty.hidden = active.length > 0;
    grid.hidden = !active.length;
    endedHead.hidden = endedList.hidden = !ended.length;
    if (!body.contains(grid)) mount(body, empty, grid, endedHead, endedList);
  }
  const schedule = () => { if (!frame) frame = requestAnimationFrame(render); };

  let inFlight = false;
  let again = false;
  async function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = null;
    if (inFlight) {  // one snapshot at a time; ask for another once this one is in
      again = true;
      return;
    }
    inFlight = true;
    replay = [];
    try {
      const { calls: list } = await getJSON("/v1/calls");
      const base = performance.now();
      calls.clear();
      // A stage that is off leaves its keys out of the snapshot: the card's defaults stand in.
      for (const c of list) calls.set(c.call_id, { ...newCall(c), ...c, base_at: base });
      for (const e of replay) applyEvent(calls, e);
      loaded = true;
      schedule();
    } catch (err) {
      if (!loaded) mount(body, errorBox(t("error.load", { msg: err.message }), () => refresh()));
    } finally {
      replay = null;
      inFlight = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  // The server's order (risk) is re-read soon after anything that changes it: at once-ish for a new, ended or
  // escalated call, within a few seconds for emotion and QA (which move the order less and come more often).
  let refreshDue = Infinity;
  function refreshSoon(delay) {
    const due = performance.now() + delay;
    if (refreshTimer && refreshDue <= due) return;
    clearTimeout(refreshTimer);
    refreshDue = due;
    refreshTimer = setTimeout(refresh, delay);
  }
  const URGENT = new Set(["ready", "ended", "escalation"]);
  const RESORT = new Set(["qa", "emotion"]);

  const sub = new Subscription("/v1/events", {
    onOpen: refresh,
    onState: ctx.setConnection,
    onEvent: (e) => {
      if (replay) replay.push(e);
      const result = applyEvent(calls, e);
      const c = calls.get(e.call_id);
      if (c && c.base_at === undefined) c.base_at = performance.now();
      if (result.unknown || URGENT.has(e.type)) refreshSoon(500);
      else if (RESORT.has(e.type)) refreshSoon(3000);
      if (result.escalation) ctx.alert(e.call_id, result.escalation);
      if (result.changed) schedule();
    },
  });
  const ticker = setInterval(() => {
    const now = performance.now();
    for (const el of main.querySelectorAll(".card:not(.ended) .dur")) {
      const c = calls.get(el.closest(".card").dataset.callId);
      if (c && c.active) el.textContent = duration(c.duration_s + (now - c.base_at) / 1000);
    }
  }, 1000);
  return {
    destroy() {
      sub.close();
      clearInterval(ticker);
      clearTimeout(refreshTimer);
      if (frame) cancelAnimationFrame(frame);
    },
    rerender: schedule,
  };
}
