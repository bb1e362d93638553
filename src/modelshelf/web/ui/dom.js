// Small DOM helpers: building elements, formatting numbers and times, toasts, copying,
// confirmation dialogs. Text always goes in as text (never as HTML).

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const SIZE_UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined || Number.isNaN(bytes)) return "–";
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1000 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${SIZE_UNITS[unit]}`;
}

export function formatCount(n) {
  return Number(n).toLocaleString();
}

// Milliseconds from a time the API gives as ms, s (small numbers) or an ISO string.
export function toMillis(value) {
  if (value === null || value === undefined || value === "") return null;
  const number = Number(value);
  if (!Number.isNaN(number)) return number < 1e12 ? number * 1000 : number;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : parsed;
}

export function formatDate(value) {
  const ms = toMillis(value);
  if (ms === null) return "–";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// Names in the order a person expects, numbers by their value (chibi-3 before chibi-22). The Tags page, a model's tags wherever they are listed and a scan's problems.
export const byName = new Intl.Collator(undefined, { numeric: true }).compare;
export const tagsByName = (tags) => [...(tags || [])].sort((a, b) => byName(a.name, b.name));

export function plural(n, one, many = `${one}s`) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

// An announcement for screen readers, shown as a toast for everyone: an `error` is said at
// once (#alerts, role=alert), the others when the reader is done (#status). `action`
// ({label, run}): a button in the toast (Undo), which then stays longer, as long as it is
// hovered or focused. Returns {dismiss}, to take it away once it no longer holds.
export function toast(message, { error = false, timeout = 3500, action = null } = {}) {
  const host = document.getElementById(error ? "alerts" : "status");
  const item = h("div", { class: error ? "toast error" : "toast" }, h("span", { text: message }));
  if (action) {
    // The button goes with its toast: pressed from the keyboard, the focus fell to the page's
    // body and the next Tab began at the top. It goes back to where the person came from
    // (unless the action put it somewhere), else to the page's content.
    let cameFrom = null;
    item.addEventListener("focusin", (event) => {
      if (event.relatedTarget && !item.contains(event.relatedTarget)) cameFrom = event.relatedTarget;
    });
    const press = () => {
      const hadFocus = item.contains(document.activeElement);
      item.remove();
      action.run();
      if (!hadFocus || (document.activeElement && document.activeElement !== document.body)) return;
      (cameFrom && cameFrom.isConnected ? cameFrom : document.getElementById("main"))?.focus();
    };
    item.append(" ", h("button", { type: "button", class: "small", text: action.label, onclick: press }));
  }
  // The same words again (a save retried while offline) replace the toast that says them,
  // rather than stacking copies over the page; a toast with a button is left to its button.
  for (const old of host.querySelectorAll(".toast")) {
    if (!old.querySelector("button") && old.textContent === message) old.remove();
  }
  host.append(item);
  const wait = (error ? timeout * 2 : timeout) * (action ? 3 : 1);
  const expire = () => {
    if (item.matches(":hover, :focus-within")) return setTimeout(expire, 1000);
    item.remove();
  };
  setTimeout(expire, wait);
  return { dismiss: () => item.remove() };
}

// Said to a screen reader alone, for what the page already shows where it happened (a row's
// reason its import failed): a toast as well said it twice, and on a phone lay over the row's
// own buttons.
export function announce(message, { error = false } = {}) {
  const host = document.getElementById(error ? "alerts" : "status");
  const item = h("div", { class: "visually-hidden", text: message });
  host.append(item);
  setTimeout(() => item.remove(), 7000);
}

// Closing or reloading the page asks first (the browser's own question) while work would be
// lost with it: a run over many models, images uploading, an edit not saved.
export function askBeforeLeaving(event) {
  event.preventDefault();
  event.returnValue = ""; // browsers that still ask for it
}

// `holdThePage(1)` as such work starts, `holdThePage(-1)` as it ends: the page asks before it
// is left while any is under way (they may overlap).
let holds = 0;
export function holdThePage(d) {
  holds += d;
  if (holds > 0) window.addEventListener("beforeunload", askBeforeLeaving);
  else window.removeEventListener("beforeunload", askBeforeLeaving);
}

// What the server counts of a field it trims: the characters (code points) of the trimmed
// text. A `maxlength` counts UTF-16 units of the text as typed: a name of emoji was cut at half
// the server's limit, and one pasted with spaces around it lost its end.
export const charsOf = (text) => [...text.trim()].length;

// Holds `control` to `limit` characters once trimmed (see charsOf): over it, the field is
// invalid (its form is not sent, and shows the field) and says by how much in
// `control.overLimit`, to be put beside it and named in its aria-describedby. A value set by
// code (no input event) is checked by `control.checkLimit()`. `kept`: the value the record
// holds, which is not sent while left as it is: over the limit (a legacy record's, a
// script's), it must not stop the Save of another field (a maxlength too flagged only what
// was typed). `sent`: what the field's value is sent as (a tag folded, see foldTagName), which
// is what the server counts: "㍻" folds to two characters, "é" typed with its accent apart to one.
export function heldTo(control, limit, kept = null, sent = (value) => value) {
  if (!limit) return control;
  const said = h("span", { class: "field-error", id: `${control.id}-over`, "aria-live": "polite" });
  const check = () => {
    const count = control.value === kept ? 0 : charsOf(sent(control.value));
    const asSent = count === charsOf(control.value) ? "" : " as it is saved";
    const text = count > limit ? `At most ${limit} characters once trimmed; this has ${count}${asSent}` : "";
    control.setCustomValidity(text);
    control.setAttribute("aria-invalid", String(Boolean(text)));
    said.textContent = text;
  };
  control.addEventListener("input", check);
  check();
  control.overLimit = said;
  control.checkLimit = check;
  return control;
}

// Cuts what is typed or pasted into `control` so that it holds at most `limit` characters
// once trimmed (see charsOf), as a `maxlength` cuts but counting as the server does: what is
// over the limit goes from the end of what was just put in (before the caret; past it only
// if that is not enough), never half a character of two UTF-16 units.
export function cutTo(control, limit) {
  if (!limit) return control;
  control.addEventListener("input", () => {
    let over = charsOf(control.value) - limit;
    if (over <= 0) return;
    let before = [...control.value.slice(0, control.selectionEnd ?? control.value.length)];
    let after = [...control.value.slice(before.join("").length)];
    // Again while spaces at an end went, which the server does not count.
    for (; over > 0; over = charsOf(before.join("") + after.join("")) - limit) {
      const fromBefore = Math.min(over, before.length);
      before = before.slice(0, before.length - fromBefore);
      after = after.slice(0, after.length - (over - fromBefore));
    }
    const kept = before.join("");
    control.value = kept + after.join("");
    control.setSelectionRange(kept.length, kept.length);
  });
  return control;
}

export async function copyText(text, what = "Text") {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No Clipboard API (a page served over plain http from another machine, a phone on the
    // LAN) or refused: copied from a hidden text field, which takes the focus for a moment;
    // it goes back to the control that had it (it fell to the page's body, and the next Tab
    // began at the top). Inside an open dialog, the field is too (the page behind is inert).
    const opener = document.activeElement;
    const area = h("textarea", { class: "visually-hidden", "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    (opener?.closest("dialog[open]") || document.body).append(area);
    area.focus({ preventScroll: true });
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (opener && opener.isConnected) opener.focus({ preventScroll: true });
    if (!copied) return toast(`${what} could not be copied: select it and copy it yourself`, { error: true });
  }
  toast(`${what} copied`);
}

export function copyButton(text, label, what = label) {
  return h("button", {
    type: "button", class: "small", text: "Copy", "aria-label": `Copy ${label}`,
    onclick: () => copyText(text, what),
  });
}

// A modal question; resolves true when the person confirms. Focus returns where it was.
export function confirmDialog({ title, body, confirm = "Delete", danger = true }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const ok = h("button", { type: "button", class: danger ? "danger solid" : "primary", text: confirm });
    const cancel = h("button", { type: "button", text: "Cancel" });
    const dialog = h("dialog", { "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title", text: title }),
      body ? h("p", { text: body }) : null,
      h("div", { class: "buttons" }, cancel, ok));
    let answer = false;
    ok.addEventListener("click", () => { answer = true; dialog.close(); });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

// A button whose request runs says so ("Importing…", "Deleting…"; aria-busy) and is aria-disabled (not
// disabled, which would drop its focus); `busyText` null puts it back as it was.
export function showBusy(button, busyText) {
  if (busyText) {
    button.dataset.idleText = button.textContent;
    button.textContent = busyText;
    button.setAttribute("aria-disabled", "true");
  } else {
    button.textContent = button.dataset.idleText || button.textContent;
    button.removeAttribute("aria-disabled");
  }
  button.setAttribute("aria-busy", String(Boolean(busyText)));
}

export function debounce(fn, ms) {
  let timer = 0;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

export function note(text, { error = false } = {}) {
  return h("p", { class: error ? "note error-note" : "note", text });
}

// AutoV2 as Civitai shows it: the first 10 hex digits of the SHA256, in upper case (the API's
// `autov2` is the same digits in lower case, like its `sha256`).
export function autov2(record) {
  const digits = record.autov2 || (record.sha256 || "").slice(0, 10);
  return digits.toUpperCase();
}

// Plain text from a value that may hold HTML (Civitai descriptions do): parsed inertly,
// never inserted as markup.
export function plainText(value) {
  if (typeof value !== "string") return value === undefined || value === null ? "" : JSON.stringify(value);
  if (!/[<&]/.test(value)) return value;
  const doc = new DOMParser().parseFromString(value.replace(/<(br|\/p|\/li|\/h\d)\s*\/?>/gi, "\n$&"), "text/html");
  return (doc.body.textContent || "").replace(/\n{3,}/g, "\n\n").trim();
}

export function isHttpUrl(value) {
  return typeof value === "string" && /^https?:\/\/[^\s]+$/i.test(value.trim());
}

export function externalLink(url, text = url) {
  return h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text });
}

// The characters a server refuses in a name show as nothing, or as a box: each is written as
// its code ("bad<U+0007>tag"). `refused`: the server's ranges of code points (api.js
// refusedCharacters); without them, control characters only. Invisible characters it keeps
// (the joiner of "👩‍💻", the non-joiner of Persian words) were written as codes too.
export function spelledOut(text, refused = null) {
  const isRefused = refused
    ? (n) => refused.some(([low, high]) => low <= n && n <= high)
    : (n) => /\p{Cc}/u.test(String.fromCodePoint(n));
  return [...text].map((c) => {
    const n = c.codePointAt(0);
    return isRefused(n) ? `<U+${n.toString(16).toUpperCase().padStart(4, "0")}>` : c;
  }).join("");
}
