// A pending model's row on the Pending page: its element, and what it says filled from its
// record. When the record changes elsewhere (a tag it carries renamed, its name or type
// rewritten by another tab or program) the same element is filled again, so the selection,
// the focus in it and the scroll position stay.
import { h, formatBytes, tagsByName } from "./dom.js";
import { pendingImageUrl } from "./api.js";

// What the page learns by the queue's checks (the files), not from the plain list.
const CHECKED = new Set(["missing", "conflict"]);

// The row's element; `onImport` and `onDiscard` (null: no button) take the click's event.
export function rowElement(entry, { onImport, onDiscard }) {
  const parts = {
    box: h("input", { type: "checkbox", checked: entry.checked, dataset: { id: String(entry.record.id) } }),
    thumb: h("div", { class: "thumb" }),
    name: h("span", { class: "name" }),
    sub: h("span", { class: "sub" }),
    tags: h("span", { class: "sub" }),
    importButton: h("button", { type: "button", text: "Import", onclick: onImport }),
    discardButton: onDiscard ? h("button", { type: "button", class: "danger", text: "Discard", onclick: onDiscard }) : null,
  };
  const status = h("span");
  const el = h("li", { dataset: { id: String(entry.record.id) } }, parts.box, parts.thumb,
    h("div", { class: "what" }, parts.name, parts.sub, parts.tags, status),
    h("div", { class: "row-actions" }, parts.importButton, parts.discardButton));
  Object.assign(entry, { el, box: parts.box, status, parts, images: undefined });
  fillRow(entry);
  return el;
}

function fillRow(entry) {
  const { record, parts } = entry;
  const name = record.name || `Pending model ${record.id}`;
  parts.box.setAttribute("aria-label", `Select ${name}`);
  parts.name.textContent = name;
  parts.sub.textContent = [record.type, formatBytes(record.size_bytes), record.path].filter(Boolean).join(" · ");
  parts.tags.textContent = tagsByName(record.tags).map((t) => t.name).join(", ");
  parts.importButton.setAttribute("aria-label", `Import ${name}`);
  parts.discardButton?.setAttribute("aria-label", `Discard ${name}`);
  // The picture is drawn again only when the images changed (not at each new name).
  const images = JSON.stringify(record.images || []);
  if (entry.images === images) {
    parts.thumb.querySelector("img")?.setAttribute("alt", `Image of ${name}`);
    parts.thumb.querySelector(".placeholder")?.replaceChildren(record.type || "");
    return;
  }
  entry.images = images;
  parts.thumb.replaceChildren(record.images && record.images.length
    ? h("img", { src: pendingImageUrl(record.id), alt: `Image of ${name}`, loading: "lazy", decoding: "async", width: 72, height: 72 })
    : h("div", { class: "placeholder", "aria-hidden": "true", text: record.type || "" }));
}

// Takes what the server says now of a row's model into its record (the same object, which
// the row's actions hold) and, if drawn, into its element. Returns the fields that changed
// (none: nothing was touched).
export function renewRow(row, record) {
  const changed = Object.keys(record).filter((key) => !CHECKED.has(key) && !same(row.record[key], record[key]));
  if (!changed.length) return changed;
  for (const key of changed) row.record[key] = record[key];
  delete row.text; // what the filter by words reads, made again when next asked
  if (row.parts) fillRow(row);
  return changed;
}

function same(a, b) {
  if (a === b) return true;
  return typeof a === "object" && typeof b === "object" && JSON.stringify(a) === JSON.stringify(b);
}
