// Pending models: the queue with each one's original image; import one (a conflict opens the
// comparison: existing and pending side by side, a diff of meta_json, both images, and what
// Override, Merge and Delete would each leave); select many and import them as one job, or
// discard them at once (after a confirmation; in parts of the server's limit either way). The
// queue can be narrowed to the conflicts, the models whose file is missing and the fresh ones
// (`?show=` in the URL, as the library keeps its filters; the groups are pendinggroups.js's).
// Thousands may wait: the rows are drawn in pieces (pendingwindow.js), and what is selected
// and acted on is every model of the group shown, its rows drawn or not. A filter by words
// (name, file, type, tags; `?q=`) narrows it further: the browser's find cannot see rows not
// drawn yet. What a row's buttons do is pendingone.js's; what is done to many at once,
// pendingbatch.js's.
import { h, clear, toast, note, plural, formatCount, debounce } from "./dom.js";
import { get, call, capabilities } from "./api.js";
import { GROUPS, BADGES, groupOf, groupChips, uncheckedText, checkGroups } from "./pendinggroups.js";
import { focusHeading, setQuery, tryAgain } from "./router.js";
import { rowWindow, focusNear } from "./pendingwindow.js";
import { modelActions } from "./pendingone.js";
import { batchActions } from "./pendingbatch.js";
import { rowElement, renewRow } from "./pendingrow.js";

// Shown in place of the queue once it is empty.
const nothingPending = () => h("p", { class: "empty", text: "Nothing is pending." });
const CHOICES = [["", "Leave conflicts in the queue"], ["merge", "Merge"], ["override", "Override"], ["delete", "Delete the pending one"]];

