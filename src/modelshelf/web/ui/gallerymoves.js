// A model's gallery's writes (see gallery.js): an image moved (Set as cover, a step, a place
// typed, a drag in the strip) and deleted. `g` is the gallery as drawn (see galleryOf).
import { h, toast, confirmDialog } from "./dom.js";
import { call, ApiError, versionsOf } from "./api.js";
import { CHANGED_ELSEWHERE } from "./editor.js";

// A write refused because the model changed since it was shown (412; for a reorder, 409:
// images added or removed meanwhile), in the person's words: the page then shows that
// version (the server's words named If-Match).
const stale = (error, ...statuses) => error instanceof ApiError && statuses.includes(error.status);
const changedElsewhere = CHANGED_ELSEWHERE[0].toLowerCase() + CHANGED_ELSEWHERE.slice(1);
// A gesture whose picture the page no longer knows (see forgetPictures).
const GONE = Symbol("gone");
const ifMatch = (version) => (version ? { "If-Match": version } : {});

// A change made elsewhere (a 412 met by any of the page's writes, a tag save as well) that
// moved pictures: an image's name is its place, so the page can no longer tell which picture
// is where, and its tokens are forgotten. A gesture made before and still waiting its turn
// then finds its token gone and is dropped, said (it moved or deleted the picture the change
// had put in its place). A change that left the pictures where they were (a tag, the name;
// see model.js, showChangedElsewhere) forgets nothing: the gestures waiting are sent.
export function forgetPictures(state) {
  state.order = null;
}

// The places the page knew are not the server's any more: the gallery is drawn as it is, and
// the image that had focus keeps it (it fell to the page's body).
function showAnew(g) {
  g.state.focusThumb = true;
  g.onChange();
}

// A write of the gallery refused as the model changed elsewhere (412; 409 or 404: images
// added or removed meanwhile): the page reads the model again before the next gesture takes
// its turn, which is then sent with the new ETag if the pictures stayed where they were.
// Done outside the queue, the next gesture ran before the model was read and was dropped.
// Resolves whether the pictures moved.
async function readAgainIfStale(g, error, ...statuses) {
  if (!stale(error, ...statuses)) return true;
  g.state.focusThumb = true;
  return g.changedElsewhere();
}

// `send()` (it reads the ETag when called), once more when its 412 came from a change
// elsewhere that left the pictures where they were (a tag, the name): the gesture was made on
// them as they still are, and refused it was lost (a cover moved three places went two, a
// delete confirmed had to be chosen and confirmed again), as an upload was (galleryupload.js).
// A refusal that stands is thrown, the model read again.
async function sendAgainIfOnlyOthersChanged(g, send, ...statuses) {
  try {
    return await send();
  } catch (error) {
    const moved = await readAgainIfStale(g, error, ...statuses);
    if (moved || !stale(error, 412)) throw error;
  }
  try {
    return await send();
  } catch (error) {
    await readAgainIfStale(g, error, ...statuses);
    throw error;
  }
}

// Moves the picture `picture` (its token, see `g.shown`) to place `to`, or `step` places on
// from where it is when the move is sent, after the page's earlier writes. Worked out from
// the order shown, a move made while another was on its way (keys pressed faster than the
// server answered, a drag, Set as cover) moved the picture the first move had put in that
// place (an image's name is its place).
// `button`: the action pressed, which keeps the focus for the next press while it can.
export async function move(g, picture, to, { step = 0, button = null } = {}) {
  try {
    const place = await g.queued(() => sendMove(g, picture, { to, step, button }));
    if (place === GONE) {
      // Which gesture it was: the image as numbered in the strip the person acted on.
      toast(`Could not move image ${g.shown.indexOf(picture) + 1}: the images changed before the move was sent; nothing was moved, choose the image again`, { error: true });
      showAnew(g);
    } else if (place !== null) toast(place === 0 ? "Cover changed" : `Image moved to position ${place + 1}`);
  } catch (error) {
    toast(`Could not reorder: ${stale(error, 409, 412) ? changedElsewhere : error.message}`, { error: true });
  }
}

// The move, its turn come: the new place, null for none, GONE.
async function sendMove(g, picture, { to, step, button }) {
  const { state } = g;
  const now = [...(g.current().images || [])];
  const order = state.order || [];
  const at = order.indexOf(picture);
  const target = step ? at + step : to;
  // Gone: the page was drawn anew after a change elsewhere (see forgetPictures).
  if (at < 0 || order.length !== now.length) return GONE;
  if (target === at || target < 0 || target >= now.length) return null;
  now.splice(target, 0, ...now.splice(at, 1));
  const left = await sendAgainIfOnlyOthersChanged(g, () => versionLeft("POST", "api/images/reorder", { body: { hash: g.record.sha256, order: now }, headers: ifMatch(g.etag()) }), 409, 412);
  order.splice(target, 0, ...order.splice(at, 1));
  state.index = target;
  state.focusThumb = true;
  state.focusAction = button;
  // Announced once the strip is redrawn, so whoever acts on the news acts on the new order.
  await g.onChange({ left });
  return target;
}

