// The library page: search as you type, filters by type, tag, base model and files, sort, and the
// virtual grid. The URL holds every filter (bookmarkable; Back returns to the last view and
// the place in it). Results of the last view are kept, so coming back from a model is instant.
import { h, clear, debounce, plural, note, toast, heldTo, cutTo, charsOf } from "./dom.js";
import { capabilities, listsChanged } from "./api.js";
import { typeChoices, baseModelChoices, suggestTags, tagsChanged } from "./choices.js";
import { VirtualGrid } from "./grid.js";
import { Results } from "./results.js";
import { Selection, selectionBar } from "./selection.js";
import { setQuery, savedScroll, focusHeading, finishReturn } from "./router.js";

const FILTERS = ["q", "type", "tag", "base_model", "missing", "sort", "order"];
// The files filter: `missing` as the API takes it, and what the control and its chip say.
const MISSING_CHOICES = [["", "All models"], ["false", "Files present"], ["true", "Files missing"]];
// "Best match" is the order of a search that names no sort, and is offered only while searching.
const BEST_MATCH = "best:";
const SORTS = [
  [BEST_MATCH, "Best match"],
  ["name:asc", "Name, A to Z"],
  ["name:desc", "Name, Z to A"],
  ["created_at:desc", "Newest first"],
  ["created_at:asc", "Oldest first"],
  ["size_bytes:desc", "Largest first"],
  ["size_bytes:asc", "Smallest first"],
];
// Short: it only merges keys typed faster than this; results must follow the last key at once.
const SEARCH_DELAY_MS = 40;
const CARD_SIZE_KEY = "modelshelf.cardMin";

let lastResults = null;
// Picks outlive a visit to another view (Back, Forward, a model page and back).
const selection = new Selection();
const LIBRARY_QUERY_KEY = "modelshelf.libraryQuery";

// After a tagging or an edit of many models (which outlives a visit to another page): the
// library shown is read again in place, or the next visit to it reads it again.
let refreshShown = null;
function afterBulkChange() {
  invalidateLibrary();
  if (refreshShown) refreshShown();
}

// The kept results are out of date: the next visit to the library asks the server again.
// They still say which models were shown around one (see neighbours).
export function invalidateLibrary() {
  if (lastResults) lastResults.stale = true;
  listsChanged(); // and the lists of its tags (their counts too), types and base models
}

// The models before and after `sha256` in the library as last shown, when that part of it
// was loaded: the model page offers them, to go through a filtered library one by one.
export function neighbours(sha256) {
  if (!lastResults) return {};
  const index = lastResults.indexOf(sha256);
  if (index < 0) return {};
  return { previous: lastResults.get(index - 1), next: lastResults.get(index + 1), index, total: lastResults.total };
}

// The same, once the pages holding the models around it are loaded (the one after the last
// of a page of 100 is on the next page): true if they were not loaded before.
export async function neighboursLoaded(sha256) {
  const results = lastResults;
  const index = results ? results.indexOf(sha256) : -1;
  if (index < 0) return false;
  const from = Math.max(0, index - 1);
  const to = Math.min(results.total ?? index + 2, index + 2);
  if (results.get(from) !== undefined && results.get(to - 1) !== undefined) return false;
  await results.range(from, to);
  return true;
}

// The library as the person last left it (filters included).
export function libraryHref() {
  return `./${sessionStorage.getItem(LIBRARY_QUERY_KEY) || ""}`;
}

// The filters of the URL, as the server takes them, and `over`: those too long to be asked for.
function readFilters(limit) {
  const params = new URLSearchParams(location.search);
  const filters = {};
  // Trimmed, as typing sends them: the server's limits are on the text as it comes, and a
  // link's filter at the limit with a space after it was answered 400.
  for (const name of FILTERS) if (params.get(name)?.trim()) filters[name] = params.get(name).trim();
  // An old bookmark's `missing=1` would be answered 400; only the API's two values count.
  if (!["true", "false"].includes(filters.missing)) delete filters.missing;
  return { filters, over: heldToLimit(filters, limit) };
}