export async function mountPending(main, context) {
  const caps = await capabilities();
  if (!context.isCurrent()) return null;
  document.title = "Pending · modelshelf";
  let show = new URLSearchParams(location.search).get("show") || "";
  if (!GROUPS.some(([key]) => key === show)) show = "";
  const filter = h("input", {
    type: "search", id: "pending-filter", autocomplete: "off", spellcheck: "false",
    placeholder: "Name, file, type, tag…", value: new URLSearchParams(location.search).get("q") || "",
  });
  let words = wordsOf(filter.value);
  const count = h("span", { class: "count", "aria-live": "polite" });
  const queue = h("ul", { class: "queue", "aria-label": "Pending models" });
  const selectAll = h("input", { type: "checkbox", id: "select-all" });
  const selectAllText = h("span", { text: " Select all" });
  const selected = h("span", { class: "count", "aria-live": "polite" });
  const strategy = h("select", { id: "batch-strategy" }, CHOICES.map(([value, text]) => h("option", { value, text })));
  const run = h("button", { type: "button", class: "primary", text: "Import selected", disabled: true });
  const discardMany = caps.has("POST", "/api/migration/discard_models")
    ? h("button", { type: "button", class: "danger", text: "Discard selected", disabled: true, onclick: () => discardSelected() })
    : null;
  const progress = h("ul", { class: "jobs", "aria-label": "Batch progress", tabindex: "-1" });
  const message = h("div");
  const emptyText = h("p");
  const empty = h("div", { class: "empty", hidden: true }, emptyText,
    h("button", { type: "button", text: "Show all", onclick: () => { clearFilter(); choose("", { push: true }); groups.chip("").focus(); } }));
  const groups = groupChips(show, (key) => choose(key, { push: true }));
  const rows = new Map(); // by id, in the queue's order: {record, checked, el, box, ...}
  const view = rowWindow(queue, { rows, inGroup: (r) => shown(r), build: (r) => drawRow(r) });
  const checkButton = h("button", { type: "button", class: "small", onclick: () => checkUnknown() });
  const checkText = h("span");
  const unknownNote = h("p", { class: "note", hidden: true }, checkText, " ", checkButton);
  // The filter and the batch's controls are hidden while the queue is empty: "Select all 0"
  // and an Import that can never be pressed said nothing "Nothing is pending" does not.
  const toolbar = h("div", { class: "toolbar pending-toolbar", role: "search", hidden: true },
    h("div", { class: "field search" }, h("label", { for: "pending-filter", text: "Filter pending models" }), filter));
  const batchbar = h("div", { class: "batchbar", hidden: true },
    h("label", { class: "copyable" }, selectAll, selectAllText), selected,
    h("label", { for: "batch-strategy", text: "When the model is already in the library:" }), strategy, run, discardMany);
  clear(main, h("div", { class: "page-head" }, h("h1", { text: "Pending" }), count),
    h("p", { class: "count", text: "Models brought in from a legacy library wait here until they are hashed and promoted. A model whose content is already in the library is a conflict: compare the two, then choose." }),
    toolbar, groups, unknownNote, batchbar, progress, message, empty, queue, view.footer);
  focusHeading(main, context.focus);

  const canDiscard = caps.has("DELETE", "/api/migration/pending_models/{id}");
  const canCheck = caps.has("POST", "/api/migration/preview_import");
  let lastChecked = null;
  let alive = true;
  let knowsGroups = false; // an older server's records do not say
  let checking = null;
  let batching = false; // Import selected stays disabled while a batch runs

  function inGroup(row) { return !knowsGroups || !show || groupOf(row.record) === show; }
  function shown(row) { return inGroup(row) && matches(row); }
  // Every word is part of the model's name, file, type or a tag's name (case aside).
  function matches(row) {
    if (!words.length) return true;
    row.text ??= [row.record.name, row.record.path, row.record.type, ...(row.record.tags || []).map((t) => t.name)]
      .filter(Boolean).join("\n").toLowerCase();
    return words.every((word) => row.text.includes(word));
  }
  // Every row of the group shown, drawn or not.
  const shownRows = () => [...rows.values()].filter(shown);
  const check = (row, on) => {
    row.checked = on;
    if (row.box) row.box.checked = on;
  };

  // Rows out of the chosen group are hidden and never stay selected: what is acted on is
  // what is shown. Focus on a row that leaves the view goes to the next one shown.
  const updateSelection = () => {
    const focused = document.activeElement?.closest?.(".queue > li");
    for (const row of rows.values()) if (row.checked && !shown(row)) check(row, false);
    const visible = view.draw();
    if (focused && focused.hidden) focusNear(focused);
    const ids = selectedIds();
    selected.textContent = ids.length ? `${plural(ids.length, "model")} selected` : "";
    run.disabled = batching || !ids.length;
    if (discardMany) discardMany.disabled = batching || !ids.length;
    selectAll.checked = ids.length > 0 && ids.length === visible;
    selectAll.indeterminate = ids.length > 0 && ids.length < visible;
    selectAllText.textContent = ` Select all ${formatCount(visible)}`;
    count.textContent = plural(rows.size, "pending model");
    toolbar.hidden = batchbar.hidden = !rows.size;
    showGroups();
    empty.hidden = !rows.size || visible > 0;
    emptyText.textContent = words.length ? "No pending model shown here matches the filter." : "No pending model is in this group.";
  };
  const selectedIds = () => shownRows().filter((row) => row.checked).map((row) => row.record.id);
  // Once a frame at most: a check of thousands updates the page after each model.
  let frame = 0;
  const updateSoon = () => {
    frame ||= requestAnimationFrame(() => { frame = 0; if (alive) updateSelection(); });
  };

  function showGroups() {
    groups.hidden = !knowsGroups || !rows.size;
    // The chips count the models the words match, as the queue shows them.
    const unknown = groups.update([...rows.values()].filter(matches).map((row) => row.record), show);
    unknownNote.hidden = !knowsGroups || !(unknown || checking);
    checkButton.hidden = !canCheck;
    checkButton.textContent = checking ? "Stop checking" : `Check ${unknown === 1 ? "it" : "them"}`;
    checkText.textContent = uncheckedText(unknown, checking);
  }

  function choose(key, { push }) {
    show = key;
    view.reset();
    keepInUrl({ push });
    updateSelection();
  }

  // The group and the words in the URL, as the library keeps its filters.
  function keepInUrl({ push = false } = {}) {
    const params = new URLSearchParams(location.search);
    if (show) params.set("show", show);
    else params.delete("show");
    if (words.length) params.set("q", filter.value.trim());
    else params.delete("q");
    setQuery(params, { push });
  }

  // The words typed, once the typing pauses (the URL's entry replaced, not pushed).
  const filterSoon = debounce(() => {
    if (!alive) return;
    words = wordsOf(filter.value);
    view.reset();
    keepInUrl();
    updateSelection();
  }, 120);
  filter.addEventListener("input", filterSoon);

  function clearFilter() {
    filterSoon.cancel();
    filter.value = "";
    words = [];
  }

  // A row says what its record's group is, unless an action on it said something since.
  function showState(row) {
    if (row.marked || !row.el) return;
    const badge = BADGES[groupOf(row.record)];
    row.el.classList.toggle("conflict", groupOf(row.record) === "conflicts");
    clear(row.status, badge ? h("span", { class: badge[0], text: badge[1] }) : null);
  }

  // What the list says now of the rows on the page (after a batch, a check, an import: a
  // model imported makes the pending ones with the same content conflicts). A row the list
  // no longer has left the queue (a batch stopped part way, another tab): it goes; a model it
  // has that the page has not (a stage 1 run, a scan elsewhere) comes in, in its place.
  // Resolves how many went.
  async function refreshGroups() {
    try {
      const data = await get("api/migration/pending_models?checks=true");
      if (!alive) return 0;
      const listed = new Set();
      for (const record of data.models) {
        listed.add(record.id);
        const row = rows.get(record.id);
        if (!row) continue;
        renewRow(row, record);
        Object.assign(row.record, { missing: record.missing, conflict: record.conflict });
        showState(row);
      }
      const gone = [...rows.keys()].filter((id) => !listed.has(id) && !rows.get(id).busy);
      for (const id of gone) remove(id, { later: true });
      takeIn(data.models.filter((record) => !rows.has(record.id)));
      updateSelection();
      if (!rows.size) message.replaceChildren(nothingPending());
      return gone.length;
    } catch {
      // The groups stay as they were shown; the next action tells what changed.
      return 0;
    }
  }

  // Models new to the page, each in its place in the queue's order (oldest id first, as the
  // server lists them): rows already there keep theirs, their selection and their element,
  // so what a person selected and where they scrolled stay.
  function takeIn(records) {
    if (!records.length) return;
    const all = [...rows.values(), ...records.map((record) => ({ record, checked: false, el: null, marked: false }))];
    all.sort((a, b) => a.record.id - b.record.id);
    rows.clear();
    for (const row of all) rows.set(row.record.id, row);
    if (message.querySelector(".empty")) message.replaceChildren();
  }

  // Whether the queue changed since the last look, asked with the tag of the answer it gave
  // then: 304 while it is as it was (the server does not read it), so a page left open costs
  // a small answer a look. When the models listed are not the page's, the queue is read again
  // with its checks (refreshGroups). A server that does not tag the queue is not asked: the
  // whole queue every few seconds is what the tag spares.
  let queueTag = "";
  let queueTagged = caps.answers("GET", "/api/migration/pending_models", 304);

  // The queue's tag as it is before the page reads it ("*": any version, so a 304 that reads
  // nothing): a change after it shows at the next look, one before it is in what is read.
  async function tagQueue() {
    if (!queueTagged) return;
    try {
      const response = await call("GET", "api/migration/pending_models", { headers: { "If-None-Match": "*" }, raw: true });
      queueTag = response.headers.get("ETag") || "";
    } catch {
      // The first look then reads the list whole, and takes its tag.
    }
  }

  async function lookAtQueue() {
    if (!queueTagged || !alive) return;
    const headers = queueTag ? { "If-None-Match": queueTag } : {};
    try {
      const response = await call("GET", "api/migration/pending_models", { headers, raw: true });
      if (response.status === 304 || !response.ok || !alive) return;
      queueTag = response.headers.get("ETag") || "";
      queueTagged = Boolean(queueTag);
      const { models } = await response.json();
      if (!alive) return;
      const filesChanged = renewRows(models);
      if (filesChanged || !sameModels(models)) await refreshGroups();
    } catch {
      // Unreachable for now: the next look asks again.
    }
  }

  // What the list says now of the models the page has (a tag renamed, a name rewritten
  // elsewhere): their rows show it in place. True when a model's file or content changed,
  // which its checks (missing, conflict) are then asked for again.
  function renewRows(models) {
    let renewed = false;
    let filesChanged = false;
    for (const record of models) {
      const row = rows.get(record.id);
      const changed = row ? renewRow(row, record) : [];
      renewed ||= changed.length > 0;
      filesChanged ||= changed.includes("path") || changed.includes("sha256");
    }
    if (renewed) updateSelection(); // the filter by words reads the new text
    return filesChanged;
  }

  // The page's rows are the models listed (a row being imported from this page may be gone).
  function sameModels(models) {
    const listed = new Set(models.map((record) => record.id));
    return models.every((record) => rows.has(record.id)) && [...rows.values()].every((row) => listed.has(row.record.id) || row.busy);
  }
  const refreshSoon = debounce(refreshGroups, 300);

  // The models not hashed yet, checked one after another (see checkGroups); a second click
  // stops the check.
  async function checkUnknown() {
    if (checking) {
      checking.stop = true;
      return;
    }
    const todo = [...rows.values()].filter((row) => groupOf(row.record) === null).map((row) => row.record);
    const state = checking = { stop: false, done: 0, total: todo.length };
    showGroups();
    let failed = false;
    try {
      failed = !(await checkGroups(todo, {
        state,
        stopped: () => state.stop || !alive,
        listed: (record) => rows.has(record.id),
        onChecked: (record) => {
          const row = rows.get(record.id);
          if (row) showState(row);
          updateSoon();
        },
      }));
    } finally {
      checking = null;
      // Once every model is checked the note and its button go: the focus on it goes to
      // the group shown, which the check has just filled, not to the page's top.
      const focused = document.activeElement === checkButton;
      await refreshGroups();
      if (alive && focused && unknownNote.hidden) groups.chip(show).focus();
    }
    if (alive && !failed) toast(`${plural(state.done, "model")} checked`);
  }

  // `later`: the caller updates the page once, after removing many.
  function remove(id, { later = false } = {}) {
    const row = rows.get(id);
    if (!row) return;
    rows.delete(id);
    if (row.el) {
      // The next row is drawn first (the window moves up by one), so the focus can go to it.
      if (row.el.contains(document.activeElement)) {
        view.draw();
        focusNear(row.el);
      }
      row.el.remove();
    }
    if (later) return;
    updateSelection();
    if (!rows.size) message.replaceChildren(nothingPending());
  }

  function mark(id, kind, text) {
    const row = rows.get(id);
    if (!row) return;
    row.marked = Boolean(text);
    row.said = [kind, text]; // said again if the row is drawn later
    if (!row.el) return;
    row.el.classList.toggle("conflict", kind === "conflict");
    clear(row.status, text ? h("span", { class: kind === "conflict" ? "badge dup" : "badge missing", text }) : null);
  }

  // What the actions on one model (pendingone.js) and on many (pendingbatch.js) use of the
  // page: its rows and controls, and how it updates them.
  const pendingPage = {
    caps, main, rows, progress, run, discardMany, selectAll, strategy, canDiscard, canCheck,
    remove, mark, updateSelection, refreshGroups, refreshSoon, lookAtQueue, selectedIds,
    alive: () => alive,
    get batching() { return batching; },
    set batching(on) { batching = on; },
    emptied: () => { if (!rows.size) message.replaceChildren(nothingPending()); },
  };
  const { whileBusy, importOne, discard } = modelActions(pendingPage);
  const { runBatch, followRunningBatches, discardSelected, stop: stopFollowing } = batchActions(pendingPage);

  function drawRow(entry) {
    const { record } = entry;
    const el = rowElement(entry, {
      onImport: (event) => whileBusy(record, event.currentTarget, "Importing…", () => importOne(record)),
      onDiscard: canDiscard ? (event) => discard(record, event.currentTarget) : null,
    });
    const { box } = entry;
    box.addEventListener("click", (event) => {
      // Shift+click selects the range from the last box clicked, as in a file manager.
      entry.checked = box.checked;
      if (event.shiftKey && lastChecked !== null) {
        const range = shownRows();
        const ids = range.map((r) => r.record.id);
        const [a, b] = [ids.indexOf(lastChecked), ids.indexOf(record.id)].sort((x, y) => x - y);
        if (a >= 0) range.slice(a, b + 1).forEach((r) => check(r, box.checked));
      }
      lastChecked = record.id;
      updateSelection();
    });
    if (entry.marked) mark(record.id, ...entry.said);
    else showState(entry);
    return el;
  }

  selectAll.addEventListener("change", () => {
    for (const r of shownRows()) check(r, selectAll.checked);
    updateSelection();
  });
  run.addEventListener("click", runBatch);

  try {
    await tagQueue();
    const data = await get("api/migration/pending_models?checks=true");
    if (!alive) return null;
    knowsGroups = data.models.every((m) => "missing" in m && "conflict" in m);
    for (const record of data.models) rows.set(record.id, { record, checked: false, el: null, marked: false });
    if (!data.models.length) message.append(nothingPending());
    updateSelection();
    followRunningBatches();
  } catch (error) {
    message.append(note(`The pending models could not be loaded: ${error.message}`, { error: true }), tryAgain());
  }
  return () => {
    alive = false;
    view.stop();
    refreshSoon.cancel();
    filterSoon.cancel();
    stopFollowing();
  };
}

function wordsOf(text) {
  return text.toLowerCase().split(/\s+/).filter(Boolean);
}
