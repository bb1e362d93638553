// One pending model's actions, for the pending page (pending.js): import it (a conflict opens
// the comparison, compare.js, and carries out the choice made there) and discard it.
import { toast, announce, confirmDialog, showBusy } from "./dom.js";
import { call, ApiError, isUnavailable, imagesChanged } from "./api.js";
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

  // Why the model's action failed, said in its row; seen there, a toast would say it twice
  // (and cover the row's buttons on a phone), so only a screen reader is told. A row not
  // drawn (filtered out) is told of in a toast.
  function failed(record, message) {
    mark(record.id, "failed", message);
    const row = rows.get(record.id);
    if (row && row.el && row.el.isConnected) announce(message, { error: true });
    else toast(message, { error: true });
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
      failed(record, error.message);
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
        failed(record, error.message);
      }
    });
  }

  // `changed`: the library's model changed since the comparison was first opened. The
  // comparison shows the library's model as the preview reads it, with its version (ETag),
  // and an override or a merge is sent with it as If-Match: one edited since (another tab, a
  // script), even in the instant between the choice and the import, is not overwritten (412)
  // but shown again, as it is now, to be compared before the choice is made again.
  async function resolve(record, conflict, changed = false) {
    try {
      const seen = changed || !canCheck ? conflict : await conflictNow(record);
      if (!seen) return goneFromLibrary(record);
      const choice = await openComparison(seen, { caps, changed });
      if (!choice) return;
      // Delete takes the pending model out, as its card says, even if the library's model
      // went meanwhile: import_a_model would then import it (with no conflict every
      // strategy imports).
      const version = choice !== "delete" && seen.etag ? { "If-Match": seen.etag } : {};
      const done = choice === "delete" && canDiscard
        ? (await call("DELETE", `api/migration/pending_models/${encodeURIComponent(record.id)}`), { action_taken: "deleted" })
        : await call("POST", "api/migration/import_a_model", { body: { id: record.id, conf_strategy: choice }, headers: version });
      invalidateLibrary();
      changedImagesOf(done);
      toast(`${record.name || record.id}: ${done.action_taken}`);
      remove(record.id);
      refreshSoon();
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) return changedElsewhere(record);
      if (goneElsewhere(record, error)) return;
      failed(record, error.message);
    }
  }

  // The import met a change of the library's model made since the comparison showed it:
  // nothing was changed, and the comparison is shown again with the model as it is now.
  async function changedElsewhere(record) {
    let fresh;
    try {
      fresh = await conflictNow(record);
    } catch (error) {
      if (goneElsewhere(record, error)) return;
      return failed(record, error.message);
    }
    return fresh ? resolve(record, fresh, true) : goneFromLibrary(record);
  }

  // Deleted from the library since the conflict was met: an import now adds the pending
  // model as a new one, which is not what the person was choosing between.
  function goneFromLibrary(record) {
    const said = "The library’s model of this content was deleted elsewhere; nothing was imported. Import again to add this one as a new model.";
    failed(record, said);
  }

  // The conflict as the library has it now: its model, the pending one, and the model's
  // version (the preview's ETag header); null when the library has no such model any more.
  // Previewed as a delete, which reads no image: an unusable pending image is said on the
  // cards of the strategies that would use it, as before.
  async function conflictNow(record) {
    const body = { id: record.id, conf_strategy: "delete" };
    const response = await call("POST", "api/migration/preview_import", { body, raw: true });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, answer);
    if (!answer.existing) return null;
    return { existing: answer.existing, pending: answer.pending, etag: response.headers.get("ETag") };
  }

  return { whileBusy, importOne, discard };
}
