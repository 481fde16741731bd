// Recorded calls: the REST jobs (#/jobs), one job's calls (#/jobs/{id}) and one call's report (#/jobs/{id}/{index}):
// transcript, QA summary and rule outcomes, plots, downloads; and a form to submit recordings.

import { download, getJSON, request } from "./api.js";
import { bars, emotionTimeline, speakingStrip } from "./charts.js";
import { h, mount, chip, duration, clock, pct, legName, transcriptText, errorBox, secs } from "./dom.js";
import { t, label } from "./i18n.js";

const FINAL = new Set(["done", "failed"]);
const PAGE = 50;

const basename = (path) => String(path || "").split(/[\\/]/).pop();

function stateChip(state) {
  return chip(label("state", state), `state state-${state}`, { dataset: { state } });
}

function progressBar(job) {
  const finished = job.done + job.skipped + job.failed;
  return h("div", { class: "progress" },
    h("progress", { max: 1, value: job.progress, "aria-label": t("job.progress", { done: finished, total: job.inputs,
      failed: job.failed }) }),
    h("span", { class: "small" }, `${finished}/${job.inputs}`));
}

/** Poll `fn` every `ms` while it returns true (a job still running); stops when the view goes away. `start()` polls
 * now (after an upload, say), never running two polls at once. */
function poller(fn, ms) {
  let timer = null;
  let stopped = false;
  let running = false;
  let again = false;
  const tick = async () => {
    clearTimeout(timer);
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    let more = false;
    try {
      more = await fn();
    } finally {
      running = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      tick();
    } else if (more) {
      timer = setTimeout(tick, ms);
    }
  };
  return { start: tick, stop() { stopped = true; clearTimeout(timer); } };
}

