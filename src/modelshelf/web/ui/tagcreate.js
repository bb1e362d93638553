// Making a tag on the Tags page (POST /api/tags), before any model carries it: a collector
// sets up the names to tag with first. Enter makes it; the field is emptied and keeps the
// focus for the next one. A name another tag has is said, with a button that shows that tag.
import { h, plural, heldTo, spelledOut } from "./dom.js";
import { post, ApiError, refusedCharacters } from "./api.js";

// The server's refusal of a tag name `typed` in words: the API gives its field's path
// ("name: needs a character…"), which said nothing of a name of zero-width spaces, shown as
// nothing. Said of the name, its invisible characters written as their codes, as the model
// page and the selection bar say theirs.
export function nameRefused(error, typed) {
  const reason = /^name: (.*)$/s.exec(error.message);
  return reason ? `The name “${spelledOut(typed.trim(), refusedCharacters())}” ${reason[1]}` : error.message;
}

// `onMade(tag)` puts the new tag in the list; `onShow(name)` shows only the tags named so
// (the filter); `countOf(id)`: how many models carry a tag, when known.
export function createForm({ maxLength, onMade, onShow, countOf }) {
  // Held to the server's limit as it counts (see heldTo; a `maxlength` counted UTF-16 units,
  // and cut a name of emoji at half): over it, said beside the field, and the form not sent.
  const input = heldTo(h("input", { id: "new-tag", autocomplete: "off", spellcheck: "false", placeholder: "A name" }), maxLength);
  if (input.overLimit) input.setAttribute("aria-describedby", input.overLimit.id);
  const make = h("button", { type: "submit", text: "Create tag" });
  // Announced as it changes: the answer to Enter, with the focus still in the field.
  const said = h("div", { class: "create-note", role: "alert" });
  const form = h("form", { class: "create-tag", "aria-label": "Create a tag" },
    h("div", { class: "field" }, h("label", { for: "new-tag", text: "New tag" }), input, input.overLimit || null), make, said);
  let busy = false;
  // What was said is of the name sent: once it is typed over (mended), it no longer holds.
  input.addEventListener("input", () => said.replaceChildren());

  const say = (...content) => said.replaceChildren(h("p", { class: "note error-note" }, ...content));

  // The name is taken: say by which tag (with its count), and offer to show it.
  const taken = (tag) => {
    const count = countOf(tag.id);
    const carried = count === null ? "" : ` (${plural(count, "model")})`;
    say(`A tag named “${tag.name}”${carried} exists already. `,
      h("button", { type: "button", class: "small", text: `Show ${tag.name}`, onclick: () => onShow(tag.name) }));
  };

  async function submit() {
    // Said here rather than as the validator's "name: String should have at least 1 character".
    if (!input.value.trim()) {
      say("Type the new tag's name first.");
      input.focus();
      return;
    }
    try {
      const tag = await post("api/tags", { name: input.value });
      said.replaceChildren();
      input.value = "";
      input.checkLimit?.();
      onMade(tag);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.body.tag) taken(error.body.tag);
      else say(nameRefused(error, input.value)); // the server's reason (a control character)
    }
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // Not disabled while busy (the focused button would drop the focus): a second Enter is refused.
    if (busy) return;
    busy = true;
    make.setAttribute("aria-busy", "true");
    submit().finally(() => {
      busy = false;
      make.setAttribute("aria-busy", "false");
    });
  });
  return form;
}
