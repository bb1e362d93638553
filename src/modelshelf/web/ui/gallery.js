// A model's example images: the stage (medium, or high when drawn larger), thumbnails (low), the lightbox (high) with
// arrow keys and Escape; reorder by drag and drop, Alt+arrow keys or a position typed; set as
// cover; delete with confirmation (gallerymoves.js); upload (galleryupload.js).
import { h, clear, note } from "./dom.js";
import { imageUrl } from "./api.js";
import { renderUpload } from "./galleryupload.js";
import { move, remove, moveToForm, wireDrag } from "./gallerymoves.js";

export { forgetPictures } from "./gallerymoves.js";

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

// `queued(task)`: runs the task after the page's other writes of this model, and `etag()`
// is the record's ETag then (a reorder sent beside a tag change met the page's own 412);
// `reread()` reads the record and its ETag again without drawing it (resolves its versions), `current()` is the
// record as last read, and `changedElsewhere()` reads and draws the model after a 412 (the
// pictures forgotten only if they moved).
export function renderGallery(record, deps) {
  const g = galleryOf(record, deps);
  const { state, images, thumbs, actions } = g;
  const panel = h("section", { class: "panel gallery", "aria-labelledby": "gallery-title" });
  const title = h("h2", { id: "gallery-title" }, h("span", { text: `Images (${images.length})` }));
  renderThumbs(g);
  wireThumbKeys(g);
  if (g.canReorder) wireDrag(thumbs, (from, to) => move(g, g.shown[from], to));
  const upload = renderUpload(record, { queued: deps.queued, reread: deps.reread, etag: deps.etag, changedElsewhere: deps.changedElsewhere, state, onChange: deps.onChange });
  panel.append(title, g.stage, thumbs, actions, upload);
  if (!g.canReorder && images.length > 1) panel.append(note("This server cannot reorder images yet: Set as cover and moving are disabled."));
  // The page is drawn anew after each write (uploads ending, a tag saved): the strip kept its
  // place (it went back to its start, the 200th image out of sight) and the image with the
  // focus kept it (it fell to the page's body). Drawn here while the old strip is in the page.
  const hadFocus = Boolean(document.activeElement?.closest?.(".gallery .thumbs"));
  thumbs.addEventListener("scroll", () => { state.stripScroll = thumbs.scrollLeft; }, { passive: true });
  queueMicrotask(() => { thumbs.scrollLeft = state.stripScroll || 0; });
  select(g, state.index);
  focusAsBefore(g, upload, hadFocus);
  return panel;
}

// The gallery as drawn this time: what its parts, its gestures and its writes share.
function galleryOf(record, { caps, etag, current, queued, reread, changedElsewhere, state, onChange }) {
  const images = record.images || [];
  const name = record.name || "this model";
  const canReorder = caps.has("POST", "/api/images/reorder");
  state.index = Math.min(state.index || 0, Math.max(0, images.length - 1));
  // `state.order`: a token for each picture, in the server's order as far as this page knows
  // (its own moves, deletes and uploads applied as they are answered); `shown`: the tokens of
  // the strip drawn here. A gesture names its picture by token, not by its place.
  if (!state.order || state.order.length !== images.length) state.order = images.map(() => Symbol("picture"));
  return {
    record, images, name, canReorder, state, etag, current, queued, reread, changedElsewhere, onChange,
    shown: [...state.order],
    stage: h("div", { class: images.length ? "stage" : "stage no-images" }),
    thumbs: h("ul", { class: "thumbs", "aria-label": "Example images" + (canReorder ? "; Alt+arrow keys move an image" : "") }),
    actions: h("div", { class: "image-actions" }),
    alt: (i) => `Example image ${i + 1} of ${images.length} of ${name}`,
  };
}

function select(g, i, { focus = false } = {}) {
  const { state, images, stage } = g;
  state.index = Math.max(0, Math.min(images.length - 1, i));
  clear(stage);
  if (!images.length) {
    stage.append(h("div", { class: "placeholder", text: "No images yet" }));
  } else {
    const at = state.index;
    const img = stageImage(state, g.shown[at], images[at], g.alt(at));
    stage.append(h("button", { type: "button", class: "open", "aria-label": `Open image ${at + 1} large`, onclick: () => openLightbox(g, state.index) }, img));
  }
  g.thumbs.querySelectorAll(".thumb").forEach((b, j) => {
    b.setAttribute("aria-current", String(j === state.index));
    b.tabIndex = j === state.index ? 0 : -1;
    if (focus && j === state.index) focusSoon(b);
  });
  renderActions(g);
}

