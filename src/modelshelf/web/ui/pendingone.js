// One pending model's actions, for the pending page (pending.js): import it (a conflict opens
// the comparison, compare.js, and carries out the choice made there) and discard it.
import { toast, confirmDialog, showBusy, tagsByName } from "./dom.js";
import { call, post, ApiError, isUnavailable, imagesChanged } from "./api.js";
import { openComparison } from "./compare.js";
import { invalidateLibrary } from "./library.js";

// An override replaces the existing model's cover and a merge adds an image: the pages show
// the new ones (see imageUrl). An import or a delete leaves the library's images as they were.
export function changedImagesOf(outcome) {
  if (outcome.sha256 && ["overridden", "merged"].includes(outcome.action_taken)) imagesChanged(outcome.sha256);
}

// `pendingPage`: the parts of the page it acts on (see mountPending). Returns the actions
// its rows' buttons call.
export function modelActions(pendingPage) {
  const { caps, rows, canDiscard, canCheck, remove, mark, updateSelection, refreshSoon } = pendingPage;

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

  return { whileBusy, importOne, discard };
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
