// A model's example images: the stage (medium, or high when drawn larger), thumbnails (low), the lightbox (high) with
// arrow keys and Escape; reorder by drag and drop, Alt+arrow keys or a position typed; set as
// cover; delete with confirmation; upload (galleryupload.js).
import { h, clear, toast, confirmDialog, note } from "./dom.js";
import { call, imageUrl, ApiError } from "./api.js";
import { CHANGED_ELSEWHERE } from "./editor.js";
import { renderUpload } from "./galleryupload.js";

// A write refused because the model changed since it was shown (412; for a reorder, 409:
// images added or removed meanwhile), in the person's words: the page then shows that
// version (the server's words named If-Match).
const stale = (error, ...statuses) => error instanceof ApiError && statuses.includes(error.status);
const changedElsewhere = CHANGED_ELSEWHERE[0].toLowerCase() + CHANGED_ELSEWHERE.slice(1);
// A move whose picture the page no longer knows (see forgetPictures).
const GONE = Symbol("gone");

// The stage shows the medium rendition (two thirds of the source's size); when the stage
// draws it larger than its pixels (a small source, a wide stage, a dense screen), the high one
// takes its place once loaded, so the image is not shown blurred.
function sharpen(img, name) {
  const scale = Math.min(img.clientWidth / img.naturalWidth, img.clientHeight / img.naturalHeight);
  if (!(scale * (window.devicePixelRatio || 1) > 1.15)) return;
  const high = new Image();
  high.onload = () => { if (img.isConnected) img.src = high.src; };
  high.src = imageUrl(name, "high");
}

// A change made elsewhere (a 412 met by any of the page's writes, a tag save as well) may have
// moved pictures: an image's name is its place, so the page can no longer tell which picture
// is where, and its tokens are forgotten. A gesture made before and still waiting its turn
// then finds its token gone and is dropped, said (it moved or deleted the picture the change
// had put in its place).
export function forgetPictures(state) {
  state.order = null;
}

