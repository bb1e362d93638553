// The library's results for one query, fetched a page of PAGE models at a time as the grid
// comes near them. A page that cannot be fetched is kept as failed (its cards say so) and asked
// for again after RETRY_MS, not at every frame.
import { get } from "./api.js";

const PAGE = 100;
// A page that could not be fetched is asked for again after this long (or at Try again), not
// at the next frame: the grid asks for what is on screen at every frame.
const RETRY_MS = 5000;

export class Results {
  // `total`: the count last shown for the same key, while it is asked again (the grid keeps
  // its height, so the place in it is kept).
  constructor(key, total = null) {
    this.key = key;
    this.total = total;
    this.pages = new Map();
    this.error = null;
    this.stale = false;
    this.controller = new AbortController();
    this.onChange = () => {};
    this.loading = new Map(); // page -> the promise of its request
    this.retryAt = 0; // when pages that failed are asked for again
    this.retryTimer = 0;
    this.first = this.load(0);
  }

  // Every record from `from` to `to` (exclusive), fetching the pages not loaded yet.
  async range(from, to) {
    const wanted = [];
    for (let page = Math.floor(from / PAGE); page <= Math.floor((to - 1) / PAGE); page += 1) {
      if (!Array.isArray(this.pages.get(page))) wanted.push(this.loading.get(page) || this.load(page));
    }
    await Promise.all(wanted);
    const records = [];
    for (let index = from; index < to; index += 1) records.push(this.get(index));
    return records;
  }

  // Where the model `sha256` is among the pages loaded, or -1.
  indexOf(sha256) {
    for (const [page, models] of this.pages) {
      if (!Array.isArray(models)) continue;
      const at = models.findIndex((m) => m.sha256 === sha256);
      if (at >= 0) return page * PAGE + at;
    }
    return -1;
  }

  get(index) {
    const page = this.pages.get(Math.floor(index / PAGE));
    return Array.isArray(page) ? page[index % PAGE] : undefined;
  }

  // Whether the page holding `index` could not be fetched (its cards say so).
  failed(index) {
    return this.pages.get(Math.floor(index / PAGE)) === "failed";
  }

  ensure(from, to) {
    if (to <= from) return;
    const again = performance.now() >= this.retryAt;
    for (let page = Math.floor(from / PAGE); page <= Math.floor((to - 1) / PAGE); page += 1) {
      const state = this.pages.get(page);
      if (state === undefined || (state === "failed" && again)) this.load(page);
    }
  }

  // Pages that failed are asked for again as soon as they are on screen.
  retry() {
    this.retryAt = 0;
    this.onChange();
  }

  load(page) {
    this.pages.set(page, "loading");
    const request = this.fetchPage(page).finally(() => this.loading.delete(page));
    this.loading.set(page, request);
    return request;
  }

  async fetchPage(page) {
    // A card needs one key of meta_json: a model with its Civitai record carries about 8 KB
    // more (a page of 100: 29 KB instead of 812). A server without meta_keys ignores it.
    const query = `${this.key}${this.key ? "&" : ""}limit=${PAGE}&offset=${page * PAGE}`;
    const url = `api/models?${query}&meta_keys=base_model`;
    try {
      const data = await get(url, { signal: this.controller.signal });
      this.total = data.total;
      this.pages.set(page, data.models);
      // The server answers again: what says it did not goes at once (the toast stayed for its
      // 21 s), and pages that failed are asked for again as soon as they are on screen.
      this.error = null;
      this.retryAt = 0;
    } catch (error) {
      if (error.name === "AbortError") return;
      // Kept as failed, not forgotten: the next frame would ask again at once, and a server
      // that is down met a request a frame for as long as the page was on screen.
      this.pages.set(page, "failed");
      this.error = error;
      this.retryAt = performance.now() + RETRY_MS;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.onChange(), RETRY_MS);
    }
    this.onChange();
  }

  abort() {
    this.controller.abort();
    clearTimeout(this.retryTimer);
  }
}
