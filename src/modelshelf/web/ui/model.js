// One model: gallery, facts (SHA256 and AutoV2 to copy), trigger words, tags, links, readable
// metadata, files and duplicates, history with restore; edit and delete. Every change sends the
// record's ETag as If-Match, so an edit made elsewhere in the meantime is never overwritten.
import { h, clear, toast, copyButton, copyText, confirmDialog, note, formatBytes, formatDate, autov2 } from "./dom.js";
import { call, get, capabilities, ApiError, isUnavailable, setImageVersion } from "./api.js";
import { renderGallery } from "./gallery.js";
import { baseModelOf, presentFiles } from "./grid.js";
import { triggerWords, links, descriptionOf, trainingFacts, tagFrequency, renderFrequency, renderPrompts, jsonTree } from "./meta.js";
import { navigate, focusHeading, cameFrom } from "./router.js";
import { invalidateLibrary, libraryHref, neighbours, neighboursLoaded } from "./library.js";
import { renderHistory } from "./history.js";

export async function mountModel(main, sha256, context) {
  const caps = await capabilities();
  const state = { gallery: { index: 0 }, editing: false };
  let record = null;
  let etag = null;
  let alive = true;

  async function load() {
    const response = await call("GET", `api/models/${encodeURIComponent(sha256)}`, { raw: true });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body);
    etag = response.headers.get("ETag");
    record = body;
  }

  // Read the model again and draw it; `images`: they may have changed (their URLs then take
  // the new version, see imageUrl; other edits keep them, so nothing is fetched again).
  async function refresh({ images = false } = {}) {
    invalidateLibrary();
    const focusedId = document.activeElement && document.activeElement.id;
    const y = window.scrollY;
    try {
      await load();
    } catch (error) {
      return showError(error);
    }
    if (images) setImageVersion(sha256, etag);
    if (!alive) return;
    draw();
    window.scrollTo(0, y);
    if (focusedId && document.getElementById(focusedId)) document.getElementById(focusedId).focus({ preventScroll: true });
  }

  function showError(error) {
    const missing = error instanceof ApiError && (error.status === 404 || error.status === 400);
    document.title = "Model not found · modelshelf";
    clear(main, h("p", { class: "crumbs" }, h("a", { href: libraryHref(), text: "← Library" })),
      h("h1", { text: missing ? "No such model" : "The model could not be loaded" }),
      note(missing ? `No model has the SHA256 ${sha256}.` : error.message, { error: !missing }));
  }

  // Sends a change with If-Match; on 412 (changed elsewhere) reloads and says so.
  async function change(method, path, body, done) {
    try {
      await call(method, path, { body, headers: etag ? { "If-Match": etag } : {} });
      await refresh();
      if (done) toast(done);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 412) {
        toast("This model was changed elsewhere; showing the current version", { error: true });
        await refresh({ images: true });
      } else if (isUnavailable(error)) {
        toast("This server does not offer that change yet", { error: true });
      } else {
        toast(error.message, { error: true });
      }
      return false;
    }
  }

  function draw() {
    const meta = record.meta_json || {};
    const name = record.name || sha256.slice(0, 12);
    document.title = `${name} · modelshelf`;
    const copies = presentFiles(record).length;
    const base = baseModelOf(record);
    const canEdit = caps.has("PATCH", "/api/models/{sha256}");
    const canDelete = caps.has("DELETE", "/api/models/{sha256}");
    const title = h("div", { class: "model-title" },
      h("h1", { text: name }),
      record.type ? h("span", { class: "badge type", text: record.type }) : null,
      base ? h("span", { class: "badge", text: base }) : null,
      record.missing ? h("span", { class: "badge missing", text: "Missing file" }) : null,
      copies > 1 ? h("span", { class: "badge dup", text: `Duplicate ×${copies}` }) : null,
      h("div", { class: "actions" },
        h("button", { type: "button", id: "edit-button", text: state.editing ? "Cancel editing" : "Edit", disabled: !canEdit, "aria-expanded": String(state.editing),
          title: canEdit ? null : "This server does not offer editing yet", onclick: () => { state.editing = !state.editing; draw(); document.getElementById(state.editing ? "edit-name" : "edit-button")?.focus(); } }),
        h("button", { type: "button", class: "danger", text: "Delete model", disabled: !canDelete, title: canDelete ? null : "This server does not offer deleting models yet", onclick: deleteModel })));
    const left = h("div", {},
      renderGallery(record, { caps, etag, state: state.gallery, onChange: () => refresh({ images: true }) }),
      renderAbout(meta),
      renderMetadata(meta));
    const right = h("div", {},
      state.editing ? renderEditor(record, meta, { change, onDone: () => { state.editing = false; }, redraw: () => { state.editing = false; draw(); document.getElementById("edit-button")?.focus(); } }) : renderFacts(record, base),
      renderTriggerWords(meta),
      renderTags(record, { caps, change }),
      renderLinks(meta),
      renderFiles(record),
      caps.has("GET", "/api/models/{sha256}/history") ? renderHistory(record, { change }) : null);
    clear(main, renderCrumbs(sha256), title, h("div", { class: "model-layout" }, left, right));
  }

  async function deleteModel() {
    const yes = await confirmDialog({
      title: `Delete “${record.name || sha256}”?`,
      body: "Its record, tags and example images are removed from the library. Model files on disk are not touched.",
      confirm: "Delete model",
    });
    if (!yes) return;
    try {
      await call("DELETE", `api/models/${sha256}`, { headers: etag ? { "If-Match": etag } : {} });
      invalidateLibrary();
      toast(`Deleted ${record.name || sha256}`);
      // Back to the library where the person left it; else to it, in place of this page (Back
      // must not lead to the model that is gone).
      if (cameFrom(libraryHref())) history.back();
      else navigate(libraryHref(), { replace: true });
    } catch (error) {
      toast(isUnavailable(error) ? "This server does not offer deleting models yet" : error.message, { error: true });
    }
  }

  try {
    await load();
  } catch (error) {
    if (context.isCurrent()) showError(error);
    return null;
  }
  if (!context.isCurrent()) return null;
  draw();
  focusHeading(main, context.focus);
  // The model after the last of a page of the library is on the next page: fetch it, then
  // offer Next (and J) as for any other.
  neighboursLoaded(sha256).then((loaded) => {
    const crumbs = main.querySelector("nav.crumbs");
    if (loaded && alive && crumbs) crumbs.replaceWith(renderCrumbs(sha256));
  }, () => {});
  // J and K step to the next and previous model of the library as it was shown, as in mail
  // readers and galleries; not while typing, nor over a dialog.
  const stepThroughLibrary = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    const rel = { j: "next", k: "prev" }[event.key];
    const link = rel && main.querySelector(`nav.crumbs a[rel="${rel}"]`);
    if (link) { event.preventDefault(); link.click(); }
  };
  document.addEventListener("keydown", stepThroughLibrary);
  return () => { alive = false; document.removeEventListener("keydown", stepThroughLibrary); };
}

