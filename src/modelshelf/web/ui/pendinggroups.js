// The pending queue's groups: what the server's list says an import of each model would meet
// (the content is already a model's, the model file is missing or unreadable, or neither), the
// chips that narrow the queue to one group, and the check that hashes the files whose group
// is not known yet. The page (pending.js) keeps the rows and decides what is shown.
import { h, toast, plural } from "./dom.js";
import { call, ApiError, isUnavailable } from "./api.js";

export const GROUPS = [["", "All"], ["conflicts", "Conflicts"], ["missing", "File missing"], ["fresh", "Fresh"]];
export const BADGES = { conflicts: ["badge dup", "Already in the library"], missing: ["badge missing", "Model file missing or unreadable"] };

// The group of a record as the server's list gives it; null while its file is not hashed.
export function groupOf(record) {
  if (record.missing) return "missing";
  if (record.conflict === true) return "conflicts";
  return record.conflict === false ? "fresh" : null;
}

// The groups as toggle buttons in a row of chips, each with its count; `onChoose(key)` runs at
// a click. `el.update(records, show)` counts `records` by group, marks the chip of `show`, and
// returns how many records are in no group yet; `el.chip(key)` is a group's button.
export function groupChips(show, onChoose) {
  const chips = new Map(GROUPS.map(([key, label]) => [key, h("button", {
    type: "button", class: "chip", dataset: { label }, "aria-pressed": String(key === show),
    onclick: () => onChoose(key),
  })]));
  const el = h("div", { class: "active-filters", role: "group", "aria-label": "Show", hidden: true },
    h("span", { class: "count", text: "Show:" }), [...chips.values()]);
  el.update = (records, shown) => {
    const counts = { "": 0, conflicts: 0, missing: 0, fresh: 0 };
    let unknown = 0;
    for (const record of records) {
      counts[""] += 1;
      const group = groupOf(record);
      if (group) counts[group] += 1;
      else unknown += 1;
    }
    for (const [key, chip] of chips) {
      chip.textContent = `${chip.dataset.label} (${counts[key]})`;
      chip.setAttribute("aria-pressed", String(key === shown));
      chip.classList.toggle("active", key === shown);
    }
    return unknown;
  };
  el.chip = (key) => chips.get(key);
  return el;
}

// What the note over the queue says of the models not hashed yet, or of the check under way
// (`checking`: {done, total}).
export function uncheckedText(unknown, checking) {
  if (checking) return `Checking which models are already in the library: ${checking.done} of ${checking.total}…`;
  const one = unknown === 1;
  return `${plural(unknown, "model")} ${one ? "is" : "are"} not hashed yet, so whether ${one ? "it is" : "they are"} already in the library is not known (shown under All only).`;
}

// The records one after another: a preview hashes the file (the service keeps the digest)
// and says whether the import would conflict, changing nothing. `state` ({stop, done}) counts
// them; `stopped()` is asked before each, `listed(record)` whether it is still in the queue,
// `onChecked(record)` runs after each. Resolves false when the check stopped on a failure
// (said in a toast), true otherwise.
export async function checkGroups(records, { state, stopped, listed, onChecked }) {
  for (const record of records) {
    if (stopped()) break;
    try {
      if (listed(record)) {
        await call("POST", "api/migration/preview_import", { body: { id: record.id, conf_strategy: null } });
        record.conflict = false;
      }
    } catch (error) {
      if (!(error instanceof ApiError) || isUnavailable(error) || error.status >= 500) {
        toast(`The check stopped: ${error.message}`, { error: true });
        return false;
      }
      if (error.status === 409) record.conflict = true;
      // 404: imported or discarded elsewhere; 422: the file or the image cannot be
      // used; 423: being imported. The list says what each is now.
    }
    state.done += 1;
    onChecked(record);
  }
  return true;
}
