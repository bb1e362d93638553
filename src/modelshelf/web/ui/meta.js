// meta_json made readable: trigger words, links, prompts, description, the training facts a
// .safetensors header carries (kohya's ss_* keys, modelspec), tag frequencies, and the whole
// object as a tree that opens where a person wants to look.
import { h, copyButton, copyText, plainText, isHttpUrl, externalLink, formatCount } from "./dom.js";

// Words of a list or a comma-separated text (a comma inside parentheses is its phrase's:
// "(red hair, blue eyes:1.2)" is one), trimmed, none empty.
export function asList(value) {
  if (Array.isArray(value)) return value.flatMap(asList);
  if (typeof value === "string") return value.split(/,(?![^()]*\))/).map((s) => s.trim()).filter(Boolean);
  return [];
}

// The trigger words a model is shown with and copied by. The person's own list,
// `meta_json.trigger_words`, wins whenever it is present, even empty (every word removed):
// the editor edits that list, so what is saved is what is shown and copied. Only without it
// do the words a download brought stand in: Civitai's `trainedWords` and A1111's
// "activation text" (the editor then starts from them, and a save makes them the person's).
export function triggerWords(meta) {
  if (meta.trigger_words !== undefined && meta.trigger_words !== null) return [...new Set(asList(meta.trigger_words))];
  return downloadedTriggerWords(meta);
}

export function downloadedTriggerWords(meta) {
  const words = [
    ...asList(meta.civitai && meta.civitai.trainedWords),
    ...asList(meta.a1111 && meta.a1111["activation text"]),
  ];
  return [...new Set(words)];
}

// How a prompt names the model, for the types a prompt can name: A1111's (and Forge's, and
// ComfyUI LoRA Manager's) `<lora:file name:weight>`, and ComfyUI's `embedding:file name`. The
// file name is the model file's, without folders or extension, as those tools list it.
const PROMPT_FORMS = [
  [/^(loras?|locon|lycoris|lokr|loha)$/i, (stem, meta) => `<lora:${stem}:${preferredWeight(meta)}>`],
  [/^(embeddings?|textual[ _-]?inversions?)$/i, (stem) => `embedding:${stem}`],
];

export function promptSyntax(record) {
  const form = PROMPT_FORMS.find(([pattern]) => pattern.test((record.type || "").trim()));
  const file = record.path || ((record.files || []).find((f) => f.present) || {}).path;
  const stem = file ? file.split(/[\\/]/).pop().replace(/\.[^.]*$/, "") : "";
  return form && stem ? form[1](stem, record.meta_json || {}) : null;
}

// The weight the person's tools suggest: A1111's "preferred weight" (its .json sidecar), then
// LoRA Manager's usage tips ({"strength": ...} as text); else 1.
function preferredWeight(meta) {
  let tips = {};
  try { tips = JSON.parse((meta.lora_manager && meta.lora_manager.usage_tips) || "{}") || {}; } catch { /* not JSON */ }
  const weight = [meta.a1111 && meta.a1111["preferred weight"], tips.strength]
    .map(Number).find((w) => Number.isFinite(w) && w > 0);
  return weight === undefined ? 1 : +weight.toFixed(2);
}

export function links(meta) {
  const found = [];
  const add = (url, label) => {
    if (isHttpUrl(url) && !found.some((l) => l.url === url)) found.push({ url: url.trim(), label: label || url.trim() });
  };
  const community = meta.community_links;
  if (typeof community === "string") community.split(/\s+/).forEach((u) => add(u));
  else if (Array.isArray(community)) community.forEach((c) => (typeof c === "string" ? add(c) : c && add(c.url, c.name || c.title)));
  else if (community && typeof community === "object") Object.entries(community).forEach(([k, v]) => add(v, k));
  const civitai = meta.civitai;
  if (civitai && civitai.modelId) {
    const version = civitai.id ? `?modelVersionId=${encodeURIComponent(civitai.id)}` : "";
    add(`https://civitai.com/models/${encodeURIComponent(civitai.modelId)}${version}`, "Civitai page");
  }
  for (const [key, value] of Object.entries(meta)) if (typeof value === "string" && isHttpUrl(value)) add(value, key);
  return found;
}

// The notes a model is shown with: the person's own (`meta_json.notes`, what the editor edits),
// else those they wrote in A1111 ("Edit user metadata") or in ComfyUI LoRA Manager. The Civitai
// Helper fills A1111's with the Civitai version's description, HTML: shown as its text.
export function notesOf(meta) {
  if (typeof meta.notes === "string" && meta.notes.trim()) return meta.notes;
  for (const value of [meta.a1111 && meta.a1111.notes, meta.lora_manager && meta.lora_manager.notes]) {
    if (typeof value === "string" && value.trim()) return asProse(value);
  }
  return "";
}

// Markup as Civitai writes it; text a person typed may hold `<lora:name:0.8>`, which is no HTML.
const HTML_ELEMENT = /<\/?(p|br|div|span|b|i|u|s|em|strong|a|ul|ol|li|h[1-6]|code|pre|blockquote)\b[^>]*>/i;

// `value` as text: HTML (Civitai's descriptions) by its text, anything else as it is written.
function asProse(value) {
  return HTML_ELEMENT.test(value) ? plainText(value) : value;
}

// What the editor's Description starts from: the person's own as they wrote it, else the
// text a download brought (a save of the field makes it theirs, as with the trigger words).
export function editableDescription(meta) {
  return typeof meta.description === "string" && meta.description.trim() ? meta.description : descriptionOf(meta);
}

