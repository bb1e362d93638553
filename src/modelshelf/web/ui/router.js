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

export function saveScroll() {
  history.replaceState({ ...history.state, scrollY: window.scrollY }, "");
}

export function savedScroll() {
  return (history.state && history.state.scrollY) || 0;
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