function renderActions(g) {
  const { actions, images, canReorder, shown } = g;
  if (!images.length) return clear(actions);
  const i = g.state.index;
  // clear() leaves out the null of a gallery too short for "Move to" (Element.append would
  // write it as the text "null").
  clear(actions,
    h("button", { type: "button", text: "View large", onclick: () => openLightbox(g, i) }),
    h("button", { type: "button", text: "Set as cover", disabled: !canReorder || i === 0, onclick: () => move(g, shown[i], 0) }),
    h("button", { type: "button", text: "Move earlier", disabled: !canReorder || i === 0, onclick: () => move(g, shown[i], 0, { step: -1, button: "Move earlier" }) }),
    h("button", { type: "button", text: "Move later", disabled: !canReorder || i === images.length - 1, onclick: () => move(g, shown[i], 0, { step: 1, button: "Move later" }) }),
    h("button", { type: "button", class: "danger", text: "Delete image", onclick: () => remove(g, i) }),
    canReorder && images.length > 2 ? moveToForm(g, i) : null);
}

function renderThumbs(g) {
  const { state, shown, alt } = g;
  const kept = state.thumbImages || new Map();
  state.thumbImages = new Map();
  g.images.forEach((image, i) => {
    const img = keptImage(kept.get(shown[i]), imageUrl(image, "low"), alt(i))
      || h("img", { src: imageUrl(image, "low"), alt: alt(i), loading: "lazy", decoding: "async", draggable: "false" });
    state.thumbImages.set(shown[i], img);
    const item = h("li", { draggable: g.canReorder ? "true" : "false", dataset: { index: String(i) } },
      h("button", { type: "button", class: "thumb", "aria-label": alt(i) + (i === 0 ? " (cover)" : ""), onclick: () => select(g, i) }, img),
      i === 0 ? h("span", { class: "badge cover-mark", text: "Cover" }) : null);
    g.thumbs.append(item);
  });
}

// Arrow keys, Home and End step through the images; Alt+arrow keys move the one with focus.
function wireThumbKeys(g) {
  g.thumbs.addEventListener("keydown", (event) => {
    const button = event.target.closest(".thumb");
    if (!button) return;
    const i = Number(button.parentElement.dataset.index);
    const d = { ArrowLeft: -1, ArrowRight: 1, Home: -i, End: g.images.length - 1 - i }[event.key];
    if (d === undefined) return;
    event.preventDefault();
    if (!(event.altKey && g.canReorder && (event.key === "ArrowLeft" || event.key === "ArrowRight"))) return select(g, i + d, { focus: true });
    // The image moved is the one with the focus (while a move is on its way, the strip is the
    // one drawn before it: the token says which picture that is).
    move(g, g.shown[i], 0, { step: d });
  });
}

// Move earlier or later pressed keeps the focus, while it can move the image further
// (Enter again selected the image the focus had gone to, and moved nothing); otherwise the
// image shown takes it back, or the file picker when no image is left.
function focusAsBefore(g, upload, hadFocus) {
  const { state } = g;
  const again = state.focusAction && [...g.actions.querySelectorAll("button")].find((b) => b.textContent === state.focusAction && !b.disabled);
  const shownThumb = g.thumbs.querySelector(".thumb[aria-current='true']");
  if (again) focusSoon(again);
  else if ((state.focusThumb || hadFocus) && shownThumb) focusSoon(shownThumb);
  state.focusAction = null;
  if (state.focusThumb && !g.images.length) focusSoon(upload.querySelector("input"));
  state.focusThumb = false;
}

function openLightbox(g, start) {
  const { images, name } = g;
  const opener = document.activeElement;
  let i = start;
  const img = h("img", { alt: "" });
  // Said as the arrow keys step (the focus stays where it was, and a reader said nothing).
  const caption = h("figcaption", { "aria-live": "polite" });
  const show = () => {
    img.src = imageUrl(images[i], "high");
    img.alt = g.alt(i);
    caption.textContent = `${i + 1} / ${images.length} · ${name}`;
  };
  const step = (d) => { i = (i + d + images.length) % images.length; show(); };
  const nav = (where, label, text, d) => (images.length > 1 ? h("button", { type: "button", class: `nav ${where}`, "aria-label": label, text, onclick: () => step(d) }) : null);
  const dialog = h("dialog", { class: "lightbox", "aria-label": `Images of ${name}` },
    h("figure", {}, img, caption),
    nav("prev", "Previous image", "‹", -1),
    nav("next", "Next image", "›", 1),
    h("button", { type: "button", class: "close", text: "Close", onclick: () => dialog.close() }));
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") { event.preventDefault(); step(1); }
    if (event.key === "ArrowLeft") { event.preventDefault(); step(-1); }
  });
  dialog.addEventListener("close", () => {
    dialog.remove();
    select(g, i);
    // The stage was redrawn for the image last shown; focus goes back to it.
    if (opener && opener.isConnected) opener.focus();
    else g.stage.querySelector("button")?.focus();
  });
  show();
  document.body.append(dialog);
  dialog.showModal();
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
