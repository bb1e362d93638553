// Navigation state shared by the pages: moving to a URL, keeping the query in the URL, the
// scroll position saved in each history entry, and focus on a new page's heading.
let renderHook = () => {};

export function onNavigate(render) {
  renderHook = render;
}

export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, document.baseURI);
  saveScroll();
  if (replace) history.replaceState({}, "", target);
  else history.pushState({}, "", target);
  renderHook({ focus: true });
}

// Replace the URL's query without a new render; `push` makes a new history entry.
export function setQuery(params, { push = false } = {}) {
  const url = new URL(location.href);
  url.search = params.toString();
  if (url.href === location.href) return;
  saveScroll();
  if (push) history.pushState({}, "", url);
  else history.replaceState({ ...history.state }, "", url);
}

export function saveScroll() {
  history.replaceState({ ...history.state, scrollY: window.scrollY }, "");
}

export function savedScroll() {
  return (history.state && history.state.scrollY) || 0;
}

export function focusHeading(main, focus) {
  if (!focus) return;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}
