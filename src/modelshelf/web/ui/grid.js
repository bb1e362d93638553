// The library grid: thousands of cards in a virtual list. Only the rows on screen (and one
// above and below) exist in the page; a row's height is known before its data arrives, so
// the scroll bar stands for the whole library and nothing jumps. Pages of models are fetched
// when their rows come near; covers load only for cards on screen, and only once the scroll
// slows down (dragging the scroll bar across 10,000 models fetches nothing on the way).
// Keyboard: one card is in the tab order; arrows, Home/End and Page Up/Down move between cards.
import { h, debounce, formatBytes, plural, tagsByName } from "./dom.js";
import { imageUrl } from "./api.js";
import { pickMark } from "./selection.js";

const GAP = 12;
const OVERSCAN_ROWS = 1;
const FAST_PX_PER_S = 2500;
const CHIPS_AT_MOST = 4;

// What the base-model filter matches, so that a card and the filter agree: text, or nothing.
export function baseModelOf(record) {
  const base = (record.meta_json || {}).base_model;
  return typeof base === "string" ? base : "";
}

export function presentFiles(record) {
  return (record.files || []).filter((f) => f.present);
}

export function buildCard(record, index, selection = null) {
  const cover = record.images && record.images[0];
  const name = record.name || record.sha256.slice(0, 12);
  const img = cover
    ? h("img", {
        alt: `Cover of ${name}`, decoding: "async", draggable: "false",
        dataset: { src: imageUrl(cover, "low"), srcset: `${imageUrl(cover, "low")} 400w, ${imageUrl(cover, "medium")} 800w` },
      })
    : h("div", { class: "placeholder", "aria-hidden": "true", text: record.type || "model" });
  if (cover) img.addEventListener("load", () => img.classList.add("loaded"), { once: true });
  const badges = h("div", { class: "badges" });
  if (record.missing) badges.append(h("span", { class: "badge missing", text: "Missing" }));
  const copies = presentFiles(record).length;
  if (copies > 1) badges.append(h("span", { class: "badge dup", text: `Duplicate ×${copies}` }));
  const base = baseModelOf(record);
  const facts = [["type", record.type], ["base", base], ["size", formatBytes(record.size_bytes)]].filter(([, text]) => text);
  const allTags = tagsByName(record.tags).filter((t) => t.name !== record.type);
  const tags = allTags.slice(0, CHIPS_AT_MOST);
  const count = (record.images || []).length;
  const picked = Boolean(selection && selection.active && selection.has(record.sha256));
  const label = [name, record.type, base, record.missing && "file missing", copies > 1 && `${copies} copies on disk`, count && `${count} ${count === 1 ? "image" : "images"}`, picked && "selected"]
    .filter(Boolean).join(", ");
  const link = h("a", { class: "card-link", href: `models/${record.sha256}`, tabindex: "-1", "aria-label": label },
    h("div", { class: "cover" }, img, badges,
      count > 1 ? h("span", { class: "imgcount", text: `${count} img` }) : null),
    h("div", { class: "info" },
      h("span", { class: "name", title: name },
        h("span", { class: "name-text" }, h("span", { class: "tail", "aria-hidden": "true", dataset: { end: endOf(name) } }), name)),
      h("span", { class: "sub", title: facts.map(([, text]) => text).join(" · ") },
        facts.map(([part, text], i) => h("span", { class: part, text: i ? `\u00a0· ${text}` : text }))),
      h("ul", { class: "chips", dataset: { tags: String(allTags.length) } }, tags.map((t) => h("li", { class: "chip", text: t.name })),
        h("li", { class: "more", hidden: true }))));
  return h("div", { class: picked ? "card picked" : "card", role: "listitem", dataset: { index: String(index), state: "full", sha: record.sha256 } },
    pickMark(record, selection), link);
}

// The end of a name kept in sight when the name is cut (see fitNames): its last word, or its
// last characters; files of one stem differ there ("..._fp16_pruned_007", "... v3").
function endOf(name) {
  const word = /[\s_.-]*[^\s_.-]{1,12}$/.exec(name);
  return word && word[0].length < name.length ? word[0] : name.slice(-8);
}

