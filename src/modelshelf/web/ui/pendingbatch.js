// Many pending models at once, for the pending page (pending.js): Import selected as jobs
// followed to their end (and every other batch running: started before the page was shown,
// or elsewhere while it is), Discard selected, and what each did applied to the queue and
// said. A request takes at most the server's limit (MAX_BATCH, which comes with the page): more
// models go in parts, one after another, said as one.
import { h, clear, toast, plural, formatCount, confirmDialog, holdThePage } from "./dom.js";
import { call, get, followJob, isOver, ApiError, isUnavailable } from "./api.js";
import { jobView } from "./jobs.js";
import { focusHeading } from "./router.js";
import { invalidateLibrary } from "./library.js";
import { changedImagesOf } from "./pendingone.js";
import { PART_WITHOUT_LIMIT } from "./bulk.js";

// While the page is shown, the server's jobs are looked at this often for batches started
// elsewhere (another tab, a script, the CLI): an idle page's rows were otherwise selected and
// imported again. One small request (the list without results) each time; none while hidden.
const LOOK_AGAIN_MS = 5000;

// `pendingPage`: the parts of the page it acts on (see mountPending). `stop()` stops
// following the batches once the page is left.
export function batchActions(pendingPage) {
  const { caps, main, rows, progress, run, discardMany, selectAll, strategy, remove, mark, updateSelection, refreshGroups, refreshSoon, selectedIds, emptied } = pendingPage;
  // Every batch followed here, by job id ({follower, done, claimed, watch}): two tabs may each
  // run one. `ended`: those followed to their end, kept for a part's answer that comes after
  // (see claiming).
  const followers = new Map();
  const ended = new Map();
  // Settled once the answer of the part on its way is claimed (see importPart): a look may
  // list that part's batch before the page knows it as its own, even ended. What a look found
  // is said only after, unless it is the page's own: it was followed twice, two lines, and
  // its models said twice.
  let claiming = Promise.resolve();
  let requesting = false; // Import selected's or Discard selected's requests are under way
  let looking = 0; // the timer of the next look for batches started elsewhere
  let inParts = false; // Import selected sends more than one part (see stop)
  let seen = null; // the jobs' ids the last look listed (null before the first)
  // Import and Discard selected wait while a batch runs or a request of theirs is on its way.
  const busyNow = () => { pendingPage.batching = requesting || followers.size > 0; };
  // The most pending models one request takes: Select all over a legacy library's tens of
  // thousands was one request the server refused (400).
  const most = caps.limits.pending_models_at_once || PART_WITHOUT_LIMIT;
  const partsOf = (ids) => Array.from({ length: Math.ceil(ids.length / most) }, (_, n) => ids.slice(n * most, (n + 1) * most));

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
    // Said until the server answers (it may be slow), and while the parts go: the progress is
    // where focus goes.
    const line = h("li", { class: "job", text: `Starting the batch import of ${plural(ids.length, "model")}…` });
    clear(progress, line);
    if (keepFocus) {
      progress.focus({ preventScroll: true });
      progress.scrollIntoView({ block: "nearest" });
    }
    try {
      await sayImport(ids.length, await importInParts(ids, conf, line));
    } finally {
      line.remove();
      requesting = false;
      busyNow();
      if (pendingPage.alive()) updateSelection();
      const lost = document.activeElement === progress || document.activeElement === document.body;
      if (keepFocus && pendingPage.alive() && lost) (run.disabled ? progress : run).focus();
    }
  }

  // The parts one after another, until one fails or ends without its report (Stop, a
  // restart): the others are left in the queue. Resolves {results, sent, ended, error}.
  async function importInParts(ids, conf, line) {
    const parts = partsOf(ids);
    const outcome = { results: [], sent: 0, ended: null, error: null };
    // Closing or reloading the page meanwhile asks first: the parts not sent yet would be
    // lost (as a run in parts of the library's would, bulk.js). One part runs on its own.
    const holding = parts.length > 1;
    if (holding) holdThePage(1);
    inParts = holding;
    try {
      await sendParts(parts, ids.length, conf, line, outcome);
    } finally {
      inParts = false;
      if (holding) holdThePage(-1);
    }
    return outcome;
  }

  async function sendParts(parts, total, conf, line, outcome) {
    for (const [n, these] of parts.entries()) {
      const said = (done) => `Batch import of ${plural(total, "model")} in ${parts.length} parts: part ${n + 1}, ${formatCount(done)} done`;
      if (parts.length > 1) line.textContent = said(outcome.sent);
      try {
        // One part: its job's view is its progress, once the server answers.
        const answered = () => { if (parts.length === 1) line.remove(); };
        const watch = (job) => { line.textContent = said(outcome.sent + (job.progress?.done || 0)); };
        const { final, results } = await importPart(these, conf, { answered, watch });
        outcome.sent += these.length;
        outcome.results.push(...(results || []));
        if (final && (final.state !== "done" || !final.result)) outcome.ended = final;
        if (final && final.state !== "done") break;
      } catch (error) {
        outcome.error = error;
        break;
      }
    }
  }

  // One part: its job followed to its end, or an older server's answer (207) of what it did.
  async function importPart(ids, conf, { answered, watch }) {
    let claimed = () => {};
    claiming = new Promise((resolve) => { claimed = resolve; });
    let response, body, entry;
    try {
      response = await call("POST", "api/migration/import_models", { body: { ids, conf_strategy: conf }, headers: { Prefer: "respond-async" }, raw: true });
      body = await response.json().catch(() => ({}));
      // Said with the whole, not as a batch of its own (a look may have found it first).
      if (response.status === 202 && body.job) entry = Object.assign(follow(body.job), { claimed: true, watch });
    } finally {
      claimed();
    }
    answered();
    if (!response.ok && response.status !== 207) throw new ApiError(response.status, body);
    if (entry) {
      const final = await entry.done;
      return { final, results: final.result ? final.result.results || [] : null };
    }
    progress.append(h("li", { class: "job" }, h("strong", { text: "Batch import" }),
      h("p", { class: "stats", text: Object.entries(body.counts || {}).map(([k, v]) => `${k}: ${v}`).join(" · ") })));
    return { final: null, results: body.results || [] };
  }

  // What the parts did, applied to the queue and said once: a part that failed or ended part
  // way is said, and what the parts before it did is kept.
  async function sayImport(total, { results, sent, ended, error }) {
    if (!pendingPage.alive()) {
      sayImportElsewhere(total, { results, sent, ended, error });
      return;
    }
    if (error && !results.length) {
      toast(isUnavailable(error) ? "This server does not offer batch imports" : error.message, { error: true });
      return;
    }
    if (ended && ended.state !== "done") toast(`The batch ended ${ended.state}${ended.error ? `: ${ended.error}` : ""}`, { error: true });
    if (results.length) applyResults(results, { notDone: total - sent, failure: error });
    if (!ended || ended.result) {
      await refreshGroups();
      return;
    }
    // No report of what the last part did: the queue as the server has it now says.
    const gone = await refreshGroups();
    if (gone) invalidateLibrary();
    if (pendingPage.alive()) toast(`${plural(gone, "model")} left the queue before the batch ended`);
  }

  // The page was left while the parts went (they go on, see stop): what they did is said
  // wherever the person is, as a run in parts of the library's is (bulk.js).
  function sayImportElsewhere(total, { results, sent, ended, error }) {
    const imported = results.filter((r) => r.result === "success").length;
    if (imported) invalidateLibrary();
    const stopped = ended && ended.state !== "done" ? `the batch ended ${ended.state}${ended.error ? `: ${ended.error}` : ""}` : "";
    const failure = error ? error.message : stopped;
    const notDone = total - sent;
    const said = [`${plural(imported, "model")} imported`, notDone ? `${formatCount(notDone)} not done` : ""].filter(Boolean).join(", ");
    toast(failure ? `${said}: ${failure}` : said, { error: Boolean(failure) });
  }

  // A batch job shown and followed to its end (with Stop). A batch followed already (found
  // by a look while its Import selected was answered) keeps the view and follower it has.
  function follow(started) {
    const known = followers.get(started.id) || ended.get(started.id);
    if (known) return known;
    const view = jobView(started, { onCancel: (job) => call("DELETE", `api/jobs/${encodeURIComponent(job.id)}`).catch((e) => toast(e.message, { error: true })) });
    progress.append(view);
    const entry = { claimed: false, watch: null };
    entry.follower = followJob(started, (job) => { view.update(job); entry.watch?.(job); });
    entry.done = entry.follower.done.then((final) => {
      followers.delete(started.id);
      ended.set(started.id, entry);
      busyNow();
      if (pendingPage.alive()) {
        updateSelection();
        if (followers.size) followRunningBatches(); // one started meanwhile is shown now
      }
      return final;
    });
    followers.set(started.id, entry);
    seen?.add(started.id);
    busyNow();
    if (pendingPage.alive()) updateSelection(); // a part sent once the page was left
    lookSoon();
    return entry;
  }

  // A batch this page did not start (another tab's, or one running before the page was
  // shown): what it did applied to the queue and said at its end.
  async function followBatch(started) {
    if (followers.has(started.id) || ended.has(started.id)) return;
    const entry = follow(started);
    const final = await entry.done;
    await claiming;
    if (entry.claimed || !pendingPage.alive()) return; // a part of an import of this page's
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
  // another tab, or elsewhere while it is shown) is shown and ended here as one started here:
  // what it did is not lost from view, and Import selected waits for it. A batch that began
  // and ended between two looks (a script's small one) is known by its id: the queue as the
  // server has it then says what it took. Looked for when the page is shown, then every
  // LOOK_AGAIN_MS while it is visible.
  async function followRunningBatches() {
    clearTimeout(looking);
    looking = 0;
    if (!caps.has("GET", "/api/jobs")) return;
    // Without results: running batches are all it looks for (and ended batches' are large).
    const url = caps.hasQuery("GET", "/api/jobs", "result") ? "api/jobs?result=false" : "api/jobs";
    const listed = await get(url).then(({ jobs }) => jobs, () => null);
    if (!pendingPage.alive()) return;
    const readAgain = listed ? lookedAt(listed) : false;
    // Models added or taken elsewhere one by one (a stage 1 run, a scan, another tab): the
    // queue looked at too. Not while a batch is followed, nor when one ended unseen: the
    // queue is read again then, and what left it said.
    if (!followers.size && !readAgain) await pendingPage.lookAtQueue();
    lookSoon();
  }

  // The jobs a look found: batches running followed; true when one ended unseen (the queue
  // is then read again, and what left it said).
  function lookedAt(jobs) {
    const batches = jobs.filter((job) => job.kind === "import_models");
    const unseen = seen ? batches.filter((job) => !seen.has(job.id) && !followers.has(job.id)) : [];
    seen = new Set([...jobs.map((job) => job.id), ...followers.keys()]);
    for (const job of batches) if (!isOver(job)) followBatch(job);
    if (!unseen.some(isOver)) return false;
    queueChanged();
    return true;
  }

  // A batch that ended unseen: its report is not in the list (large), the queue says.
  async function queueChanged() {
    const gone = await refreshGroups();
    if (!gone || !pendingPage.alive()) return;
    invalidateLibrary();
    toast(`${plural(gone, "model")} left the queue in a batch import run elsewhere`);
  }

  function lookSoon() {
    if (looking || !pendingPage.alive()) return;
    // A hidden tab asks nothing; it looks as soon as it is shown again (see visible).
    looking = setTimeout(() => {
      looking = 0;
      if (document.hidden) lookSoon();
      else followRunningBatches();
    }, LOOK_AGAIN_MS);
  }

  // A tab shown again looks at once: batches may have run while it was hidden, and models been
  // imported or discarded one by one in another tab (rows left to be selected again). The
  // queue is read again then with its checks (files gone meanwhile); while the tab stays
  // visible, each look asks whether the queue changed (pending.js lookAtQueue).
  const visible = () => {
    if (document.hidden || !pendingPage.alive() || !seen) return;
    followRunningBatches();
    refreshSoon();
  };
  document.addEventListener("visibilitychange", visible);

  // Every selected model out of the queue, in parts of the most a request takes: for the
  // group whose files are gone, most often. A model being imported meanwhile stays, marked.
  async function discardSelected() {
    const ids = selectedIds();
    if (!ids.length || pendingPage.batching) return;
    const yes = await confirmDialog({
      title: `Discard ${plural(ids.length, "pending model")}?`,
      body: "They leave the queue with their images and are not imported. Their model files stay on disk.",
      confirm: `Discard ${plural(ids.length, "model")}`,
    });
    if (!yes || pendingPage.batching || !pendingPage.alive()) return;
    // The button is disabled while the requests run, and stays so once nothing is selected:
    // focus, if it was there, goes to Select all (to the heading once the queue is empty).
    const keepFocus = document.activeElement === discardMany;
    requesting = true;
    busyNow();
    updateSelection();
    try {
      sayDiscarded(ids.length, await discardInParts(ids));
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

  // The parts one after another, each applied to the queue as it is answered, until one
  // fails: the others are left. Resolves {discarded, locked, sent, error}.
  async function discardInParts(ids) {
    const parts = partsOf(ids);
    // Closing or reloading the page meanwhile asks first, as for Import selected (see
    // importInParts): the parts not sent yet were lost unsaid.
    const holding = parts.length > 1;
    if (holding) holdThePage(1);
    try {
      return await sendDiscards(parts);
    } finally {
      if (holding) holdThePage(-1);
    }
  }

  async function sendDiscards(parts) {
    const outcome = { discarded: 0, locked: 0, sent: 0, error: null };
    for (const these of parts) {
      try {
        const done = await call("POST", "api/migration/discard_models", { body: { ids: these } });
        for (const id of [...done.discarded, ...done.not_found]) remove(id, { later: true });
        for (const id of done.locked) mark(id, "failed", "Being imported: left in the queue");
        outcome.discarded += done.discarded.length;
        outcome.locked += done.locked.length;
        outcome.sent += these.length;
      } catch (error) {
        outcome.error = error;
        break;
      }
      if (pendingPage.alive()) updateSelection();
    }
    return outcome;
  }

  function sayDiscarded(total, { discarded, locked, sent, error }) {
    if (error && !sent) {
      toast(error.message, { error: true });
      return;
    }
    const left = locked ? `; ${formatCount(locked)} being imported, left in the queue` : "";
    const failed = error ? `; ${formatCount(total - sent)} not done: ${error.message}` : "";
    toast(`${plural(discarded, "model")} discarded${left}${failed}`, { error: Boolean(error) });
  }

  // `notDone`: the models of parts not sent (after `failure`, an error, if one failed).
  function applyResults(results, { notDone = 0, failure = null } = {}) {
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
    const outcome = [done, gone ? `${formatCount(gone)} ${gone === 1 ? "was" : "were"} no longer in the queue` : "", left ? `${formatCount(left)} left` : "", notDone ? `${formatCount(notDone)} not done` : ""].filter(Boolean).join(", ");
    toast(failure ? `${outcome}: ${failure.message}` : outcome, { error: Boolean(failure) });
  }

  // The page is left: the batches it only watches are no longer followed. A part of an import
  // in parts it sent (claimed) is followed to its end and the parts after it are sent:
  // stopping it there left them unsent, unsaid (Import selected over 25,000 models, then a
  // look at the library, imported 10,000). An import of one part runs on without the page,
  // said by the page shown again, as before.
  function stop() {
    document.removeEventListener("visibilitychange", visible);
    clearTimeout(looking);
    for (const [id, { follower, claimed }] of followers) {
      if (claimed && inParts) continue;
      follower.stop();
      followers.delete(id); // its `done` never comes: a part answered later follows anew
    }
  }

  return { runBatch, followRunningBatches, discardSelected, stop };
}