// `queued(task)`: runs the task after the page's other writes of this model, and `etag()`
// is the record's ETag then (a reorder sent beside a tag change met the page's own 412);
// `reread()` reads the record and its ETag again without drawing it, and `current()` is the
// record as last read.
export function renderGallery(record, { caps, etag, current, queued, reread, state, onChange }) {
  const images = record.images || [];
  const name = record.name || "this model";
  const canReorder = caps.has("POST", "/api/images/reorder");
  state.index = Math.min(state.index || 0, Math.max(0, images.length - 1));
  // `state.order`: a token for each picture, in the server's order as far as this page knows
  // (its own moves, deletes and uploads applied as they are answered); `shown`: the tokens of
  // the strip drawn here. A gesture names its picture by token, not by its place.
  if (!state.order || state.order.length !== images.length) state.order = images.map(() => Symbol("picture"));
  const shown = [...state.order];
  const panel = h("section", { class: "panel gallery", "aria-labelledby": "gallery-title" });
  const title = h("h2", { id: "gallery-title" }, h("span", { text: `Images (${images.length})` }));
  const stage = h("div", { class: images.length ? "stage" : "stage no-images" });
  const thumbs = h("ul", { class: "thumbs", "aria-label": "Example images" + (canReorder ? "; Alt+arrow keys move an image" : "") });
  const actions = h("div", { class: "image-actions" });
  const alt = (i) => `Example image ${i + 1} of ${images.length} of ${name}`;

  function select(i, { focus = false } = {}) {
    state.index = Math.max(0, Math.min(images.length - 1, i));
    clear(stage);
    if (!images.length) {
      stage.append(h("div", { class: "placeholder", text: "No images yet" }));
    } else {
      const current = images[state.index];
      const img = stageImage(state, shown[state.index], current, alt(state.index));
      stage.append(h("button", { type: "button", class: "open", "aria-label": `Open image ${state.index + 1} large`, onclick: () => openLightbox(state.index) }, img));
    }
    thumbs.querySelectorAll(".thumb").forEach((b, j) => {
      b.setAttribute("aria-current", String(j === state.index));
      b.tabIndex = j === state.index ? 0 : -1;
      if (focus && j === state.index) focusSoon(b);
    });
    renderActions();
  }

  function renderActions() {
    clear(actions);
    if (!images.length) return;
    const i = state.index;
    actions.append(
      h("button", { type: "button", text: "View large", onclick: () => openLightbox(i) }),
      h("button", { type: "button", text: "Set as cover", disabled: !canReorder || i === 0, onclick: () => move(shown[i], 0) }),
      h("button", { type: "button", text: "Move earlier", disabled: !canReorder || i === 0, onclick: () => move(shown[i], 0, { step: -1, button: "Move earlier" }) }),
      h("button", { type: "button", text: "Move later", disabled: !canReorder || i === images.length - 1, onclick: () => move(shown[i], 0, { step: 1, button: "Move later" }) }),
      h("button", { type: "button", class: "danger", text: "Delete image", onclick: () => remove(i) }),
      canReorder && images.length > 2 ? moveToForm(i) : null);
  }

  // A place typed: the keys move an image one place a press, each a save and the page drawn
  // anew (the 250th image of 300 to the second place took 248 presses; a drag needs a mouse).
  function moveToForm(i) {
    const field = h("input", { type: "number", id: "image-position", min: "1", max: String(images.length), step: "1", value: String(i + 1), required: true });
    const submit = (event) => {
      event.preventDefault();
      const to = Number(field.value) - 1;
      if (!Number.isInteger(to) || to < 0 || to >= images.length) return field.reportValidity();
      move(shown[i], to);
    };
    return h("form", { class: "move-to", onsubmit: submit },
      h("label", { for: "image-position", text: "Move to position" }), field, h("button", { type: "submit", text: "Move" }));
  }

  // Moves the picture `picture` (its token, see `shown`) to place `to`, or `step` places on
  // from where it is when the move is sent, after the page's earlier writes. Worked out from
  // the order shown, a move made while another was on its way (keys pressed faster than the
  // server answered, a drag, Set as cover) moved the picture the first move had put in that
  // place (an image's name is its place).
  // `button`: the action pressed, which keeps the focus for the next press while it can.
  async function move(picture, to, { step = 0, button = null } = {}) {
    try {
      const place = await queued(async () => {
        const now = [...(current().images || [])];
        const order = state.order || [];
        const at = order.indexOf(picture);
        const target = step ? at + step : to;
        // Gone: the page was drawn anew after a change elsewhere (see forgetPictures).
        if (at < 0 || order.length !== now.length) return GONE;
        if (target === at || target < 0 || target >= now.length) return null;
        now.splice(target, 0, ...now.splice(at, 1));
        const version = etag();
        await call("POST", "api/images/reorder", { body: { hash: record.sha256, order: now }, headers: version ? { "If-Match": version } : {} });
        order.splice(target, 0, ...order.splice(at, 1));
        state.index = target;
        state.focusThumb = true;
        state.focusAction = button;
        // Announced once the strip is redrawn, so whoever acts on the news acts on the new order.
        await onChange();
        return target;
      });
      if (place === GONE) {
        toast("Could not move the image: the images changed before the move was sent; nothing was moved, choose the image again", { error: true });
        state.focusThumb = true;
        onChange();
      } else if (place !== null) toast(place === 0 ? "Cover changed" : `Image moved to position ${place + 1}`);
    } catch (error) {
      const changed = stale(error, 409, 412);
      toast(`Could not reorder: ${changed ? changedElsewhere : error.message}`, { error: true });
      if (!changed) return;
      state.order = null; // the places the page knew are not the server's any more
      // The image that had focus is drawn anew: it keeps it (it fell to the page's body).
      state.focusThumb = true;
      onChange();
    }
  }

  // An image's name is its place: a move or delete of this page's own still on its way when
  // Delete was chosen gave the name to another picture, which was deleted. The delete names
  // the picture by its token and is sent for the place it has then; a reorder made elsewhere
  // meanwhile is met by the record's ETag (the server answers 412).
  async function remove(i) {
    const picture = shown[i];
    // The cover is what the library's card shows: said before and after (it was "Delete
    // image 1?", as for any image).
    const cover = i === 0;
    const yes = await confirmDialog(cover
      ? { title: "Delete the cover?", body: images.length > 1 ? "Image 2 becomes the cover; later images move up by one." : "The model is left with no image.", confirm: "Delete image" }
      : { title: `Delete image ${i + 1}?`, body: "The image is removed from this model; later images move up by one.", confirm: "Delete image" });
    if (!yes) return;
    try {
      const done = await queued(async () => {
        const order = state.order || [];
        const at = order.indexOf(picture);
        const names = current().images || [];
        if (at < 0 || order.length !== names.length) return false;
        const version = etag();
        await call("DELETE", `api/images/${encodeURIComponent(names[at])}`, { headers: version ? { "If-Match": version } : {} });
        order.splice(at, 1);
        state.index = Math.max(0, at - 1);
        // The Delete image button that had focus is drawn anew: focus goes to the image shown
        // now, or to the file picker when none is left (it went to the page's body).
        state.focusThumb = true;
        await onChange();
        return at === 0 && (current().images || []).length ? "cover" : "image";
      });
      if (done) return toast(done === "cover" ? "Cover deleted; the next image is the cover now" : "Image deleted");
      toast("Could not delete the image: the images changed before the delete was sent; nothing was deleted, choose the image again", { error: true });
      state.focusThumb = true;
      onChange();
    } catch (error) {
      toast(`Could not delete the image: ${stale(error, 412) ? changedElsewhere : error.message}`, { error: true });
      if (!stale(error, 404, 412)) return;
      state.order = null;
      state.focusThumb = true;
      onChange();
    }
  }

  function openLightbox(start) {
    const opener = document.activeElement;
    let i = start;
    const img = h("img", { alt: "" });
    // Said as the arrow keys step (the focus stays where it was, and a reader said nothing).
    const caption = h("figcaption", { "aria-live": "polite" });
    const show = () => {
      img.src = imageUrl(images[i], "high");
      img.alt = alt(i);
      caption.textContent = `${i + 1} / ${images.length} · ${name}`;
    };
    const step = (d) => { i = (i + d + images.length) % images.length; show(); };
    const dialog = h("dialog", { class: "lightbox", "aria-label": `Images of ${name}` },
      h("figure", {}, img, caption),
      images.length > 1 ? h("button", { type: "button", class: "nav prev", "aria-label": "Previous image", text: "‹", onclick: () => step(-1) }) : null,
      images.length > 1 ? h("button", { type: "button", class: "nav next", "aria-label": "Next image", text: "›", onclick: () => step(1) }) : null,
      h("button", { type: "button", class: "close", text: "Close", onclick: () => dialog.close() }));
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
      if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      select(i);
      // The stage was redrawn for the image last shown; focus goes back to it.
      if (opener && opener.isConnected) opener.focus();
      else stage.querySelector("button")?.focus();
    });
    show();
    document.body.append(dialog);
    dialog.showModal();
  }

  const kept = state.thumbImages || new Map();
  state.thumbImages = new Map();
  images.forEach((image, i) => {
    const img = keptImage(kept.get(shown[i]), imageUrl(image, "low"), alt(i))
      || h("img", { src: imageUrl(image, "low"), alt: alt(i), loading: "lazy", decoding: "async", draggable: "false" });
    state.thumbImages.set(shown[i], img);
    const item = h("li", { draggable: canReorder ? "true" : "false", dataset: { index: String(i) } },
      h("button", { type: "button", class: "thumb", "aria-label": alt(i) + (i === 0 ? " (cover)" : ""), onclick: () => select(i) }, img),
      i === 0 ? h("span", { class: "badge cover-mark", text: "Cover" }) : null);
    thumbs.append(item);
  });

  thumbs.addEventListener("keydown", (event) => {
    const button = event.target.closest(".thumb");
    if (!button) return;
    const i = Number(button.parentElement.dataset.index);
    const d = { ArrowLeft: -1, ArrowRight: 1, Home: -i, End: images.length - 1 - i }[event.key];
    if (d === undefined) return;
    event.preventDefault();
    if (!(event.altKey && canReorder && (event.key === "ArrowLeft" || event.key === "ArrowRight"))) return select(i + d, { focus: true });
    // The image moved is the one with the focus (while a move is on its way, the strip is the
    // one drawn before it: the token says which picture that is).
    move(shown[i], 0, { step: d });
  });
  if (canReorder) wireDrag(thumbs, (from, to) => move(shown[from], to));

  const upload = renderUpload(record, { queued, reread, state, onChange });
  panel.append(title, stage, thumbs, actions, upload);
  if (!canReorder && images.length > 1) panel.append(note("This server cannot reorder images yet: Set as cover and moving are disabled."));
  // The page is drawn anew after each write (uploads ending, a tag saved): the strip kept its
  // place (it went back to its start, the 200th image out of sight) and the image with the
  // focus kept it (it fell to the page's body). Drawn here while the old strip is in the page.
  const hadFocus = Boolean(document.activeElement?.closest?.(".gallery .thumbs"));
  thumbs.addEventListener("scroll", () => { state.stripScroll = thumbs.scrollLeft; }, { passive: true });
  queueMicrotask(() => { thumbs.scrollLeft = state.stripScroll || 0; });
  // Move earlier or later pressed keeps the focus, while it can move the image further
  // (Enter again selected the image the focus had gone to, and moved nothing).
  select(state.index);
  const again = state.focusAction && [...actions.querySelectorAll("button")].find((b) => b.textContent === state.focusAction && !b.disabled);
  const shownThumb = thumbs.querySelector(".thumb[aria-current='true']");
  if (again) focusSoon(again);
  else if ((state.focusThumb || hadFocus) && shownThumb) focusSoon(shownThumb);
  state.focusAction = null;
  if (state.focusThumb && !images.length) focusSoon(upload.querySelector("input"));
  state.focusThumb = false;
  return panel;
}