// An old bookmark or a link from another tool may hold texts longer than the server takes
// (answered 400: the whole page said "the library could not be loaded"). The search is cut as
// typing cuts it (characters of the trimmed text, see charsOf); a tag, base model or type over
// the limit is taken out of `filters`; each is returned as it was, for its field to show and say.
function heldToLimit(filters, limit) {
  const over = {};
  for (const name of ["q", "tag", "base_model", "type"]) {
    if (!filters[name] || !limit || charsOf(filters[name]) <= limit) continue;
    over[name] = filters[name];
    if (name === "q") filters.q = [...filters.q.trim()].slice(0, limit).join("").trim();
    else delete filters[name];
  }
  return over;
}

// The query the server understands: parameters it does not list are left out.
function apiQuery(filters, caps) {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    if (!filters[name]) continue;
    if (name !== "q" && name !== "type" && name !== "tag" && !caps.hasQuery("GET", "/api/models", name)) continue;
    params.set(name, filters[name]);
  }
  return params.toString();
}

// The sort control's value for `filters`: best match first while searching and by name A to Z
// otherwise, unless they say otherwise; a sort by another key newest or largest first.
function sortValue(filters) {
  if (filters.q && !filters.sort) return BEST_MATCH;
  return `${filters.sort || "name"}:${filters.order || (filters.sort && filters.sort !== "name" ? "desc" : "asc")}`;
}

function urlQuery(filters) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (filters[name]) params.set(name, filters[name]);
  return params;
}

