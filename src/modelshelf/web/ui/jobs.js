// Jobs: start a scan of the model folders, watch every job live (server-sent events: files,
// bytes, rate, ETA), cancel one; below, the duplicates the scans found. Each job is drawn by
// jobview.js, which the pending page uses for its batches too.
import { h, clear, toast, note, formatBytes, formatCount, plural } from "./dom.js";
import { call, get, post, capabilities, followJob, isOver, isUnavailable, ApiError } from "./api.js";
import { jobView, endAnnouncement } from "./jobview.js";
import { focusHeading, returnToPlace } from "./router.js";
import { invalidateLibrary } from "./library.js";

export { jobView } from "./jobview.js";

const REFRESH_MS = 4000;
// How far below (or above) the screen an ended job's result is read: drawn before it is seen.
const NEAR_PX = 400;

function scanForm(canScan, canListFolders) {
  // The folders' types, once read: a refusal of a type none has is said with them.
  const known = { types: [] };
  const types = h("input", { id: "scan-types", placeholder: "all", autocomplete: "off" });
  const hint = h("span", { class: "hint", id: "scan-types-hint", text: "Folder types separated by commas, e.g. loras, checkpoints; empty scans all" });
  const start = h("button", { type: "submit", class: "primary", text: "Start scan", disabled: !canScan });
  const form = h("form", { class: "panel", "aria-labelledby": "scan-title" },
    h("h2", { id: "scan-title", text: "Scan the model folders" }),
    h("p", { class: "count", text: "Finds new, changed, moved and missing model files under the configured model folders. Files that did not change are not read again." }),
    canListFolders ? modelFolders(hint, known) : null,
    h("div", { class: "field" }, h("label", { for: "scan-types", text: "Only these types" }), hint, types),
    start, canScan ? null : note("This server does not offer scanning yet."));
  return { form, types, start, known };
}

// What a 404 to a scan of `chosen` types says: the server names an unknown type in its own
// words ("no model root has type 'lora'"); the page names the types no folder has, and those
// the folders have. A list read before the settings changed falls back to the server's words.
function refusalOf(error, chosen, known) {
  const unknown = known.length ? chosen.filter((t) => !known.includes(t)) : [];
  if (!unknown.length) return error.message;
  const names = unknown.map((t) => `“${t}”`).join(", ");
  return `No model folder is of the type${unknown.length > 1 ? "s" : ""} ${names}; the folders' types are ${known.join(", ")}`;
}

// The folders a scan walks, as the server reads its settings now: a newcomer sees here which
// are named (and which are missing), or where to name them, before a first scan finds nothing.
function modelFolders(hint, known) {
  const box = h("div", { class: "folders" }, h("p", { class: "count", text: "Reading the model folders…" }));
  get("api/scan/roots").then((data) => {
    const missing = data.roots.filter((r) => !r.present).length;
    const rows = data.roots.map((r) => h("li", {}, h("code", { class: "copyable", text: r.path }), ` · ${r.type}`,
      r.present ? null : h("span", { class: "badge missing", text: "missing" })));
    // A missing folder is marked in the list; its warning (which names its path) is not repeated.
    const problems = data.warnings.filter((w) => !data.roots.some((r) => !r.present && w.includes(r.path)));
    clear(box, data.roots.length
      ? h("details", { open: data.roots.length <= 8 },
        h("summary", { text: `Model folders: ${plural(data.roots.length, "folder")}${missing ? `, ${missing} missing` : ""}` }),
        h("ul", { class: "folder-list" }, rows))
      : null, ...problems.map((w) => note(w, { error: true })));
    known.types = data.types;
    if (data.types.length) hint.textContent = `Folder types separated by commas (here: ${data.types.join(", ")}); empty scans all`;
  }, (error) => clear(box, note(`The model folders could not be read: ${error.message}`, { error: true })));
  return box;
}

// Moves `view` to just before `ref` (null: the end). Chromium's moveBefore keeps focus and
// state in the moved element; insertBefore would blur a focused Cancel.
function place(list, view, ref) {
  if (view === ref) return;
  if (view.isConnected && list.moveBefore) list.moveBefore(view, ref);
  else list.insertBefore(view, ref);
}

