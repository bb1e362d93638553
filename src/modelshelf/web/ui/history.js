// A model's history: every edit saved its previous record; each entry says what differs from
// the model as it is now, and can be put back.
import { h, clear, confirmDialog, note, toast, formatDate } from "./dom.js";
import { get, isUnavailable } from "./api.js";

// The server's action names (model_history.action) in words.
const ACTIONS = {
  edit: "Edited", tags: "Tags changed", reorder: "Images reordered", restore: "Restored", delete: "Deleted",
  tag_renamed: "Tag renamed", tag_deleted: "Tag deleted", override: "Overridden by an import", merge: "Merged with an import",
};

const when = formatDate;

// What a restore would change, in words: "name, tags, description".
export function differences(before, now) {
  const changed = [];
  for (const key of ["name", "type"]) if ((before[key] || "") !== (now[key] || "")) changed.push(key);
  const tags = (r) => (r.tags || []).map((t) => (typeof t === "string" ? t : t.name)).sort().join("\n");
  if (tags(before) !== tags(now)) changed.push("tags");
  const a = before.meta_json || {};
  const b = now.meta_json || {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) changed.push(key.replace(/_/g, " "));
  }
  return changed;
}

// Entries are asked for a page at a time (one more, to know whether older ones remain): a
// model edited a thousand times answered 26 MB and drew 9,000 elements (bench/ui_scale.py).
export const HISTORY_PAGE = 20;

export function historyPath(sha256, { before = null, limit = HISTORY_PAGE + 1 } = {}) {
  return `api/models/${sha256}/history?limit=${limit}${before === null ? "" : `&before=${before}`}`;
}

// The newest delete entry of a model's history (the one the delete just made, as a rule:
// the first page), read a page at a time.
export async function newestDelete(sha256) {
  for (let before = null; ;) {
    const entries = (await get(historyPath(sha256, { before, limit: 50 }))).entries || [];
    const found = entries.find((e) => e.action === "delete");
    if (found || entries.length < 50) return found;
    before = entries[entries.length - 1].id;
  }
}

// `onListed()` runs once the entries are shown (focus may be waiting for one of them). The
// record may be only `{sha256}`: a deleted model's history, from which it can be restored.
export function renderHistory(record, { change, state, onListed }) {
  const list = h("div", {}, h("p", { class: "count", text: "Loading…" }));
  const panel = h("section", { class: "panel", "aria-labelledby": "history-title" },
    h("h2", { id: "history-title", tabindex: "-1", text: "History" }), list);
  const items = h("ol", { class: "history" });
  const older = h("button", { type: "button", class: "small", id: "history-older", text: "Show older changes", onclick: () => more() });
  let oldest = null;
  const failed = (error) => `History could not be loaded: ${error.message}`;

  // The next page after the entries shown; `focus`: on the first of them (a click on Show older).
  function more({ focus = true } = {}) {
    return get(historyPath(record.sha256, { before: oldest })).then((data) => {
      const entries = (data.entries || []).slice(0, HISTORY_PAGE);
      if (oldest === null && !entries.length) return clear(list, h("p", { class: "count", text: "No earlier versions." }));
      const drawn = entries.map((entry) => historyItem(entry, record, { change, state }));
      items.append(...drawn);
      if (entries.length) oldest = entries[entries.length - 1].id;
      older.hidden = (data.entries || []).length <= HISTORY_PAGE;
      if (!items.isConnected) clear(list, items, older);
      else if (focus && drawn.length) focusItem(drawn[0]);
      if (onListed) onListed();
    }, (error) => {
      if (!items.isConnected) clear(list, note(isUnavailable(error) ? "This server does not keep an edit history yet." : failed(error)));
      else toast(failed(error), { error: true });
    });
  }
  more({ focus: false });
  return panel;
}

function focusItem(item) {
  const button = item.querySelector("button:not([disabled])");
  if (button) return button.focus();
  item.tabIndex = -1;
  item.focus();
}

// A deleted model (record `{sha256, deleted: true}`) differs from every version in all it
// had: each entry says what a restore brings back instead of listing every field.
const BACK = "Brings the model back as it was then, without its images";

function historyItem(entry, record, { change, state }) {
  const before = entry.before || {};
  const diff = record.deleted ? [] : differences(before, record);
  const says = record.deleted ? BACK : diff.length ? `Differs in: ${diff.join(", ")}` : "Same as now";
  const puts = record.deleted ? `${BACK}.` : `Puts back: ${diff.join(", ")}. The current version is kept in the history.`;
  return h("li", {},
    h("span", {}, h("strong", { text: ACTIONS[entry.action] || entry.action || "Change" }), " · ", h("time", { text: when(entry.at) })),
    h("button", {
      type: "button", class: "small", id: `restore-${entry.id}`, text: "Restore", disabled: !record.deleted && !diff.length,
      "aria-label": `Restore the version before “${ACTIONS[entry.action] || entry.action}” of ${when(entry.at)}`,
      onclick: async () => {
        const yes = await confirmDialog({ title: "Restore this version?", body: puts, confirm: "Restore", danger: false });
        if (!yes) return;
        // This entry's Restore is disabled afterwards (nothing differs): focus goes to the
        // next one that can act (the new entry undoes this restore), else the heading.
        state.focusNext = { from: `restore-${entry.id}`, to: [`#restore-${entry.id}`, ".history button:not([disabled])", "#history-title"], listed: true };
        change("POST", `api/models/${record.sha256}/history/${entry.id}/restore`, undefined, "Version restored");
      },
    }),
    h("span", { class: "changes", text: says }));
}
