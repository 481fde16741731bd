// One call (#/calls/{id}): the rolling transcript per leg side by side (partials grey, finals black) with intent,
// sentiment and emotion per utterance, escalations, QA and assist inline; the emotion timeline; after `ended`,
// the call summary. The snapshot is GET /v1/calls/{id} (events so far), live events come from
// /v1/calls/{id}/events; both are folded by `seq`, so an event seen twice counts once.

import { getJSON, HttpError, Subscription } from "./api.js";
import { emotionTimeline } from "./charts.js";
import { h, mount, chip, emotionChip, duration, clock, pct, legName, transcriptText, errorBox, secs, reconcile, refill } from "./dom.js";
import { t, label } from "./i18n.js";

function newState() {
  return { info: null, seqs: new Set(), utterances: new Map(), items: [], emotions: [], escalations: [],
    qa: new Map(), ended: null, qaSummary: null, lastMs: 0, legs: [], intent: null, emotionNow: {} };
}

/** Fold one protocol event into the view's state (pure: no DOM). Returns false for a duplicate. */
export function fold(state, e) {
  if (e.seq !== undefined && e.type !== "transcript.partial") {
    if (state.seqs.has(e.seq)) return false;
    state.seqs.add(e.seq);
  }
  const key = `${e.leg}:${e.utterance}`;
  const utt = () => {
    if (!state.utterances.has(key)) {
      state.utterances.set(key, { leg: e.leg, utterance: e.utterance, start_ms: e.start_ms, end_ms: e.end_ms, text: "",
        redactions: [], final: false });
    }
    return state.utterances.get(key);
  };
  const evidenceMs = (ev) => (ev && ev.length ? ev[0].end_ms : state.lastMs);
  switch (e.type) {
    case "ready":
      state.legs = e.legs || [];
      break;
    case "transcript.partial": {
      const u = utt();
      if (u.final) return false;  // a late partial never overwrites its final
      Object.assign(u, { text: e.text, redactions: e.redactions || [], end_ms: e.end_ms, start_ms: e.start_ms });
      break;
    }
    case "transcript.final":
      Object.assign(utt(), { text: e.text, redactions: e.redactions || [], start_ms: e.start_ms, end_ms: e.end_ms,
        final: true, confidence: e.confidence });
      state.lastMs = Math.max(state.lastMs, e.end_ms || 0);
      break;
    case "intent":
      utt().intent = { label: e.label, probability: e.probability };
      if (e.leg === "customer" || e.leg === "mixed") state.intent = utt().intent;
      break;
    case "sentiment":
      utt().negativity = e.negativity;
      break;
    case "emotion":
      utt().emotion = { label: e.label, p_angry: e.p_angry, p_angry_smoothed: e.p_angry_smoothed };
      state.emotionNow[e.leg] = utt().emotion;
      state.emotions.push({ leg: e.leg, t: (e.end_ms || 0) / 1000, p: e.p_angry, smoothed: e.p_angry_smoothed });
      break;
    case "escalation": {
      const at = evidenceMs(e.evidence);
      const item = { kind: "escalation", at, event: e };
      state.items.push(item);
      state.escalations.push(item);
      break;
    }
    case "qa":
      state.qa.set(e.rule, e);
      if (e.passed === false) state.items.push({ kind: "qa", at: evidenceMs(e.evidence), event: e });
      break;
    case "assist":
      state.items.push({ kind: "assist", at: e.end_ms ?? state.lastMs, event: e });
      break;
    case "qa.summary":
      state.qaSummary = e;
      break;
    case "ended":
      state.ended = e;
      break;
    case "error":
    case "dtmf":
      return false;
    default:
      // An analysis stage this console has no view of (any stage added to the service): shown generically,
      // its type and fields, where its utterance or the call's time puts it.
      if (!e.type) return false;
      state.items.push({ kind: "other", at: e.end_ms ?? e.at_ms ?? state.lastMs, event: e });
  }
  return true;
}

const ENVELOPE = new Set(["type", "version", "call_id", "seq", "emitted_at", "metadata", "tenant"]);

