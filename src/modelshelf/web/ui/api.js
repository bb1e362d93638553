// Every call the UI makes to the service. URLs are relative to the page's <base>, so the UI
// works under any path_prefix. What the server offers comes with the page (see capabilities),
// so a control whose endpoint this server lacks is hidden or disabled instead of failing.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || (body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

const UNREACHABLE = "The server cannot be reached; check that modelshelf is running";

// `work()` (a fetch, or reading its body), but a request that never got its answer (server
// down, connection dropped) throws an ApiError (status 0) that says so in words, instead of
// the browser's "Failed to fetch". A cancelled request (AbortError) is passed on as it is.
async function reach(work) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof TypeError) throw new ApiError(0, { detail: UNREACHABLE });
    throw error;
  }
}

// fetch + JSON; throws ApiError for any non-2xx answer (the body of the error included).
export async function call(method, path, { body, headers = {}, signal, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await reach(() => fetch(path, init));
  if (raw) return response;
  const data = await reach(() => readBody(response));
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, options) => call("GET", path, options);
export const post = (path, body, options = {}) => call("POST", path, { ...options, body });

// Lists of the library as a whole (its tags with their counts, its types, its base models),
// each read once and shared for a while: the model page drew its suggestions anew with every
// model J and K stepped to, and the library at every return to it, each time reading the whole
// list. A change this page makes (see invalidateLibrary) drops them all; one made elsewhere
// shows within LISTS_KEPT_MS.
const LISTS_KEPT_MS = 60000;
const listsRead = new Map(); // path -> {at, promise}

// `fresh`: read it now whatever is kept (a page that changes the list shows it as it is).
function sharedList(path, { fresh = false } = {}) {
  const kept = listsRead.get(path);
  if (!fresh && kept && performance.now() - kept.at <= LISTS_KEPT_MS) return kept.promise;
  const promise = get(path);
  listsRead.set(path, { at: performance.now(), promise });
  // A failed read is not kept: the next one asks again.
  promise.catch(() => { if (listsRead.get(path)?.promise === promise) listsRead.delete(path); });
  return promise;
}

export const libraryTags = (options) => sharedList("api/tags", options);
export const libraryTypes = (options) => sharedList("api/models/get_types", options);
export const libraryBaseModels = (options) => sharedList("api/models/base_models", options);

export function listsChanged() {
  listsRead.clear();
}

// ---- what this server offers -------------------------------------------------------------

// The page carries the server's operations (from the same table as its router), so this costs
// no request. Without them (a page from elsewhere) every control is shown and a 404/405 answer
// says "not available".
class Capabilities {
  constructor(data) {
    this.known = Boolean(data && data.operations);
    this.operations = new Map(Object.entries((data && data.operations) || {}));
    this.limits = (data && data.limits) || {};
    // Ranges of code points the server refuses in a name; null from a server that does not say.
    this.refused = (data && data.refused_characters) || null;
  }

  has(method, path) {
    return !this.known || this.operations.has(`${method} ${path}`);
  }

  hasQuery(method, path, name) {
    const op = this.operations.get(`${method} ${path}`);
    return Boolean(op && op.query.includes(name));
  }

  answers(method, path, status) {
    const op = this.operations.get(`${method} ${path}`);
    return Boolean(op && op.statuses.includes(status));
  }
}

let known = null;

function capabilitiesNow() {
  if (!known) {
    let data = null;
    try {
      data = JSON.parse(document.getElementById("capabilities").textContent);
    } catch {
      data = null;
    }
    known = new Capabilities(data);
  }
  return known;
}

export function capabilities() {
  return Promise.resolve(capabilitiesNow());
}

// What the server refuses in a name (see Capabilities.refused), for dom.js's spelledOut.
export const refusedCharacters = () => capabilitiesNow().refused;

export function isUnavailable(error) {
  if (!(error instanceof ApiError)) return false;
  return error.status === 405 || (error.status === 404 && error.body.detail === "no such endpoint");
}

// ---- images ------------------------------------------------------------------------------

// Within one page a browser shows the image it already holds for a URL again, whatever the
// cache headers say, and a reorder, a delete or an override gives an image's name other bytes.
// So the URLs of a model's images carry a version once its pictures changed: its
// Images-Version (from a server without it, its record's ETag after a change this page made),
// or a mark of the change. Versioned by the ETag, a tag or name changed elsewhere gave them
// new URLs, and every picture shown after was downloaded again.
const imageVersions = new Map();
// The Images-Version of the pictures the model's URLs show now, by SHA256.
const imagesSeen = new Map();

export function setImageVersion(sha256, etag) {
  if (etag) imageVersions.set(sha256, etag.replace(/^W\//, "").replace(/"/g, ""));
}

// The model read with this Images-Version: its URLs change only if its pictures did since
// the page first read it (the URLs it had then, versioned or not, show those pictures).
export function seeImages(sha256, imagesVersion) {
  const seen = imagesSeen.get(sha256);
  imagesSeen.set(sha256, imagesVersion);
  if (seen !== undefined && seen !== imagesVersion) imageVersions.set(sha256, imagesVersion);
}

export function imagesChanged(sha256) {
  imageVersions.set(sha256, `changed-${Date.now()}`);
}

export function imageUrl(name, quality) {
  const version = imageVersions.get(name.split("_", 1)[0]);
  const tail = version ? `&v=${encodeURIComponent(version)}` : "";
  return `api/images/${encodeURIComponent(name)}?quality=${quality}${tail}`;
}

// The model's versions an answer carries (`header(name)` reads it): its ETag and Images-Version.
export const versionsOf = (header) => ({ etag: header("ETag"), images: header("Images-Version") });

// Whether the model read after a write of this page (`read`: its versions) is at another
// version than the one the write's answer said it left (`left`; null: none said): changed
// elsewhere in between, so the pictures may not be where the write put them. By
// Images-Version where both have it (a tag changed elsewhere leaves them where they were).
export function changedSince(left, read) {
  if (!left) return false;
  if (left.images && read.images) return left.images !== read.images;
  return Boolean(left.etag) && left.etag !== read.etag;
}

export function pendingImageUrl(id) {
  return `api/images/pending/${id}`;
}

// Multipart upload with progress (fetch cannot report upload progress; XHR can).
// `version`: the model's ETag as the page knows it, sent as If-Match (412 when the model
// changed elsewhere meanwhile; nothing is added then). Resolves the answer's body and the
// versions it says the upload left (`left`, see changedSince).
export function uploadImage(sha256, file, onProgress, version = null) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "api/images/upload");
    if (version) xhr.setRequestHeader("If-Match", version);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve({ body: xhr.response, left: versionsOf((name) => xhr.getResponseHeader(name)) });
      else reject(new ApiError(xhr.status, xhr.response));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { detail: "the upload was interrupted" })));
    const form = new FormData();
    form.append("sha256", sha256);
    form.append("image", file, file.name);
    xhr.send(form);
  });
}

