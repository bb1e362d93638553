// A conflict, side by side: the model in the library and the pending one (fields, images, a
// diff of meta_json), and what each strategy would leave, previewed by the server before the
// person chooses. Resolves with "override", "merge", "delete", or null when closed.
import { h, clear, note, formatBytes, formatDate, tagsByName } from "./dom.js";
import { post, imageUrl, pendingImageUrl, isUnavailable } from "./api.js";
import { differences } from "./history.js";

const STRATEGIES = [
  ["merge", "Merge", "Keeps everything the library has; fills its empty fields and missing metadata from the pending model; adds the pending image after the others; tags are joined."],
  ["override", "Override", "The pending model's fields and metadata replace the library's; its image becomes the cover; tags are joined."],
  ["delete", "Delete", "Discards the pending model and its image; the library keeps its model as it is."],
];

function flatten(value, prefix = "", depth = 0, out = new Map()) {
  if (value && typeof value === "object" && !Array.isArray(value) && depth < 3 && Object.keys(value).length) {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, depth + 1, out);
  } else if (prefix) {
    out.set(prefix, typeof value === "string" ? value : JSON.stringify(value));
  }
  return out;
}

const short = (text) => {
  if (text === "") return "(empty)";
  return text && text.length > 300 ? `${text.slice(0, 300)}…` : text;
};

export function metaDiff(existing, pending) {
  const a = flatten(existing || {});
  const b = flatten(pending || {});
  const rows = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const kind = !a.has(key) ? "added" : !b.has(key) ? "removed" : a.get(key) === b.get(key) ? "same" : "changed";
    rows.push({ key, kind, existing: a.get(key), pending: b.get(key) });
  }
  return rows;
}

const tagNames = (record) => tagsByName(record.tags).map((t) => t.name).join(", ");

// A fact of `record`, marked when `other` (the record beside it) says otherwise: the fields a
// strategy decides between stand out as the metadata's differing keys do.
function fact(label, text, differs, extra = {}) {
  return [h("dt", { text: label }),
    h("dd", { ...extra, class: [extra.class, differs ? "differs" : ""].filter(Boolean).join(" ") || null },
      text, differs ? h("span", { class: "visually-hidden", text: " (differs)" }) : null)];
}

function side(title, record, other, image, alt) {
  return h("div", { class: "side" },
    h("h3", { text: title }),
    image ? h("img", { src: image, alt, decoding: "async" }) : h("div", { class: "placeholder noimg", text: "No image" }),
    h("dl", { class: "facts" },
      fact("Name", record.name || "–", (record.name || "") !== (other.name || "")),
      fact("Type", record.type || "–", (record.type || "") !== (other.type || "")),
      fact("Size", formatBytes(record.size_bytes), false),
      fact("Added", formatDate(record.created_at), false),
      fact("Path", record.path || "–", false, { class: "mono" }),
      fact("Tags", tagNames(record) || "–", tagNames(record) !== tagNames(other)),
      fact("Images", String((record.images || []).length), false)));
}

function diffTable(rows) {
  const differing = rows.filter((r) => r.kind !== "same");
  const label = { changed: "differs", added: "only pending", removed: "only existing" };
  const table = (list) => h("table", { class: "diff" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Key" }), h("th", { scope: "col", text: "Existing" }), h("th", { scope: "col", text: "Pending" }))),
    h("tbody", {}, list.map((r) => h("tr", { class: r.kind },
      h("th", { scope: "row" }, r.key, r.kind !== "same" ? h("span", { class: "visually-hidden", text: ` (${label[r.kind]})` }) : null),
      h("td", { text: short(r.existing) ?? "—" }), h("td", { text: short(r.pending) ?? "—" })))));
  const same = rows.length - differing.length;
  return h("div", {},
    differing.length ? table(differing) : h("p", { class: "count", text: "The metadata is the same." }),
    same ? h("details", {}, h("summary", { text: `${same} equal ${same === 1 ? "key" : "keys"}` }), table(rows.filter((r) => r.kind === "same"))) : null);
}

function previewSummary(strategy, preview, existing) {
  if (strategy === "delete") return "The library keeps its model unchanged; the pending model is removed.";
  const result = preview.result;
  if (!result) return "";
  const changed = differences(existing, result);
  const images = (result.images || []).length;
  // Said apart: metadata the library has and the result lacks is gone for good (an override
  // takes the pending model's metadata whole, a person's notes included).
  const removed = metaDiff(existing.meta_json, result.meta_json).filter((r) => r.kind === "removed").map((r) => r.key);
  return `Afterwards: “${result.name || "–"}”, ${result.type || "no type"}, ${images} ${images === 1 ? "image" : "images"}, tags ${tagsByName(result.tags).map((t) => t.name).join(", ") || "none"}. `
    + (changed.length ? `Changes: ${changed.join(", ")}.` : "Nothing else changes.")
    + (removed.length ? ` Removes from the library's metadata: ${removed.join(", ")}.` : "");
}

export function openComparison(conflict, { caps, changed = false }) {
  const { existing, pending } = conflict;
  return new Promise((resolve) => {
    const opener = document.activeElement;
    let choice = null;
    const canPreview = caps.has("POST", "/api/migration/preview_import");
    const cards = STRATEGIES.map(([value, label, text]) => {
      const result = h("p", { class: "result", "aria-live": "polite", text: canPreview ? "Previewing…" : "" });
      const button = h("button", { type: "button", class: value === "delete" ? "danger" : "primary", text: label, onclick: () => { choice = value; dialog.close(); } });
      return { value, el: h("div", { class: "strategy" }, h("h3", { text: label }), h("p", { text }), result, button), result };
    });
    const dialog = h("dialog", { class: "compare-dialog", "aria-labelledby": "compare-title", "aria-describedby": changed ? "compare-changed" : null },
      h("h2", { id: "compare-title", text: `“${pending.name || existing.name}” is already in the library` }),
      changed ? h("p", { id: "compare-changed", class: "note error-note", text: "The library’s model changed since this comparison opened: it is shown as it is now. Compare again, then choose." }) : null,
      h("p", { class: "count" }, "Same content (SHA256 ", h("code", { text: existing.sha256 }), "). Compare, then choose what to keep."),
      h("div", { class: "compare" },
        side("In the library", existing, pending, existing.images && existing.images[0] ? imageUrl(existing.images[0], "medium") : null, `Cover of ${existing.name || "the existing model"}`),
        side("Pending", pending, existing, pending.images && pending.images.length ? pendingImageUrl(pending.id) : null, `Image of pending ${pending.name || "model"}`)),
      h("h3", { text: "Metadata" }), diffTable(metaDiff(existing.meta_json, pending.meta_json)),
      h("div", { class: "strategies" }, cards.map((c) => c.el)),
      canPreview ? null : note("This server cannot preview the result yet; the descriptions above say what each choice does."),
      h("div", { class: "buttons" }, h("button", { type: "button", text: "Decide later", onclick: () => dialog.close() })));
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(choice);
    });
    document.body.append(dialog);
    dialog.showModal();
    // The focus starts on the first choice, but the dialog at its top (showModal scrolled it to
    // the first button): the comparison above the choices is what to read first.
    dialog.querySelector(".strategy button").focus({ preventScroll: true });
    dialog.scrollTop = 0;
    if (!canPreview) return;
    for (const card of cards) {
      post("api/migration/preview_import", { id: pending.id, conf_strategy: card.value }).then(
        (preview) => { card.result.textContent = previewSummary(card.value, preview, existing); },
        (error) => { clear(card.result, isUnavailable(error) ? "" : `Preview failed: ${error.message}`); });
    }
  });
}