export async function mountJobs(main, context) {
  const caps = await capabilities();
  if (!context.isCurrent()) return null;
  document.title = "Jobs · modelshelf";
  const canScan = caps.has("POST", "/api/scan");
  const canList = caps.has("GET", "/api/jobs");
  // The list read every REFRESH_MS leaves results out where the server can (a batch of 5,000
  // models' result is ~1 MB, 50 of them are listed); an ended job's is read once (fillIn),
  // when its view comes near the screen (nearScreen).
  const listUrl = caps.hasQuery("GET", "/api/jobs", "result") ? "api/jobs?result=false" : "api/jobs";
  const list = h("ul", { class: "jobs", "aria-label": "Jobs" });
  const message = h("div");
  const { form, types, start, known } = scanForm(canScan, caps.has("GET", "/api/scan/roots"));
  const duplicates = caps.has("GET", "/api/duplicates") ? renderDuplicates() : null;
  clear(main, h("div", { class: "page-head" }, h("h1", { text: "Jobs" })), form,
    h("h2", { text: "Recent jobs" }), message, list, duplicates);
  focusHeading(main, context.focus);

  const views = new Map();
  const followers = new Map();
  // Ended jobs whose view shows them whole (their result with them): nothing more to read.
  const whole = new Set();
  const reading = new Set();
  // Ended jobs whose view is on the screen or near it (within NEAR_PX): their results are
  // read; those of the others, when they come near (a person who scrolls to them).
  const near = new Set();
  const nearScreen = new IntersectionObserver((entries) => {
    for (const { target, isIntersecting } of entries) {
      const id = target.dataset.id;
      if (!isIntersecting) near.delete(id);
      else if (!whole.has(id)) {
        near.add(id);
        fillIn(id);
      }
    }
  }, { rootMargin: `${NEAR_PX}px 0px` });
  let timer = 0;
  let alive = true;

  const cancel = async (job) => {
    try {
      await call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`);
      toast("Cancelling…");
    } catch (error) {
      toast(`Could not cancel: ${error.message}`, { error: true });
    }
  };

  // The view of `job`, made or brought up to date (not placed in the list); a job still
  // running is followed live until it ends, and its end is announced with what it found.
  function show(job) {
    let view = views.get(job.id);
    if (!view) {
      view = jobView(job, { onCancel: cancel });
      views.set(job.id, view);
    } else if (!followers.has(job.id) && !whole.has(job.id)) {
      view.update(job);
    }
    if (isOver(job) && !whole.has(job.id)) {
      if ("result" in job) whole.add(job.id);
      else if (near.has(job.id)) fillIn(job.id); // its last read failed: tried again
      else nearScreen.observe(view);
    }
    if (!isOver(job) && !followers.has(job.id)) {
      const follower = followJob(job, (next) => view.update(next));
      followers.set(job.id, follower);
      follower.done.then((final) => {
        followers.delete(job.id);
        whole.add(job.id);
        // What it committed (a cancelled or failed job keeps what it did) is in the library
        // the next time it is shown, not the results kept from before.
        invalidateLibrary();
        if (alive) toast(endAnnouncement(final), { error: final.state === "failed" });
        if (alive && final.kind === "scan" && duplicates) duplicates.reload();
      });
    }
    return view;
  }

  // An ended job listed without its result, read whole once (it no longer changes); a
  // failed read is tried again at the next refresh.
  async function fillIn(id) {
    if (reading.has(id)) return;
    reading.add(id);
    try {
      const job = await get(`api/jobs/${encodeURIComponent(id)}`);
      whole.add(id);
      near.delete(id);
      if (views.has(id)) nearScreen.unobserve(views.get(id));
      if (alive && views.has(id)) views.get(id).update(job);
    } catch {
      // the list's note says when the server cannot be reached
    } finally {
      reading.delete(id);
    }
  }

  // The list as the API gives it (running first, then the latest ended, newest first), and no
  // more: views of jobs it no longer lists go. A job this page follows that the answer does
  // not list yet (started while the answer was on its way) stays on top.
  function arrange(jobs) {
    const listed = jobs.map(show);
    const early = [...list.children].filter((v) => followers.has(v.dataset.id) && !listed.includes(v));
    const order = [...early, ...listed];
    order.forEach((view, i) => place(list, view, list.children[i] || null));
    for (const view of [...list.children].slice(order.length)) {
      views.delete(view.dataset.id);
      whole.delete(view.dataset.id);
      near.delete(view.dataset.id);
      nearScreen.unobserve(view);
      view.remove();
    }
  }

  async function refresh() {
    try {
      const data = await get(listUrl);
      if (!alive) return;
      clear(message);
      arrange(data.jobs);
      if (!views.size) message.append(h("p", { class: "empty", text: "No jobs yet." }));
    } catch (error) {
      // The list is read again every REFRESH_MS whatever went wrong: the note goes once it works.
      clear(message, note(isUnavailable(error) ? "This server does not run jobs yet." : `Jobs could not be loaded: ${error.message} (trying again every few seconds)`, { error: !isUnavailable(error) }));
    }
    if (alive) timer = setTimeout(refresh, REFRESH_MS);
  }

  // A job the page did not list yet goes on top; focus goes to it (the Start button was
  // disabled during the request, which sent focus to <body>).
  function showStarted(job) {
    clear(message);
    const view = show(job);
    if (!view.isConnected) list.prepend(view);
    return view;
  }

  async function startScan(event) {
    event.preventDefault();
    const chosen = types.value.split(",").map((s) => s.trim()).filter(Boolean);
    start.disabled = true;
    let focus = start;
    try {
      const data = await post("api/scan", chosen.length ? { types: chosen } : {});
      toast("Scan started");
      focus = showStarted(data.job);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.body.job) {
        toast("A scan is already running", { error: true });
        focus = showStarted(error.body.job);
      } else {
        // 404: a type no folder has (isUnavailable tells the route itself missing).
        const refused = error instanceof ApiError && error.status === 404;
        toast(isUnavailable(error) ? "This server does not offer scanning yet" : refused ? refusalOf(error, chosen, known.types) : error.message, { error: true });
        if (error instanceof ApiError && [400, 404].includes(error.status) && !isUnavailable(error)) focus = types;
      }
    } finally {
      start.disabled = !canScan;
      // Unless the person went elsewhere meanwhile.
      if (alive && (document.activeElement === document.body || form.contains(document.activeElement))) focus.focus();
    }
  }

  form.addEventListener("submit", startScan);
  const listed = canList ? refresh() : message.append(note("This server does not run jobs yet."));
  // Back from a duplicate's model: the page as it was left, once its lists are drawn.
  if (!context.focus) Promise.all([listed, duplicates && duplicates.loaded]).then(() => alive && returnToPlace(main));
  return () => {
    alive = false;
    clearTimeout(timer);
    nearScreen.disconnect();
    for (const follower of followers.values()) follower.stop();
  };
}

// Content on disk more than once (GET /api/duplicates): what a scan found, with the space
// that removing the extra copies would free. Groups are drawn DUPLICATES_AT_ONCE at a time
// (Show more): a collector's 2,000 duplicated models were 22,000 elements drawn at once
// (bench/ui_scale.py).
export const DUPLICATES_AT_ONCE = 100;

function duplicateGroup(g) {
  return h("li", {},
    h("div", {},
      h("a", { href: `models/${g.sha256}`, text: g.name || g.sha256.slice(0, 12) }),
      h("span", { class: "count", text: ` · ${g.files.length} copies · ${formatBytes(g.wasted_bytes)} wasted` }),
      h("ul", {}, g.files.map((path) => h("li", {}, h("code", { text: path }))))));
}

function renderDuplicates() {
  const body = h("div", {}, h("p", { class: "count", text: "Loading…" }));
  const panel = h("section", { class: "panel", "aria-labelledby": "dup-title" },
    h("h2", { id: "dup-title", text: "Duplicates" }), body);
  panel.reload = async () => {
    try {
      const data = await get("api/duplicates");
      if (!data.groups.length) return clear(body, h("p", { class: "count", text: "No model file is on disk twice." }));
      const list = h("ul", { class: "files" });
      const more = h("button", { type: "button", class: "small", id: "more-duplicates" });
      // The next groups; `focus`: on the first of them's link (a click on Show more).
      const showMore = ({ focus = false } = {}) => {
        const drawn = data.groups.slice(list.childElementCount, list.childElementCount + DUPLICATES_AT_ONCE).map(duplicateGroup);
        list.append(...drawn);
        const left = data.groups.length - list.childElementCount;
        more.hidden = left <= 0;
        more.textContent = `Show more (${formatCount(left)} left)`;
        if (focus && drawn.length) drawn[0].querySelector("a").focus();
      };
      more.addEventListener("click", () => showMore({ focus: true }));
      clear(body,
        h("p", { text: `${plural(data.groups.length, "model")} on disk more than once; ${formatBytes(data.wasted_bytes)} could be freed.` }),
        list, more);
      showMore();
    } catch (error) {
      clear(body, note(`Duplicates could not be loaded: ${error.message}`, { error: true }));
    }
  };
  panel.loaded = panel.reload();
  return panel;
}