// Back to the library, and the previous and next model of the library as it was shown.
function renderCrumbs(sha256) {
  const { previous, next, index, total } = neighbours(sha256);
  const step = (model, label, rel) => model
    ? h("a", { href: `models/${model.sha256}`, rel, "aria-keyshortcuts": rel === "prev" ? "k" : "j", title: `${label} (${rel === "prev" ? "K" : "J"})`,
      "aria-label": `${label} model: ${model.name || model.sha256.slice(0, 12)}`, text: rel === "prev" ? `‹ ${label}` : `${label} ›` })
    : null;
  return h("nav", { class: "crumbs", "aria-label": "Around this model" },
    h("a", { href: libraryHref(), text: "← Library" }),
    index !== undefined ? h("span", { class: "count", text: ` · ${index + 1} of ${total}` }) : null,
    h("span", { class: "steps" }, step(previous, "Previous", "prev"), step(next, "Next", "next")));
}

function renderFacts(record, base) {
  const files = record.files || [];
  return h("section", { class: "panel", "aria-labelledby": "facts-title" },
    h("h2", { id: "facts-title", text: "Details" }),
    h("dl", { class: "facts" },
      h("dt", { text: "Type" }), h("dd", { text: record.type || "–" }),
      h("dt", { text: "Base model" }), h("dd", { text: base || "–" }),
      h("dt", { text: "Size" }), h("dd", { text: formatBytes(record.size_bytes) }),
      h("dt", { text: "Added" }), h("dd", { text: formatDate(record.created_at) }),
      files.length ? null : [h("dt", { text: "Path" }), h("dd", { class: "mono", text: record.path || "–" })],
      h("dt", { text: "SHA256" }), h("dd", { class: "hash" }, h("code", { id: "sha256", text: record.sha256 }), copyButton(record.sha256, "SHA256")),
      h("dt", { text: "AutoV2" }), h("dd", { class: "hash" }, h("code", { text: autov2(record) }), copyButton(autov2(record), "AutoV2"))));
}

