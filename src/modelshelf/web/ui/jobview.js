// One job as a list item, for the jobs page and the pending page's batches. Its elements are
// made once: live progress (up to 4 updates a second) changes their text and values in place,
// so focus on Cancel, an open "Full result" or a screen reader's reading place survives every
// update. What it found is drawn when it ends.
import { h, clear, note, formatBytes, formatCount, formatDuration, formatDate, plural, toMillis } from "./dom.js";
import { isOver } from "./api.js";
import { jsonTree } from "./meta.js";

const KINDS = { scan: "Scan of the model folders", migrate_legacy: "Legacy library import", import_models: "Batch import of pending models" };

// What each kind of job counts (its progress's `done` and `total`).
const UNITS = { scan: ["file", "files"], migrate_legacy: ["model", "models"], import_models: ["model", "models"] };

export function kindName(job) {
  return KINDS[job.kind] || job.kind;
}

function progressFacts(job) {
  const p = job.progress || {};
  const [one, many] = UNITS[job.kind] || ["item", "items"];
  const facts = [];
  if (p.phase) facts.push(p.phase);
  facts.push(p.total ? `${formatCount(p.done || 0)} of ${plural(p.total, one, many)}` : plural(p.done || 0, one, many));
  if (p.bytes_total || p.bytes_done) facts.push(p.bytes_total ? `${formatBytes(p.bytes_done || 0)} of ${formatBytes(p.bytes_total)}` : formatBytes(p.bytes_done));
  const perSecond = p.rate >= 10 ? formatCount(Math.round(p.rate)) : Number(p.rate).toFixed(1);
  if (p.rate) facts.push(p.bytes_total || p.bytes_done ? `${formatBytes(p.rate)}/s` : `${perSecond} ${many}/s`);
  if (p.eta_s !== undefined && p.eta_s !== null && !isOver(job)) facts.push(`${formatDuration(p.eta_s)} left`);
  return facts;
}

// How long it took, once it is over.
function timeFacts(job) {
  const started = toMillis(job.started_at);
  const finished = toMillis(job.finished_at);
  return isOver(job) && started && finished ? [`took ${formatDuration((finished - started) / 1000)}`] : [];
}

function fraction(job) {
  const p = job.progress || {};
  if (job.state === "done") return 1;
  if (p.bytes_total) return Math.min(1, (p.bytes_done || 0) / p.bytes_total);
  if (p.total) return Math.min(1, (p.done || 0) / p.total);
  return null;
}

// ---- what a finished job found ---------------------------------------------------------

// Where to look after a scan: what it brought in (newest first), and what went missing.
function scanLinks(counts) {
  const links = [];
  if (counts.models_created) links.push(h("a", { href: "./?sort=created_at&order=desc", text: `Show the ${plural(counts.models_created, "new model")}` }));
  if (counts.locations_missing) links.push(h("a", { href: "./?missing=true", text: "Show models whose files are missing" }));
  return links.length ? h("p", { class: "row-actions" }, links) : null;
}

function resultSummary(job) {
  const result = job.result;
  if (!result || typeof result !== "object") return [];
  const scalars = Object.entries(result).filter(([, v]) => typeof v === "number" || typeof v === "string");
  const counts = result.counts && typeof result.counts === "object" ? Object.entries(result.counts) : [];
  return [
    scalars.length || counts.length ? h("p", { class: "stats", text: [...scalars, ...counts].map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "number" ? formatCount(v) : v}`).join(" · ") }) : null,
    job.kind === "scan" ? scanLinks(result.counts || {}) : null,
    h("details", {}, h("summary", { text: "Full result" }), jsonTree(result)),
  ];
}

// ---- the view ------------------------------------------------------------------------------

// Spans in `container` showing `texts`, reusing the spans already there.
function setTexts(container, texts) {
  while (container.children.length > texts.length) container.lastElementChild.remove();
  texts.forEach((text, i) => {
    const span = container.children[i] || container.appendChild(h("span"));
    if (span.textContent !== text) span.textContent = text;
  });
}

let made = 0;

// A job as a list item (focusable, named by its kind and state); `update(job)` shows a newer
// state of it in place and does nothing when nothing shown changed.
export function jobView(job, { onCancel } = {}) {
  const key = `job-${++made}`;
  let current = job;
  const title = h("strong", { id: `${key}-title`, text: kindName(job) });
  const badge = h("span", { id: `${key}-state`, class: "badge" });
  const created = h("span", { class: "count" });
  const cancel = onCancel ? h("button", { type: "button", class: "danger small", text: "Cancel", "aria-label": `Cancel ${kindName(job)}`, onclick: () => onCancel(current) }) : null;
  const bar = h("progress", { max: "1", "aria-label": `Progress of ${kindName(job)}` });
  const stats = h("div", { class: "stats" });
  const error = h("div");
  const found = h("div", { class: "found" });
  const el = h("li", { class: "job", tabindex: "-1", "aria-labelledby": `${key}-title ${key}-state`, dataset: { id: job.id } },
    h("header", {}, title, badge, created, cancel ? h("div", { class: "row-actions" }, cancel) : null),
    bar, stats, error, found);
  let shown = null;
  let shownError = null;
  let shownResult = null;

  el.update = (next) => {
    const state = JSON.stringify(next);
    if (state === shown) return;
    shown = state;
    current = next;
    const running = !isOver(next);
    badge.className = `badge state-${next.state}`;
    badge.textContent = next.state;
    created.textContent = formatDate(next.created_at);
    if (cancel && !running && cancel.contains(document.activeElement)) el.focus(); // not lost to <body>
    if (cancel) cancel.hidden = !running;
    showProgress(bar, next);
    setTexts(stats, [...progressFacts(next), ...timeFacts(next)]);
    if ((next.error || null) !== shownError) clear(error, next.error ? note(next.error, { error: true }) : null);
    shownError = next.error || null;
    // Drawn once for a finished job (and again only if its result changed), so an open
    // "Full result" stays open.
    const result = running ? null : JSON.stringify(next.result ?? null);
    if (result !== shownResult) clear(found, running ? [] : resultSummary(next));
    shownResult = result;
  };
  el.update(job);
  return el;
}

function showProgress(bar, job) {
  const value = fraction(job);
  bar.hidden = isOver(job) && job.state !== "done";
  if (value === null) bar.removeAttribute("value");
  else bar.value = value;
}