// A name longer than the card's two lines was cut at their end, where names of one stem differ:
// every card of a folder read the same. Cut, it shows its end after the ellipsis (.cut: the
// tail floats at the foot of the two lines, the text cut before it; drawn from its data-end,
// so that the name's text is the name alone). One pass of writes (as
// if uncut), one of reads, one of writes.
function fitNames(cards) {
  const names = cards.map((card) => card.querySelector(".name-text")).filter(Boolean);
  for (const name of names) name.classList.remove("cut");
  const cut = names.map((name) => name.scrollHeight > name.clientHeight + 1);
  names.forEach((name, i) => name.classList.toggle("cut", cut[i]));
}

// A card's chips are one row: those that do not fit it are hidden, and "+N" after the ones shown
// says how many of the model's tags the card does not show (a model can have 120). Measured in
// one pass of reads, then one of writes, for the cards not yet fitted to the cards' width.
function fitChips(cards, width) {
  const unfitted = cards.filter((card) => card.dataset.fit !== String(width));
  fitNames(unfitted);
  const lists = unfitted.map((card) => card.querySelector(".chips")).filter(Boolean);
  if (!lists.length) return;
  const gap = parseFloat(getComputedStyle(lists[0]).columnGap) || 0;
  const sizes = lists.map((list) => [list.clientWidth, [...list.querySelectorAll(".chip")].map((chip) => chip.offsetWidth)]);
  lists.forEach((list, i) => {
    const [room, widths] = sizes[i];
    const total = Number(list.dataset.tags);
    const more = list.querySelector(".more");
    // The badge's width is its min-width: the same whatever N is, up to three digits.
    const badge = parseFloat(getComputedStyle(more).minWidth) || 0;
    let shown = 0;
    let used = 0;
    for (const w of widths) {
      const next = used + (shown ? gap : 0) + w;
      const after = shown + 1 < total ? gap + badge : 0;
      if (next + after > room) break;
      used = next;
      shown += 1;
    }
    [...list.querySelectorAll(".chip")].forEach((chip, j) => { chip.hidden = j >= shown; });
    more.hidden = shown >= total;
    more.textContent = `+${total - shown}`;
    more.setAttribute("aria-label", `and ${plural(total - shown, "more tag")}`);
    list.closest(".card").dataset.fit = String(width);
  });
}

function focusable(card) {
  card.tabIndex = -1;
  return card;
}

// A card whose model is on its way, or whose page could not be fetched (`failed`).
function buildSkeleton(index, failed = false) {
  return h("div", { class: failed ? "card skeleton failed" : "card skeleton", role: "listitem", "aria-busy": failed ? null : "true", dataset: { index: String(index), state: failed ? "failed" : "skeleton" } },
    h("div", { class: "cover" }),
    h("div", { class: "info" }, h("span", { class: "name", text: failed ? "Not loaded" : "Loading" }), h("span", { class: "sub", text: "…" })));
}

export class VirtualGrid {
  constructor(results, { cardMin, selection = null }) {
    this.results = results;
    this.cardMin = cardMin;
    this.selection = selection;
    this.cards = new Map();
    this.focusIndex = 0;
    this.layout = null;
    this.frame = 0;
    this.speed = 0;
    this.lastY = window.scrollY;
    this.lastT = performance.now();
    this.el = h("div", { class: "grid-viewport", role: "list", "aria-label": "Models" });
    this.settle = debounce(() => { this.speed = 0; this.update(); }, 120);
    this.onScroll = () => this.scrolled();
    this.onKey = (event) => this.key(event);
    this.onClick = (event) => this.clicked(event);
    this.observer = new ResizeObserver(() => { this.layout = null; this.schedule(); });
  }

  attach() {
    window.addEventListener("scroll", this.onScroll, { passive: true });
    this.el.addEventListener("keydown", this.onKey);
    this.el.addEventListener("click", this.onClick);
    this.observer.observe(this.el);
    this.setResults(this.results);
  }

  destroy() {
    this.results.onChange = () => {}; // pages still arriving draw nothing (see model pages)
    window.removeEventListener("scroll", this.onScroll);
    this.el.removeEventListener("keydown", this.onKey);
    this.el.removeEventListener("click", this.onClick);
    this.observer.disconnect();
    this.settle.cancel();
    cancelAnimationFrame(this.frame);
  }

  setResults(results) {
    this.results = results;
    this.focusIndex = 0;
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
    results.onChange = () => this.schedule();
    this.update();
  }