function renderAbout(meta) {
  const description = descriptionOf(meta);
  const notes = typeof meta.notes === "string" ? meta.notes : "";
  const prompts = renderPrompts(meta.prompts);
  if (!description && !notes && !prompts) return null;
  return h("section", { class: "panel", "aria-labelledby": "about-title" },
    h("h2", { id: "about-title", text: "About" }),
    description ? h("div", {}, h("h3", { text: "Description" }), h("p", { class: "prose", text: description })) : null,
    notes ? h("div", {}, h("h3", { text: "Notes" }), h("p", { class: "prose", text: notes })) : null,
    prompts ? h("div", {}, h("h3", { text: "Prompts" }), prompts) : null);
}

function renderMetadata(meta) {
  const fileMeta = meta.file_metadata;
  const facts = trainingFacts(fileMeta);
  const frequency = tagFrequency(fileMeta);
  return h("section", { class: "panel", "aria-labelledby": "meta-title" },
    h("h2", { id: "meta-title", text: "Metadata" }),
    facts.length ? h("div", {}, h("h3", { text: "Training" }), h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]))) : null,
    frequency.length ? h("details", {}, h("summary", { text: `Most frequent training tags (${frequency.length})` }), renderFrequency(frequency)) : null,
    Object.keys(meta).length ? h("details", {}, h("summary", { text: "All metadata (meta_json)" }), jsonTree(meta), copyButton(JSON.stringify(meta, null, 2), "all metadata as JSON", "Metadata"))
      : h("p", { class: "count", text: "No metadata." }));
}

function renderTriggerWords(meta) {
  const words = triggerWords(meta);
  if (!words.length) return null;
  return h("section", { class: "panel trigger-words", "aria-labelledby": "tw-title" },
    h("h2", { id: "tw-title" }, h("span", { text: "Trigger words" }), copyButton(words.join(", "), "all trigger words", "Trigger words")),
    // A click on a word copies it, as on Civitai.
    h("ul", { class: "chips" }, words.map((w) => h("li", {},
      h("button", { type: "button", class: "chip", title: "Copy", "aria-label": `Copy trigger word ${w}`, text: w, onclick: () => copyText(w, `“${w}”`) })))));
}

