// Pending models: the queue with each one's original image; import one (a conflict opens the
// comparison: existing and pending side by side, a diff of meta_json, both images, and what
// Override, Merge and Delete would each leave); select many and import them as one job, or
// discard them at once (one request, after a confirmation). The
// queue can be narrowed to the conflicts, the models whose file is missing and the fresh ones
// (`?show=` in the URL, as the library keeps its filters; the groups are pendinggroups.js's).
// Thousands may wait: the rows are drawn in pieces (pendingwindow.js), and what is selected
// and acted on is every model of the group shown, its rows drawn or not. A filter by words
// (name, file, type, tags; `?q=`) narrows it further: the browser's find cannot see rows not
// drawn yet.
import { h, clear, toast, note, plural, formatBytes, formatCount, confirmDialog, debounce, showBusy, tagsByName } from "./dom.js";
import { call, get, post, capabilities, pendingImageUrl, followJob, isOver, ApiError, isUnavailable, imagesChanged } from "./api.js";
import { GROUPS, BADGES, groupOf, groupChips, uncheckedText, checkGroups } from "./pendinggroups.js";
import { jobView } from "./jobs.js";
import { focusHeading, setQuery, tryAgain } from "./router.js";
import { openComparison } from "./compare.js";
import { rowWindow, focusNear } from "./pendingwindow.js";
import { invalidateLibrary } from "./library.js";

