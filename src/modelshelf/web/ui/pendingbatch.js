// Many pending models at once, for the pending page (pending.js): Import selected as one
// job followed to its end (and every other batch running: started before the page was shown,
// or elsewhere while one runs), Discard selected in one request, and what each did applied to
// the queue and said.
import { h, clear, toast, plural, formatCount, confirmDialog } from "./dom.js";
import { call, get, followJob, isOver, ApiError, isUnavailable } from "./api.js";
import { jobView } from "./jobs.js";
import { focusHeading } from "./router.js";
import { invalidateLibrary } from "./library.js";
import { changedImagesOf } from "./pendingone.js";

// While a batch runs, the server's jobs are looked at this often for batches started elsewhere
// (another tab) meanwhile, and as each batch ends.
const LOOK_AGAIN_MS = 5000;

// `pendingPage`: the parts of the page it acts on (see mountPending). `stop()` stops
// following the batches once the page is left.
export function batchActions(pendingPage) {
  const { caps, main, rows, progress, run, discardMany, selectAll, strategy, remove, mark, updateSelection, refreshGroups, refreshSoon, selectedIds, emptied } = pendingPage;
  // Every batch followed here, by job id: two tabs may each run one.
  const followers = new Map();
  let requesting = false; // Import selected's or Discard selected's request is on its way
  let looking = 0; // the timer of the next look for batches started elsewhere
  // Import and Discard selected wait while a batch runs or a request of theirs is on its way.
  const busyNow = () => { pendingPage.batching = requesting || followers.size > 0; };

  async function runBatch() {
    const ids = selectedIds();
    if (!ids.length) return;
    const conf = strategy.value || null;
    // The button is disabled while the batch runs: focus, if it was there, goes to the
    // progress (brought into view: the range may have been picked far down the queue), and
    // back to the button when the batch ends, if it can take it then.
    const keepFocus = document.activeElement === run;
    requesting = true;
    busyNow();
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
      requesting = false;
      busyNow();
      updateSelection();
      const lost = document.activeElement === progress || document.activeElement === document.body;
      if (keepFocus && pendingPage.alive() && lost) (run.disabled ? progress : run).focus();
    }
  }

  // A batch job to its end (with Stop), then what it did applied to the queue and said. A
  // batch followed already (found by a look while its Import selected was answered) is left
  // to the follower it has.
  async function followBatch(started) {
    if (followers.has(started.id)) return;
    const view = jobView(started, { onCancel: (job) => call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`).catch((e) => toast(e.message, { error: true })) });
    progress.append(view);
    const follower = followJob(started, (job) => view.update(job));
    followers.set(started.id, follower);
    busyNow();
    updateSelection();
    lookSoon();
    const final = await follower.done;
    followers.delete(started.id);
    busyNow();
    if (!pendingPage.alive()) return;
    updateSelection();
    if (followers.size) followRunningBatches(); // one started meanwhile is shown now
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

  // Every batch running that this page does not follow yet (started before it was shown, in
  // another tab, or elsewhere while one runs) is shown and ended here as one started here:
  // what it did is not lost from view, and Import selected waits for it. Looked for when the
  // page is shown, then while a batch runs (see LOOK_AGAIN_MS).
  async function followRunningBatches() {
    clearTimeout(looking);
    looking = 0;
    if (!caps.has("GET", "/api/jobs")) return;
    // Without results: running batches are all it looks for (and ended batches' are large).
    const url = caps.hasQuery("GET", "/api/jobs", "result") ? "api/jobs?result=false" : "api/jobs";
    const { jobs } = await get(url).catch(() => ({ jobs: [] }));
    if (!pendingPage.alive()) return;
    for (const job of jobs) {
      if (job.kind === "import_models" && !isOver(job)) followBatch(job);
    }
    lookSoon();
  }

  function lookSoon() {
    if (looking || !followers.size || !pendingPage.alive()) return;
    // A hidden tab looks when it is shown again: its batches are polled meanwhile.
    looking = setTimeout(() => {
      looking = 0;
      if (document.hidden) lookSoon();
      else followRunningBatches();
    }, LOOK_AGAIN_MS);
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
    requesting = true;
    busyNow();
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
      requesting = false;
      busyNow();
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

  function stop() {
    clearTimeout(looking);
    for (const follower of followers.values()) follower.stop();
  }

  return { runBatch, followRunningBatches, discardSelected, stop };
}
