// One job as a list item, for the jobs page and the pending page's batches. Its elements are
// made once: live progress (up to 4 updates a second) changes their text and values in place,
// so focus on Cancel, an open "Full result" or a screen reader's reading place survives every
// update. What it found (problems first) is drawn when it ends.
import { h, clear, note, formatBytes, formatCount, formatDuration, formatDate, plural, toMillis, byName } from "./dom.js";
import { isOver } from "./api.js";
import { jsonTree } from "./meta.js";

const KINDS = { scan: "Scan of the model folders", migrate_legacy: "Legacy library import", import_models: "Batch import of pending models" };

// What each kind of job counts (its progress's `done` and `total`).
const UNITS = { scan: ["file", "files"], migrate_legacy: ["model", "models"], import_models: ["model", "models"] };

// A screen reader hears a running job at most this often, and at each new phase: every
// progress event would drown out everything else the person is doing.
const ANNOUNCE_EVERY_MS = 10000;

// The counters of a scan's and a batch's result, in the words of the page (the API's keys are
// for programs); a scan's `bytes_hashed` is a size. Counters not listed keep their key.
const COUNT_LABELS = {
  scan: {
    files_found: "files found", unchanged: "unchanged, not read", hashed: "read and hashed",
    bytes_hashed: "data read", recognised: "recognised without reading", failed: "could not be read",
    models_created: "new models", locations_added: "new copies of known models",
    locations_changed: "files with new content", locations_back: "files back in place",
    locations_missing: "files gone missing", paths_moved: "models given another path",
    metadata_read: "file facts read", images_added: "images added", tags_added: "tags added",
  },
  import_models: { success: "imported", conflict: "conflicts", locked: "busy elsewhere", not_found: "no longer pending", failed: "failed" },
};
const SIZES = new Set(["bytes_hashed"]);

export function kindName(job) {
  return KINDS[job.kind] || job.kind;
}

function progressFacts(job) {
  const p = job.progress || {};
  const [one, many] = UNITS[job.kind] || ["item", "items"];
  const over = isOver(job);
  const facts = [];
  if (p.phase && !over) facts.push(p.phase); // a finished job is past its phases
  facts.push(p.total ? `${formatCount(p.done || 0)} of ${plural(p.total, one, many)}` : plural(p.done || 0, one, many));
  if (p.bytes_total || p.bytes_done) facts.push(p.bytes_total ? `${formatBytes(p.bytes_done || 0)} of ${formatBytes(p.bytes_total)}` : formatBytes(p.bytes_done));
  const perSecond = p.rate >= 10 ? formatCount(Math.round(p.rate)) : Number(p.rate).toFixed(1);
  if (p.rate && !over) facts.push(p.bytes_total || p.bytes_done ? `${formatBytes(p.rate)}/s` : `${perSecond} ${many}/s`);
  if (p.eta_s !== undefined && p.eta_s !== null && !over) facts.push(`${formatDuration(p.eta_s)} left`);
  return facts;
}

// How long it took, when the record can say so honestly. A job the process died under is
// marked failed at the next start, so its end time includes the downtime: for a failed job
// only its start is told (its error says why it ended).
function timeFacts(job) {
  const started = toMillis(job.started_at);
  const finished = toMillis(job.finished_at);
  if (job.state === "failed") return started ? [`started ${formatDate(started)}`] : [];
  if (isOver(job) && started && finished) return [`took ${formatDuration((finished - started) / 1000)}`];
  return [];
}

function fraction(job) {
  const p = job.progress || {};
  if (job.state === "done") return 1;
  if (p.bytes_total) return Math.min(1, (p.bytes_done || 0) / p.bytes_total);
  if (p.total) return Math.min(1, (p.done || 0) / p.total);
  return null;
}