// ---- jobs ----------------------------------------------------------------------------------

// A job followed while its tab is hidden is read this often instead of streamed.
const HIDDEN_POLL_MS = 5000;

// Follow a job until it ends: server-sent events, or polling when the stream fails. While the
// tab is hidden the stream is closed and the job polled: a browser keeps 6 connections to a
// server, and every job followed live holds one for as long as it runs (tabs left in the
// background would leave the tab in use none). `onUpdate(job)` gets every state; resolves
// with the final job. Returns {done, stop}.
export function followJob(job, onUpdate) {
  let source = null;
  let timer = 0;
  let stopped = false;
  let current = job;
  const close = () => {
    if (source) source.close();
    source = null;
    clearTimeout(timer);
  };
  let onVisibility = () => {};
  const end = () => {
    stopped = true;
    close();
    document.removeEventListener("visibilitychange", onVisibility);
  };
  const done = new Promise((resolve) => {
    const finish = (final) => {
      if (stopped) return;
      end();
      current = final;
      onUpdate(final);
      resolve(final);
    };
    const poll = async () => {
      if (stopped) return;
      try {
        const fresh = await get(`api/jobs/${encodeURIComponent(job.id)}`);
        if (isOver(fresh)) return finish(fresh);
        if (stopped) return;
        current = fresh;
        onUpdate(fresh);
      } catch {
        // keep trying: a restart of the server ends the job as failed, which we then read
      }
      if (stopped || source) return;
      clearTimeout(timer); // one poll is due at a time, even if the tab was hidden meanwhile
      timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : 1000);
    };
    const listen = () => {
      source = new EventSource(`api/jobs/${encodeURIComponent(job.id)}/events`);
      source.addEventListener("progress", (event) => {
        const data = JSON.parse(event.data);
        current = "progress" in data && "state" in data ? data : { ...current, state: "running", progress: data };
        onUpdate(current);
      });
      source.addEventListener("end", (event) => finish(JSON.parse(event.data)));
      source.addEventListener("error", () => {
        if (stopped) return;
        close();
        poll();
      });
    };
    onVisibility = () => {
      if (stopped) return;
      close();
      if (document.hidden) timer = setTimeout(poll, HIDDEN_POLL_MS);
      else listen();
    };
    if (isOver(job)) return finish(job);
    document.addEventListener("visibilitychange", onVisibility);
    if (document.hidden) timer = setTimeout(poll, HIDDEN_POLL_MS);
    else listen();
  });
  return { done, stop: end };
}

export function isOver(job) {
  return ["done", "failed", "cancelled"].includes(job.state);
}