// The same order as storage/search.py description_of: LoRA Manager keeps its Civitai version's
// description in `civitai.description` and the model's in `modelDescription`.
export function descriptionOf(meta) {
  const manager = meta.lora_manager || {};
  for (const value of [meta.description, meta.a1111 && meta.a1111.description, meta.civitai && meta.civitai.description,
    meta.civitai && meta.civitai.model && meta.civitai.model.description, manager.civitai && manager.civitai.description,
    manager.modelDescription, meta.file_metadata && meta.file_metadata["modelspec.description"]]) {
    if (typeof value === "string" && value.trim()) return asProse(value);
  }
  return "";
}

const TRAINING_KEYS = [
  ["modelspec.title", "Title"], ["modelspec.author", "Author"], ["modelspec.architecture", "Architecture"],
  ["ss_output_name", "Output name"], ["ss_base_model_version", "Base model version"], ["ss_sd_model_name", "Trained on"],
  ["ss_network_module", "Network"], ["ss_network_dim", "Rank (dim)"], ["ss_network_alpha", "Alpha"],
  ["ss_resolution", "Resolution"], ["ss_num_train_images", "Training images"], ["ss_num_reg_images", "Regularisation images"],
  ["ss_num_epochs", "Epochs"], ["ss_epoch", "Epoch"], ["ss_steps", "Steps"], ["ss_max_train_steps", "Max steps"],
  ["ss_batch_size_per_device", "Batch size"], ["ss_learning_rate", "Learning rate"], ["ss_unet_lr", "UNet LR"],
  ["ss_text_encoder_lr", "Text encoder LR"], ["ss_optimizer", "Optimizer"], ["ss_lr_scheduler", "LR scheduler"],
  ["ss_noise_offset", "Noise offset"], ["ss_min_snr_gamma", "Min SNR gamma"], ["ss_clip_skip", "Clip skip"],
  ["ss_mixed_precision", "Precision"], ["ss_seed", "Seed"], ["ss_training_started_at", "Training started"],
  ["ss_training_finished_at", "Training finished"], ["modelspec.date", "Date"], ["modelspec.license", "Licence"],
];

function readable(key, value) {
  if ((key === "ss_training_started_at" || key === "ss_training_finished_at") && Number(value) > 1e9) {
    return new Date(Number(value) * 1000).toLocaleString();
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function trainingFacts(fileMeta) {
  if (!fileMeta || typeof fileMeta !== "object") return [];
  return TRAINING_KEYS.filter(([key]) => fileMeta[key] !== undefined && fileMeta[key] !== null && fileMeta[key] !== "" && fileMeta[key] !== "None")
    .map(([key, label]) => [label, readable(key, fileMeta[key])]);
}

// ss_tag_frequency: {"<dataset folder>": {"<tag>": count}}; summed over folders, most first.
export function tagFrequency(fileMeta, limit = 40) {
  const raw = fileMeta && fileMeta.ss_tag_frequency;
  if (!raw || typeof raw !== "object") return [];
  const totals = new Map();
  for (const folder of Object.values(raw)) {
    if (!folder || typeof folder !== "object") continue;
    for (const [tag, count] of Object.entries(folder)) totals.set(tag.trim(), (totals.get(tag.trim()) || 0) + Number(count || 0));
  }
  return [...totals.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit);
}

export function renderFrequency(entries) {
  const top = entries.length ? entries[0][1] : 1;
  const grid = h("div", { class: "freq" });
  for (const [tag, count] of entries) {
    const bar = h("div", { class: "bar", "aria-hidden": "true" });
    bar.style.width = `${Math.max(4, (count / top) * 100)}%`;
    grid.append(
      h("div", {}, h("button", { type: "button", class: "linkish", title: "Copy this tag", text: tag, onclick: () => copyText(tag, `“${tag}”`) }), bar),
      h("span", { class: "count", text: formatCount(count) }));
  }
  return grid;
}

export function renderPrompts(prompts) {
  if (!prompts || typeof prompts !== "object") return null;
  const rows = [["Positive", prompts.positive], ["Negative", prompts.negative]].filter(([, v]) => typeof v === "string" && v.trim());
  if (!rows.length) return null;
  return h("dl", { class: "facts" }, rows.map(([label, text]) => [
    h("dt", { text: label }),
    h("dd", {}, h("p", { class: "prose mono", text }), copyButton(text, `${label.toLowerCase()} prompt`, `${label} prompt`)),
  ]));
}

// A JSON value as nested <details>; long strings and big objects stay closed.
export function jsonTree(value, key = null, depth = 0) {
  const label = key === null ? null : h("span", { class: "k", text: `${key}: ` });
  if (value === null || typeof value !== "object") {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    const content = isHttpUrl(text) ? externalLink(text) : h("span", { class: "s", text: typeof value === "string" ? `"${text}"` : text });
    return h("li", {}, label, content);
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`;
  const inner = h("ul", {});
  const details = h("details", { open: depth < 1 && entries.length <= 30 }, h("summary", {}, label, summary), inner);
  // Children are built when first opened: a header with ss_tag_frequency can hold thousands.
  const fill = () => {
    if (inner.childElementCount || !entries.length) return;
    inner.append(...entries.slice(0, 500).map(([k, v]) => jsonTree(v, k, depth + 1)));
    if (entries.length > 500) inner.append(h("li", { text: `… ${entries.length - 500} more` }));
  };
  if (details.open) fill();
  details.addEventListener("toggle", fill);
  return key === null ? h("div", { class: "json-tree" }, h("ul", {}, h("li", {}, details))) : h("li", {}, details);
}
