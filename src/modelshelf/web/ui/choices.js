// What the library's fields offer to choose from: its types, tags and base models, as the
// options of a select or a datalist, read through the lists the pages share (api.js).
import { h, clear, formatCount } from "./dom.js";
import { libraryTags, libraryTypes, libraryBaseModels } from "./api.js";

// A tag name as the library keeps a new one (records.folded_tag_name): in Unicode's
// compatibility form, trimmed, lower case.
export function foldTagName(name) {
  return name.normalize("NFKC").trim().toLowerCase();
}

// The types in use, after the select's options; `chosen` is among them already (shown before
// the list arrives). Called again (after an edit of many models), it puts the list anew.
export async function typeChoices(select, chosen) {
  const { types } = await libraryTypes();
  for (const listed of select.querySelectorAll("option[data-listed]")) if (!listed.selected) listed.remove();
  const shown = new Set([...select.options].map((option) => option.value));
  select.append(...types.filter((type) => type !== chosen && !shown.has(type)).map((type) => h("option", { value: type, text: type, dataset: { listed: "" } })));
}

// A tag field's suggestions (the datalist it names): the library's tags holding what is
// typed, those that begin with it first, most used first, SUGGESTED at most, read when the
// field is first used and chosen again at every keystroke. The pages drew datalists of the
// 2,000 most used tags at every visit (the model page at every draw too), and never offered
// a tag past the 2,000th.
const SUGGESTED = 50;
const byUse = new WeakMap(); // a read of the tags -> its tags, most used first
const usedFields = new Map(); // field used -> its read (see tagsChanged)
export function suggestTags(input) {
  let tags = null;
  const offer = () => {
    if (!tags || !input.list) return;
    const typed = input.value.trim().toLowerCase();
    const begins = [];
    const holds = [];
    for (const tag of tags) {
      const at = tag.name.indexOf(typed);
      if (at === 0) begins.push(tag);
      else if (at > 0 && holds.length < SUGGESTED) holds.push(tag);
      if (begins.length >= SUGGESTED) break;
    }
    clear(input.list, [...begins, ...holds].slice(0, SUGGESTED).map((t) => h("option", { value: t.name, label: `${t.name} (${formatCount(t.models)})` })));
  };
  const read = () => {
    for (const field of usedFields.keys()) if (!field.isConnected) usedFields.delete(field);
    if (!input.isConnected) return;
    usedFields.set(input, read);
    libraryTags().then((data) => {
      if (!byUse.has(data)) byUse.set(data, [...data.tags].sort((a, b) => b.models - a.models));
      tags = byUse.get(data);
      offer();
    }, () => {});
  };
  // Each focus asks the shared list again: a change made since (here or on another page)
  // has dropped it, and it is read anew.
  input.addEventListener("focus", read);
  input.addEventListener("input", offer);
}

// After a change of the tags (a tagging, a tag made): the fields used so far offer them anew.
export function tagsChanged() {
  for (const read of [...usedFields.values()]) read();
}

// The base models the library's models name, most used first (the server's order): a fixed
// list offered names no model had, and lacked the ones a collector's models do.
export async function baseModelChoices(list) {
  const { base_models: names } = await libraryBaseModels();
  clear(list, names.map((b) => h("option", { value: b.name, label: `${b.name} (${formatCount(b.count)})` })));
}
