// Deleting many models at once from the library (POST /api/models/delete), run in parts by
// bulk.js, and undoing it (POST /api/models/restore): each deleted model comes back from its
// newest `delete` history entry, as the model page's Undo restores one (without its pictures).
import { plural, formatCount, confirmDialog } from "./dom.js";
import { post } from "./api.js";
import { runInParts, describeTheRest } from "./bulk.js";

// Resolves as runInParts does; `outcome.changedHashes` are the models deleted.
export function deleteModels(hashes, limit) {
  return runInParts(hashes, (these) => post("api/models/delete", { hashes: these }), { what: "Deleting", limit });
}

// Restores each of `hashes`, `limit` a request (a request pair a model, as before, took 11x as
// long: BENCHMARKS.md, Deleting many models at once); a model in the library already is left
// as it is. Resolves as runInParts does.
export function restoreModels(hashes, limit) {
  return runInParts(hashes, (these) => post("api/models/restore", { hashes: these }), { what: "Restoring", limit });
}

// Asks once, with the number and what stays: resolves true to delete.
export function askDelete(count) {
  return confirmDialog({
    title: `Delete ${plural(count, "model")}?`,
    body: `Their records, tags and pictures leave the library; their model files stay on disk (a scan of their folders brings them back). Each is kept in its history: Undo, in the message that follows, restores them without their pictures.`,
    confirm: `Delete ${plural(count, "model")}`,
  });
}

// "Deleted 9 models; 1 no longer exists"; "Stopped: deleted 1,000 models; 2,000 not done".
export function describeDeletion(outcome) {
  const done = `${outcome.stopped ? "Stopped: deleted" : "Deleted"} ${plural(outcome.changed, "model")}`;
  return done + describeTheRest(outcome, (n) => `${formatCount(n)} left as they were`);
}

// "Restored 9 models, without their pictures; 1 no longer exists".
export function describeRestore(outcome) {
  const done = `${outcome.stopped ? "Stopped: restored" : "Restored"} ${plural(outcome.changed, "model")}, without their pictures`;
  return done + describeTheRest(outcome, (n) => `${formatCount(n)} in the library already, left as ${n === 1 ? "it was" : "they were"}`);
}
