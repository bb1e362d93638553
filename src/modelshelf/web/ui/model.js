// One model: gallery, facts (SHA256 and AutoV2 to copy), trigger words, tags, links, readable
// metadata, files and duplicates, history with restore; edit and delete. Every change sends the
// record's ETag as If-Match, so an edit made elsewhere in the meantime is never overwritten.
import { h, clear, toast, confirmDialog, note, showBusy, plural, spelledOut } from "./dom.js";
import { call, get, capabilities, ApiError, isUnavailable, setImageVersion, seeImages, changedSince, refusedCharacters } from "./api.js";
import { renderGallery, forgetPictures } from "./gallery.js";
import { baseModelOf, presentFiles } from "./grid.js";
import { renderFacts, renderAbout, renderMetadata, renderTriggerWords, renderLinks, renderFiles } from "./modelpanels.js";
import { navigate, focusHeading, cameFrom, tryAgain, returnToPlace } from "./router.js";
import { invalidateLibrary, libraryHref, neighbours, neighboursLoaded } from "./library.js";
import { renderHistory, historyPath, newestDelete } from "./history.js";
import { renderTags, renderEditor, unsavedFields, drafts, CHANGED_ELSEWHERE } from "./editor.js";

export async function mountModel(main, sha256, context) {
  // A SHA256 pasted as Civitai shows it (upper case) is the model's too: its page's address
  // takes the library's spelling, so that Back, J and K and the grid all know it.
  if (/^[0-9a-fA-F]{64}$/.test(sha256) && sha256 !== sha256.toLowerCase()) {
    navigate(`models/${sha256.toLowerCase()}`, { replace: true });
    return null;
  }
  const caps = await capabilities();
  // `draft`: the editor's fields the person changed (kept over any redraw, a 412 included);
  // `tagDraft`: what is typed in "Add a tag"; `tagsSaving`: tags added but not saved yet;
  // `focusNext`: where focus goes when the element that had it is gone after a change.
  const state = { gallery: { index: 0 }, editing: false, saving: false, draft: {}, tagDraft: "", tagsSaving: [], focusNext: null, focusLater: null, deleting: false };
  let record = null;
  let etag = null;
  // The version of the images alone (see showChangedElsewhere); null from a server without it.
  let imagesVersion = null;
  let alive = true;

  async function load() {
    const response = await call("GET", `api/models/${encodeURIComponent(sha256)}`, { raw: true });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new ApiError(response.status, body);
    etag = response.headers.get("ETag");
    imagesVersion = response.headers.get("Images-Version");
    record = body;
    // Every read: a change of the pictures made elsewhere is seen on coming back too.
    if (imagesVersion) seeImages(sha256, imagesVersion);
  }

  // Read the model again and draw it; `images`: they may have changed (their URLs then take
  // the new version, see imageUrl: Images-Version, read by load; the ETag from a server
  // without it; other edits keep them, so nothing is fetched again).
  // `known`: the pictures as the page knew them; if they moved, the gallery forgets them.
  // `left`: the versions the page's own write answered with (its reorder's, delete's or
  // upload's ETag and Images-Version): read back as another, the model changed elsewhere
  // between that answer and this read, and the pictures may not be where the write put them
  // (another client's reorder): forgotten too, or each kept showing the picture the page's
  // write had put there.
  async function refresh({ images = false, known = null, left = null } = {}) {
    invalidateLibrary();
    const focusedId = document.activeElement && document.activeElement.id;
    const y = window.scrollY;
    try {
      await load();
    } catch (error) {
      return showError(error);
    }
    if (images && !imagesVersion) setImageVersion(sha256, etag);
    const moved = (Boolean(known) && !(known.version && known.version === imagesVersion && known.names === picturesOf(record)))
      || changedSince(left, { etag, images: imagesVersion });
    if (moved) forgetPictures(state.gallery);
    if (!alive) return moved;
    draw();
    window.scrollTo(0, y);
    restoreFocus(focusedId);
    return moved;
  }

  // The model as changed elsewhere (a write met a 412): if its pictures moved (an image's
  // name is its place: the same names with another images' version), the gallery's gestures
  // still waiting must not take another picture for theirs, and are dropped. A change of the
  // tags or the name alone keeps them: they are sent after, with the new ETag (all were
  // dropped, and a person who moved three pictures lost two to a tag added in another tab).
  // Resolves whether the pictures moved (true also when the model could not be read).
  function showChangedElsewhere() {
    return refresh({ images: true, known: { names: picturesOf(record), version: imagesVersion } }).then((moved) => moved !== false);
  }

  // Focus goes back to the element that had it, drawn anew; when that one is gone (a removed
  // tag, a restored version), to the first of the places the action named that exists, or,
  // for the history (listed after the draw), once the list is there.
  function restoreFocus(focusedId) {
    const wanted = focusedId ? [`#${CSS.escape(focusedId)}`] : [];
    const next = state.focusNext;
    if (next && next.from === focusedId) wanted.push(...next.to);
    // `listed`: the places are in the history, which is listed after the draw.
    if (!(next && next.listed) && focusFirst(wanted)) {
      if (next && next.from === focusedId && !document.getElementById(focusedId)) state.focusNext = null;
      return;
    }
    if (next && next.from === focusedId) state.focusNext = null;
    state.focusLater = wanted.length ? wanted : null;
  }

  function focusLaterIfStill() {
    const wanted = state.focusLater;
    if (!wanted || (document.activeElement && document.activeElement !== document.body)) return;
    if (focusFirst(wanted)) state.focusLater = null;
  }

  // A model that is not there. One that was deleted still has its history, from which it
  // can be restored.
  function showError(error) {
    const missing = error instanceof ApiError && (error.status === 404 || error.status === 400);
    document.title = "Model not found · modelshelf";
    const hasHistory = missing && caps.has("GET", "/api/models/{sha256}/history") && /^[0-9a-f]{64}$/.test(sha256);
    clear(main, h("p", { class: "crumbs" }, h("a", { href: libraryHref(), text: "← Library" })),
      h("h1", { text: missing ? "No such model" : "The model could not be loaded" }),
      note(missing ? `No model has the SHA256 ${sha256}.` : error.message, { error: !missing }),
      missing ? null : tryAgain(),
      hasHistory ? renderDeletedHistory() : null);
  }

  function renderDeletedHistory() {
    const panel = renderHistory({ sha256, deleted: true }, { change, state, onListed: focusLaterIfStill });
    panel.hidden = true;
    // Shown only when there is a history (a model deleted from the library).
    get(historyPath(sha256, { limit: 1 })).then((data) => {
      if (data.entries && data.entries.length) {
        panel.before(note("It was deleted; an earlier version can be restored from its history."));
        panel.hidden = false;
      }
    }, () => {});
    return panel;
  }

  // The page's own writes of this model run one after another, each with the ETag the write
  // before it left: sent side by side, the second carried the same ETag as the first, met a
  // 412 caused by this very page and was reported as a change made elsewhere (its edit lost).
  let writes = Promise.resolve();
  function queued(task) {
    const run = writes.then(task);
    writes = run.catch(() => {});
    return run;
  }

  // Sends a change with If-Match once the page's earlier writes are done; `body` may be a
  // function of the record as it is then. Resolves "ok", "conflict" (412: changed elsewhere;
  // the page shows the current version and says `conflict`) or "failed" (said in a toast).
  function change(method, path, body, done, { conflict = CHANGED_ELSEWHERE } = {}) {
    return queued(async () => {
      let payload = null;
      try {
        payload = typeof body === "function" ? body(record) : body;
        await call(method, path, { body: payload, headers: etag ? { "If-Match": etag } : {} });
        await refresh();
        if (done) toast(done);
        return "ok";
      } catch (error) {
        if (error instanceof ApiError && error.status === 412) {
          toast(conflict, { error: true });
          await showChangedElsewhere();
          return "conflict";
        }
        toast(failureOf(error, payload), { error: true });
        return "failed";
      }
    });
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
          title: canEdit ? null : "This server does not offer editing yet", onclick: () => (state.editing ? cancelEditing() : toggleEditor(true)) }),
        deleting(h("button", { type: "button", id: "delete-model", class: "danger", text: "Delete model", disabled: !canDelete, title: canDelete ? null : "This server does not offer deleting models yet", onclick: deleteModel }))));
    const left = h("div", {},
      renderGallery(record, { caps, etag: () => etag, current: () => record, queued, reread: () => load().then(() => ({ etag, images: imagesVersion })), changedElsewhere: showChangedElsewhere, state: state.gallery, onChange: (written = {}) => refresh({ images: true, left: written.left }) }),
      renderAbout(meta),
      renderMetadata(meta));
    const right = h("div", {},
      state.editing ? renderEditor(record, meta, { change, state, close: () => toggleEditor(false), cancel: cancelEditing, limits: caps.limits }) : renderFacts(record, base),
      renderTriggerWords(meta),
      renderTags(record, { caps, change, state }),
      renderLinks(meta),
      renderFiles(record),
      caps.has("GET", "/api/models/{sha256}/history") ? renderHistory(record, { change, state, onListed: focusLaterIfStill }) : null);
    clear(main, renderCrumbs(sha256), title, h("div", { class: "model-layout" }, left, right));
  }

  // Opens or closes the editor; closing it (a save, or a cancel the person confirmed) forgets
  // what was typed.
  function toggleEditor(open) {
    if (state.saving) return;
    state.editing = open;
    state.draft = {};
    if (open) drafts.set(sha256, state.draft);
    else drafts.delete(sha256);
    // A save answered after the page was left closes its editor, and draws nothing: another
    // page is shown (the model was drawn over it).
    if (!alive) return;
    draw();
    document.getElementById(open ? "edit-name" : "edit-button")?.focus();
  }

  // Cancel editing or Escape: what was typed is dropped only once the person says so.
  async function cancelEditing() {
    if (state.saving) return;
    const unsaved = unsavedFields(state.draft, record);
    if (unsaved) {
      const yes = await confirmDialog({ title: "Drop your changes?", body: `What you typed in ${unsaved} is not saved.`, confirm: "Drop changes" });
      if (!yes || !alive || !state.editing) return;
    }
    toggleEditor(false);
  }

  // While the delete runs, its button says so and another click asks nothing: on a slow server
  // nothing showed, a second click asked again and its delete met a 404 ("No such model").
  function deleting(button = document.getElementById("delete-model")) {
    if (button && state.deleting !== (button.getAttribute("aria-busy") === "true")) showBusy(button, state.deleting ? "Deleting…" : null);
    return button;
  }

  async function deleteModel() {
    if (state.deleting) return;
    const yes = await confirmDialog({
      title: `Delete “${record.name || sha256}”?`,
      body: `Its record, tags and ${plural((record.images || []).length, "example image")} are removed from the library. Undo brings back the record and tags, not the images. Model files on disk are not touched.`,
      confirm: "Delete model",
    });
    if (!yes || state.deleting || !alive) return;
    state.deleting = true;
    deleting();
    try {
      // After the page's other writes, with the ETag they left (see queued).
      await queued(() => call("DELETE", `api/models/${sha256}`, { headers: etag ? { "If-Match": etag } : {} }));
      invalidateLibrary();
      // An edit left open goes with the model (an Undo brings the model back, not the edit).
      state.editing = false;
      drafts.delete(sha256);
      const name = record.name || sha256;
      toast(`Deleted ${name}`, { action: { label: "Undo", run: () => undoDelete(sha256, name) } });
      // Back to the library where the person left it; else to it, in place of this page (Back
      // must not lead to the model that is gone).
      if (cameFrom(libraryHref())) history.back();
      else navigate(libraryHref(), { replace: true });
    } catch (error) {
      // Only a failure frees the button: a delete done leaves it busy while the page goes.
      state.deleting = false;
      // Changed in another tab since it was shown (412): that version is shown, to be looked
      // at before deleting it. Left as it was, the page sent its old ETag again at every try.
      if (error instanceof ApiError && error.status === 412) {
        toast(`${CHANGED_ELSEWHERE}. Nothing was deleted: look it over, then delete it if you still mean to.`, { error: true });
        return showChangedElsewhere();
      }
      toast(isUnavailable(error) ? "This server does not offer deleting models yet" : error.message, { error: true });
      if (alive) deleting();
    }
  }

  try {
    await load();
  } catch (error) {
    if (context.isCurrent()) showError(error);
    return null;
  }
  if (!context.isCurrent()) return null;
  // Back to a model whose edit was left unsaved: the editor is open with it, and says so.
  const kept = drafts.get(sha256);
  if (kept && unsavedFields(kept, record)) {
    Object.assign(state, { editing: true, draft: kept });
    toast(`Your unsaved changes (${unsavedFields(kept, record)}) are back in the editor`);
  } else {
    drafts.delete(sha256);
  }
  draw();
  if (context.focus) focusHeading(main, true);
  else returnToPlace(main);
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
    if (!link) return;
    event.preventDefault();
    // Taken as the link would be from the keyboard: Back returns to it (see saveScroll), not
    // to a page with the focus on nothing.
    link.focus({ preventScroll: true });
    link.click();
  };
  document.addEventListener("keydown", stepThroughLibrary);
  return () => {
    alive = false;
    document.removeEventListener("keydown", stepThroughLibrary);
    // Left with the edit unsaved: said on the next page, with the way back to it. A save on
    // its way says itself how it went (Saved, or Not saved with the edit kept for the return).
    const unsaved = state.editing && !state.saving && record && unsavedFields(state.draft, record);
    if (unsaved) toast(`Your changes to ${record.name || sha256.slice(0, 12)} are not saved; they are kept for when you come back`, { action: { label: "Back to it", run: () => navigate(`models/${sha256}`) } });
  };
}

