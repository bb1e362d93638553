// The Tags page: every tag of the library with how many models carry it (a link to the library
// filtered by it), a filter, sort by name or by use; a new tag made before any model has it;
// rename in place (a name another tag has offers to merge into that one) and delete after a
// confirmation that says how many models carry it. The focus stays where the person works: on
// the renamed tag in its new place, on the next one after a delete or a merge.
import { h, clear, toast, note, plural, formatCount, confirmDialog, showBusy, byName } from "./dom.js";
import { call, post, capabilities, libraryTags, listsChanged, isUnavailable, ApiError } from "./api.js";
import { setQuery, focusHeading, savedScroll, returnToPlace } from "./router.js";
import { invalidateLibrary } from "./library.js";
import { foldTagName } from "./choices.js";
import { renameForm } from "./tagrename.js";
import { createForm, nameRefused } from "./tagcreate.js";

const ROWS_AT_ONCE = 200;
const NEAR_END_PX = 800; // more rows are drawn when the list's end comes this near
const SORTS = {
  name: ["Name, A to Z", (a, b) => byName(a.name, b.name)],
  most: ["Most used first", (a, b) => b.models - a.models || byName(a.name, b.name)],
  fewest: ["Fewest models first", (a, b) => a.models - b.models || byName(a.name, b.name)],
};

