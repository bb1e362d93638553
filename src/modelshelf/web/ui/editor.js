// Editing on the model page: the tag field and the editor of name, type, base model, trigger
// words, description and notes. Nothing typed is thrown away: tags that could not be saved go
// back into the field, and the editor keeps the fields the person changed over any redraw
// (a 412 or a failed save included), over a visit to another page (see drafts), and asks
// before Escape or Cancel editing drops them. Writes go through the page's `change` (queued,
// If-Match).
import { h, toast, note, tagsByName, askBeforeLeaving, charsOf, heldTo } from "./dom.js";
import { libraryTypes } from "./api.js";
import { baseModelChoices, suggestTags, foldTagName } from "./choices.js";
import { triggerWords, downloadedTriggerWords, editableDescription, notesOf, asList } from "./meta.js";

export const CHANGED_ELSEWHERE = "This model was changed elsewhere; showing the current version";

// What was typed in a model's editor and not saved, by SHA256: a step to the next model (J,
// Next, a link, Back) left it behind and it was gone; it is there again, the editor open, when
// the person comes back to that model. Only this page's memory holds it: closing or reloading
// the page asks first.
export const drafts = new Map();
window.addEventListener("beforeunload", (event) => {
  if ([...drafts.values()].some((draft) => Object.keys(draft).length)) askBeforeLeaving(event);
});

export function renderTags(record, { caps, change, state }) {
  const canEdit = caps.has("PUT", "/api/models/{sha256}/tags");
  const names = tagsByName(record.tags).map((t) => t.name);
  const panel = h("section", { class: "panel", "aria-labelledby": "tags-title" }, h("h2", { id: "tags-title", text: "Tags" }));
  if (!canEdit) {
    panel.append(h("ul", { class: "chips" }, names.map((n) => h("li", {}, h("a", { class: "chip", href: `./?tag=${encodeURIComponent(n)}`, text: n })))),
      note("This server does not offer tag editing yet."));
    return panel;
  }
  // Each change is a function of the tags as they are when it is sent (after the page's
  // earlier writes), so changes made in quick succession all count.
  const save = (edit, options) => change("PUT", `api/models/${record.sha256}/tags`, (now) => ({ tags: edit((now.tags || []).map((t) => t.name)) }), "Tags saved", options);
  const input = h("input", { id: "tag-add", list: "tag-suggestions", autocomplete: "off", placeholder: "Add a tag", "aria-label": "Add a tag", dataset: { sha: record.sha256 } });
  input.value = state.tagDraft;
  input.addEventListener("input", () => { state.tagDraft = input.value; });
  const suggestions = h("datalist", { id: "tag-suggestions" });
  suggestTags(input);
  const savingChip = (word) => h("li", { class: "chip saving", dataset: { word }, title: "Saving…" }, h("span", { text: word }));
  const longest = caps.limits?.tag_name;
  const add = () => {
    const typed = input.value.split(",").map(foldTagName).filter(Boolean);
    // A field of what the browser trims alone (a byte-order mark, no space to the server) was
    // emptied and nothing said: said here and kept, as New tag and the selection bar say it.
    if (!typed.length && input.value) return toast("Type the tag to add first", { error: true });
    const fresh = [...new Set(typed)].filter((s) => !names.includes(s) && !state.tagsSaving.includes(s));
    // Said here, the field kept, rather than as the API's "tags.4: String should have…".
    const long = longest && fresh.find((s) => charsOf(s) > longest);
    if (long) return toast(`A tag name has at most ${longest} characters; “${[...long].slice(0, 24).join("")}…” has ${charsOf(long)}`, { error: true });
    input.value = "";
    state.tagDraft = "";
    if (fresh.length) addTags(fresh);
  };
  // The words leave the field as chips marked as saving; if they are not saved, they go back
  // into the field (with what was typed since), never lost.
  const addTags = async (fresh) => {
    state.tagsSaving.push(...fresh);
    chips.append(...fresh.map(savingChip));
    const outcome = await save((now) => [...now, ...fresh.filter((w) => !now.includes(w))],
      { conflict: `${CHANGED_ELSEWHERE}. The tags you typed are back in the field: press Enter to add them.` });
    state.tagsSaving = state.tagsSaving.filter((w) => !fresh.includes(w));
    if (outcome === "ok") return;
    state.tagDraft = [fresh.join(", "), state.tagDraft].filter(Boolean).join(", ");
    // Only into this model's field: after a step to another model they landed in that one's,
    // where Enter added them to it. Then the words are said, with the model they were for.
    const field = document.getElementById("tag-add");
    if (!field || field.dataset.sha !== record.sha256) {
      return toast(`Not added to ${record.name || record.sha256.slice(0, 12)}: ${fresh.join(", ")}`, { error: true });
    }
    document.querySelectorAll(".chip.saving").forEach((chip) => { if (fresh.includes(chip.dataset.word)) chip.remove(); });
    field.value = state.tagDraft;
  };
  const removeId = (n) => `tag-remove-${encodeURIComponent(n)}`;
  // The × that had focus goes with its tag: focus moves to the next tag's ×, else the field.
  const removeTag = (n, i) => {
    const neighbours = [names[i + 1], names[i - 1]].filter((x) => x !== undefined).map((x) => `#${CSS.escape(removeId(x))}`);
    state.focusNext = { from: removeId(n), to: [...neighbours, "#tag-add"] };
    save((now) => now.filter((x) => x !== n));
  };
  const tagChips = names.map((n, i) => h("li", { class: "chip", hidden: !state.allTags && i >= TAGS_SHOWN },
    h("a", { href: `./?tag=${encodeURIComponent(n)}`, text: n }),
    h("button", { type: "button", id: removeId(n), "aria-label": `Remove tag ${n}`, text: "×", onclick: () => removeTag(n, i) })));
  const chips = h("ul", { class: "chips" }, tagChips, showAllTags(tagChips, state),
    state.tagsSaving.filter((w) => !names.includes(w)).map(savingChip));
  // Backspace in the empty field marks the last tag, and a second Backspace removes it (as
  // token fields do): one key alone would save a removal nobody meant.
  let armed = false;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === ",") { event.preventDefault(); add(); }
    if (event.key === "Backspace" && !input.value && names.length) {
      const last = names[names.length - 1];
      if (armed) return save((now) => now.filter((x) => x !== last));
      armed = true;
      chips.querySelector(`#${CSS.escape(removeId(last))}`).parentElement.classList.add("armed");
      return toast(`Press Backspace again to remove the tag “${last}”`);
    }
    if (armed) {
      armed = false;
      chips.querySelectorAll(".armed").forEach((chip) => chip.classList.remove("armed"));
    }
  });
  input.addEventListener("change", () => { if (input.value.trim()) add(); });
  panel.append(h("div", { class: "tag-editor" }, chips, input, suggestions));
  return panel;
}

