// Many pending models at once, for the pending page (pending.js): Import selected as one
// job followed to its end (or one started before the page was shown), Discard selected in one
// request, and what each did applied to the queue and said.
import { h, clear, toast, plural, formatCount, confirmDialog } from "./dom.js";
import { call, get, followJob, isOver, ApiError, isUnavailable } from "./api.js";
import { jobView } from "./jobs.js";
import { focusHeading } from "./router.js";
import { invalidateLibrary } from "./library.js";
import { changedImagesOf } from "./pendingone.js";

// `pendingPage`: the parts of the page it acts on (see mountPending). `stop()` stops
// following a batch once the page is left.
export function batchActions(pendingPage) {
  const { caps, main, rows, progress, run, discardMany, selectAll, strategy, remove, mark, updateSelection, refreshGroups, refreshSoon, selectedIds, emptied } = pendingPage;
  let follower = null;

  async function runBatch() {
    const ids = selectedIds();
    if (!ids.length) return;
    const conf = strategy.value || null;
    // The button is disabled while the batch runs: focus, if it was there, goes to the
    // progress (brought into view: the range may have been picked far down the queue), and
    // back to the button when the batch ends, if it can take it then.
    const keepFocus = document.activeElement === run;
    pendingPage.batching = true;
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
      pendingPage.batching = false;
      updateSelection();
      const lost = document.activeElement === progress || document.activeElement === document.body;
      if (keepFocus && pendingPage.alive() && lost) (run.disabled ? progress : run).focus();
    }
  }

  // A batch job to its end (with Stop), then what it did applied to the queue and said.
  async function followBatch(started) {
    const view = jobView(started, { onCancel: (job) => call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`).catch((e) => toast(e.message, { error: true })) });
    progress.append(view);
    follower = followJob(started, (job) => view.update(job));
    const final = await follower.done;
    follower = null;
    if (!pendingPage.alive()) return;
    if (final.state !== "done") toast(`The batch ended ${final.state}${final.error ? `: ${final.error}` : ""}`, { error: true });
    if (final.result) {
      applyResults(final.result.results || []);
      await refreshGroups();
      return;
    }
    // No report of what it did: the queue as the server has it now says.
    const gone = await refreshGroups();
    if (gone) invalidateLibrary();
    if (pendingPage.alive()) toast(`${plural(gone, "model")} left the queue before the batch ended`);
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
    if (!running || !pendingPage.alive() || pendingPage.batching) return;
    pendingPage.batching = true;
    updateSelection();
    try {
      await followBatch(running);
    } finally {
      pendingPage.batching = false;
      if (pendingPage.alive()) updateSelection();
    }
  }

  // Every selected model out of the queue, in one request: for the group whose files are
  // gone, most often. A model being imported meanwhile stays, marked.
  async function discardSelected() {
    const ids = selectedIds();
    if (!ids.length || pendingPage.batching) return;
    const yes = await confirmDialog({
      title: `Discard ${plural(ids.length, "pending model")}?`,
      body: "They leave the queue with their images and are not imported. Their model files stay on disk.",
      confirm: `Discard ${plural(ids.length, "model")}`,
    });
    if (!yes || pendingPage.batching || !pendingPage.alive()) return;
    // The button is disabled while the request runs, and stays so once nothing is selected:
    // focus, if it was there, goes to Select all (to the heading once the queue is empty).
    const keepFocus = document.activeElement === discardMany;
    pendingPage.batching = true;
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
      pendingPage.batching = false;
      updateSelection();
      emptied();
      if (keepFocus && pendingPage.alive() && document.activeElement === document.body) {
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
    emptied();
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

  return { runBatch, followRunningBatches, discardSelected, stop: () => { if (follower) follower.stop(); } };
}