// "hashing, 45%": what a screen reader hears of a running job, and its progress bar's value.
function progressText(job) {
  const bar = fraction(job);
  const facts = progressFacts(job);
  return bar === null ? facts.join(", ") : `${Math.floor(bar * 100)}%, ${facts.join(", ")}`;
}

// ---- what a finished job found ---------------------------------------------------------

// [label, shown value] of every counter worth reading: zeros say nothing went a way, except
// the files a scan found (a scan that found none is news).
export function countFacts(kind, result) {
  const labels = COUNT_LABELS[kind] || {};
  const counts = result.counts && typeof result.counts === "object" ? Object.entries(result.counts) : [];
  const scalars = Object.entries(result).filter(([k, v]) => k !== "problems_not_listed" && (typeof v === "number" || typeof v === "string"));
  return [...scalars, ...counts]
    .filter(([k, v]) => v !== 0 || (kind === "scan" && k === "files_found"))
    .map(([k, v]) => [labels[k] || k.replace(/_/g, " "), typeof v !== "number" ? v : SIZES.has(k) ? formatBytes(v) : formatCount(v)]);
}

export function problemCount(result) {
  const listed = Array.isArray(result.problems) ? result.problems.length : 0;
  return listed + (Number(result.problems_not_listed) || 0);
}

// A scan's problems are {path, reason}; stage 1's are {legacy_id, problem, ...}.
function problemItem(problem) {
  const where = problem.path ?? (problem.legacy_id !== undefined && problem.legacy_id !== null ? `legacy model ${problem.legacy_id}` : null);
  const why = problem.reason ?? problem.problem ?? JSON.stringify(problem);
  return h("li", {}, where !== null ? [h("code", { text: String(where) }), ": "] : null, h("span", { text: why }));
}

// A job lists up to 1,000 problems, and the jobs page shows 50 jobs: each shows its first
// PROBLEMS_AT_FIRST, the others behind a button (a folder of broken files, listed again by
// every scan, would be tens of thousands of rows drawn at once).
export const PROBLEMS_AT_FIRST = 10;

// A scan lists problems in the order it met them (its walk, then the files it read, then the
// ones it only recalled), which scatters one folder's files over the list. They are shown by
// folder, then by file name, numbers by their value (broken_2 before broken_10); problems
// without a path (stage 1's) keep their order, after.
function folderAndName(problem) {
  if (typeof problem.path !== "string") return null;
  const cut = problem.path.search(/[^\/\\]*$/);
  return [problem.path.slice(0, cut), problem.path.slice(cut)];
}
function inPathOrder(problems) {
  const keyed = problems.map((problem) => [folderAndName(problem), problem]);
  keyed.sort(([a], [b]) => (!a || !b ? Number(!a) - Number(!b) : byName(a[0], b[0]) || byName(a[1], b[1])));
  return keyed.map(([, problem]) => problem);
}

function problemList(result) {
  const total = problemCount(result);
  if (!total) return null;
  const listed = inPathOrder(Array.isArray(result.problems) ? result.problems : []);
  const more = total - listed.length;
  const list = h("ul", {}, listed.slice(0, PROBLEMS_AT_FIRST).map(problemItem));
  const hidden = listed.length - PROBLEMS_AT_FIRST;
  const showAll = hidden > 0 ? h("button", { type: "button", class: "small", text: `Show ${plural(hidden, "more problem")}`, onclick: () => {
    const rest = listed.slice(PROBLEMS_AT_FIRST).map(problemItem);
    list.append(...rest);
    // The button goes; focus goes to the first problem it showed.
    rest[0].tabIndex = -1;
    rest[0].focus();
    showAll.remove();
  } }) : null;
  return h("div", { class: "findings problems" },
    h("strong", { text: plural(total, "problem") }),
    list, showAll,
    more ? h("p", { text: `and ${plural(more, "more problem")} not listed` }) : null);
}

