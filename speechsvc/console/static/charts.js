// Inline SVG charts drawn from the data (no chart library): the emotion timeline with escalation marks, talk
// time bars and a who-spoke-when strip. Each is an <svg role="img"> with a title and description for screen
// readers; colours come from console.css classes.

import { s } from "./dom.js";
import { t, label } from "./i18n.js";

function frame(width, height, title, desc, cls) {
  const id = `c${Math.random().toString(36).slice(2, 8)}`;
  return s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: `chart ${cls}`,
    "aria-labelledby": `${id}-t ${id}-d`, preserveAspectRatio: "xMidYMid meet" },
  s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, desc));
}

function niceStep(span) {
  for (const step of [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800]) if (span / step <= 6) return step;
  return 3600;
}

/**
 * P(angry) over media time. `points`: [{t: seconds, p, smoothed}] of one leg; `marks`: [{t, kind}] escalations.
 * The smoothed value is the line (what the escalation policy reads), the per-utterance value the dots.
 */
export function emotionTimeline({ points, marks = [], duration, width = 440, height = 190, title }) {
  const pad = { l: 34, r: 10, t: 12, b: 30 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const end = Math.max(10, duration || 0, ...points.map((p) => p.t), ...marks.map((m) => m.t));
  const x = (sec) => pad.l + (sec / end) * w;
  const y = (p) => pad.t + (1 - p) * hgt;
  const svg = frame(width, height, title || t("call.timeline"), t("call.timelineDesc"), "timeline");
  for (const v of [0, 0.5, 1]) {
    svg.append(s("line", { class: "grid", x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v) }),
      s("text", { class: "tick", x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, `${v * 100}%`));
  }
  const step = niceStep(end);
  for (let sec = 0; sec <= end; sec += step) {
    if (x(sec) > pad.l + w - 70 && sec > 0) break;  // leave room for the axis title
    svg.append(s("text", { class: "tick", x: x(sec), y: height - pad.b + 16, "text-anchor": "middle" }, `${sec}`));
  }
  svg.append(s("text", { class: "axis", x: pad.l + w, y: height - pad.b + 16, "text-anchor": "end" }, t("time.axis")));
  const placed = [];  // labels of marks close together go on successive lines
  for (const m of [...marks].sort((a, b) => a.t - b.t)) {
    const name = label("esc", m.kind);
    const line = placed.filter((px) => Math.abs(px - x(m.t)) < 90).length;
    placed.push(x(m.t));
    const right = x(m.t) > pad.l + w * 0.7;
    const g = s("g", { class: "esc-mark", dataset: { kind: m.kind } },
      s("title", {}, `${name} · ${Math.round(m.t)} s`),
      s("line", { x1: x(m.t), x2: x(m.t), y1: pad.t, y2: pad.t + hgt }),
      s("text", { x: right ? x(m.t) - 4 : x(m.t) + 4, y: pad.t + 11 + 13 * line, "text-anchor": right ? "end" : "start" },
        name));
    svg.append(g);
  }
  const sorted = [...points].sort((a, b) => a.t - b.t);
  if (sorted.length > 1) {
    const d = sorted.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.smoothed).toFixed(1)}`).join(" ");
    svg.append(s("path", { class: "smoothed", d }));
  }
  for (const p of sorted) {
    svg.append(s("circle", { class: p.p >= 0.5 ? "dot hot" : "dot", cx: x(p.t), cy: y(p.p), r: 3 },
      s("title", {}, `${Math.round(p.t)} s · P(angry) ${Math.round(p.p * 100)}%`)));
  }
  return svg;
}

/** Horizontal bars: [{label, value (seconds), cls}]. */
export function bars(rows, { width = 440, title, desc }) {
  const rowH = 26;
  const pad = { l: 96, r: 64, t: 6, b: 6 };
  const height = pad.t + pad.b + rows.length * rowH;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const w = width - pad.l - pad.r;
  const svg = frame(width, height, title, desc, "bars");
  rows.forEach((r, i) => {
    const top = pad.t + i * rowH;
    svg.append(
      s("text", { class: "tick", x: pad.l - 8, y: top + 17, "text-anchor": "end" }, r.label),
      s("rect", { class: `bar ${r.cls || ""}`, x: pad.l, y: top + 5, height: rowH - 10, width: Math.max(1, (r.value / max) * w),
        rx: 3 }, s("title", {}, `${r.label}: ${r.value} s`)),
      s("text", { class: "value", x: pad.l + (r.value / max) * w + 6, y: top + 17 }, `${r.value} s`));
  });
  return svg;
}

/** One lane per leg with a block for every utterance, over the call's duration. */
export function speakingStrip({ legs, segments, duration, width = 440 }) {
  const laneH = 22;
  const pad = { l: 96, r: 10, t: 6, b: 24 };
  const height = pad.t + pad.b + legs.length * laneH;
  const end = Math.max(1, duration || 0, ...segments.map((seg) => seg.end_ms / 1000));
  const w = width - pad.l - pad.r;
  const x = (sec) => pad.l + (sec / end) * w;
  const svg = frame(width, height, t("report.whoSpoke"), t("report.whoSpokeDesc"), "strip");
  legs.forEach((leg, i) => {
    const top = pad.t + i * laneH;
    svg.append(s("text", { class: "tick", x: pad.l - 8, y: top + 15, "text-anchor": "end" }, label("leg", leg)),
      s("rect", { class: "lane", x: pad.l, y: top + 3, width: w, height: laneH - 6 }));
    for (const seg of segments.filter((g) => g.leg === leg)) {
      svg.append(s("rect", { class: `speech leg-${leg}`, x: x(seg.start_ms / 1000), y: top + 3,
        width: Math.max(1, x(seg.end_ms / 1000) - x(seg.start_ms / 1000)), height: laneH - 6 }));
    }
  });
  const step = niceStep(end);
  for (let sec = 0; sec <= end; sec += step) {
    svg.append(s("text", { class: "tick", x: x(sec), y: height - 6, "text-anchor": "middle" }, `${sec}`));
  }
  return svg;
}