function renderLinks(meta) {
  const found = links(meta);
  if (!found.length) return null;
  return h("section", { class: "panel", "aria-labelledby": "links-title" },
    h("h2", { id: "links-title", text: "Links" }),
    h("ul", {}, found.map((l) => h("li", {}, h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer", text: l.label })))));
}

function renderFiles(record) {
  const files = record.files;
  if (!files || !files.length) return null;
  const present = files.filter((f) => f.present);
  return h("section", { class: "panel", "aria-labelledby": "files-title" },
    h("h2", { id: "files-title", text: `Files (${files.length})` }),
    present.length > 1 ? note(`The same content is on disk ${present.length} times; ${formatBytes((present.length - 1) * (record.size_bytes || 0))} could be freed.`) : null,
    !present.length ? note("No file of this model is on disk any more.", { error: true }) : null,
    h("ul", { class: "files" }, files.map((f) => h("li", {},
      h("span", { class: f.present ? "badge ok" : "badge missing", text: f.present ? "Present" : "Missing" }),
      h("code", { text: f.path }), copyButton(f.path, `path ${f.path}`, "Path")))));
}

function renderTags(record, { caps, change }) {
  const canEdit = caps.has("PUT", "/api/models/{sha256}/tags");
  const names = (record.tags || []).map((t) => t.name);
  const panel = h("section", { class: "panel", "aria-labelledby": "tags-title" }, h("h2", { id: "tags-title", text: "Tags" }));
  if (!canEdit) {
    panel.append(h("ul", { class: "chips" }, names.map((n) => h("li", {}, h("a", { class: "chip", href: `./?tag=${encodeURIComponent(n)}`, text: n })))),
      note("This server does not offer tag editing yet."));
    return panel;
  }
  const save = (next) => change("PUT", `api/models/${record.sha256}/tags`, { tags: next }, "Tags saved");
  const input = h("input", { id: "tag-add", list: "tag-suggestions", autocomplete: "off", placeholder: "Add a tag", "aria-label": "Add a tag" });
  const suggestions = h("datalist", { id: "tag-suggestions" });
  get("api/tags").then((data) => suggestions.append(...data.tags.slice(0, 2000).map((t) => h("option", { value: t.name }))), () => {});
  const add = () => {
    const fresh = input.value.split(",").map((s) => s.trim().toLowerCase()).filter((s) => s && !names.includes(s));
    input.value = "";
    if (fresh.length) save([...names, ...fresh]);
  };
  const chips = h("ul", { class: "chips" }, names.map((n) => h("li", { class: "chip" },
    h("a", { href: `./?tag=${encodeURIComponent(n)}`, text: n }),
    h("button", { type: "button", "aria-label": `Remove tag ${n}`, text: "×", onclick: () => save(names.filter((x) => x !== n)) }))));
  // Backspace in the empty field marks the last tag, and a second Backspace removes it (as
  // token fields do): one key alone would save a removal nobody meant.
  let armed = false;
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === ",") { event.preventDefault(); add(); }
    if (event.key === "Backspace" && !input.value && names.length) {
      if (armed) return save(names.slice(0, -1));
      armed = true;
      chips.lastElementChild.classList.add("armed");
      return toast(`Press Backspace again to remove the tag “${names[names.length - 1]}”`);
    }
    if (armed) {
      armed = false;
      chips.lastElementChild.classList.remove("armed");
    }
  });
  input.addEventListener("change", () => { if (input.value.trim()) add(); });
  panel.append(h("div", { class: "tag-editor" }, chips, input, suggestions));
  return panel;
}

function renderEditor(record, meta, { change, onDone, redraw }) {
  const words = triggerWords({ trigger_words: meta.trigger_words });
  const field = (id, label, control, hint) => h("div", { class: "field" }, h("label", { for: id, text: label }), hint ? h("span", { class: "hint", text: hint }) : null, control);
  const name = h("input", { id: "edit-name", value: record.name || "", required: true });
  const type = h("input", { id: "edit-type", value: record.type || "", list: "edit-types" });
  const types = h("datalist", { id: "edit-types" });
  get("api/models/get_types").then((d) => types.append(...d.types.map((t) => h("option", { value: t }))), () => {});
  const base = h("input", { id: "edit-base", value: typeof meta.base_model === "string" ? meta.base_model : "" });
  const trigger = h("input", { id: "edit-trigger", value: words.join(", ") });
  const description = h("textarea", { id: "edit-description", rows: "5" });
  description.value = typeof meta.description === "string" ? meta.description : "";
  const notes = h("textarea", { id: "edit-notes", rows: "4" });
  notes.value = typeof meta.notes === "string" ? meta.notes : "";
  const form = h("form", { class: "panel", "aria-labelledby": "edit-title" },
    h("h2", { id: "edit-title", text: "Edit model" }),
    field("edit-name", "Name", name), field("edit-type", "Type", type), types,
    field("edit-base", "Base model", base), field("edit-trigger", "Trigger words", trigger, "Separated by commas"),
    field("edit-description", "Description", description), field("edit-notes", "Notes", notes),
    h("div", { class: "row-actions" }, h("button", { type: "submit", class: "primary", text: "Save" })));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { event.preventDefault(); redraw(); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    if (name.value.trim() !== (record.name || "")) body.name = name.value.trim();
    if (type.value.trim() !== (record.type || "")) body.type = type.value.trim();
    const patch = {};
    const text = (key, value) => { if (value !== (typeof meta[key] === "string" ? meta[key] : "")) patch[key] = value || null; };
    text("base_model", base.value.trim());
    text("description", description.value);
    text("notes", notes.value);
    const newWords = trigger.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (newWords.join("\n") !== words.join("\n")) patch.trigger_words = newWords.length ? newWords : null;
    if (Object.keys(patch).length) body.meta_json = patch;
    if (!Object.keys(body).length) { toast("Nothing changed"); return redraw(); }
    onDone();
    const ok = await change("PATCH", `api/models/${record.sha256}`, body, "Saved");
    if (ok) document.getElementById("edit-button")?.focus();
  });
  return form;
}

