// Picking models in the library and changing them at once. In Select mode a click on a card
// (Shift+click: the range from the last one, Space: the focused card) picks it instead of
// opening it; a bar adds a tag to every picked model or removes one from them (tagging.js),
// sets their base model and type (bulkedit.js) or deletes them, with Undo (bulkdelete.js), in
// one request per part of the most the server takes (bulk.js). What is picked stays picked
// across searches and filters.
import { h, toast, plural, formatCount, heldTo } from "./dom.js";
import { currentRun, watchRuns, stopRun } from "./bulk.js";
import { tagModels, describeTagging } from "./tagging.js";
import { askEdit, editModels, describeEdit } from "./bulkedit.js";
import { askDelete, deleteModels, restoreModels, describeDeletion, describeRestore } from "./bulkdelete.js";
import { suggestTags, foldTagName } from "./choices.js";

export class Selection {
  constructor() {
    this.active = false;
    this.picked = new Map(); // sha256 -> name, in the order picked
    this.anchor = null; // sha256 of the card picked last, where a Shift range starts
    this.onChange = () => {};
  }

  has(sha256) {
    return this.picked.has(sha256);
  }

  // Pick or drop the card at `index`; with `range`, every card from the one picked last to it
  // (the pages between fetched first) takes the state the clicked one takes.
  async toggle(results, index, range) {
    const record = results.get(index);
    if (!record) return;
    const pick = !this.has(record.sha256);
    const start = range && this.anchor ? results.indexOf(this.anchor) : -1;
    const records = start < 0 ? [record] : await results.range(Math.min(start, index), Math.max(start, index) + 1);
    for (const each of records) {
      if (!each) continue; // a page that could not be fetched
      if (pick) this.picked.set(each.sha256, each.name || each.sha256.slice(0, 12));
      else this.picked.delete(each.sha256);
    }
    this.anchor = record.sha256;
    this.onChange();
  }

  // Leaving Select mode keeps the picks: they are there again when it is turned on.
  setActive(active) {
    this.active = active;
    this.onChange();
  }

  // Every model of `results` (all its pages, fetched first); the number that could not be
  // fetched.
  async pickAll(results) {
    const records = await results.range(0, results.total || 0);
    let lost = 0;
    for (const record of records) {
      if (record) this.picked.set(record.sha256, record.name || record.sha256.slice(0, 12));
      else lost += 1;
    }
    this.onChange();
    return lost;
  }

  clear() {
    this.picked.clear();
    this.anchor = null;
    this.onChange();
  }
}

