// Pending models: the queue with each one's original image; import one (a conflict opens the
// comparison: existing and pending side by side, a diff of meta_json, both images, and what
// Override, Merge and Delete would each leave); select many and import them as one job.
import { h, clear, toast, note, plural, formatBytes, confirmDialog } from "./dom.js";
import { call, get, capabilities, pendingImageUrl, followJob, ApiError, isUnavailable, imagesChanged } from "./api.js";
import { jobView } from "./jobs.js";
import { focusHeading } from "./router.js";
import { openComparison } from "./compare.js";
import { invalidateLibrary } from "./library.js";

const CHOICES = [["", "Leave conflicts in the queue"], ["merge", "Merge"], ["override", "Override"], ["delete", "Delete the pending one"]];

// An override replaces the existing model's cover and a merge adds an image: the pages show
// the new ones (see imageUrl). An import or a delete leaves the library's images as they were.
function changedImagesOf(outcome) {
  if (outcome.sha256 && ["overridden", "merged"].includes(outcome.action_taken)) imagesChanged(outcome.sha256);
}

// A button whose request runs says so ("Importing…", aria-busy) and is aria-disabled (not
// disabled, which would drop its focus); `busyText` null puts it back as it was.
function showBusy(button, busyText) {
  if (busyText) {
    button.dataset.idleText = button.textContent;
    button.textContent = busyText;
    button.setAttribute("aria-disabled", "true");
  } else {
    button.textContent = button.dataset.idleText || button.textContent;
    button.removeAttribute("aria-disabled");
  }
  button.setAttribute("aria-busy", String(Boolean(busyText)));
}