function otherRow(e, columns) {
  const fields = Object.entries(e).filter(([k, v]) => !ENVELOPE.has(k) && v !== null && typeof v !== "object");
  const col = e.leg ? Math.max(0, columns.indexOf(e.leg)) + 1 : null;
  return h("div", { class: "inline other", dataset: { type: e.type }, style: { gridColumn: col ? String(col) : "1 / -1" } },
    h("div", { class: "alert-head" }, h("strong", {}, e.type), e.emitted_at ? h("time", {}, clock(e.emitted_at)) : null),
    h("div", { class: "alert-detail" }, fields.map(([k, v]) => `${k}: ${v}`).join(" · ")));
}

function utteranceRow(u, columns) {
  const col = Math.max(0, columns.indexOf(u.leg)) + 1;
  const meta = [];
  if (u.intent) meta.push(chip(`${label("intent", u.intent.label)} ${pct(u.intent.probability)}`, "intent"));
  if (u.negativity !== undefined) {
    meta.push(chip(t("call.negativity", { p: pct(u.negativity) }), u.negativity >= 0.5 ? "neg hot" : "neg"));
  }
  if (u.emotion) meta.push(emotionChip(u.emotion));
  return h("div", { class: `utt leg-${u.leg} ${u.final ? "final" : "partial"}`, style: { gridColumn: String(col) },
    dataset: { leg: u.leg, utterance: u.utterance } },
  h("div", { class: "utt-head" }, h("span", { class: "who" }, legName(u.leg)),
    h("time", {}, duration((u.start_ms || 0) / 1000)), u.final ? null : h("span", { class: "muted" }, t("call.partial"))),
  h("p", { class: "utt-text" }, transcriptText(u.text, u.redactions)),
  meta.length ? h("div", { class: "utt-meta" }, meta) : null);
}

function evidenceQuote(evidence) {
  if (!evidence || !evidence.length) return null;
  const ev = evidence[0];
  return h("blockquote", {}, h("span", { class: "who" }, `${legName(ev.leg)} ${duration((ev.start_ms || 0) / 1000)}${t("sep.colon")}`),
    transcriptText(ev.text || "", []));
}

function inlineRow(item, columns) {
  const e = item.event;
  if (item.kind === "other") return otherRow(e, columns);
  if (item.kind === "escalation") {
    return h("div", { class: "inline alert red", dataset: { kind: e.kind }, style: { gridColumn: "1 / -1" } },
      h("div", { class: "alert-head" }, h("strong", {}, label("esc", e.kind)), h("time", {}, clock(e.emitted_at))),
      h("div", { class: "alert-detail" }, (e.reasons || []).join(t("sep.reasons"))), evidenceQuote(e.evidence));
  }
  if (item.kind === "qa") {
    return h("div", { class: "inline alert amber", dataset: { rule: e.rule }, style: { gridColumn: "1 / -1" } },
      h("div", { class: "alert-head" }, h("strong", {}, `${t("card.qa")} · ${label("rule", e.rule)}`),
        chip(label("sev", e.severity), `sev sev-${e.severity}`), h("time", {}, clock(e.emitted_at))),
      e.note ? h("div", { class: "alert-detail" }, e.note) : null, evidenceQuote(e.evidence));
  }
  const col = Math.max(0, columns.indexOf(e.leg || "agent")) + 1;
  return h("div", { class: "inline assist", style: { gridColumn: String(col) } },
    h("div", { class: "alert-head" }, h("strong", {}, `${t("call.assist")} · ${e.title || e.entry}`)),
    h("p", {}, e.answer || ""));
}

function alertsPanel(state) {
  const esc = state.escalations.map(({ event: e }) => h("li", { class: "alert red", dataset: { kind: e.kind } },
    h("div", { class: "alert-head" }, h("strong", {}, label("esc", e.kind)), h("time", {}, clock(e.emitted_at))),
    h("div", { class: "alert-detail" }, (e.reasons || []).join(t("sep.reasons"))), evidenceQuote(e.evidence)));
  const rules = [...state.qa.values()].sort((a, b) => (a.passed === false ? 0 : 1) - (b.passed === false ? 0 : 1));
  const qa = rules.map((e) => {
    const status = e.passed === false ? "fail" : e.passed === true ? "pass" : "not_applicable";
    return h("li", { class: `rule rule-${status}`, dataset: { rule: e.rule } },
      chip(t(`result.${status}`), `result ${status}`), h("span", { class: "rule-name" }, label("rule", e.rule)),
      status === "fail" ? chip(label("sev", e.severity), `sev sev-${e.severity}`) : null,
      status === "fail" && e.note ? h("div", { class: "muted small" }, e.note) : null);
  });
  if (!esc.length && !qa.length) return h("p", { class: "muted" }, t("call.noAlerts"));
  return [esc.length ? h("ul", { class: "alerts" }, esc) : null, qa.length ? h("ul", { class: "rules" }, qa) : null];
}