// The bar over the grid while Select mode is on. `onDone` runs after a tagging or an edit (the
// library may have been left meanwhile), `onLeave` when Escape in its empty field asks to
// leave the mode; `limits` the server's (the longest tag name, the most models a request
// takes); `results()` the results shown (Select all picks every one of them); `canEdit`,
// `canDelete`: the server edits, deletes many models at once. A run under way when the bar is made (one started before
// the library was left) is shown, with its Stop. `bar.destroy()` when the bar is gone.
export function selectionBar(selection, { onDone, onLeave, limits, results, canEdit, canDelete }) {
  // Focusable by script: where a focus lost in a run goes (see keepFocus).
  const count = h("span", { class: "count", "aria-live": "polite", tabindex: "-1" });
  let picking = false;
  const all = h("button", { type: "button", onclick: async () => {
    if (picking) return;
    picking = true;
    bar.update();
    try {
      const lost = await selection.pickAll(results());
      if (lost) toast(`${plural(lost, "model")} could not be loaded, so not selected`, { error: true });
    } finally {
      picking = false;
      bar.update();
    }
  } });
  // Suggestions of its own, chosen for what is typed here (see suggestTags).
  // Held to the server's tag_name as it counts (see heldTo; a `maxlength` counted UTF-16
  // units, and cut a tag of emoji at half), of the name folded as it is sent (the model page's
  // tag field counts so too): over it, said beside the field and not sent.
  const field = heldTo(h("input", { id: "selection-tag", list: "selection-tag-options", autocomplete: "off", placeholder: "Tag" }), limits.tag_name, null, foldTagName);
  if (field.overLimit) field.setAttribute("aria-describedby", field.overLimit.id);
  const offered = h("datalist", { id: "selection-tag-options" });
  suggestTags(field);
  const add = h("button", { type: "button", class: "primary", text: "Add tag", onclick: () => run(true) });
  const remove = h("button", { type: "button", text: "Remove tag", onclick: () => run(false) });
  const edit = canEdit ? h("button", { type: "button", text: "Edit", title: "Set the base model or the type of every selected model", onclick: () => runEdit() }) : null;
  const erase = canDelete ? h("button", { type: "button", class: "danger", text: "Delete", title: "Delete every selected model from the library (their model files stay)", onclick: () => runDelete() }) : null;
  const done = h("button", { type: "button", text: "Clear selection", onclick: () => selection.clear() });
  // While a tagging or an edit runs: how far it is, and Stop (a tag sent to 5,000 models by
  // mistake need not run its course, then be removed from all of them again). Stop takes
  // effect between requests; it is marked, not disabled, so that the focus stays on it.
  const stop = h("button", { type: "button", class: "danger", text: "Stop", hidden: true, onclick: () => stopRun() });
  const progress = h("progress", { max: "1", value: "0", hidden: true });
  const progressText = h("span", { class: "count", hidden: true, "aria-live": "polite" });
  const bar = h("div", { class: "selection-bar", role: "region", "aria-label": "Selection" },
    count, all, h("label", { for: "selection-tag", class: "visually-hidden", text: "Tag for the selected models" }), field, field.overLimit || null, offered, add, remove, edit, erase, done, stop, progressText, progress);
  // Enter adds the tag; Escape empties the field, then leaves Select mode.
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); run(true); }
    if (event.key === "Escape") { event.preventDefault(); if (field.value) { field.value = ""; field.checkLimit?.(); } else onLeave(); }
  });

  bar.update = () => {
    const had = document.activeElement;
    const running = currentRun();
    bar.hidden = !selection.active && !running;
    const n = selection.picked.size;
    count.textContent = n ? `${plural(n, "model")} selected` : "Click cards to select them";
    // Not disabled while busy (the focused button would drop the focus): busy runs are refused.
    for (const button of [add, remove, edit, erase, done]) if (button) button.disabled = !n;
    const total = results().total;
    all.hidden = !total;
    all.textContent = picking ? "Selecting…" : `Select all ${formatCount(total || 0)}`;
    all.setAttribute("aria-busy", String(picking));
    bar.setAttribute("aria-busy", String(Boolean(running)));
    if (had && had.disabled && bar.contains(had)) keepFocus(); // Clear selection pressed
  };

  // Where the focus goes when a run ends with it on Stop: where the run was started from.
  let startedFrom = field;
  function showRun() {
    const running = currentRun();
    const stopHadFocus = document.activeElement === stop;
    progress.hidden = progressText.hidden = stop.hidden = !running;
    if (running) {
      progress.setAttribute("aria-label", `${running.what} progress`);
      progress.value = running.sent / running.total;
      progressText.textContent = `${formatCount(running.sent)} of ${formatCount(running.total)}`;
      progress.setAttribute("aria-valuetext", `${progressText.textContent} models`);
      stop.textContent = running.stopping ? "Stopping…" : "Stop";
      stop.setAttribute("aria-disabled", String(running.stopping));
    } else if (stopHadFocus) {
      startedFrom.focus();
    }
    bar.update();
  }
  // The toasts and the end of the page keep clear of the bar at the height it has: one row on
  // a desktop, two below about 1,000 px, four on a phone (a toast was drawn over its field).
  const room = new ResizeObserver(() => document.documentElement.style.setProperty("--selection-bar-h", `${bar.offsetHeight}px`));
  room.observe(bar);
  const unwatch = watchRuns(showRun);
  bar.destroy = () => { unwatch(); room.disconnect(); };

  const refuseWhileRunning = () => {
    if (currentRun()) toast("A change of many models is under way: wait for its end, or Stop it", { error: true });
    return Boolean(currentRun());
  };

  // A focus lost to the page's body (the Undo pressed is taken away with its message) or on a
  // button disabled once nothing is picked (Delete, Clear selection) goes to what the bar
  // says: the next Tab goes on from the bar, not from the top of the page. Not to its text
  // field, which would open a phone's keyboard.
  function keepFocus() {
    const at = document.activeElement;
    if (bar.isConnected && !bar.hidden && (!at || at === document.body || at.disabled)) count.focus({ preventScroll: true });
  }

  // After a run: models deleted meanwhile are no longer picked (there is nothing left to
  // change), and what it did is said (with `action`, a button in the message: Undo).
  function ended(outcome, said, action = null) {
    for (const sha256 of outcome.gone) selection.picked.delete(sha256);
    toast(said, { error: Boolean(outcome.error), action });
    selection.onChange();
    keepFocus();
    onDone();
  }

  async function run(adding) {
    if (!selection.picked.size || refuseWhileRunning()) return;
    const name = foldTagName(field.value);
    if (!name) return toast("Type the tag to add or remove first", { error: true });
    if (!field.validity.valid) return field.focus(); // over the limit, said at the field
    startedFrom = field;
    const outcome = await tagModels([...selection.picked.keys()], name, adding, limits.models_tagged_at_once);
    if (!outcome) return;
    if (!outcome.error && !outcome.stopped) { field.value = ""; field.checkLimit?.(); } // else kept to be mended
    ended(outcome, describeTagging(outcome, name, adding));
  }

  // The edit endpoint takes as many models a request as the tagging one (1,000).
  async function runEdit() {
    if (!selection.picked.size || refuseWhileRunning()) return;
    const hashes = [...selection.picked.keys()];
    const change = await askEdit(hashes.length, limits);
    if (!change || refuseWhileRunning()) return;
    startedFrom = edit;
    const outcome = await editModels(hashes, change, limits.models_tagged_at_once);
    if (outcome) ended(outcome, describeEdit(outcome, change));
  }

  // Deleted models are no longer picked. The focus, if it was on Stop, goes to the tag field:
  // the Delete button is disabled once nothing is picked.
  async function runDelete() {
    if (!selection.picked.size || refuseWhileRunning()) return;
    const hashes = [...selection.picked.keys()];
    if (!(await askDelete(hashes.length)) || refuseWhileRunning()) return;
    startedFrom = field;
    const outcome = await deleteModels(hashes, limits.models_tagged_at_once);
    if (!outcome) return;
    const deleted = outcome.changedHashes;
    for (const sha256 of deleted) selection.picked.delete(sha256);
    const undo = deleted.length ? { label: "Undo", run: () => runRestore(deleted) } : null;
    ended(outcome, describeDeletion(outcome), undo);
  }

  async function runRestore(hashes) {
    // Refused, it is offered again: the Undo pressed went with its message.
    const undo = { label: "Undo", run: () => runRestore(hashes) };
    if (currentRun()) {
      toast("A change of many models is under way: Undo once it ends, or Stop it", { error: true, action: undo });
      return;
    }
    keepFocus();
    startedFrom = field;
    const outcome = await restoreModels(hashes, limits.models_tagged_at_once);
    if (!outcome) return;
    // Cut short by a failure or Stop: the models not sent yet (the last ones, sent in order)
    // are one press away; their hashes are nowhere else on the page.
    const rest = hashes.slice(hashes.length - outcome.left);
    const again = rest.length ? { label: `Restore the other ${formatCount(rest.length)}`, run: () => runRestore(rest) } : null;
    ended(outcome, describeRestore(outcome), again);
  }

  showRun();
  return bar;
}

// The pick mark of a card (outside its link: a control inside a link is not allowed).
export function pickMark(record, selection) {
  if (!selection || !selection.active) return null;
  const name = record.name || record.sha256.slice(0, 12);
  return h("input", { type: "checkbox", class: "pick", tabindex: "-1", "aria-label": `Select ${name}`, checked: selection.has(record.sha256) });
}