export async function mountPending(main, context) {
  const caps = await capabilities();
  if (!context.isCurrent()) return null;
  document.title = "Pending · modelshelf";
  const count = h("span", { class: "count", "aria-live": "polite" });
  const queue = h("ul", { class: "queue", "aria-label": "Pending models" });
  const selectAll = h("input", { type: "checkbox", id: "select-all" });
  const selected = h("span", { class: "count", "aria-live": "polite" });
  const strategy = h("select", { id: "batch-strategy" }, CHOICES.map(([value, text]) => h("option", { value, text })));
  const run = h("button", { type: "button", class: "primary", text: "Import selected", disabled: true });
  const progress = h("ul", { class: "jobs", "aria-label": "Batch progress", tabindex: "-1" });
  const message = h("div");
  clear(main, h("div", { class: "page-head" }, h("h1", { text: "Pending" }), count),
    h("p", { class: "count", text: "Models brought in from a legacy library wait here until they are hashed and promoted. A model whose content is already in the library is a conflict: compare the two, then choose." }),
    h("div", { class: "batchbar" },
      h("label", { class: "copyable" }, selectAll, " Select all"), selected,
      h("label", { for: "batch-strategy", text: "When the model is already in the library:" }), strategy, run),
    progress, message, queue);
  focusHeading(main, context.focus);

  const canDiscard = caps.has("DELETE", "/api/migration/pending_models/{id}");
  const rows = new Map();
  let lastChecked = null;
  let alive = true;
  let follower = null;

  const updateSelection = () => {
    const ids = selectedIds();
    selected.textContent = ids.length ? `${plural(ids.length, "model")} selected` : "";
    run.disabled = !ids.length;
    selectAll.checked = ids.length > 0 && ids.length === rows.size;
    selectAll.indeterminate = ids.length > 0 && ids.length < rows.size;
    count.textContent = plural(rows.size, "pending model");
  };
  const selectedIds = () => [...rows.entries()].filter(([, row]) => row.box.checked).map(([id]) => id);

  function remove(id) {
    const row = rows.get(id);
    if (!row) return;
    const next = row.el.nextElementSibling || row.el.previousElementSibling;
    const hadFocus = row.el.contains(document.activeElement);
    row.el.remove();
    rows.delete(id);
    if (hadFocus && next) next.querySelector("button")?.focus();
    updateSelection();
    if (!rows.size) message.replaceChildren(h("p", { class: "empty", text: "Nothing is pending." }));
  }

  function mark(id, kind, text) {
    const row = rows.get(id);
    if (!row) return;
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
      return done;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.body.existing) {
        mark(record.id, "conflict", "Already in the library");
        return resolve(record, error.body);
      }
      if (goneElsewhere(record, error)) return null;
      mark(record.id, "failed", error.message);
      toast(error.message, { error: true });
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
      } catch (error) {
        if (goneElsewhere(record, error)) return;
        mark(record.id, "failed", error.message);
        toast(error.message, { error: true });
      }
    });
  }

  async function resolve(record, conflict) {
    const choice = await openComparison(conflict, { caps });
    if (!choice) return;
    try {
      const done = await call("POST", "api/migration/import_a_model", { body: { id: record.id, conf_strategy: choice } });
      invalidateLibrary();
      changedImagesOf(done);
      toast(`${record.name || record.id}: ${done.action_taken}`);
      remove(record.id);
    } catch (error) {
      if (goneElsewhere(record, error)) return;
      mark(record.id, "failed", error.message);
      toast(error.message, { error: true });
    }
  }

  function row(record) {
    const name = record.name || `Pending model ${record.id}`;
    const box = h("input", { type: "checkbox", "aria-label": `Select ${name}`, dataset: { id: String(record.id) } });
    const status = h("span");
    const image = record.images && record.images.length
      ? h("img", { src: pendingImageUrl(record.id), alt: `Image of ${name}`, loading: "lazy", decoding: "async" })
      : h("div", { class: "placeholder", "aria-hidden": "true", text: record.type || "" });
    const el = h("li", { dataset: { id: String(record.id) } }, box, h("div", { class: "thumb" }, image),
      h("div", { class: "what" },
        h("span", { class: "name", text: name }),
        h("span", { class: "sub", text: [record.type, formatBytes(record.size_bytes), record.path].filter(Boolean).join(" · ") }),
        h("span", { class: "sub", text: (record.tags || []).map((t) => t.name).join(", ") }), status),
      h("div", { class: "row-actions" },
        h("button", { type: "button", text: "Import", "aria-label": `Import ${name}`, onclick: (event) => whileBusy(record, event.currentTarget, "Importing…", () => importOne(record)) }),
        canDiscard ? h("button", { type: "button", class: "danger", text: "Discard", "aria-label": `Discard ${name}`, onclick: (event) => discard(record, event.currentTarget) }) : null));
    box.addEventListener("click", (event) => {
      // Shift+click selects the range from the last box clicked, as in a file manager.
      if (event.shiftKey && lastChecked !== null) {
        const ids = [...rows.keys()];
        const [a, b] = [ids.indexOf(lastChecked), ids.indexOf(record.id)].sort((x, y) => x - y);
        ids.slice(a, b + 1).forEach((id) => { rows.get(id).box.checked = box.checked; });
      }
      lastChecked = record.id;
      updateSelection();
    });
    rows.set(record.id, { el, box, status, record });
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
    run.disabled = true;
    clear(progress);
    if (keepFocus) {
      progress.focus({ preventScroll: true });
      progress.scrollIntoView({ block: "nearest" });
    }
    try {
      const response = await call("POST", "api/migration/import_models", { body: { ids, conf_strategy: conf }, headers: { Prefer: "respond-async" }, raw: true });
      const body = await response.json().catch(() => ({}));
      if (!response.ok && response.status !== 207) throw new ApiError(response.status, body);
      let result = body;
      if (response.status === 202 && body.job) {
        const view = jobView(body.job, { onCancel: (job) => call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`).catch((e) => toast(e.message, { error: true })) });
        progress.append(view);
        follower = followJob(body.job, (job) => view.update(job));
        const final = await follower.done;
        follower = null;
        if (!alive) return;
        result = final.result || {};
        if (final.state !== "done") toast(`The batch ended ${final.state}${final.error ? `: ${final.error}` : ""}`, { error: true });
      } else {
        progress.append(h("li", { class: "job" }, h("strong", { text: "Batch import" }),
          h("p", { class: "stats", text: Object.entries(result.counts || {}).map(([k, v]) => `${k}: ${v}`).join(" · ") })));
      }
      applyResults(result.results || []);
    } catch (error) {
      toast(isUnavailable(error) ? "This server does not offer batch imports" : error.message, { error: true });
    } finally {
      updateSelection();
      const lost = document.activeElement === progress || document.activeElement === document.body;
      if (keepFocus && alive && lost) (run.disabled ? progress : run).focus();
    }
  }

  function applyResults(results) {
    let imported = 0;
    for (const r of results) {
      if (r.result === "success") { remove(r.id); imported += 1; changedImagesOf(r); }
      else if (r.result === "conflict") mark(r.id, "conflict", "Already in the library: compare to choose");
      else if (r.result !== "not_found") mark(r.id, "failed", r.detail || r.result);
      else remove(r.id);
    }
    if (imported) invalidateLibrary();
    toast(`${plural(imported, "model")} imported${results.length > imported ? `, ${results.length - imported} left` : ""}`);
  }

  selectAll.addEventListener("change", () => {
    for (const r of rows.values()) r.box.checked = selectAll.checked;
    updateSelection();
  });
  run.addEventListener("click", runBatch);

  try {
    const data = await get("api/migration/pending_models");
    if (!alive) return null;
    queue.append(...data.models.map(row));
    if (!data.models.length) message.append(h("p", { class: "empty", text: "Nothing is pending." }));
    updateSelection();
  } catch (error) {
    message.append(note(`The pending models could not be loaded: ${error.message}`, { error: true }));
  }
  return () => {
    alive = false;
    if (follower) follower.stop();
  };
}
