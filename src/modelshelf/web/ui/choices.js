// What the library's fields offer to choose from: its types, tags and base models, as the
// options of a select or a datalist, read through the lists the pages share (api.js).
import { h, clear, formatCount } from "./dom.js";
import { libraryTags, libraryTypes, libraryBaseModels } from "./api.js";

// The types in use, after the select's options; `chosen` is among them already (shown before
// the list arrives). Called again (after an edit of many models), it puts the list anew.
export async function typeChoices(select, chosen) {
  const { types } = await libraryTypes();
  for (const listed of select.querySelectorAll("option[data-listed]")) if (!listed.selected) listed.remove();
  const shown = new Set([...select.options].map((option) => option.value));
  select.append(...types.filter((type) => type !== chosen && !shown.has(type)).map((type) => h("option", { value: type, text: type, dataset: { listed: "" } })));
}

// The tags offered by the tag filter and the Select bar, most used first (again after a
// tagging, which can make a tag or change the counts).
export async function tagChoices(list) {
  const { tags } = await libraryTags();
  const sorted = [...tags].sort((a, b) => b.models - a.models);
  clear(list, sorted.slice(0, 2000).map((t) => h("option", { value: t.name, label: `${t.name} (${formatCount(t.models)})` })));
}

// A tag field's suggestions (its datalist): the library's tags holding what is typed, those
// that begin with it first, most used first, SUGGESTED at most, read when the field is first
// used and chosen again at every keystroke. The model page drew a datalist of 2,000 of them
// at every visit and after every save, and never offered a tag past the 2,000th.
const SUGGESTED = 50;
const byUse = new WeakMap(); // a read of the tags -> its tags, most used first
export function suggestTags(input, list) {
  let tags = null;
  const offer = () => {
    if (!tags) return;
    const typed = input.value.trim().toLowerCase();
    const begins = [];
    const holds = [];
    for (const tag of tags) {
      const at = tag.name.indexOf(typed);
      if (at === 0) begins.push(tag);
      else if (at > 0 && holds.length < SUGGESTED) holds.push(tag);
      if (begins.length >= SUGGESTED) break;
    }
    clear(list, [...begins, ...holds].slice(0, SUGGESTED).map((t) => h("option", { value: t.name, label: `${t.name} (${formatCount(t.models)})` })));
  };
  const read = () => libraryTags().then((data) => {
    if (!byUse.has(data)) byUse.set(data, [...data.tags].sort((a, b) => b.models - a.models));
    tags = byUse.get(data);
    offer();
  }, () => {});
  // Each focus asks the shared list again: a change made since (here or on another page)
  // has dropped it, and it is read anew.
  input.addEventListener("focus", read);
  input.addEventListener("input", offer);
}

// The base models the library's models name, most used first (the server's order): a fixed
// list offered names no model had, and lacked the ones a collector's models do.
export async function baseModelChoices(list) {
  const { base_models: names } = await libraryBaseModels();
  clear(list, names.map((b) => h("option", { value: b.name, label: `${b.name} (${formatCount(b.count)})` })));
}
