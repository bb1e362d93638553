// The read-only panels of a model's page: details, about, metadata, trigger words, links, files.
import { h, copyButton, copyText, note, formatBytes, formatDate, autov2 } from "./dom.js";
import { triggerWords, promptSyntax, links, descriptionOf, notesOf, trainingFacts, tagFrequency, renderFrequency, renderPrompts, jsonTree } from "./meta.js";

export function renderFacts(record, base) {
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
      h("dt", { text: "AutoV2" }), h("dd", { class: "hash" }, h("code", { text: autov2(record) }), copyButton(autov2(record), "AutoV2")),
      renderPromptSyntax(record)));
}

function renderPromptSyntax(record) {
  const syntax = promptSyntax(record);
  return syntax ? [h("dt", { text: "In a prompt" }), h("dd", { class: "hash" }, h("code", { text: syntax }), copyButton(syntax, "prompt syntax", "Prompt syntax"))] : null;
}

export function renderAbout(meta) {
  const description = descriptionOf(meta);
  const notes = notesOf(meta);
  const prompts = renderPrompts(meta.prompts);
  if (!description && !notes && !prompts) return null;
  return h("section", { class: "panel", "aria-labelledby": "about-title" },
    h("h2", { id: "about-title", text: "About" }),
    description ? h("div", {}, h("h3", { text: "Description" }), h("p", { class: "prose", text: description })) : null,
    notes ? h("div", {}, h("h3", { text: "Notes" }), h("p", { class: "prose", text: notes })) : null,
    prompts ? h("div", {}, h("h3", { text: "Prompts" }), prompts) : null);
}

export function renderMetadata(meta) {
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

export function renderTriggerWords(meta) {
  const words = triggerWords(meta);
  if (!words.length) return null;
  return h("section", { class: "panel trigger-words", "aria-labelledby": "tw-title" },
    // Copy beside the heading, not in it (named so, it read "Trigger words Copy all trigger words").
    h("div", { class: "panel-head" }, h("h2", { id: "tw-title", text: "Trigger words" }), copyButton(words.join(", "), "all trigger words", "Trigger words")),
    // A click on a word copies it, as on Civitai.
    h("ul", { class: "chips" }, words.map((w) => h("li", {},
      h("button", { type: "button", class: "chip", title: "Copy", "aria-label": `Copy trigger word ${w}`, text: w, onclick: () => copyText(w, `“${w}”`) })))));
}

export function renderLinks(meta) {
  const found = links(meta);
  if (!found.length) return null;
  return h("section", { class: "panel", "aria-labelledby": "links-title" },
    h("h2", { id: "links-title", text: "Links" }),
    h("ul", {}, found.map((l) => h("li", {}, h("a", { href: l.url, target: "_blank", rel: "noopener noreferrer", text: l.label })))));
}

export function renderFiles(record) {
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