// A write, resolving the model's versions its answer carries (ETag and Images-Version, null
// if none): the model read after it at another was changed elsewhere in between (see
// api.js, changedSince).
async function versionLeft(method, path, options) {
  const response = await call(method, path, { ...options, raw: true });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, body);
  return versionsOf((name) => response.headers.get(name));
}

// An image's name is its place: a move or delete of this page's own still on its way when
// Delete was chosen gave the name to another picture, which was deleted. The delete names
// the picture by its token and is sent for the place it has then; a reorder made elsewhere
// meanwhile is met by the record's ETag (the server answers 412).
export async function remove(g, i) {
  const picture = g.shown[i];
  if (!(await confirmDialog(deleteQuestion(g, i)))) return;
  try {
    const done = await g.queued(() => sendDelete(g, picture));
    if (done !== GONE) return toast(done === "cover" ? "Cover deleted; the next image is the cover now" : "Image deleted");
    toast(`Could not delete image ${i + 1}: the images changed before the delete was sent; nothing was deleted, choose the image again`, { error: true });
    showAnew(g);
  } catch (error) {
    toast(`Could not delete the image: ${stale(error, 412) ? changedElsewhere : error.message}`, { error: true });
  }
}

// The cover is what the library's card shows: said before and after (it was "Delete image
// 1?", as for any image).
function deleteQuestion(g, i) {
  if (i !== 0) return { title: `Delete image ${i + 1}?`, body: "The image is removed from this model; later images move up by one.", confirm: "Delete image" };
  const body = g.images.length > 1 ? "Image 2 becomes the cover; later images move up by one." : "The model is left with no image.";
  return { title: "Delete the cover?", body, confirm: "Delete image" };
}

// The delete, its turn come: "cover" or "image" deleted, or GONE.
async function sendDelete(g, picture) {
  const { state } = g;
  const order = state.order || [];
  const at = order.indexOf(picture);
  const names = g.current().images || [];
  if (at < 0 || order.length !== names.length) return GONE;
  const left = await sendAgainIfOnlyOthersChanged(g, () => versionLeft("DELETE", `api/images/${encodeURIComponent(names[at])}`, { headers: ifMatch(g.etag()) }), 404, 412);
  order.splice(at, 1);
  state.index = Math.max(0, at - 1);
  // The Delete image button that had focus is drawn anew: focus goes to the image shown
  // now, or to the file picker when none is left (it went to the page's body).
  state.focusThumb = true;
  await g.onChange({ left });
  return at === 0 && (g.current().images || []).length ? "cover" : "image";
}

// A place typed: the keys move an image one place a press, each a save and the page drawn
// anew (the 250th image of 300 to the second place took 248 presses; a drag needs a mouse).
export function moveToForm(g, i) {
  const count = g.images.length;
  const field = h("input", { type: "number", id: "image-position", min: "1", max: String(count), step: "1", value: String(i + 1), required: true });
  const submit = (event) => {
    event.preventDefault();
    const to = Number(field.value) - 1;
    if (!Number.isInteger(to) || to < 0 || to >= count) return field.reportValidity();
    move(g, g.shown[i], to);
  };
  return h("form", { class: "move-to", onsubmit: submit },
    h("label", { for: "image-position", text: "Move to position" }), field, h("button", { type: "submit", text: "Move" }));
}

// Drag and drop inside the thumbnail strip: a bar shows where the image will land.
export function wireDrag(list, onMove) {
  let from = null;
  const clearMarks = () => list.querySelectorAll(".drop-before, .drop-after").forEach((el) => el.classList.remove("drop-before", "drop-after"));
  const target = (event) => dropPlace(list, event.clientX);
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

// Where an image let go at `x` lands: before the first thumbnail whose middle is right of it,
// else after the last. Found from the thumbnail under the pointer, a drop in the gap between
// two (on the strip itself) was ignored.
function dropPlace(list, x) {
  const items = [...list.children];
  if (!items.length) return null;
  const item = items.find((el) => { const box = el.getBoundingClientRect(); return x < box.left + box.width / 2; });
  return item ? { item, after: false } : { item: items[items.length - 1], after: true };
}
