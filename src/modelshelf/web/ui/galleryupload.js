// A model's gallery's uploads (see gallery.js): images dropped anywhere on the model's page
// or chosen, each in turn with its progress, and those refused listed with the reason.
import { h, clear, toast, plural, holdThePage } from "./dom.js";
import { uploadImage, ApiError, changedSince } from "./api.js";
import { forgetPictures } from "./gallerymoves.js";
import { CHANGED_ELSEWHERE } from "./editor.js";

// An upload refused because the model changed since the page read it (412), in the person's
// words (the server's named If-Match).
const changedElsewhere = CHANGED_ELSEWHERE[0].toLowerCase() + CHANGED_ELSEWHERE.slice(1);

// Files refused stay listed, each with the server's whole reason, until the next upload or
// Dismiss. The list is a live region, and the toast counts both. The zone is made once for
// the page and kept in the gallery's state: the page is drawn anew after each of its writes
// (the uploads' own, a tag, a move), and a zone made again showed an empty list while the
// files after it were still going, their progress and the reasons of those refused unseen.
export function renderUpload(record, deps) {
  return deps.state.uploadZone || (deps.state.uploadZone = makeUpload(record, deps));
}

function makeUpload(record, { queued, reread, etag, changedElsewhere: readAgain, state, onChange }) {
  const input = h("input", { type: "file", id: "upload-input", accept: "image/*", multiple: true, class: "visually-hidden" });
  const list = h("ul", { class: "uploads", "aria-label": "Uploads", "aria-live": "polite" });
  const failures = [];
  const failedRow = (failure) => h("li", { class: "failed" },
    h("span", { text: failure.name }), h("span", { class: "reason", text: `Not added: ${failure.reason}` }));
  const dismiss = h("button", { type: "button", class: "small", text: "Dismiss", hidden: true,
    onclick: () => { failures.length = 0; clear(list); dismiss.hidden = true; input.focus(); } });
  const zone = h("div", { class: "dropzone" },
    h("span", { text: "Drop images here, or " }),
    h("label", { for: "upload-input", class: "button", text: "Choose images" }),
    input, list, dismiss);
  // Each file in turn, its progress in the list, until none is left (files chosen meanwhile
  // join `batch.files`); counts those added.
  const uploadEach = async (batch) => {
    while (batch.files.length) {
      const file = batch.files.shift();
      const bar = h("progress", { max: "1", value: "0", "aria-label": `Uploading ${file.name}` });
      const row = h("li", {}, h("span", { text: file.name }), bar);
      list.append(row);
      try {
        // An upload is one of the page's writes: an image added changes the model's ETag, and
        // a tag or an edit saved meanwhile with the one before met the page's own 412 (said
        // as a change made elsewhere, not saved). So it waits its turn, and the ETag is read
        // again before the next write.
        // With the record's ETag as If-Match: a model changed elsewhere since the page read
        // it (the images reordered in another tab) is met by a 412, and the page then shows
        // it anew; added regardless, the gallery kept each <img> at the place the page knew,
        // showing a picture other than the one there now (and deleted). Reading the model
        // first left the moment between that read and the upload open.
        // The model read after it at another version than the upload's answer left was
        // changed elsewhere in between (another client's reorder): the pictures are forgotten,
        // or each was kept where the page knew it. The redraw after the uploads compares its
        // read with this one, for a change made elsewhere after it.
        await queued(async () => {
          const { left } = await sendAgainIfOnlyOthersChanged(() => uploadImage(record.sha256, file, (p) => { bar.value = p; }, etag()), readAgain);
          state.order?.push(Symbol("picture")); // added last
          const read = await reread().catch(() => null);
          if (read && changedSince(left, read)) forgetPictures(state);
          batch.left = read || left;
        });
        bar.value = 1;
        batch.added += 1;
      } catch (error) {
        const stale = error instanceof ApiError && error.status === 412;
        const failure = { name: file.name, reason: stale ? changedElsewhere : error.message };
        failures.push(failure);
        row.replaceWith(failedRow(failure));
        dismiss.hidden = false;
        // The current version is shown, its pictures where they are now; the files after
        // this one go to that version.
        if (stale) {
          batch.left = null; // read again and drawn: the redraw after has nothing to compare
          await showChangedElsewhere(state, onChange);
        }
      }
    }
  };
  // The files under way. Images chosen or dropped while others upload join them, after them:
  // a choice made meanwhile cleared the list of the files still going, its images went in
  // between theirs, and each choice was summed up apart.
  let running = null;
  const start = async (files) => {
    const images = [...files].filter((f) => f.type.startsWith("image/") || /\.(png|jpe?g|webp|gif|avif|tiff?)$/i.test(f.name));
    if (!images.length) return toast("Those files are not images", { error: true });
    const skipped = files.length - images.length;
    if (running) {
      running.files.push(...images);
      running.skipped += skipped;
      return;
    }
    failures.length = 0;
    clear(list);
    dismiss.hidden = true;
    // `left`: the model's versions as read after the last upload added.
    const batch = running = { files: [...images], added: 0, skipped, left: null };
    // Closing the page meanwhile would drop the files not sent yet without a word.
    holdThePage(1);
    try {
      await uploadEach(batch);
    } finally {
      holdThePage(-1);
      running = null;
    }
    const { added } = batch;
    if (added) await onChange({ left: batch.left });
    const failed = failures.length;
    const summary = `${added ? `${plural(added, "image")} added` : "No image added"}${failed ? `, ${failed} failed` : ""}${batch.skipped ? `; ${plural(batch.skipped, "file")} skipped, not images` : ""}`;
    toast(summary, { error: failed > 0 });
  };
  // The choice is taken and the field emptied: the same file chosen again (after a 412, or
  // any failure) made no change event, and nothing happened.
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    start(files);
  });
  zone.startUpload = start;
  return zone;
}

// `send()` once more, with the ETag read again, when its 412 came from a change elsewhere
// that left the pictures where they were (a tag, the name): the If-Match of an upload guards
// the places the gallery knows, and a tag added in another tab made the person choose the
// file again. A refusal that stands is thrown.
async function sendAgainIfOnlyOthersChanged(send, readAgain) {
  try {
    return await send();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 412) || !readAgain || await readAgain()) throw error;
    return send();
  }
}

async function showChangedElsewhere(state, onChange) {
  forgetPictures(state);
  await onChange();
}

// Images dragged from the desktop are taken anywhere on a model's page, by its gallery's drop
// zone: only the gallery's panel took them, and let go beside it (on the Details beside it,
// in a margin) they were not added and the browser opened the file in place of the page.
// Elsewhere (no gallery on the page) the browser does as it does.
const galleryZone = () => document.querySelector(".gallery .dropzone");
const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragover", (event) => {
  const zone = galleryZone();
  if (!zone || !hasFiles(event)) return;
  event.preventDefault();
  zone.classList.add("over");
});
document.addEventListener("dragleave", (event) => {
  if (!event.relatedTarget) galleryZone()?.classList.remove("over"); // left the window
});
document.addEventListener("drop", (event) => {
  const zone = galleryZone();
  if (!zone || !hasFiles(event)) return;
  event.preventDefault();
  zone.classList.remove("over");
  // Not behind a dialog (the page there is inert): the person sees where they drop.
  if (!document.querySelector("dialog[open]")) zone.startUpload(event.dataTransfer.files);
});
