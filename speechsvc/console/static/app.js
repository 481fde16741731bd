// The console's entry point: hash routes, the top bar (connection state, alerts, language) and escalation alerts.
//
//   #/                     live wall          wall.js
//   #/calls/{call_id}      one call           callview.js
//   #/jobs                 recorded calls     jobs.js
//   #/jobs/{id}            one job's calls    jobs.js
//   #/jobs/{id}/{index}    one call's report  jobs.js

import { apiKey, askForKey, forgetKey } from "./api.js";
import { callView } from "./callview.js";
import { h } from "./dom.js";
import { currentLang, label, setLang, t, translateStatic } from "./i18n.js";
import { jobView, jobsView, reportView } from "./jobs.js";
import { wallView } from "./wall.js";

const main = document.getElementById("main");
const conn = document.getElementById("conn");
const alertsButton = document.getElementById("alerts-toggle");
const langButton = document.getElementById("lang-toggle");
const keyButton = document.getElementById("key-button");
const toasts = document.getElementById("toasts");
let view = null;
let connState = ["connecting"];
let alertsOn = sessionStorage.getItem("speechsvc.alerts") === "on";

function setConnection(state, seconds) {
  connState = [state, seconds];
  conn.dataset.state = state;
  conn.textContent = state === "reconnecting" ? t("conn.reconnecting", { s: seconds }) : t(`conn.${state}`);
  if (state === "auth" && !main.querySelector(".auth-notice")) {
    main.prepend(h("div", { class: "notice error auth-notice", role: "alert" }, t("auth.needed"), " ",
      h("button", { type: "button", onclick: async () => { if (await askForKey(401)) route(); } }, t("auth.enter"))));
  }
}

function beep() {
  try {
    const audio = new AudioContext();
    for (const [i, freq] of [660, 880].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, audio.currentTime + i * 0.18);
      gain.gain.exponentialRampToValueAtTime(0.15, audio.currentTime + i * 0.18 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + i * 0.18 + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + i * 0.18);
      osc.stop(audio.currentTime + i * 0.18 + 0.17);
    }
    setTimeout(() => audio.close(), 800);
  } catch {
    // no audio output (a kiosk without speakers): the toast is still shown
  }
}

/** An escalation arrived live: a toast always; a chime and a desktop notification when alerts are on. */
function alert(callId, escalation) {
  const text = t("notify.escalation", { id: callId, kind: label("esc", escalation.kind) });
  const toast = h("div", { class: "toast" }, h("a", { href: `#/calls/${encodeURIComponent(callId)}` }, text),
    h("button", { type: "button", "aria-label": t("toast.close"), onclick: () => toast.remove() }, "×"));
  toasts.append(toast);
  while (toasts.children.length > 3) toasts.firstChild.remove();
  setTimeout(() => toast.remove(), 8000);
  if (!alertsOn) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    new Notification("speechsvc", { body: text, tag: `${callId}:${escalation.kind}` });
  }
}

function updateStatic() {
  translateStatic();
  langButton.textContent = t("lang.switch");
  langButton.setAttribute("lang", currentLang() === "zh" ? "en" : "zh");
  langButton.setAttribute("aria-label", t("lang.switchLabel"));
  alertsButton.textContent = t(alertsOn ? "alerts.on" : "alerts.off");
  alertsButton.setAttribute("aria-pressed", String(alertsOn));
  keyButton.hidden = !apiKey();
  setConnection(...connState);
}

function route() {
  if (view) view.destroy();
  view = null;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const ctx = { setConnection, alert };
  const section = parts[0] === "jobs" ? "jobs" : "live";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (parts[0] === "calls" && parts[1]) view = callView(main, ctx, parts[1]);
  else if (parts[0] === "jobs" && parts[1] && parts[2] !== undefined) view = reportView(main, ctx, parts[1], Number(parts[2]));
  else if (parts[0] === "jobs" && parts[1]) view = jobView(main, ctx, parts[1]);
  else if (parts[0] === "jobs") view = jobsView(main, ctx);
  else view = wallView(main, ctx);
  if (section === "jobs") setConnection("live");
  keyButton.hidden = !apiKey();
}

langButton.addEventListener("click", () => {
  setLang(currentLang() === "zh" ? "en" : "zh");
  updateStatic();
  route();
});
alertsButton.addEventListener("click", async () => {
  alertsOn = !alertsOn;
  sessionStorage.setItem("speechsvc.alerts", alertsOn ? "on" : "off");
  if (alertsOn && "Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
  updateStatic();
});
keyButton.addEventListener("click", () => {
  forgetKey();
  route();
});
document.getElementById("auth-dialog").addEventListener("close", () => { keyButton.hidden = !apiKey(); });
window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true });
});

setLang(currentLang());
updateStatic();
route();