export async function mountTags(main, context) {
  const caps = await capabilities();
  if (!context.isCurrent()) return null;
  document.title = "Tags · modelshelf";
  const params = new URLSearchParams(location.search);
  const view = { q: params.get("q") || "", sort: SORTS[params.get("sort")] ? params.get("sort") : "name" };
  const can = {
    create: caps.has("POST", "/api/tags"),
    rename: caps.has("PATCH", "/api/tags/{id}"),
    remove: caps.has("DELETE", "/api/tags/{id}"),
    merge: caps.has("POST", "/api/tags/{id}/merge"),
  };
  const filter = h("input", { type: "search", id: "tag-filter", autocomplete: "off", spellcheck: "false", placeholder: "Part of a name", value: view.q });
  const sortSelect = h("select", { id: "tag-sort" }, Object.entries(SORTS).map(([value, [text]]) => h("option", { value, text })));
  sortSelect.value = view.sort;
  const count = h("span", { class: "count", "aria-live": "polite" });
  const list = h("ul", { class: "tag-list", "aria-label": "Tags" });
  const message = h("div");
  const empty = h("p", { class: "empty", hidden: true });
  const more = h("button", { type: "button", class: "more-tags", hidden: true });
  const missing = [!can.create && "creating", !can.rename && "renaming", !can.remove && "deleting"].filter(Boolean);

  let tags = []; // as last read: {id, name, models}, in the chosen order
  const rows = new Map(); // id -> {tag, el}: the row drawn for that version of the tag
  let editing = null; // the id of the tag being renamed
  let alive = true;

  const tagOf = (id) => tags.find((t) => t.id === id);
  const countOf = (id) => tagOf(id)?.models ?? null;

  clear(main, h("div", { class: "page-head" }, h("h1", { text: "Tags" }), count),
    can.create ? createForm({ maxLength: caps.limits.tag_name, onMade: made, onShow: showOnly, countOf }) : null,
    h("div", { class: "toolbar tags-toolbar", role: "search" },
      h("div", { class: "field search" }, h("label", { for: "tag-filter", text: "Filter tags" }), filter),
      h("div", { class: "field" }, h("label", { for: "tag-sort", text: "Sort" }), sortSelect)),
    missing.length ? note(`This server does not offer ${missing.join(" or ")} tags yet; those controls are missing or disabled.`) : null,
    message, list, empty, more);
  focusHeading(main, context.focus);

  // The list as the server has it now (a change made elsewhere shows; the copy shared with
  // the other pages is read again too).
  async function load() {
    try {
      const data = await libraryTags({ fresh: true });
      if (!alive) return;
      tags = [...data.tags].sort(SORTS[view.sort][1]);
      rows.clear(); // drawn anew from what was read (a rename form open is closed)
      clear(message);
      show();
      if (!context.focus && !placed) returnToRows();
    } catch (error) {
      if (alive) clear(message, note(isUnavailable(error) ? "This server does not list tags." : `The tags could not be loaded: ${error.message}`, { error: true }),
        h("button", { type: "button", text: "Try again", onclick: load }));
    }
  }

  // Back to the list: the rows down to the place it was left (and the margin past it that
  // nearEnd keeps drawn) and the row of the link followed from it are drawn, then it is shown
  // there (rows not seen yet have a height guessed: the link, not the offset, says where).
  let placed = false;
  function returnToRows() {
    placed = true;
    const bottom = savedScroll() + window.innerHeight + NEAR_END_PX;
    const link = (history.state || {}).link || "";
    const left = shownTags().findIndex((t) => link.startsWith(`./?tag=${encodeURIComponent(t.name)} `));
    while (!more.hidden && (more.getBoundingClientRect().top + window.scrollY < bottom || left >= limit)) {
      limit += ROWS_AT_ONCE;
      show();
    }
    returnToPlace(main);
  }

  function shownTags() {
    const q = foldTagName(view.q);
    return q ? tags.filter((t) => t.name.includes(q)) : tags;
  }

  // The first ROWS_AT_ONCE matching rows are in the list, ROWS_AT_ONCE more each time its end
  // comes near: a keystroke costs the same with 300 tags or 10,000 (putting a thousand rows
  // into the list took 60 ms a key). Rows are built once per version of a tag and kept.
  let limit = ROWS_AT_ONCE;
  let drawn = [];
  function show() {
    const matching = shownTags();
    const order = matching.slice(0, limit).map(rowOf);
    if (order.length !== drawn.length || order.some((el, i) => el !== drawn[i])) {
      // Rows past those drawn are only added (the focus in the rows drawn stays).
      const grows = drawn.length < order.length && drawn.every((el, i) => el === order[i]);
      if (grows) list.append(...order.slice(drawn.length));
      else list.replaceChildren(...order);
      drawn = order;
    }
    more.hidden = matching.length <= limit;
    more.textContent = `Show more (${formatCount(matching.length - order.length)} left)`;
    count.textContent = matching.length === tags.length ? plural(tags.length, "tag") : `${formatCount(matching.length)} of ${plural(tags.length, "tag")}`;
    empty.hidden = matching.length > 0;
    empty.textContent = tags.length ? `No tag has “${view.q.trim()}” in its name.` : "The library has no tags yet.";
  }

  // The next rows: drawn when the end of the list comes near, or at a click (the focus then
  // goes to the first of them).
  function showMore({ focus = false } = {}) {
    const first = limit;
    limit += ROWS_AT_ONCE;
    show();
    if (focus && drawn[first]) drawn[first].querySelector("button").focus();
    // Observed anew, it is told whether the end is still near (a jump to the new end passes
    // no moment where it is not, and the observer speaks only of changes).
    nearEnd.unobserve(more);
    nearEnd.observe(more);
  }
  more.addEventListener("click", () => showMore({ focus: true }));
  // Not while the button has the focus: the keyboard's user on it chooses with Enter, and rows
  // added under them would carry the button away (Enter then skipped the rows added).
  const nearEnd = new IntersectionObserver((seen) => {
    if (seen.some((e) => e.isIntersecting) && !more.hidden && document.activeElement !== more) showMore();
  }, { rootMargin: `${NEAR_END_PX}px 0px` });
  nearEnd.observe(more);
  more.addEventListener("blur", () => {
    nearEnd.unobserve(more);
    nearEnd.observe(more);
  });

  function rowOf(tag) {
    const kept = rows.get(tag.id);
    if (kept && kept.tag === tag) return kept.el;
    const label = `${plural(tag.models, "model")} tagged ${tag.name}`;
    const el = h("li", { dataset: { id: String(tag.id) } },
      h("span", { class: "tag-name", text: tag.name }),
      tag.models ? h("a", { class: "uses", href: `./?tag=${encodeURIComponent(tag.name)}`, "aria-label": label, text: plural(tag.models, "model") })
        : h("span", { class: "uses", text: "no models" }),
      h("span", { class: "row-actions" },
        h("button", { type: "button", class: "small", id: `rename-${tag.id}`, text: "Rename", "aria-label": `Rename tag ${tag.name}`, disabled: !can.rename, onclick: () => startRename(tag.id) }),
        h("button", { type: "button", class: "small danger", id: `delete-${tag.id}`, text: "Delete", "aria-label": `Delete tag ${tag.name}`, disabled: !can.remove, onclick: () => remove(tag.id) })));
    rows.set(tag.id, { tag, el });
    return el;
  }

  // Focus on the first of `ids` (elements) shown, else the filter field.
  function focusFirst(ids) {
    const found = ids.map((id) => id && document.getElementById(id)).find((el) => el && list.contains(el));
    (found || filter).focus();
  }

  // The ids of the rows beside the tag `id` as shown, for the focus to go to once it is gone.
  function besides(id, prefix) {
    const shown = shownTags();
    const at = shown.findIndex((t) => t.id === id);
    return [shown[at + 1], shown[at - 1]].map((t) => t && `${prefix}-${t.id}`);
  }

  // ---- rename -----------------------------------------------------------------------------

  function startRename(id) {
    if (editing !== null) stopRename({ focus: false });
    const tag = tagOf(id);
    const row = rows.get(id).el;
    const form = renameForm(tag, {
      maxLength: caps.limits.tag_name, canMerge: can.merge, countOf,
      onSave: (typed) => rename(tag, typed, form),
      onMerge: (target) => merge(tag, target, form),
      onCancel: () => stopRename({ focus: true }),
    });
    row.querySelector(".tag-name").replaceWith(form);
    editing = id;
    form.input.focus();
    form.input.select();
  }

  // Closes the form, its row drawn as the tag is now.
  function stopRename({ focus }) {
    const id = editing;
    editing = null;
    rows.delete(id);
    drawDownTo(id);
    if (focus) focusFirst([`rename-${id}`]);
  }

  // The rows down to the tag `id`, which a new name or a merge may have put past the rows
  // drawn (the last of 300 tags): else it was not in the list, and the focus meant for it
  // fell elsewhere.
  function drawDownTo(id) {
    const at = shownTags().findIndex((t) => t.id === id);
    if (at >= limit) limit = (Math.floor(at / ROWS_AT_ONCE) + 1) * ROWS_AT_ONCE;
    show();
  }

  // Resolves the tag that has the name already (409), or nothing; says any other refusal.
  async function rename(tag, typed, form) {
    const name = foldTagName(typed);
    if (!name) return form.say("A tag needs a name.");
    if (name === tag.name) return stopRename({ focus: true });
    try {
      const renamed = await call("PATCH", `api/tags/${tag.id}`, { body: { name: typed } });
      invalidateLibrary();
      const after = besides(tag.id, "rename");
      replace(tag.id, { ...tag, name: renamed.name });
      const said = `Tag “${tag.name}” renamed to “${renamed.name}”`;
      if (shownTags().some((t) => t.id === tag.id)) {
        toast(said);
        stopRename({ focus: true });
        return null;
      }
      // The filter hides the new name (as it may a tag just made): said, with a way to show
      // it; the focus goes on to the next row.
      toast(`${said}; it is not among the tags shown`, { action: { label: `Show ${renamed.name}`, run: () => showOnly(renamed.name) } });
      stopRename({ focus: false });
      focusFirst(after);
      return null;
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.body.tag) return error.body.tag;
      if (error instanceof ApiError && error.status === 404) return gone(tag);
      form.say(nameRefused(error, typed));
      return null;
    }
  }

  async function merge(tag, target, form) {
    try {
      const merged = await post(`api/tags/${tag.id}/merge`, { into: target.id });
      invalidateLibrary();
      // `models`: how many carried the merged tag (now they carry the other one).
      toast(`Tag “${tag.name}” merged into “${merged.tag.name}”; it was on ${plural(merged.models, "model")}`);
      const after = besides(tag.id, "rename");
      editing = null;
      await load();
      drawDownTo(merged.tag.id);
      focusFirst([`rename-${merged.tag.id}`, ...after]);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return gone(tag);
      form.say(error.message);
    }
  }

  // ---- delete -----------------------------------------------------------------------------

  // While a tag's delete runs, its button says so and another click asks nothing: on a slow
  // server a second click asked again, and its delete was told the tag was "changed or
  // deleted elsewhere".
  const deleting = new Set();
  async function remove(id) {
    if (deleting.has(id)) return;
    const tag = tagOf(id);
    const yes = await confirmDialog({
      title: `Delete the tag “${tag.name}”?`,
      body: tag.models
        ? `${plural(tag.models, "model carries", "models carry")} it; it is taken off every one of them. The models stay, and each one's history keeps the tag.`
        : "No model carries it.",
      confirm: "Delete tag",
    });
    if (!yes || !alive || deleting.has(id)) return;
    deleting.add(id);
    const button = document.getElementById(`delete-${id}`);
    if (button) showBusy(button, "Deleting…");
    try {
      const deleted = await call("DELETE", `api/tags/${id}`);
      invalidateLibrary();
      const after = besides(id, "delete");
      tags = tags.filter((t) => t.id !== id);
      rows.delete(id);
      if (editing === id) editing = null;
      show();
      focusFirst(after);
      // "deleted from 0 models" said a nothing in numbers: a tag no model had is said so.
      toast(deleted.models ? `Tag “${tag.name}” deleted from ${plural(deleted.models, "model")}` : `Tag “${tag.name}” deleted; no model had it`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return gone(tag);
      toast(`Could not delete the tag “${tag.name}”: ${error.message}`, { error: true });
    } finally {
      deleting.delete(id);
      if (button?.isConnected) showBusy(button, null);
    }
  }

  // ---- create -----------------------------------------------------------------------------

  // A tag just made: in the list at once (no model carries it yet), and in the lists the
  // library's tag filter and the model editor offer. Under a filter that hides it, or past the
  // rows drawn, it is said where it is, with a way to show it.
  function made(tag) {
    listsChanged();
    tags = [...tags, { ...tag, models: 0 }].sort(SORTS[view.sort][1]);
    show();
    const drawnNow = rows.get(tag.id)?.el;
    if (drawnNow && list.contains(drawnNow)) {
      drawnNow.classList.add("made");
      return toast(`Tag “${tag.name}” created`);
    }
    toast(`Tag “${tag.name}” created; it is not among the tags shown`, { action: { label: `Show ${tag.name}`, run: () => showOnly(tag.name) } });
  }

  // The list filtered to the tag `name` (the one a name was taken by, or one just made).
  function showOnly(name) {
    filter.value = view.q = name;
    keepInUrl();
    limit = ROWS_AT_ONCE;
    show();
  }

  // ---- shared -----------------------------------------------------------------------------

  // The tag `id` as it is now, in the list's order.
  function replace(id, next) {
    tags = tags.map((t) => (t.id === id ? next : t)).sort(SORTS[view.sort][1]);
  }

  // Renamed or deleted elsewhere meanwhile: the list is read again.
  async function gone(tag) {
    toast(`The tag “${tag.name}” was changed or deleted elsewhere; the list is read again`, { error: true });
    const after = besides(tag.id, "rename");
    editing = null;
    await load();
    focusFirst(after);
    return null;
  }

  filter.addEventListener("input", () => {
    view.q = filter.value;
    keepInUrl();
    limit = ROWS_AT_ONCE;
    show();
  });
  sortSelect.addEventListener("change", () => {
    view.sort = sortSelect.value;
    keepInUrl();
    tags = [...tags].sort(SORTS[view.sort][1]);
    limit = ROWS_AT_ONCE;
    show();
  });

  function keepInUrl() {
    const query = new URLSearchParams();
    if (view.q) query.set("q", view.q);
    if (view.sort !== "name") query.set("sort", view.sort);
    setQuery(query);
  }

  if (caps.has("GET", "/api/tags")) load();
  else message.append(note("This server does not list tags."));
  return () => {
    alive = false;
    nearEnd.disconnect();
  };
}