function uploadForm(onCreated) {
  const files = h("input", { type: "file", id: "job-files", name: "files", multiple: true, required: true,
    accept: "audio/*,video/*,.wav,.mp3,.flac,.opus,.ogg,.m4a,.aac,.amr" });
  const language = h("select", { id: "job-language", name: "language" },
    h("option", { value: "zh" }, "中文 zh"), h("option", { value: "en" }, "English en"), h("option", { value: "auto" }, "auto"));
  const formats = ["srt", "vtt", "txt"].map((f) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "formats", value: f, checked: f !== "vtt" }), f.toUpperCase()));
  const message = h("p", { class: "form-message", role: "status" });
  const button = h("button", { type: "submit", class: "primary" }, t("jobs.upload"));
  const form = h("form", { class: "panel upload", "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, t("jobs.submit")),
    h("div", { class: "form-row" }, h("label", { for: "job-files" }, t("jobs.files")), files),
    h("div", { class: "form-row" }, h("label", { for: "job-language" }, t("jobs.language")), language),
    h("fieldset", { class: "form-row" }, h("legend", {}, t("jobs.formats")), formats,
      h("span", { class: "muted small" }, t("jobs.formatsHint"))),
    h("div", { class: "form-row" }, button, message));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!files.files.length) { message.textContent = t("jobs.noFiles"); return; }
    const body = new FormData();
    for (const f of files.files) body.append("files", f, f.name);
    body.append("language", language.value);
    body.append("formats", JSON.stringify(formats.map((l) => l.querySelector("input")).filter((c) => c.checked)
      .map((c) => c.value)));
    button.disabled = true;
    message.textContent = t("jobs.uploading");
    try {
      const job = await (await request("/v1/jobs", { method: "POST", body })).json();
      message.textContent = t("jobs.created", { id: job.id.slice(0, 8) });
      form.reset();
      onCreated(job);
    } catch (err) {
      message.textContent = t("error.load", { msg: err.message });
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

export function jobsView(main) {
  const table = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, t("loading")));
  let shown = PAGE;
  const poll = poller(async () => {
    try {
      const page = await getJSON(`/v1/jobs?limit=${shown}`);
      render(page);
      return page.jobs.some((j) => !FINAL.has(j.state));
    } catch (err) {
      shownSig = "";
      mount(table, errorBox(t("error.load", { msg: err.message }), () => poll.start()));
      return false;
    }
  }, 2000);
  let shownSig = "";
  function render(page) {
    const sig = JSON.stringify(page);  // unchanged: keep the rows (a link being clicked stays in place)
    if (sig === shownSig) return;
    shownSig = sig;
    if (!page.jobs.length) { mount(table, h("p", { class: "empty" }, t("jobs.empty"))); return; }
    mount(table, h("table", { class: "data jobs-table" },
      h("thead", {}, h("tr", {}, ["jobs.col.job", "jobs.col.created", "jobs.col.state", "jobs.col.progress",
        "jobs.col.calls", "jobs.col.audio", "jobs.col.failed"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, page.jobs.map((j) => h("tr", { dataset: { jobId: j.id } },
        h("td", {}, h("a", { href: `#/jobs/${j.id}`, class: "mono" }, j.id.slice(0, 8))),
        h("td", {}, clock(j.created_at)), h("td", {}, stateChip(j.state)), h("td", {}, progressBar(j)),
        h("td", { class: "num" }, j.inputs), h("td", { class: "num" }, duration(j.audio_s)),
        h("td", { class: `num${j.failed ? " bad" : ""}` }, j.failed))))),
    page.next_offset !== null ? h("button", { type: "button", onclick: () => { shown += PAGE; poll.start(); } },
      t("jobs.more")) : null);
  }
  mount(main, h("section", { class: "jobs" }, h("div", { class: "page-head" }, h("h1", {}, t("jobs.title"))),
    h("div", { class: "jobs-grid" }, uploadForm(() => poll.start()),
      h("section", { class: "panel", "aria-labelledby": "jobs-list" }, h("h2", { id: "jobs-list" }, t("jobs.list")), table))));
  poll.start();
  return { destroy: () => poll.stop() };
}

// A report's stage sections sit under the stage's name; a stage that was off has none.
function escalationsOf(report) {
  return report.escalation || [];
}

function dominantOf(report) {
  return (report.emotion || {}).dominant || {};
}

function customerOf(report) {
  return report.legs.includes("customer") ? "customer" : report.legs[0];
}

export function jobView(main, ctx, jobId) {
  const head = h("div", {}, h("p", { class: "muted" }, t("loading")));
  const list = h("div", { class: "table-wrap" });
  let shown = PAGE;
  let shownSig = "";
  mount(main, h("section", { class: "job" }, h("a", { class: "back", href: "#/jobs" }, `← ${t("jobs.back")}`), head,
    h("section", { class: "panel", "aria-labelledby": "calls-title" }, h("h2", { id: "calls-title" }, t("job.calls")), list)));
  const poll = poller(async () => {
    try {
      const [job, page] = await Promise.all([getJSON(`/v1/jobs/${jobId}`),
        getJSON(`/v1/jobs/${jobId}/results?limit=${shown}`)]);
      const sig = JSON.stringify([job, page]);  // unchanged: keep the rows (a link being clicked stays in place)
      if (sig !== shownSig) {
        shownSig = sig;
        renderHead(job);
        renderCalls(page);
      }
      return !FINAL.has(job.state);
    } catch (err) {
      shownSig = "";
      mount(head, errorBox(t("error.load", { msg: err.message }), () => poll.start()));
      return false;
    }
  }, 2000);
  function renderHead(job) {
    const finished = job.done + job.skipped + job.failed;
    mount(head, h("div", { class: "page-head" }, h("h1", {}, t("job.title", { id: jobId.slice(0, 8) })), stateChip(job.state),
      h("span", { class: "muted small" }, clock(job.created_at))),
    h("div", { class: "facts" }, progressBar(job),
      h("span", {}, t("job.progress", { done: finished, total: job.inputs, failed: job.failed })),
      h("span", { class: "muted" }, duration(job.audio_s))),
    job.error ? h("p", { class: "notice error" }, `${t("job.error")}${t("sep.colon")}${job.error}`) : null);
  }
  function renderCalls(page) {
    mount(list, h("table", { class: "data calls-table" },
      h("thead", {}, h("tr", {}, ["job.col.index", "job.col.file", "job.col.status", "job.col.duration", "job.col.qa",
        "job.col.escalations", "job.col.emotion", ""].map((k) => h("th", { scope: "col" }, k ? t(k) : "")))),
      h("tbody", {}, page.results.map((r, i) => {
        const index = page.offset + i;
        const rep = r.report;
        return h("tr", { dataset: { index, status: r.status } },
          h("td", { class: "num" }, index + 1), h("td", { class: "file" }, basename(r.input)), h("td", {}, stateChip(r.status)),
          h("td", { class: "num" }, rep ? duration(rep.duration_s) : ""),
          h("td", { class: "num" }, rep && rep.qa ? rep.qa.score : ""),
          h("td", {}, rep ? (escalationsOf(rep).length ? escalationsOf(rep).map((e) =>
            chip(label("esc", e.kind), "esc")) : "–") : r.status === "failed" ? h("span", { class: "bad" }, r.error) : ""),
          h("td", {}, rep ? label("emo", dominantOf(rep)[customerOf(rep)] || "") : ""),
          h("td", {}, rep ? h("a", { href: `#/jobs/${jobId}/${index}` }, t("job.open")) : ""));
      }))),
    page.next_offset !== null ? h("button", { type: "button", onclick: () => { shown += PAGE; poll.start(); } },
      t("jobs.more")) : null);
  }
  poll.start();
  return { destroy: () => poll.stop() };
}

function fact(name, value) {
  return h("div", { class: "fact" }, h("dt", {}, name), h("dd", {}, value));
}

function evidenceText(evidence) {
  if (!evidence || !evidence.length) return "";
  return evidence.map((ev) => h("div", { class: "evidence" },
    h("span", { class: "who" }, `${legName(ev.leg)} ${duration((ev.start_ms || 0) / 1000)}${t("sep.colon")}`),
    transcriptText(ev.text || "", [])));
}

function qaSection(qa) {
  if (!qa) return h("p", { class: "muted" }, t("report.qaOff"));
  const order = { fail: 0, pass: 1, not_applicable: 2 };
  const outcomes = [...qa.outcomes].sort((a, b) => order[a.status] - order[b.status]);
  return [
    h("div", { class: "score-line" }, h("span", { class: "score-big", dataset: { score: qa.score } }, `${qa.score}`),
      h("span", { class: "muted" }, `/ ${qa.base_score} · ${qa.rules}`)),
    h("table", { class: "data qa-table" },
      h("thead", {}, h("tr", {}, ["report.col.rule", "report.col.category", "report.col.severity", "report.col.result",
        "report.col.note", "report.col.evidence"].map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, outcomes.map((o) => h("tr", { class: `rule-${o.status}`, dataset: { rule: o.rule, status: o.status } },
        h("td", {}, label("rule", o.rule)), h("td", {}, label("cat", o.category)),
        h("td", {}, chip(label("sev", o.severity), `sev sev-${o.severity}`)),
        h("td", {}, chip(t(`result.${o.status}`), `result ${o.status}`)),
        h("td", { class: "small" }, o.note || ""), h("td", { class: "small" }, evidenceText(o.evidence)))))),
  ];
}

function transcriptSection(report) {
  const order = ["customer", "mixed", "agent"];
  const columns = [...report.legs].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const segs = [...report.segments].sort((a, b) => a.start_ms - b.start_ms);
  return h("div", { class: "transcript static" }, h("div", { class: "cols",
    style: { gridTemplateColumns: `repeat(${columns.length}, minmax(0, 1fr))` } },
  columns.map((leg) => h("div", { class: `col-head leg-${leg}` }, legName(leg))),
  segs.map((seg) => {
    const meta = [];
    if (seg.intent) meta.push(chip(`${label("intent", seg.intent)} ${pct(seg.intent_probability)}`, "intent"));
    if (seg.negativity !== null && seg.negativity !== undefined) {
      meta.push(chip(t("call.negativity", { p: pct(seg.negativity) }), seg.negativity >= 0.5 ? "neg hot" : "neg"));
    }
    if (seg.emotion) meta.push(chip(`${label("emo", seg.emotion)} · ${pct(seg.p_angry)}`,
      `emo emo-${seg.emotion}${seg.emotion === "angry" ? " hot" : ""}`));
    return h("div", { class: `utt final leg-${seg.leg}`, style: { gridColumn: String(Math.max(0, columns.indexOf(seg.leg)) + 1) } },
      h("div", { class: "utt-head" }, h("span", { class: "who" }, seg.leg === "mixed" && seg.speaker ? seg.speaker : legName(seg.leg)),
        h("time", {}, duration(seg.start_ms / 1000))),
      h("p", { class: "utt-text" }, transcriptText(seg.text, seg.redactions)),
      meta.length ? h("div", { class: "utt-meta" }, meta) : null);
  })));
}

export function reportView(main, ctx, jobId, index) {
  mount(main, h("p", { class: "muted" }, t("loading")));
  let gone = false;
  (async () => {
    try {
      const [job, page] = await Promise.all([getJSON(`/v1/jobs/${jobId}`),
        getJSON(`/v1/jobs/${jobId}/results?offset=${index}&limit=1`)]);
      if (gone) return;
      const result = page.results[0];
      const back = h("a", { class: "back", href: `#/jobs/${jobId}` }, `← ${t("report.back", { id: jobId.slice(0, 8) })}`);
      if (!result || result.status !== "done") {
        mount(main, back, h("p", { class: "notice" }, result && result.status === "failed"
          ? t("report.failed", { error: result.error }) : t("report.pending")));
        return;
      }
      render(job, result, back);
    } catch (err) {
      if (!gone) mount(main, errorBox(t("error.load", { msg: err.message }), () => reportView(main, ctx, jobId, index)));
    }
  })();

  function render(job, result, back) {
    const rep = result.report;
    const sum = rep.summary;
    const name = basename(result.input);
    const stem = name.replace(/\.[^.]+$/, "");
    const downloads = (job.formats || ["json"]).map((fmt) => h("a", {
      class: "button", href: `/v1/jobs/${jobId}/outputs/${index}/${fmt}`, dataset: { format: fmt },
      onclick: (ev) => { ev.preventDefault(); download(`/v1/jobs/${jobId}/outputs/${index}/${fmt}`, `${stem}.${fmt}`); },
    }, fmt.toUpperCase()));
    // Redacted audio downloads will join these links once the server offers them; nothing to link yet.
    const customer = customerOf(rep);
    const points = rep.segments.filter((sg) => sg.leg === customer && sg.p_angry !== null && sg.p_angry !== undefined)
      .map((sg) => ({ t: sg.end_ms / 1000, p: sg.p_angry, smoothed: sg.p_angry_smoothed ?? sg.p_angry }));
    const marks = escalationsOf(rep).map((e) => ({ t: (e.evidence && e.evidence.length ? e.evidence[0].end_ms : 0) / 1000,
      kind: e.kind }));
    const talkRows = [
      ...sum.legs.map((l) => ({ label: legName(l.leg), value: l.talk_s, cls: `leg-${l.leg}` })),
      { label: t("report.silence"), value: sum.silence_s, cls: "silence" },
      { label: t("report.overtalk"), value: sum.overtalk_s, cls: "overtalk" },
    ];
    mount(main, h("section", { class: "report" }, back,
      h("div", { class: "page-head" }, h("h1", {}, `${t("report.title")} · `, h("span", { class: "mono" }, name)),
        h("div", { class: "downloads", role: "group", "aria-label": t("report.downloads") },
          h("span", { class: "muted small" }, `${t("report.downloads")}${t("sep.colon")}`), downloads)),
      h("div", { class: "report-grid" },
        h("section", { class: "panel", "aria-labelledby": "ov-title" }, h("h2", { id: "ov-title" }, t("report.overview")),
          h("dl", { class: "facts-grid" },
            fact(t("report.duration"), duration(sum.duration_s)),
            fact(t("report.silence"), secs(sum.silence_s)),
            fact(t("report.longestSilence"), secs(sum.longest_silence_s)),
            fact(t("report.overtalk"), secs(sum.overtalk_s)),
            sum.legs.map((l) => fact(`${legName(l.leg)} · ${t("report.talk")}`,
              `${secs(l.talk_s)} · ${t("report.utterances", { n: l.utterances })} · ${l.speaking_rate} ${l.rate_unit}`)),
            fact(t("report.dominant"), Object.entries(dominantOf(rep)).map(([leg, emo]) =>
              `${legName(leg)} ${label("emo", emo)}`).join(t("sep.list")) || "–"),
            fact(t("report.intents"), Object.entries((rep.intent || {}).counts || {}).map(([k, n]) => chip(`${label("intent", k)} ×${n}`, "intent"))),
          ),
          h("h3", {}, t("report.escalations")),
          escalationsOf(rep).length ? h("ul", { class: "alerts" }, escalationsOf(rep).map((e) => h("li", { class: "alert red",
            dataset: { kind: e.kind } }, h("div", { class: "alert-head" }, h("strong", {}, label("esc", e.kind))),
          h("div", { class: "alert-detail" }, (e.reasons || []).join(t("sep.reasons"))), evidenceText(e.evidence))))
            : h("p", { class: "muted" }, t("report.noEscalations"))),
        h("section", { class: "panel charts", "aria-labelledby": "ch-title" },
          h("h2", { id: "ch-title" }, t("report.talkChart")),
          bars(talkRows, { title: t("report.talkChart"), desc: t("report.talkChartDesc"), width: 520 }),
          h("h3", {}, t("report.whoSpoke")),
          speakingStrip({ legs: rep.legs, segments: rep.segments, duration: sum.duration_s, width: 520 }),
          h("h3", {}, `${t("report.emotionChart")} · ${legName(customer)}`),
          emotionTimeline({ points, marks, duration: sum.duration_s, width: 520, height: 180 }))),
      h("section", { class: "panel", "aria-labelledby": "qa-title" }, h("h2", { id: "qa-title" }, t("report.qa")),
        qaSection(rep.qa)),
      h("section", { class: "panel", "aria-labelledby": "rt-title" }, h("h2", { id: "rt-title" }, t("report.transcript")),
        transcriptSection(rep))));
  }
  return { destroy() { gone = true; } };
}