  // Select mode turned on or off: every card is drawn again, with or without its mark.
  setSelecting() {
    const refocus = this.el.contains(document.activeElement);
    for (const card of this.cards.values()) card.remove();
    this.cards.clear();
    this.update();
    if (refocus) this.focusCard(this.focusIndex);
  }

  // What is picked changed: the cards on screen show it.
  refreshPicks() {
    for (const card of this.cards.values()) {
      if (card.dataset.state !== "full") continue;
      const picked = this.selection.active && this.selection.has(card.dataset.sha);
      card.classList.toggle("picked", picked);
      const mark = card.querySelector(".pick");
      if (mark) mark.checked = picked;
      const link = card.querySelector("a");
      link.setAttribute("aria-label", link.getAttribute("aria-label").replace(/, selected$/, "") + (picked ? ", selected" : ""));
    }
  }

  // In Select mode a click picks the card instead of opening it (Shift: a range).
  clicked(event) {
    if (!this.selection || !this.selection.active) return;
    const card = event.target.closest(".card");
    if (!card || card.dataset.state !== "full") return;
    // Not on the mark itself: the browser would undo the tick after refreshPicks set it.
    if (!event.target.classList.contains("pick")) event.preventDefault();
    this.focusIndex = Number(card.dataset.index);
    this.selection.toggle(this.results, this.focusIndex, event.shiftKey);
  }

  setCardMin(px) {
    const anchor = this.firstVisibleIndex();
    this.cardMin = px;
    this.layout = null;
    this.update();
    this.scrollToIndex(anchor, "top");
  }