// A failed write in words: the server's reason, or that it could not be reached (fetch's own
// TypeError says only "Failed to fetch"). Each refused tag is named as typed: the API names it
// by its place in the list sent ("tags.2: …; tags.4: …"), which the person never saw.
function failureOf(error, payload) {
  if (isUnavailable(error)) return "This server does not offer that change yet";
  if (error instanceof ApiError) return `Not saved: ${error.message.split(/; (?=[\w.]+: )/).map((part) => tagNamed(part, payload)).join("; ")}`;
  return "Not saved: the server could not be reached";
}

// One part of a refusal ("tags.2: needs…") said of the tag at that place in `payload`.
function tagNamed(part, payload) {
  const place = /^tags\.(\d+): (.*)$/s.exec(part);
  const tag = place && payload?.tags?.[Number(place[1])];
  return typeof tag === "string" ? `the tag “${spelledOut(tag, refusedCharacters())}” ${place[2]}` : part;
}

// The images' names, in order, as one string to compare.
const picturesOf = (record) => (record.images || []).join("\n");

// Focuses the first enabled element the selectors find; true when one took focus.
function focusFirst(selectors) {
  for (const selector of selectors) {
    const el = document.querySelector(selector);
    if (el && !el.disabled) {
      el.focus({ preventScroll: true });
      if (document.activeElement === el) return true;
    }
  }
  return false;
}

// Puts a deleted model back from the history entry its delete wrote, then opens it.
async function undoDelete(sha256, name) {
  try {
    const entry = await newestDelete(sha256);
    if (!entry) throw new Error("its history holds no delete");
    await call("POST", `api/models/${sha256}/history/${entry.id}/restore`);
    invalidateLibrary();
    toast(`Restored ${name}, without its images`);
    navigate(`models/${sha256}`);
  } catch (error) {
    toast(`Could not restore ${name}: ${error.message}`, { error: true });
  }
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
