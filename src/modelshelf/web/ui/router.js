// Navigation state shared by the pages: moving to a URL, keeping the query in the URL, the
// scroll position saved in each history entry, and focus on a new page's heading.
import { h } from "./dom.js";

let renderHook = () => {};

export function onNavigate(render) {
  renderHook = render;
}

// A new entry remembers the URL it was opened from (see cameFrom).
export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, document.baseURI);
  saveScroll();
  returning = false;
  if (replace) history.replaceState({}, "", target);
  else history.pushState({ from: location.href }, "", target);
  renderHook({ focus: true });
}

// Whether this page was opened by a link from `url` (so Back returns there, scroll and all).
export function cameFrom(url) {
  return Boolean(history.state && history.state.from === new URL(url, document.baseURI).href);
}

// Replace the URL's query without a new render; `push` makes a new history entry. Returns
// whether the URL changed.
export function setQuery(params, { push = false } = {}) {
  const url = new URL(location.href);
  url.search = params.toString();
  if (url.href === location.href) return false;
  saveScroll();
  if (push) history.pushState({}, "", url);
  else history.replaceState({ ...history.state }, "", url);
  return true;
}

// With the link followed from the page, if a link has the focus (see returnToPlace).
export function saveScroll() {
  const link = document.activeElement && document.activeElement.closest("a[href]");
  history.replaceState({ ...history.state, scrollY: window.scrollY, link: link ? linkKey(link) : null }, "");
}

// Back (or a reload) to an entry, its saved place is kept until the page has returned to it
// (returnToPlace, finishReturn) or the person scrolls it: the page drawn blank while its lists
// load (a slow server) and a scroll save left pending by the page before are not the place it
// was left. Saving them lost the focus and the place of a Back that came before its answers.
let returning = false;
let scrolled = 0;

export function beginReturn() {
  returning = true;
  clearTimeout(scrolled);
}

export function finishReturn() {
  returning = false;
}

// A reload comes back to the place the page was at, not where it was when last left by a link:
// the place is saved once scrolling pauses. (Not as the page unloads: Chromium drops history
// state written at pagehide, and a beforeunload listener kept a browser context from closing.)
export function saveScrollWhenItPauses() {
  window.addEventListener("scroll", () => {
    clearTimeout(scrolled);
    if (!returning) scrolled = setTimeout(saveScroll, 200);
  }, { passive: true });
  // What the person does to scroll: from then on, where they scroll to is the place.
  for (const type of ["wheel", "touchstart", "pointerdown", "keydown"]) {
    window.addEventListener(type, finishReturn, { passive: true, capture: true });
  }
}

export function savedScroll() {
  return (history.state && history.state.scrollY) || 0;
}

// A link by where it leads and what it says ("← Library" and a tag may lead to one place).
const linkKey = (a) => `${a.getAttribute("href")} ${a.textContent}`;

// Back (or Forward, or a reload) to a page once `main` is drawn: the place it was scrolled to,
// and the focus on the link followed from it. The Tags and Jobs pages and a model's opened at
// their top with the focus nowhere: a collector who followed the 400th tag's "models" link,
// or a duplicate's model, was sent back to the top of the list.
export function returnToPlace(main) {
  const state = history.state || {};
  finishReturn();
  if (state.scrollY) window.scrollTo(0, state.scrollY);
  const link = state.link && [...main.querySelectorAll("a[href]")].find((a) => linkKey(a) === state.link);
  if (link) link.focus(); // and into view, if the page's rows are not as tall as they were
}

// A page that could not be loaded (the server down a moment) offers to load it again, as
// the library and the Tags page do: the page is drawn anew, in place of itself.
export function tryAgain() {
  return h("button", { type: "button", text: "Try again", onclick: () => navigate(location.href, { replace: true }) });
}

export function focusHeading(main, focus) {
  if (!focus) return;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}