// Shown in place of the queue once it is empty.
const nothingPending = () => h("p", { class: "empty", text: "Nothing is pending." });
const CHOICES = [["", "Leave conflicts in the queue"], ["merge", "Merge"], ["override", "Override"], ["delete", "Delete the pending one"]];
// An override replaces the existing model's cover and a merge adds an image: the pages show
// the new ones (see imageUrl). An import or a delete leaves the library's images as they were.
function changedImagesOf(outcome) {
  if (outcome.sha256 && ["overridden", "merged"].includes(outcome.action_taken)) imagesChanged(outcome.sha256);
}

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
  let follower = null;
  let knowsGroups = false; // an older server's records do not say
  let checking = null;
  let batching = false; // Import selected stays disabled while its batch runs

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
  // no longer has left the queue (a batch stopped part way, another tab): it goes. Resolves
  // how many went.
  async function refreshGroups() {
    try {
      const data = await get("api/migration/pending_models?checks=true");
      if (!alive) return 0;
      const listed = new Set();
      for (const record of data.models) {
        listed.add(record.id);
        const row = rows.get(record.id);
        if (!row) continue;
        Object.assign(row.record, { missing: record.missing, conflict: record.conflict });
        showState(row);
      }
      const gone = [...rows.keys()].filter((id) => !listed.has(id) && !rows.get(id).busy);
      for (const id of gone) remove(id, { later: true });
      updateSelection();
      if (!rows.size) message.replaceChildren(nothingPending());
      return gone.length;
    } catch {
      // The groups stay as they were shown; the next action tells what changed.
      return 0;
    }
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
      await refreshGroups();
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

  // While a row's request runs, the button that sent it says so ("Importing…", aria-busy,
  // aria-disabled) and the row's buttons send nothing more: a double click made a second
  // request, answered by a bogus 423. aria-disabled, not disabled: focus stays on the button.
  async function whileBusy(record, button, label, work) {
    const row = rows.get(record.id);
    if (!row || row.busy) return;
    row.busy = true;
    showBusy(button, label);
    try {
      await work();
    } finally {
      row.busy = false;
      if (button.isConnected) showBusy(button, null);
    }
  }

  // A 404: the model was imported or discarded elsewhere (another tab, a script); its row
  // leaves the queue, as the batch path does for "not_found".
  function goneElsewhere(record, error) {
    if (!(error instanceof ApiError && error.status === 404 && !isUnavailable(error))) return false;
    toast(`${record.name || record.id} was already imported or removed elsewhere`);
    remove(record.id);
    return true;
  }

  async function importOne(record) {
    try {
      const done = await call("POST", "api/migration/import_a_model", { body: { id: record.id, conf_strategy: null } });
      invalidateLibrary();
      toast(`${record.name || record.id} imported`);
      remove(record.id);
      refreshSoon();
      return done;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.body.existing) {
        mark(record.id, "conflict", "Already in the library");
        await resolve(record, error.body);
        // Left in the queue (decided later, or the choice failed): it is a conflict now.
        record.conflict = true;
        return updateSelection();
      }
      if (goneElsewhere(record, error)) return null;
      mark(record.id, "failed", error.message);
      toast(error.message, { error: true });
      refreshSoon();
      return null;
    }
  }

  // Out of the queue without an import: for a model whose file is gone, or one not wanted.
  async function discard(record, button) {
    const name = record.name || `Pending model ${record.id}`;
    if (rows.get(record.id)?.busy) return;
    const yes = await confirmDialog({ title: `Discard “${name}”?`, body: "It leaves the queue with its image and is not imported. Its model file stays on disk.", confirm: "Discard" });
    if (!yes) return;
    await whileBusy(record, button, "Discarding…", async () => {
      try {
        await call("DELETE", `api/migration/pending_models/${encodeURIComponent(record.id)}`);
        toast(`${name} discarded`);
        remove(record.id);
        refreshSoon();
      } catch (error) {
        if (goneElsewhere(record, error)) return;
        mark(record.id, "failed", error.message);
        toast(error.message, { error: true });
      }
    });
  }

  // `changed`: the library's model changed since the comparison was first opened.
  async function resolve(record, conflict, changed = false) {
    const choice = await openComparison(conflict, { caps, changed });
    if (!choice) return;
    try {
      // The comparison showed the library's model as it was when it opened; one edited since
      // (another tab) is shown again before an override or a merge decides over it.
      const fresh = choice !== "delete" && await changedSince(record, choice, conflict.existing);
      if (fresh) return resolve(record, fresh, true);
      // Delete takes the pending model out, as its card says, even if the library's model
      // went meanwhile: import_a_model would then import it (with no conflict every
      // strategy imports).
      const done = choice === "delete" && canDiscard
        ? (await call("DELETE", `api/migration/pending_models/${encodeURIComponent(record.id)}`), { action_taken: "deleted" })
        : await call("POST", "api/migration/import_a_model", { body: { id: record.id, conf_strategy: choice } });
      invalidateLibrary();
      changedImagesOf(done);
      toast(`${record.name || record.id}: ${done.action_taken}`);
      remove(record.id);
      refreshSoon();
    } catch (error) {
      if (goneElsewhere(record, error)) return;
      mark(record.id, "failed", error.message);
      toast(error.message, { error: true });
    }
  }

  // The conflict as it is now, if its library model is not the one `existing` shows; null
  // when it is, when it is gone (every strategy then imports), or the server cannot say.
  async function changedSince(record, choice, existing) {
    if (!canCheck) return null;
    const now = await post("api/migration/preview_import", { id: record.id, conf_strategy: choice });
    return now.existing && !sameModel(now.existing, existing) ? { existing: now.existing, pending: now.pending } : null;
  }

  function drawRow(entry) {
    const { record } = entry;
    const name = record.name || `Pending model ${record.id}`;
    const box = h("input", { type: "checkbox", "aria-label": `Select ${name}`, checked: entry.checked, dataset: { id: String(record.id) } });
    const status = h("span");
    const image = record.images && record.images.length
      ? h("img", { src: pendingImageUrl(record.id), alt: `Image of ${name}`, loading: "lazy", decoding: "async", width: 72, height: 72 })
      : h("div", { class: "placeholder", "aria-hidden": "true", text: record.type || "" });
    const el = h("li", { dataset: { id: String(record.id) } }, box, h("div", { class: "thumb" }, image),
      h("div", { class: "what" },
        h("span", { class: "name", text: name }),
        h("span", { class: "sub", text: [record.type, formatBytes(record.size_bytes), record.path].filter(Boolean).join(" · ") }),
        h("span", { class: "sub", text: tagsByName(record.tags).map((t) => t.name).join(", ") }), status),
      h("div", { class: "row-actions" },
        h("button", { type: "button", text: "Import", "aria-label": `Import ${name}`, onclick: (event) => whileBusy(record, event.currentTarget, "Importing…", () => importOne(record)) }),
        canDiscard ? h("button", { type: "button", class: "danger", text: "Discard", "aria-label": `Discard ${name}`, onclick: (event) => discard(record, event.currentTarget) }) : null));
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
    Object.assign(entry, { el, box, status });
    if (entry.marked) mark(record.id, ...entry.said);
    else showState(entry);
    return el;
  }

  async function runBatch() {
    const ids = selectedIds();
    if (!ids.length) return;
    const conf = strategy.value || null;
    // The button is disabled while the batch runs: focus, if it was there, goes to the
    // progress (brought into view: the range may have been picked far down the queue), and
    // back to the button when the batch ends, if it can take it then.
    const keepFocus = document.activeElement === run;
    batching = true;
    run.disabled = true;
    // Said until the server answers (it may be slow): the progress is where focus goes.
    const starting = h("li", { class: "job", text: `Starting the batch import of ${plural(ids.length, "model")}…` });
    clear(progress, starting);
    if (keepFocus) {
      progress.focus({ preventScroll: true });
      progress.scrollIntoView({ block: "nearest" });
    }
    try {
      const response = await call("POST", "api/migration/import_models", { body: { ids, conf_strategy: conf }, headers: { Prefer: "respond-async" }, raw: true });
      const body = await response.json().catch(() => ({}));
      starting.remove();
      if (!response.ok && response.status !== 207) throw new ApiError(response.status, body);
      if (response.status === 202 && body.job) return await followBatch(body.job);
      progress.append(h("li", { class: "job" }, h("strong", { text: "Batch import" }),
        h("p", { class: "stats", text: Object.entries(body.counts || {}).map(([k, v]) => `${k}: ${v}`).join(" · ") })));
      applyResults(body.results || []);
      await refreshGroups();
    } catch (error) {
      toast(isUnavailable(error) ? "This server does not offer batch imports" : error.message, { error: true });
    } finally {
      starting.remove();
      batching = false;
      updateSelection();
      const lost = document.activeElement === progress || document.activeElement === document.body;
      if (keepFocus && alive && lost) (run.disabled ? progress : run).focus();
    }
  }

  // A batch job to its end (with Stop), then what it did applied to the queue and said.
  async function followBatch(started) {
    const view = jobView(started, { onCancel: (job) => call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`).catch((e) => toast(e.message, { error: true })) });
    progress.append(view);
    follower = followJob(started, (job) => view.update(job));
    const final = await follower.done;
    follower = null;
    if (!alive) return;
    if (final.state !== "done") toast(`The batch ended ${final.state}${final.error ? `: ${final.error}` : ""}`, { error: true });
    if (final.result) {
      applyResults(final.result.results || []);
      await refreshGroups();
      return;
    }
    // No report of what it did: the queue as the server has it now says.
    const gone = await refreshGroups();
    if (gone) invalidateLibrary();
    if (alive) toast(`${plural(gone, "model")} left the queue before the batch ended`);
  }

  // A batch started before this page was shown (it was left meanwhile, or another tab
  // started it) is shown and ended here as one started here: what it did is not lost from
  // view, and Import selected waits for it.
  async function followRunningBatches() {
    if (!caps.has("GET", "/api/jobs")) return;
    // Without results: a running batch is all it looks for (and ended batches' are large).
    const url = caps.hasQuery("GET", "/api/jobs", "result") ? "api/jobs?result=false" : "api/jobs";
    const { jobs } = await get(url).catch(() => ({ jobs: [] }));
    const running = jobs.find((job) => job.kind === "import_models" && !isOver(job));
    if (!running || !alive || batching) return;
    batching = true;
    updateSelection();
    try {
      await followBatch(running);
    } finally {
      batching = false;
      if (alive) updateSelection();
    }
  }

  // Every selected model out of the queue, in one request: for the group whose files are
  // gone, most often. A model being imported meanwhile stays, marked.
  async function discardSelected() {
    const ids = selectedIds();
    if (!ids.length || batching) return;
    const yes = await confirmDialog({
      title: `Discard ${plural(ids.length, "pending model")}?`,
      body: "They leave the queue with their images and are not imported. Their model files stay on disk.",
      confirm: `Discard ${plural(ids.length, "model")}`,
    });
    if (!yes || batching || !alive) return;
    // The button is disabled while the request runs, and stays so once nothing is selected:
    // focus, if it was there, goes to Select all (to the heading once the queue is empty).
    const keepFocus = document.activeElement === discardMany;
    batching = true;
    updateSelection();
    try {
      const done = await call("POST", "api/migration/discard_models", { body: { ids } });
      for (const id of [...done.discarded, ...done.not_found]) remove(id, { later: true });
      for (const id of done.locked) mark(id, "failed", "Being imported: left in the queue");
      const left = done.locked.length ? `; ${formatCount(done.locked.length)} being imported, left in the queue` : "";
      toast(`${plural(done.discarded.length, "model")} discarded${left}`);
    } catch (error) {
      toast(error.message, { error: true });
    } finally {
      batching = false;
      updateSelection();
      if (!rows.size) message.replaceChildren(nothingPending());
      if (keepFocus && alive && document.activeElement === document.body) {
        if (rows.size) selectAll.focus();
        else focusHeading(main, true);
      }
      refreshSoon();
    }
  }

  function applyResults(results) {
    let imported = 0;
    const actions = new Map(); // action_taken -> how many: "4 imported, 6 merged"
    for (const r of results) {
      if (r.result === "success") {
        remove(r.id, { later: true }); imported += 1; changedImagesOf(r);
        const action = r.action_taken || "imported";
        actions.set(action, (actions.get(action) || 0) + 1);
      }
      else if (r.result === "conflict") mark(r.id, "conflict", "Already in the library: compare to choose");
      else if (r.result !== "not_found") mark(r.id, "failed", r.detail || r.result);
      else remove(r.id, { later: true });
    }
    updateSelection();
    if (!rows.size) message.replaceChildren(nothingPending());
    if (imported) invalidateLibrary();
    // A pending model "deleted" by the strategy left the queue; the library's model stayed.
    const said = { deleted: "deleted from the queue (the library's kept)" };
    const order = ["imported", "overridden", "merged", "deleted"];
    const ranked = [...actions].sort(([a], [b]) => (order.indexOf(a) + 1 || 9) - (order.indexOf(b) + 1 || 9));
    const done = imported ? ranked.map(([action, n], i) => `${i ? formatCount(n) : plural(n, "model")} ${said[action] || action}`).join(", ") : "No model imported";
    // Gone: imported or discarded elsewhere meanwhile (their rows went); left: still queued.
    const gone = results.filter((r) => r.result === "not_found").length;
    const left = results.length - imported - gone;
    toast([done, gone ? `${formatCount(gone)} ${gone === 1 ? "was" : "were"} no longer in the queue` : "", left ? `${formatCount(left)} left` : ""].filter(Boolean).join(", "));
  }

  selectAll.addEventListener("change", () => {
    for (const r of shownRows()) check(r, selectAll.checked);
    updateSelection();
  });
  run.addEventListener("click", runBatch);

  try {
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
    if (follower) follower.stop();
  };
}

// What a comparison shows of a library model, keys in any order.
function sameModel(a, b) {
  const seen = (r) => JSON.stringify(sorted([r.name, r.type, r.path, r.meta_json, tagsByName(r.tags).map((t) => t.name), r.images]));
  return seen(a) === seen(b);
}

function sorted(value) {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === "object") return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sorted(value[k])]));
  return value;
}

function wordsOf(text) {
  return text.toLowerCase().split(/\s+/).filter(Boolean);
}
