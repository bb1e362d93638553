// Editing many models at once from the library (POST /api/models/edit): the base model (set
// or cleared) and the type of every picked model, run in parts by bulk.js. Only the fields the
// person fills in are sent; each model changed keeps a history entry, to undo on its page.
import { h, plural, formatCount, confirmDialog, heldTo } from "./dom.js";
import { post } from "./api.js";
import { typeChoices, baseModelChoices } from "./choices.js";
import { runInParts, describeTheRest } from "./bulk.js";

// Above this many models, the change is confirmed once more, with the number said: an edit
// of the whole library by a slip of Select all is a long way to undo, model by model.
export const CONFIRM_OVER = 50;

// `change`: {type?, meta_json?} as the endpoint takes it. Resolves as runInParts does.
export function editModels(hashes, change, limit) {
  return runInParts(hashes, (these) => post("api/models/edit", { hashes: these, ...change }), { what: "Editing", limit });
}

// The change in words: "base model set to “SDXL 1.0” and type set to “lora”".
export function describeChange(change) {
  const parts = [];
  if (change.meta_json) {
    const base = change.meta_json.base_model;
    parts.push(base === null ? "base model cleared" : `base model set to “${base}”`);
  }
  if (change.type) parts.push(`type set to “${change.type}”`);
  return parts.join(" and ");
}

// What a run did: "Base model set to “Pony” on 9 models; 2 were so already; 1 no longer exists".
export function describeEdit(outcome, change) {
  const said = describeChange(change);
  const what = outcome.stopped ? `Stopped: ${said}` : capitalized(said);
  return `${what} on ${plural(outcome.changed, "model")}` +
    describeTheRest(outcome, (n) => `${formatCount(n)} ${n === 1 ? "was" : "were"} so already`);
}

const capitalized = (text) => text[0].toUpperCase() + text.slice(1);

// Asks what to change on `count` models: resolves the change, or null (cancelled). Over
// CONFIRM_OVER models, asks once more before. `limits`: the server's (see editDialog).
export async function askEdit(count, limits = {}) {
  const change = await editDialog(count, limits.filter_text);
  if (!change || count <= CONFIRM_OVER) return change;
  const yes = await confirmDialog({
    title: `Edit ${plural(count, "model")}?`,
    body: `${capitalized(describeChange(change))} on every one of the ${formatCount(count)} models selected. Each model's history keeps what it was, to undo on its page.`,
    confirm: `Edit ${plural(count, "model")}`,
    danger: false,
  });
  return yes ? change : null;
}

// The form: a base model to set (the library's, most used first, or any typed), or Clear; a
// type from the library's list. Left alone, a field is not sent. A base model is no longer
// than the library's base-model filter takes (`longest`, the server's filter_text): a longer
// one would be offered by that filter and answered 400 when chosen, so its models could never
// be listed by it.
function editDialog(count, longest) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const base = heldTo(h("input", { id: "bulk-base", list: "bulk-base-options", autocomplete: "off", placeholder: "Leave as it is" }), longest);
    if (base.overLimit) base.setAttribute("aria-describedby", base.overLimit.id);
    const baseList = h("datalist", { id: "bulk-base-options" });
    const clearBase = h("input", { type: "checkbox", id: "bulk-base-clear" });
    const type = h("select", { id: "bulk-type" }, h("option", { value: "", text: "Leave as it is" }));
    const said = h("div", { role: "alert" }); // what stops the edit: an error
    const cancel = h("button", { type: "button", text: "Cancel" });
    const apply = h("button", { type: "submit", class: "primary", text: "Apply" });
    const form = h("form", { class: "bulk-edit" },
      h("h2", { id: "bulk-edit-title", text: `Edit ${plural(count, "model")}` }),
      h("p", { class: "note", text: "What is left alone stays as each model has it." }),
      h("div", { class: "field" }, h("label", { for: "bulk-base", text: "Base model" }), base, base.overLimit || null, baseList),
      h("label", { class: "check" }, clearBase, " Clear the base model"),
      h("div", { class: "field" }, h("label", { for: "bulk-type", text: "Type" }), type),
      said, h("div", { class: "buttons" }, cancel, apply));
    const dialog = h("dialog", { "aria-labelledby": "bulk-edit-title" }, form);
    let change = null;

    clearBase.addEventListener("change", () => { base.disabled = clearBase.checked; });
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = changeOf(base.value.trim(), clearBase.checked, type.value);
      if (!chosen) {
        said.replaceChildren(h("p", { class: "note error-note", text: "Type a base model, tick Clear, or choose a type: nothing would change." }));
        return base.focus();
      }
      change = chosen;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(change);
    });
    document.body.append(dialog);
    dialog.showModal();
    base.focus();
    baseModelChoices(baseList).catch(() => {});
    typeChoices(type, "").catch(() => {});
  });
}

// The endpoint's body for what the form holds, or null when it would change nothing.
function changeOf(baseModel, clearBase, type) {
  const change = {};
  // A merge patch (RFC 7396): null takes the key out of meta_json, other keys stay.
  if (clearBase) change.meta_json = { base_model: null };
  else if (baseModel) change.meta_json = { base_model: baseModel };
  if (type) change.type = type;
  return Object.keys(change).length ? change : null;
}
