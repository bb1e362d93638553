// The pending queue drawn in pieces. A collector's old library can leave thousands of models
// pending: a row each, made at once, kept the page from answering for seconds
// (bench/ui_pending.py). The rows of the chosen group are drawn PAGE at a time: the first at
// once, the next when the end of the list comes near the screen (IntersectionObserver) or at
// a click on "Show more". A row once drawn stays in the list, in its place (hidden while out
// of the group or past the rows shown), so its checkbox, its state and the focus are kept.
// What is selected and acted on is the page's records, drawn or not (pending.js).
import { h, formatCount } from "./dom.js";

export const PAGE = 100;

// `rows`: the page's Map of rows, in the queue's order, each {record, el (null until drawn)};
// `inGroup(row)`: whether the chosen group holds it; `build(row)`: its element, once.
export function rowWindow(queue, { rows, inGroup, build }) {
  let limit = PAGE;
  const text = h("span", { class: "count" });
  const button = h("button", { type: "button", class: "small", onclick: () => more() });
  const footer = h("p", { class: "queue-more", hidden: true }, text, " ", button);
  // Not while the button has the focus: the keyboard's user on it chooses with Enter, and rows
  // added under them would carry the button away (Enter then skipped the rows added).
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting) && document.activeElement !== button) grow();
    }, { rootMargin: "0px 0px 800px 0px" })
    : null;
  button.addEventListener("blur", () => {
    if (observer && !footer.hidden) {
      observer.disconnect();
      observer.observe(footer);
    }
  });

  function grow() {
    limit += PAGE;
    draw();
  }

  // From the button, the focus goes on to the first row it drew (the button moves down,
  // past them, and would leave them behind a keyboard's user).
  function more() {
    const first = limit;
    grow();
    let index = 0;
    for (const row of rows.values()) {
      if (!inGroup(row)) continue;
      if (index++ === first) return row.el?.querySelector("input")?.focus();
    }
  }

  // The first `limit` rows of the group shown, the rows drawn before hidden otherwise; new
  // elements go before the next row drawn, so the list keeps the queue's order. Returns how
  // many rows the group holds.
  function draw() {
    let next = queue.firstElementChild;
    let count = 0;
    for (const row of rows.values()) {
      const visible = inGroup(row) && count < limit;
      if (inGroup(row)) count += 1;
      if (row.el) {
        row.el.hidden = !visible;
        next = row.el.nextElementSibling;
      } else if (visible) {
        queue.insertBefore(build(row), next);
      }
    }
    footer.hidden = count <= limit;
    text.textContent = `Showing ${formatCount(Math.min(limit, count))} of ${formatCount(count)}.`;
    button.textContent = `Show ${formatCount(Math.min(PAGE, Math.max(0, count - limit)))} more`;
    // Observed again after each draw: its first report says whether the end is still near.
    if (observer) {
      observer.disconnect();
      if (!footer.hidden) observer.observe(footer);
    }
    return count;
  }

  return {
    footer,
    draw,
    reset: () => { limit = PAGE; },
    stop: () => observer?.disconnect(),
  };
}

// Focus on a row that leaves the list goes to the next row shown, else the one before.
export function focusNear(el) {
  let next = el.nextElementSibling;
  while (next && next.hidden) next = next.nextElementSibling;
  let previous = el.previousElementSibling;
  while (previous && previous.hidden) previous = previous.previousElementSibling;
  (next || previous)?.querySelector("button")?.focus();
}