// A model with hundreds of tags (a caption list brought in with it) put the field and every
// panel below a few screens down: past TAGS_SHOWN, the others wait behind a button, which
// stays pressed for the model's page (`state.allTags`) and gives the focus to the first of them.
const TAGS_SHOWN = 30;
function showAllTags(tagChips, state) {
  if (state.allTags || tagChips.length <= TAGS_SHOWN) return null;
  const item = h("li", {}, h("button", {
    type: "button", class: "small", text: `Show all ${tagChips.length} tags`,
    onclick: () => {
      state.allTags = true;
      for (const chip of tagChips) chip.hidden = false;
      item.remove();
      tagChips[TAGS_SHOWN].querySelector("a").focus();
    },
  }));
  return item;
}

// The editor's fields show the record, or what the person typed over it (kept in
// `state.draft`, so a redraw, a 412 or a failed save never loses it). Save is disabled while
// its PATCH runs.
// `close()` closes the editor (after a save); `cancel()` asks first when something typed
// would be lost (Escape).
export function renderEditor(record, meta, { change, state, close, cancel, limits = {} }) {
  const draft = state.draft;
  // A field typed back to what the record holds is no change: the draft holds only changes, so
  // a draft with any key is work that would be lost.
  const bind = (control, value) => {
    control.value = draft[control.id] ?? value;
    control.addEventListener("input", () => {
      if (control.value === value) delete draft[control.id];
      else draft[control.id] = control.value;
    });
    return control;
  };
  // A hint is the control's description (beside it and tied to nothing, a screen reader on
  // the field read its name alone), as is what is over the field's limit (see heldTo).
  const field = (id, label, control, hint) => {
    const over = control.overLimit || null;
    const described = [hint ? `${id}-hint` : null, over?.id].filter(Boolean).join(" ");
    if (described) control.setAttribute("aria-describedby", described);
    return h("div", { class: "field" }, h("label", { for: id, text: label }), hint ? h("span", { class: "hint", id: `${id}-hint`, text: hint }) : null, control, over);
  };
  // No longer than PATCH takes (the server's limits), so nothing typed is refused on Save.
  // What the record holds is not held (see heldTo): left as it is, it is not sent.
  const held = (control, value, limit) => heldTo(bind(control, value), limit, value);
  const name = held(h("input", { id: "edit-name", required: true }), record.name || "", limits.model_name);
  const type = held(h("input", { id: "edit-type", list: "edit-types" }), record.type || "", limits.model_type);
  const types = h("datalist", { id: "edit-types" });
  libraryTypes().then((d) => types.append(...d.types.map((t) => h("option", { value: t }))), () => {});
  // No longer than the library's base-model filter takes (as in the edit of many models).
  const base = held(h("input", { id: "edit-base", list: "edit-bases", autocomplete: "off" }), SHOWN.base_model(meta), limits.filter_text);
  const bases = h("datalist", { id: "edit-bases" });
  baseModelChoices(bases).catch(() => {});
  const trigger = bind(h("input", { id: "edit-trigger" }), triggerWords(meta).join(", "));
  const description = bind(h("textarea", { id: "edit-description", rows: "5" }), SHOWN.description(meta));
  const notes = bind(h("textarea", { id: "edit-notes", rows: "4" }), SHOWN.notes(meta));
  const saveButton = h("button", { type: "submit", id: "edit-save", class: "primary" });
  showSaving(saveButton, state.saving);
  const form = h("form", { class: "panel", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title", text: "Edit model" }),
    field("edit-name", "Name", name), field("edit-type", "Type", type), types,
    field("edit-base", "Base model", base), bases, field("edit-trigger", "Trigger words", trigger, "Separated by commas"),
    field("edit-description", "Description", description), field("edit-notes", "Notes", notes),
    h("div", { class: "row-actions" }, saveButton));
  form.addEventListener("keydown", (event) => {
    // Escape also closes a field's suggestions: by habit, not to throw the edit away.
    if (event.key === "Escape") { event.preventDefault(); cancel(); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (state.saving) return;
    const body = changesOf(draft, record);
    if (!body) { toast("Nothing changed"); return close(); }
    state.saving = true;
    showSaving(saveButton, true);
    const outcome = await change("PATCH", `api/models/${record.sha256}`, (now) => changesOf(draft, now) || body, "Saved",
      { conflict: `${CHANGED_ELSEWHERE}. What you typed is still in the form: Save puts it over that version, Cancel editing drops it.` });
    state.saving = false;
    // The page may have been drawn anew meanwhile: the Save button is the one shown now.
    const shown = document.getElementById("edit-save");
    if (shown) showSaving(shown, false);
    if (outcome === "ok") close();
  });
  return form;
}

function showSaving(button, saving) {
  button.disabled = saving;
  button.textContent = saving ? "Saving…" : "Save";
  button.setAttribute("aria-busy", String(saving));
}

// The editor's text fields of meta_json start from what the page shows: the person's own, or
// for description and notes what a download brought (Civitai, A1111, LoRA Manager): the page
// showed those and the editor empty fields. Left as they were, they are not sent.
const SHOWN = {
  base_model: (meta) => (typeof meta.base_model === "string" ? meta.base_model : ""),
  description: editableDescription,
  notes: notesOf,
};

const FIELD_NAMES = { name: "name", type: "type", base_model: "base model", trigger_words: "trigger words", description: "description", notes: "notes" };

// The fields of `draft` that differ from `record`, in words ("name, description"); "" if none.
export function unsavedFields(draft, record) {
  const body = changesOf(draft, record);
  if (!body) return "";
  return [...Object.keys(body).filter((key) => key !== "meta_json"), ...Object.keys(body.meta_json || {})]
    .map((key) => FIELD_NAMES[key] || key).join(", ");
}

// The PATCH body for the fields the person changed (`draft`) where they differ from `record`;
// null when nothing does.
function changesOf(draft, record) {
  const meta = record.meta_json || {};
  const body = {};
  const patch = {};
  const typed = (id) => (draft[id] === undefined ? undefined : draft[id]);
  for (const [id, key] of [["edit-name", "name"], ["edit-type", "type"]]) {
    const value = typed(id)?.trim();
    // A cleared field is sent as null: the API refuses a blank name or type.
    if (value !== undefined && value !== (record[key] || "")) body[key] = value || null;
  }
  for (const [id, key, trim] of [["edit-base", "base_model", true], ["edit-description", "description", false], ["edit-notes", "notes", false]]) {
    const value = trim ? typed(id)?.trim() : typed(id);
    if (value !== undefined && value !== SHOWN[key](meta)) patch[key] = value || null;
  }
  if (typed("edit-trigger") !== undefined) {
    // Split as the page splits them (meta.js asList): a comma inside parentheses is its phrase's.
    const words = asList(typed("edit-trigger"));
    // An empty list is kept while a download's words exist: removing it would bring them back.
    if (words.join("\n") !== triggerWords(meta).join("\n")) patch.trigger_words = words.length || downloadedTriggerWords(meta).length ? words : null;
  }
  if (Object.keys(patch).length) body.meta_json = patch;
  return Object.keys(body).length ? body : null;
}