// The <img> of each picture's thumbnail (`state.thumbImages`, by token) and the stage's
// (`state.stageImage`) are kept from one drawing of the gallery to the next: made anew, each
// took the images' new version in its URL after any move, delete or upload, and every
// thumbnail shown was downloaded again. One kept shows its picture, wherever that is now; one
// not loaded yet (lazy, out of sight) is pointed at the picture's place now. Null: none kept.
function keptImage(img, src, alt) {
  if (!img) return null;
  if (!(img.complete && img.naturalWidth > 0) && img.getAttribute("src") !== src) img.src = src;
  img.alt = alt;
  return img;
}

function stageImage(state, picture, name, alt) {
  const kept = state.stageImage?.picture === picture ? keptImage(state.stageImage.img, imageUrl(name, "medium"), alt) : null;
  if (kept) return kept;
  const img = h("img", { src: imageUrl(name, "medium"), alt, decoding: "async" });
  img.addEventListener("load", () => sharpen(img, name), { once: true });
  state.stageImage = { picture, img };
  return img;
}

// A gallery drawn anew (after a move or a delete) is not in the page yet: focus once it is.
function focusSoon(el) {
  if (el.isConnected) el.focus();
  else queueMicrotask(() => el.focus());
}

// Drag and drop inside the thumbnail strip: a bar shows where the image will land.
function wireDrag(list, onMove) {
  let from = null;
  const clearMarks = () => list.querySelectorAll(".drop-before, .drop-after").forEach((el) => el.classList.remove("drop-before", "drop-after"));
  // Where the image lands is found from the pointer's x alone: before the first thumbnail
  // whose middle is right of it, else after the last. Found from the thumbnail under the
  // pointer, a drop in the gap between two (on the strip itself) was ignored.
  const target = (event) => {
    const items = [...list.children];
    if (!items.length) return null;
    const item = items.find((el) => { const box = el.getBoundingClientRect(); return event.clientX < box.left + box.width / 2; });
    return item ? { item, after: false } : { item: items[items.length - 1], after: true };
  };
  list.addEventListener("dragstart", (event) => {
    const item = event.target.closest("li");
    if (!item) return;
    from = Number(item.dataset.index);
    item.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", String(from));
  });
  list.addEventListener("dragover", (event) => {
    if (from === null) return;
    const hit = target(event);
    if (!hit) return;
    event.preventDefault();
    clearMarks();
    hit.item.classList.add(hit.after ? "drop-after" : "drop-before");
  });
  list.addEventListener("drop", (event) => {
    if (from === null) return;
    const hit = target(event);
    event.preventDefault();
    clearMarks();
    if (!hit) return;
    let to = Number(hit.item.dataset.index) + (hit.after ? 1 : 0);
    if (to > from) to -= 1;
    const start = from;
    from = null;
    onMove(start, to);
  });
  list.addEventListener("dragend", () => {
    from = null;
    clearMarks();
    list.querySelectorAll(".dragging").forEach((el) => el.classList.remove("dragging"));
  });
}