function warningList(result) {
  const warnings = Array.isArray(result.warnings) ? result.warnings : [];
  if (!warnings.length) return null;
  return h("div", { class: "findings warnings" },
    h("strong", { text: plural(warnings.length, "warning") }),
    h("ul", {}, warnings.map((w) => h("li", { text: String(w) }))));
}

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
  const facts = countFacts(job.kind, result);
  return [
    problemList(result),
    warningList(result),
    facts.length ? h("p", { class: "stats", text: facts.map(([k, v]) => `${k}: ${v}`).join(" · ") }) : null,
    job.kind === "scan" ? scanLinks(result.counts || {}) : null,
    h("details", {}, h("summary", { text: "Full result" }), jsonTree(result)),
  ];
}

// What the end of a job is announced with: its state, and what it found (a scan: its files,
// new and missing ones, problems and warnings first; others: their counters).
export function endAnnouncement(job) {
  const head = `${kindName(job)}: ${job.state}`;
  if (job.state === "failed" || job.state === "cancelled") return job.error ? `${head}: ${job.error}` : head;
  const result = job.result && typeof job.result === "object" ? job.result : null;
  if (!result) return head;
  const found = [];
  const problems = problemCount(result);
  const warnings = Array.isArray(result.warnings) ? result.warnings.length : 0;
  if (problems) found.push(plural(problems, "problem"));
  if (warnings) found.push(plural(warnings, "warning"));
  const counts = result.counts || {};
  if (job.kind === "scan") {
    found.push(`${plural(counts.files_found || 0, "file")} found`);
    if (counts.models_created) found.push(plural(counts.models_created, "new model"));
    if (counts.locations_missing) found.push(`${plural(counts.locations_missing, "file")} gone missing`);
  } else {
    found.push(...countFacts(job.kind, result).slice(0, 4).map(([k, v]) => `${k}: ${v}`));
  }
  return `${head}; ${found.join(", ")}`;
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

// A polite live region that speaks a running job's progress sparingly (see ANNOUNCE_EVERY_MS).
// The end of a job is announced by the page, with what it found; the last progress said is
// then taken away (a screen reader reading the ended job met "79%, 3 s left" in it).
function announcer() {
  const region = h("p", { class: "visually-hidden", "aria-live": "polite" });
  let saidAt = 0;
  let saidPhase;
  region.tell = (job) => {
    if (isOver(job)) {
      region.textContent = "";
      return;
    }
    const phase = (job.progress || {}).phase || null;
    const now = Date.now();
    if (phase === saidPhase && now - saidAt < ANNOUNCE_EVERY_MS) return;
    saidAt = now;
    saidPhase = phase;
    region.textContent = `${kindName(job)}: ${progressText(job)}`;
  };
  return region;
}

// `show(key, draw)` fills `container` with draw() when `key` differs from the last one: a
// finished job's result is drawn once, so an open "Full result" stays open.
function redrawOnChange(container) {
  let shown;
  return (key, draw) => {
    if (key === shown) return;
    shown = key;
    clear(container, draw());
  };
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
  const showError = redrawOnChange(error);
  const showFound = redrawOnChange(found);
  const live = announcer();
  const el = h("li", { class: "job", tabindex: "-1", "aria-labelledby": `${key}-title ${key}-state`, dataset: { id: job.id } },
    h("header", {}, title, badge, created, cancel ? h("div", { class: "row-actions" }, cancel) : null),
    bar, stats, error, found, live);
  let shown = null;

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
    showError(next.error || null, () => (next.error ? note(next.error, { error: true }) : null));
    showFound(running ? null : JSON.stringify(next.result ?? null), () => (running ? [] : resultSummary(next)));
    live.tell(next);
  };
  el.update(job);
  return el;
}

function showProgress(bar, job) {
  const value = fraction(job);
  bar.hidden = isOver(job) && job.state !== "done";
  if (value === null) bar.removeAttribute("value");
  else bar.value = value;
  bar.setAttribute("aria-valuetext", progressText(job));
}
