// Renaming a tag in place, on the Tags page: a small form in the tag's row. Enter saves,
// Escape cancels; what was typed stays in the field after any refusal, to be mended. A name
// another tag has (409, whose body names that tag) offers to merge into it instead.
import { h, plural, heldTo } from "./dom.js";

// `tag`: {id, name, models}; `countOf(id)`: how many models carry a tag, when known;
// `onSave(name)`, `onMerge(target)`, `onCancel()` are the page's (they may throw ApiError).
export function renameForm(tag, { maxLength, canMerge, countOf, onSave, onMerge, onCancel }) {
  const id = `rename-field-${tag.id}`;
  // Held to the server's limit as it counts (see heldTo; a `maxlength` counted UTF-16 units,
  // and cut a name of emoji at half): over it, said beside the field, and the form not sent.
  const input = heldTo(h("input", { id, value: tag.name, autocomplete: "off", spellcheck: "false" }), maxLength);
  if (input.overLimit) input.setAttribute("aria-describedby", input.overLimit.id);
  const save = h("button", { type: "submit", class: "small primary", text: "Save" });
  const cancel = h("button", { type: "button", class: "small", text: "Cancel", onclick: () => onCancel() });
  // Announced as it changes: the answer to Enter, with the focus still in the field.
  const said = h("div", { class: "rename-note", role: "alert" });
  const form = h("form", { class: "rename", "aria-label": `Rename tag ${tag.name}` },
    h("label", { for: id, class: "visually-hidden", text: `New name for the tag ${tag.name}` }),
    input, input.overLimit || null, save, cancel, said);
  let busy = false;
  // What was said is of the name sent: once it is typed over (mended), it no longer holds.
  input.addEventListener("input", () => said.replaceChildren());

  const setBusy = (on) => {
    busy = on;
    // Not disabled (the focused button would drop the focus): a busy form refuses instead.
    for (const button of form.querySelectorAll("button")) button.setAttribute("aria-busy", String(on));
  };
  const say = (text, { error = true } = {}) => {
    said.replaceChildren(h("p", { class: error ? "note error-note" : "note", text }));
  };
  const run = async (work) => {
    if (busy) return;
    setBusy(true);
    try {
      await work();
    } finally {
      if (form.isConnected) setBusy(false);
    }
  };

  // The name is taken: say by which tag, and offer to merge into it.
  const offerMerge = (target) => {
    const count = countOf(target.id);
    const carried = count === null ? "" : ` (${plural(count, "model")})`;
    if (!canMerge) return say(`A tag named “${target.name}”${carried} exists already: choose another name.`);
    const merge = h("button", { type: "button", class: "small", text: `Merge into ${target.name}`,
      onclick: () => run(() => onMerge(target)) });
    said.replaceChildren(h("p", { class: "note error-note" },
      `A tag named “${target.name}”${carried} exists already. Merging gives its name to the ${plural(tag.models, "model")} tagged “${tag.name}” and deletes “${tag.name}”. `,
      merge));
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      const taken = await onSave(input.value);
      if (taken) offerMerge(taken);
    });
  });
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    onCancel();
  });
  form.input = input;
  form.say = say;
  return form;
}