function summaryPanel(state) {
  const end = state.ended;
  const q = state.qaSummary;
  return h("section", { class: "panel summary", "aria-labelledby": "summary-title" },
    h("h2", { id: "summary-title" }, t("call.summary")),
    q ? h("div", { class: "score-line" }, h("span", { class: "score-big" }, `${q.score}`),
      h("span", { class: "muted" }, `${t("call.qaScore")} / ${q.base_score}`)) : null,
    q && q.failed.length ? h("p", {}, `${t("call.failedRules")}${t("sep.colon")}`,
      q.failed.map((r) => label("rule", r)).join(t("sep.list"))) : null,
    h("ul", { class: "leg-stats" }, (end.legs || []).map((l) => h("li", {}, t("call.legStats", { leg: legName(l.leg),
      audio: secs(l.audio_ms / 1000), speech: secs(l.speech_ms / 1000), n: l.utterances })))));
}

export function callView(main, ctx, callId) {
  let state = newState();
  let buffered = [];  // live events that arrived before the snapshot
  let loaded = false;
  let frame = null;
  let stickToBottom = true;
  const colHeads = h("div", { class: "cols col-heads" });
  const rowsEl = h("div", { class: "cols" });
  const waiting = h("p", { class: "muted" }, t("call.waiting"));
  const transcript = h("div", { class: "transcript", tabindex: "0", "aria-live": "off",
    "aria-labelledby": "tr-title" }, colHeads, waiting, rowsEl);
  transcript.addEventListener("scroll", () => {
    stickToBottom = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 40;
  });
  const head = h("div", { class: "call-head" });
  const side = h("aside", { class: "call-side" });
  const status = h("div", { class: "call-status", role: "status" });
  mount(main, h("section", { class: "call" },
    h("a", { class: "back", href: "#/" }, `← ${t("call.back")}`), head, status,
    h("div", { class: "call-grid" },
      h("section", { class: "panel transcript-panel", "aria-labelledby": "tr-title" },
        h("h2", { id: "tr-title" }, t("call.transcript")), transcript),
      side)));

  function render() {
    frame = null;
    const info = state.info || {};
    const legs = state.legs.length ? state.legs : info.legs || [];
    const columns = legs.length ? [...legs].sort((a, b) => ["customer", "mixed", "agent"].indexOf(a)
      - ["customer", "mixed", "agent"].indexOf(b)) : ["customer"];
    const active = !state.ended;
    const ids = Object.entries(info.metadata || {}).filter(([, v]) => v !== callId).map(([k, v]) => `${k} ${v}`);
    mount(head, h("h1", {}, t("call.title", { id: callId })),
      h("span", { class: `state-chip ${active ? "live" : "over"}`, dataset: { state: active ? "active" : "ended" } },
        active ? t("call.active") : t("call.ended", { reason: label("reason", state.ended.reason) })),
      h("span", { class: "dur" }, elapsed()),
      h("div", { class: "ids" }, [info.transport, ...ids].filter(Boolean).join(" · ")),
      h("div", { class: "facts" }, columns.map((leg) => h("span", { class: "leg" },
        h("span", { class: "leg-name" }, legName(leg)), emotionChip(state.emotionNow[leg]) || chip("–", "emo"))),
      state.intent ? chip(`${t("card.intent")}${t("sep.colon")}${label("intent", state.intent.label)} `
        + pct(state.intent.probability), "intent") : null));

    const utts = [...state.utterances.values()].filter((u) => u.text || u.final);
    const rows = [
      ...utts.map((u) => ({ key: `u:${u.leg}:${u.utterance}`, at: u.start_ms || 0, order: 0, data: u,
        build: () => utteranceRow(u, columns) })),
      ...state.items.map((it, i) => ({ key: `i:${i}`, at: it.at, order: 1 + i, data: i,
        build: () => inlineRow(it, columns) })),
    ].sort((a, b) => a.at - b.at || a.order - b.order);
    const template = `repeat(${columns.length}, minmax(0, 1fr))`;
    colHeads.style.gridTemplateColumns = rowsEl.style.gridTemplateColumns = template;
    const headSig = columns.join(",");
    if (colHeads.signature !== headSig) {
      mount(colHeads, columns.map((leg) => h("div", { class: `col-head leg-${leg}` }, legName(leg))));
      colHeads.signature = headSig;
    }
    waiting.hidden = rows.length > 0;
    reconcile(rowsEl, rows, { key: (r) => r.key, sig: (r) => JSON.stringify(r.data), create: (r) => r.build(),
      fill: (el, r) => refill(el, r.build()) });
    if (stickToBottom) transcript.scrollTop = transcript.scrollHeight;

    const watched = columns.includes("customer") ? "customer" : columns[0];
    const points = state.emotions.filter((p) => p.leg === watched);
    const marks = state.escalations.map((it) => ({ t: it.at / 1000, kind: it.event.kind }));
    const sideSig = `${points.length}|${marks.length}|${state.qa.size}|${!!state.ended}|${state.lastMs}`;
    if (side.signature === sideSig) return;
    side.signature = sideSig;
    mount(side,
      state.ended ? summaryPanel(state) : null,
      h("section", { class: "panel", "aria-labelledby": "tl-title" }, h("h2", { id: "tl-title" },
        `${t("call.timeline")} · ${legName(watched)}`),
      points.length || marks.length ? emotionTimeline({ points, marks, duration: state.lastMs / 1000 })
        : h("p", { class: "muted" }, t("call.noEmotion"))),
      h("section", { class: "panel", "aria-labelledby": "al-title" }, h("h2", { id: "al-title" }, t("call.alerts")),
        alertsPanel(state)));
  }
  const schedule = () => { if (!frame) frame = requestAnimationFrame(render); };

  let loadedAt = performance.now();
  function elapsed() {  // server times only: the browser's clock may differ from the server's
    const info = state.info;
    if (!info) return "";
    if (state.ended) return duration(state.ended.emitted_at - info.started_at);
    return duration(info.duration_s + (info.active ? (performance.now() - loadedAt) / 1000 : 0));
  }

  async function load() {
    buffered = buffered || [];
    try {
      const snap = await getJSON(`/v1/calls/${encodeURIComponent(callId)}`);
      const fresh = newState();
      fresh.info = snap;
      for (const e of snap.events) fold(fresh, e);
      for (const e of buffered) fold(fresh, e);
      state = fresh;
      loaded = true;
      loadedAt = performance.now();
      buffered = null;
      mount(status);
      schedule();
      if (state.ended) sub.close();
    } catch (err) {
      buffered = null;
      if (err instanceof HttpError && err.status === 404) {
        mount(status, h("p", { class: "notice" }, t("call.notFound", { id: callId })));
      } else {
        mount(status, errorBox(t("error.load", { msg: err.message }), load));
      }
    }
  }

  const sub = new Subscription(`/v1/calls/${encodeURIComponent(callId)}/events`, {
    onOpen: () => { buffered = []; load(); },
    onState: ctx.setConnection,
    onEvent: (e) => {
      if (buffered) { buffered.push(e); return; }
      if (e.type === "ready" && !loaded) { buffered = [e]; load(); return; }
      if (fold(state, e)) schedule();
      if (e.type === "escalation") ctx.alert(callId, { kind: e.kind });
      if (e.type === "ended") sub.close();
    },
  });
  const ticker = setInterval(() => {
    const el = head.querySelector(".dur");
    if (el) el.textContent = elapsed();
  }, 1000);
  return {
    destroy() { sub.close(); clearInterval(ticker); if (frame) cancelAnimationFrame(frame); },
    rerender: schedule,
  };
}