  scrolled() {
    const now = performance.now();
    const dt = Math.max(1, now - this.lastT);
    this.speed = (Math.abs(window.scrollY - this.lastY) / dt) * 1000;
    this.lastY = window.scrollY;
    this.lastT = now;
    this.schedule();
    this.settle();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.update(); });
  }

  computeLayout() {
    const width = this.el.clientWidth || 1;
    // A phone gets two columns at least, as galleries do; the size slider rules above that.
    const least = width < 560 ? Math.min(this.cardMin, (width - GAP) / 2) : this.cardMin;
    const columns = Math.max(1, Math.floor((width + GAP) / (least + GAP)));
    const cardWidth = (width - GAP * (columns - 1)) / columns;
    const info = parseFloat(getComputedStyle(this.el).getPropertyValue("--info-h")) || 106;
    const cardHeight = Math.round(cardWidth * 4 / 3 + info);
    this.layout = { width, columns, cardWidth, cardHeight, rowHeight: cardHeight + GAP };
  }

  // Rows [first, last] that intersect the window, not counting overscan.
  visibleRows() {
    const { rowHeight } = this.layout;
    const top = window.scrollY - (this.el.getBoundingClientRect().top + window.scrollY);
    const first = Math.max(0, Math.floor(top / rowHeight));
    const last = Math.floor((top + window.innerHeight) / rowHeight);
    return [first, last];
  }

  firstVisibleIndex() {
    if (!this.layout) return 0;
    return this.visibleRows()[0] * this.layout.columns;
  }

  update() {
    if (!this.layout) this.computeLayout();
    const { columns, rowHeight } = this.layout;
    const total = this.results.total || 0;
    const rows = Math.ceil(total / columns);
    this.el.style.height = `${Math.max(0, rows * rowHeight - GAP)}px`;
    const [firstRow, lastRow] = this.visibleRows();
    const start = Math.max(0, (firstRow - OVERSCAN_ROWS) * columns);
    const end = Math.min(total, (lastRow + 1 + OVERSCAN_ROWS) * columns);
    const fast = this.speed > FAST_PX_PER_S;
    if (!fast) this.results.ensure(start, end);
    const focused = this.el.contains(document.activeElement) ? document.activeElement.closest(".card") : null;
    for (const [index, card] of this.cards) {
      if ((index < start || index >= end || index >= total) && card !== focused) {
        card.remove();
        this.cards.delete(index);
      }
    }
    if (!focused && (this.focusIndex < start || this.focusIndex >= end)) {
      this.focusIndex = Math.min(Math.max(firstRow * columns, start), Math.max(0, total - 1));
    }
    for (let index = start; index < end; index += 1) this.place(index);
    fitChips([...this.cards.values()].filter((card) => card.dataset.state === "full"), this.layout.cardWidth);
    if (!fast) this.loadImages(firstRow * columns, Math.min(total, (lastRow + 1) * columns));
  }

  place(index) {
    const record = this.results.get(index);
    let card = this.cards.get(index);
    const wanted = record ? "full" : this.results.failed(index) ? "failed" : "skeleton";
    if (!card || card.dataset.state !== wanted) {
      const fresh = record ? buildCard(record, index, this.selection) : buildSkeleton(index, wanted === "failed");
      // Focus moved to a card still loading (see focusCard) goes on to its link.
      const hadFocus = card !== undefined && card === document.activeElement;
      if (card) card.replaceWith(fresh);
      else this.el.append(fresh);
      card = fresh;
      this.cards.set(index, card);
      if (hadFocus) (card.querySelector("a") || focusable(card)).focus({ preventScroll: true });
    }
    const { columns, cardWidth, cardHeight, rowHeight } = this.layout;
    const x = (index % columns) * (cardWidth + GAP);
    const y = Math.floor(index / columns) * rowHeight;
    card.style.transform = `translate(${x}px, ${y}px)`;
    card.style.width = `${cardWidth}px`;
    card.style.height = `${cardHeight}px`;
    card.setAttribute("aria-posinset", String(index + 1));
    card.setAttribute("aria-setsize", String(this.results.total || 0));
    const link = card.querySelector("a");
    if (link) link.tabIndex = index === this.focusIndex ? 0 : -1;
  }

  loadImages(from, to) {
    const sizes = `${Math.round(this.layout.cardWidth)}px`;
    for (let index = from; index < to; index += 1) {
      const img = this.cards.get(index)?.querySelector("img[data-src]");
      if (!img) continue;
      img.sizes = sizes;
      img.srcset = img.dataset.srcset;
      img.src = img.dataset.src;
      delete img.dataset.src;
    }
  }

  stickyOffset() {
    const bar = document.querySelector(".toolbar");
    const bottom = bar ? bar.getBoundingClientRect().bottom : 0;
    return Math.max(52, getComputedStyle(bar || document.body).position === "sticky" ? bottom : 52);
  }

  scrollToIndex(index, where = "nearest") {
    if (!this.layout) return;
    const top = this.el.getBoundingClientRect().top + window.scrollY
      + Math.floor(index / this.layout.columns) * this.layout.rowHeight;
    const offset = this.stickyOffset() + 8;
    if (where === "top" || top < window.scrollY + offset) window.scrollTo(0, Math.max(0, top - offset));
    else if (top + this.layout.cardHeight > window.scrollY + window.innerHeight) {
      window.scrollTo(0, top + this.layout.cardHeight - window.innerHeight + 8);
    }
  }

  // `scroll` false: the page stays where it is (Back put it where the person left it).
  focusCard(index, { scroll = true } = {}) {
    const total = this.results.total || 0;
    if (!total) return;
    this.focusIndex = Math.max(0, Math.min(total - 1, index));
    if (scroll) this.scrollToIndex(this.focusIndex);
    this.speed = 0;
    this.update();
    const card = this.cards.get(this.focusIndex);
    if (!card) return;
    // A card still loading holds the focus (and the arrow keys) until its link arrives.
    (card.querySelector("a") || focusable(card)).focus({ preventScroll: true });
  }

  key(event) {
    const card = event.target.closest(".card");
    if (!card || !this.layout) return;
    const index = Number(card.dataset.index);
    if (event.key === " " && this.selection && this.selection.active) {
      event.preventDefault();
      this.selection.toggle(this.results, index, event.shiftKey);
      return;
    }
    const { columns } = this.layout;
    const page = Math.max(1, Math.floor(window.innerHeight / this.layout.rowHeight)) * columns;
    const moves = {
      ArrowRight: index + 1, ArrowLeft: index - 1, ArrowDown: index + columns, ArrowUp: index - columns,
      Home: event.ctrlKey ? 0 : index - (index % columns),
      End: event.ctrlKey ? (this.results.total || 1) - 1 : index - (index % columns) + columns - 1,
      PageDown: index + page, PageUp: index - page,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    this.focusCard(moves[event.key]);
  }
}