export async function mountLibrary(main, context) {
  const caps = await capabilities();
  if (!context.isCurrent()) return null;
  const { filters: read, over } = readFilters(caps.limits.filter_text);
  let filters = read;
  if (Object.keys(over).length) setQuery(urlQuery(filters), { push: false }); // says what is shown
  sessionStorage.setItem(LIBRARY_QUERY_KEY, location.search);
  document.title = filters.q ? `“${filters.q}” · modelshelf` : "Library · modelshelf";

  const heading = h("h1", { text: "Library" });
  const count = h("span", { class: "count", "aria-live": "polite" });
  // No longer than the server takes, counted as it counts (characters of the trimmed text
  // sent; a `maxlength` counted UTF-16 units, half as many emoji): a prompt pasted in is cut
  // there, and still searches (a longer one was answered 400, shown as "the library could not
  // be loaded"); a tag or base model over it is said at its field, and not asked for.
  const longest = caps.limits.filter_text;
  const search = cutTo(h("input", {
    type: "search", id: "search", name: "q", autocomplete: "off", spellcheck: "false",
    placeholder: "Name, file, trigger word, tag, hash…", value: filters.q || "",
  }), longest);
  // The chosen type is an option from the start; the others arrive with get_types.
  const typeSelect = h("select", { id: "filter-type" }, h("option", { value: "", text: "All types" }),
    filters.type ? h("option", { value: filters.type, text: filters.type, selected: true }) : null);
  const tagInput = heldTo(h("input", { id: "filter-tag", list: "tag-options", autocomplete: "off", placeholder: "Any tag", value: filters.tag || over.tag || "" }), longest);
  const tagList = h("datalist", { id: "tag-options" });
  suggestTags(tagInput);
  const baseInput = heldTo(h("input", { id: "filter-base", list: "base-options", autocomplete: "off", placeholder: "Any base model", value: filters.base_model || over.base_model || "" }), longest);
  for (const input of [tagInput, baseInput]) if (input.overLimit) input.setAttribute("aria-describedby", input.overLimit.id);
  const baseList = h("datalist", { id: "base-options" });
  const sortSelect = h("select", { id: "sort" }, SORTS.map(([value, text]) => h("option", { value, text })));
  showSort();
  // Three states: a collector looks for the models whose files are gone, and also wants
  // them out of the way.
  const missingSelect = h("select", { id: "filter-missing" }, MISSING_CHOICES.map(([value, text]) => h("option", { value, text })));
  missingSelect.value = filters.missing || "";
  const cardMin = Number(localStorage.getItem(CARD_SIZE_KEY)) || 200;
  const sizeRange = h("input", { type: "range", id: "card-size", min: "140", max: "360", step: "20", value: String(cardMin) });
  const canSort = caps.hasQuery("GET", "/api/models", "sort");
  const canBase = caps.hasQuery("GET", "/api/models", "base_model");
  const canMissing = caps.hasQuery("GET", "/api/models", "missing");
  sortSelect.disabled = !canSort;
  baseInput.disabled = !canBase;

  const toolbar = h("div", { class: "toolbar", role: "search" },
    h("div", { class: "field search" }, h("label", { for: "search", text: "Search" }), search),
    h("div", { class: "field" }, h("label", { for: "filter-type", text: "Type" }), typeSelect),
    h("div", { class: "field" }, h("label", { for: "filter-tag", text: "Tag" }), tagInput, tagInput.overLimit || null, tagList),
    h("div", { class: "field" }, h("label", { for: "filter-base", text: "Base model" }), baseInput, baseInput.overLimit || null, baseList),
    h("div", { class: "field" }, h("label", { for: "sort", text: "Sort" }), sortSelect),
    canMissing ? h("div", { class: "field" }, h("label", { for: "filter-missing", text: "Files" }), missingSelect) : null,
    h("div", { class: "field card-size" }, h("label", { for: "card-size", text: "Card size" }), sizeRange));
  const unavailable = [!canSort && "sorting", !canBase && "the base-model filter"].filter(Boolean);
  const capsNote = unavailable.length ? note(`This server does not offer ${unavailable.join(" or ")} yet; those controls are disabled.`) : null;
  const active = h("div", { class: "active-filters" });
  const status = h("div");
  // Back from a model (Back, the page's "← Library", after J and K too): its card, where it
  // was in the results last shown, is the place to return to; it takes the focus.
  const key = apiQuery(filters, caps);
  const left = /^models\/([^/]+)$/.exec(context.from || "");
  const returnTo = left && lastResults && lastResults.key === key ? lastResults.indexOf(decodeURIComponent(left[1])) : -1;
  const results0 = lastResults && !lastResults.stale && lastResults.key === key ? lastResults : null;
  const grid = new VirtualGrid(results0 || new Results(key), { cardMin, selection });
  const bar = selectionBar(selection, {
    onDone: afterBulkChange, onLeave: leaveSelecting, limits: caps.limits, results: () => grid.results,
    canEdit: caps.has("POST", "/api/models/edit"), canDelete: caps.has("POST", "/api/models/delete"),
  });
  // The cards shown and the lists offered (a tag made, a base model or a type set) anew.
  refreshShown = () => { reload(); readChoices(); };
  const selectButton = h("button", {
    type: "button", id: "select-mode", text: "Select", "aria-pressed": "false",
    title: "Select models to tag, edit or delete them at once (Esc: done)",
    onclick: () => setSelecting(!selection.active),
  });
  if (caps.has("POST", "/api/models/tags")) toolbar.append(h("div", { class: "field" }, selectButton));
  clear(main, h("div", { class: "page-head" }, heading, count), toolbar, capsNote, active, status, grid.el, bar);
  selection.onChange = () => {
    grid.refreshPicks();
    bar.update();
    selectButton.setAttribute("aria-pressed", String(selection.active));
  };
  selection.onChange();

  function setSelecting(on) {
    selection.setActive(on);
    grid.setSelecting();
  }

  // Escape in the bar's field: the bar goes, and the focus with it (to the page's body, and the
  // next Tab began at the top): it goes to Select, where the mode is turned on again.
  function leaveSelecting() {
    setSelecting(false);
    selectButton.focus();
  }

  // The same view asked again (after a tagging), in place: the grid keeps its height and the
  // page its scroll while the pages come back.
  function reload() {
    dropFailureToast();
    grid.results.abort();
    const results = new Results(grid.results.key, grid.results.total);
    lastResults = results;
    grid.setResults(results);
    watch(results);
  }

  function showState() {
    const results = grid.results;
    const total = results.total;
    count.textContent = total === null ? "" : plural(total, "model");
    bar.update(); // its Select all counts these results
    clear(status);
    if (results.error && total === null) {
      status.append(note(`The library could not be loaded: ${results.error.message}`, { error: true }),
        h("button", { type: "button", text: "Try again", onclick: () => apply(filters, { push: false, force: true }) }));
    } else if (total === 0) {
      const filtered = Object.keys(filters).some((k) => !["sort", "order"].includes(k));
      status.append(h("div", { class: "empty" },
        h("p", { text: filtered ? "No model matches these filters." : "The library is empty." }),
        filtered ? h("button", { type: "button", text: "Clear filters", onclick: () => apply({}, { push: true }) })
          : h("p", {}, "Bring models in with a ", h("a", { href: "jobs", text: "scan of your model folders" }), ", or promote ", h("a", { href: "pending", text: "pending models" }), ".")));
    }
    clear(active, Object.entries(filters).filter(([k]) => !["q", "sort", "order"].includes(k)).map(([k, v]) => {
      const files = k === "missing" && MISSING_CHOICES.find(([value]) => value === v)[1].toLowerCase();
      return h("span", { class: "chip" }, files || `${k.replace("_", " ")}: ${v}`,
        h("button", { type: "button", "aria-label": `Remove filter ${files || `${k.replace("_", " ")} ${v}`}`, text: "×", onclick: () => apply({ ...filters, [k]: undefined }, { push: true }) }));
    }));
  }

  // A page past the first that could not be fetched is said once, in a toast (its cards say
  // "Not loaded"; the note above the grid may be far out of view), taken away as soon as a
  // page loads again, or other results are shown.
  let failureToast = null;
  const dropFailureToast = () => {
    if (failureToast) failureToast.dismiss();
    failureToast = null;
  };
  function watch(results) {
    const inner = results.onChange;
    results.onChange = () => {
      inner();
      showState();
      if (results !== grid.results) return;
      if (!results.error || results.total === null) dropFailureToast();
      else if (!failureToast) {
        failureToast = toast(`Some models could not be loaded: ${results.error.message}. Trying again…`,
          { error: true, action: { label: "Try again", run: () => { failureToast = null; results.retry(); } } });
      }
    };
  }

  // The controls show `filters` when they change from elsewhere (a chip's ×, Clear filters).
  function showFilters() {
    if (document.activeElement !== search) search.value = filters.q || "";
    if (filters.type && ![...typeSelect.options].some((o) => o.value === filters.type)) {
      typeSelect.append(h("option", { value: filters.type, text: filters.type }));
    }
    typeSelect.value = filters.type || "";
    tagInput.value = filters.tag || "";
    baseInput.value = filters.base_model || "";
    for (const input of [tagInput, baseInput]) input.checkLimit?.();
    missingSelect.value = filters.missing || "";
    showSort();
  }

  // Shown while typing too: the order of the results changes with the first word.
  function showSort() {
    const best = sortSelect.options[0];
    best.hidden = best.disabled = !filters.q;
    sortSelect.value = sortValue(filters);
  }

  // Typing a search makes one history entry; the keys after it replace it, until another
  // control is used. A key that leaves the query as it was changes nothing.
  let searching = false;
  function apply(next, { push, force = false, typing = false }) {
    filters = Object.fromEntries(Object.entries(next).filter(([, v]) => v));
    const moved = setQuery(urlQuery(filters), { push });
    if (moved || !typing) searching = typing;
    if (!typing) showFilters();
    else showSort();
    sessionStorage.setItem(LIBRARY_QUERY_KEY, location.search);
    document.title = filters.q ? `“${filters.q}” · modelshelf` : "Library · modelshelf";
    const key = apiQuery(filters, caps);
    if (!force && key === grid.results.key) return showState();
    dropFailureToast();
    grid.results.abort();
    const results = new Results(key);
    lastResults = results;
    grid.setResults(results);
    watch(results);
    window.scrollTo(0, 0);
    showState();
    count.textContent = "Searching…";
  }

  const typed = debounce(() => {
    apply({ ...filters, q: search.value.trim() }, { push: !searching, typing: true });
  }, SEARCH_DELAY_MS);
  search.addEventListener("input", typed);
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { typed.cancel(); apply({ ...filters, q: search.value.trim() }, { push: !searching, typing: true }); }
    if (event.key === "ArrowDown") { event.preventDefault(); grid.focusCard(grid.focusIndex); }
  });
  typeSelect.addEventListener("change", () => apply({ ...filters, type: typeSelect.value }, { push: true }));
  // Over the server's limit: not asked for (it would answer 400); the field says why.
  tagInput.addEventListener("change", () => tagInput.validity.valid && apply({ ...filters, tag: tagInput.value.trim().toLowerCase() }, { push: true }));
  baseInput.addEventListener("change", () => baseInput.validity.valid && apply({ ...filters, base_model: baseInput.value.trim() }, { push: true }));
  missingSelect.addEventListener("change", () => apply({ ...filters, missing: missingSelect.value }, { push: true }));
  sortSelect.addEventListener("change", () => {
    const [sort, order] = sortSelect.value.split(":");
    // The default order needs no parameter: best match with words, name A to Z without.
    const plain = sort === "best" || (!filters.q && sort === "name" && order === "asc");
    apply({ ...filters, sort: plain ? "" : sort, order: plain ? "" : order }, { push: true });
  });
  sizeRange.addEventListener("input", () => {
    localStorage.setItem(CARD_SIZE_KEY, sizeRange.value);
    grid.setCardMin(Number(sizeRange.value));
  });
  // "/" focuses the search field from anywhere on the page, as in most galleries.
  // Escape ends Select mode (not while typing, nor over a dialog).
  const slash = (event) => {
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "/") {
      event.preventDefault();
      search.focus();
      search.select();
    }
    if (event.key === "Escape" && selection.active && !document.querySelector("dialog[open]")) setSelecting(false);
  };
  document.addEventListener("keydown", slash);

  grid.attach();
  watch(grid.results);
  lastResults = grid.results;
  function readChoices() {
    typeChoices(typeSelect, filters.type).catch(() => {});
    tagsChanged();
    if (canBase && caps.has("GET", "/api/models/base_models")) baseModelChoices(baseList).catch(() => {});
  }
  readChoices();
  const restore = savedScroll();
  const settle = () => {
    showState();
    // The grid takes its full height first, else the scroll is cut short at the page's end.
    grid.update();
    if (restore) window.scrollTo(0, restore);
    finishReturn();
    if (returnTo < 0 || returnTo >= (grid.results.total || 0)) return focusHeading(main, context.focus);
    // Reached by a link (no place saved): the card is brought into view near the top.
    if (!restore) grid.scrollToIndex(returnTo, "top");
    grid.focusCard(returnTo, { scroll: false });
  };
  if (grid.results.total !== null) settle();
  else grid.results.first.then(() => context.isCurrent() && settle());

  return () => {
    refreshShown = null;
    bar.destroy();
    dropFailureToast();
    document.removeEventListener("keydown", slash);
    typed.cancel();
    grid.destroy();
    selection.onChange = () => {};
  };
}
