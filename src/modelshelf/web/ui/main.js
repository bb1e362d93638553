// The client-side router: one page per route, history API, links intercepted, focus and
// scroll handled the way a person expects (new page: focus its heading, top of page; back:
// the place they left).
import { mountLibrary } from "./library.js";
import { mountModel } from "./model.js";
import { mountPending } from "./pending.js";
import { mountJobs } from "./jobs.js";
import { mountTags } from "./tags.js";
import { h, clear } from "./dom.js";
import { navigate, onNavigate, focusHeading, beginReturn, saveScrollWhenItPauses } from "./router.js";

const base = new URL(document.baseURI);
const prefix = base.pathname; // ends with "/"

const ROUTES = [
  { pattern: /^$/, nav: "library", mount: mountLibrary },
  { pattern: /^models\/([^/]+)$/, nav: "library", mount: mountModel },
  { pattern: /^pending$/, nav: "pending", mount: mountPending },
  { pattern: /^jobs$/, nav: "jobs", mount: mountJobs },
  { pattern: /^tags$/, nav: "tags", mount: mountTags },
];

let cleanup = null;
let renderCount = 0;
let shownPath = null; // the page shown before this one (its path after the prefix)

function routeOf(pathname) {
  const rest = pathname.startsWith(prefix) ? pathname.slice(prefix.length) : null;
  if (rest === null) return { route: null, params: [] };
  for (const route of ROUTES) {
    const match = rest.match(route.pattern);
    if (match) return { route, params: match.slice(1).map(decodeURIComponent) };
  }
  return { route: null, params: [] };
}

async function render({ focus = false } = {}) {
  const main = document.getElementById("main");
  const { route, params } = routeOf(location.pathname);
  if (cleanup) {
    try { cleanup(); } catch (error) { console.error(error); }
    cleanup = null;
  }
  const thisRender = ++renderCount;
  const from = shownPath;
  shownPath = location.pathname.startsWith(prefix) ? location.pathname.slice(prefix.length) : null;
  for (const link of document.querySelectorAll("nav [data-nav]")) {
    if (route && link.dataset.nav === route.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main);
  if (!route) {
    document.title = "Not found · modelshelf";
    main.append(h("h1", { tabindex: "-1", text: "No such page" }),
      h("p", {}, h("a", { href: "./", text: "Back to the library" })));
    focusHeading(main, focus);
    return;
  }
  if (focus) window.scrollTo(0, 0);
  // `from`: the page this one was reached from (the library goes back to the model left).
  const context = { isCurrent: () => thisRender === renderCount, focus, from };
  cleanup = (await route.mount(main, ...params, context)) || null;
  if (thisRender !== renderCount && cleanup) {
    cleanup();
    cleanup = null;
  }
}

function isAppLink(link, event) {
  if (event.defaultPrevented || event.button !== 0) return false;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (link.target || link.hasAttribute("download")) return false;
  const url = new URL(link.href, document.baseURI);
  if (url.origin !== location.origin) return false;
  return routeOf(url.pathname).route !== null;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || !isAppLink(link, event)) return;
  event.preventDefault();
  if (link.href === location.href) return;
  navigate(link.href);
});

onNavigate(render);
window.addEventListener("popstate", () => {
  beginReturn();
  render({ focus: false });
});
history.scrollRestoration = "manual";
saveScrollWhenItPauses();
beginReturn();
render({ focus: false });
