"""The live view's one page: HTML, CSS and a script, all inline (no CDN, nothing fetched but the server's own JSON
and figures). The script asks `state.json` every 2 s and rebuilds a study's section only when its version
changed; the trials table comes rendered (and escaped) by the server, every other text is set as text."""
from __future__ import annotations

import html

POLL_MS = 2000

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1, h2, h3 { font-weight: 600; }
h2 small { font-weight: normal; color: #777; font-size: 0.6em; margin-left: 0.5em; }
section { border-top: 1px solid #ddd; padding-top: 0.5em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
tbody tr:nth-child(even) { background: #fafafa; }
.note, .since { color: #555; }
.error { color: #a00; }
.running { font-weight: 600; }
progress { width: 16em; vertical-align: middle; }
figure { margin: 1em 0; }
img { max-width: 100%; }
.trials { overflow-x: auto; }
"""

_SCRIPT = """
"use strict";
const POLL_MS = %(poll)d;
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "dataset") Object.assign(node.dataset, value); else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
function fmt(v) {
  return typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(4))) : String(v);
}
function ago(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  return seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min`
                                                         : `${Math.round(seconds / 3600)} h`;
}
function progress(s) {
  const bar = s.planned ? el("progress", {value: s.done, max: s.planned}) : null;
  const running = s.running.length ? `, ${s.running.length} running` : "";
  return el("p", {className: "progress"}, bar,
            ` ${s.done}${s.planned ? " of " + s.planned : ""} trials done${running}`);
}
function runningTrial(t) {
  const values = Object.entries(t.values).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
  return el("p", {className: "running", dataset: {trial: t.trial_id}},
            `trial ${t.trial_id} running: ${t.epoch ? "epoch " + t.epoch : "starting"}` +
            `${t.epochs ? (t.epoch ? " of " : ", epochs: ") + t.epochs : ""}  ${values}`,
            t.updated ? el("span", {className: "since", dataset: {since: t.updated}}) : null);
}
function study(s) {
  const title = el("h2", {}, s.name, el("small", {}, s.path));
  if (s.error) return [title, el("p", {className: "error"}, s.error)];
  const best = s.best ? `best so far: trial ${s.best.trial_id}, ${s.objective} ${fmt(s.best.score)}`
                      : "no completed trial yet";
  const table = el("div", {className: "trials"});
  table.innerHTML = s.table;
  const figures = s.figures.map(f => el("figure", {}, el("img", {src: f.url, alt: f.caption}),
                                         el("figcaption", {}, f.caption)));
  return [title, progress(s), ...s.running.map(runningTrial),
          el("p", {}, `${best} (${s.better} is better; ${s.tuner} search)`), el("h3", {}, "Trials"), table,
          figures.length ? el("h3", {}, "Figures") : null, ...figures].filter(Boolean);
}
function tick() {
  const now = Date.now() / 1000;
  for (const node of document.querySelectorAll("[data-since]")) {
    node.textContent = ` (last epoch ${ago(now - Number(node.dataset.since))} ago)`;
  }
}
function render(state) {
  const main = document.getElementById("studies");
  for (const s of state.studies) {
    let section = document.getElementById(`study-${s.index}`);
    if (!section) {
      section = el("section", {id: `study-${s.index}`});
      main.append(section);
    }
    if (section.dataset.version === s.version) continue;
    section.replaceChildren(...study(s));
    Object.assign(section.dataset, {version: s.version, done: s.done ?? "", trials: s.trials ?? ""});
  }
  tick();
}
function say(text) { document.getElementById("status").textContent = text; }
async function poll() {
  try {
    const answer = await fetch("state.json", {cache: "no-store"});
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    render(await answer.json());
    say(`updated ${new Date().toLocaleTimeString()}, every ${POLL_MS / 1000} s`);
  } catch (err) {
    say(`cannot reach hpstudy serve (${err.message}); trying again`);
  }
  setTimeout(poll, POLL_MS);
}
setInterval(tick, 1000);
poll();
"""


def page(names: list[str]) -> bytes:
    """The page, titled with the studies' folder names."""
    title = html.escape("hpstudy: " + ", ".join(names))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
            "<p id=\"status\" class=\"note\">loading&hellip;</p>\n<main id=\"studies\"></main>\n"
            f"<script>{_SCRIPT % {'poll': POLL_MS}}</script>\n</body>\n</html>\n").encode("utf-8")
