// Changing many models at once (tagging them, editing a field of every one): the picked models
// go in parts of the most one request takes (the server's limit comes with the page), so that
// the bar shows how far it is and Stop works between parts. One request per model took 21 s
// for 909 models.
//
// A run belongs to the page, not to the library view: going to a model, to Pending or to Jobs
// meanwhile does not stop it (what was asked for is done), its end is said in a toast wherever
// the person is, and the library shows it running again when they come back. Closing or
// reloading the page while it runs asks first (the parts not sent yet would be lost). One run
// at a time: two over the same models would race for each one's last word.

import { formatCount, holdThePage } from "./dom.js";

// When the page does not say (one from elsewhere): small enough for any server of this API.
export const PART_WITHOUT_LIMIT = 100;

let running = null; // {what, total, sent, stopping} while a run is under way
const watchers = new Set();

export function currentRun() {
  return running;
}

// `watcher()` runs at every step of a run (its start, each part, its end); returns the
// function that stops watching.
export function watchRuns(watcher) {
  watchers.add(watcher);
  return () => watchers.delete(watcher);
}

export function stopRun() {
  if (!running) return;
  running.stopping = true;
  tell();
}

function tell() {
  for (const watcher of watchers) watcher();
}

// Sends `hashes` through `send(part)` (a request answering {changed, unchanged, not_found}),
// `limit` models a request; `what` names the run ("Tagging") for its progress bar. Resolves
// {changed, changedHashes, unchanged, gone: [hashes no model has], left, stopped, error}; null
// if a run is under way already.
export async function runInParts(hashes, send, { what, limit }) {
  if (running) return null;
  const part = limit || PART_WITHOUT_LIMIT;
  running = { what, total: hashes.length, sent: 0, stopping: false };
  const outcome = { changed: 0, changedHashes: [], unchanged: 0, gone: [], left: 0, stopped: false, error: null };
  holdThePage(1);
  tell();
  try {
    while (running.sent < hashes.length && !running.stopping) {
      const these = hashes.slice(running.sent, running.sent + part);
      const answer = await send(these);
      outcome.changed += answer.changed.length;
      outcome.changedHashes.push(...answer.changed);
      outcome.unchanged += answer.unchanged.length;
      outcome.gone.push(...answer.not_found);
      running.sent += these.length;
      tell();
    }
  } catch (error) {
    outcome.error = error; // the parts sent before it are done; the others are left
  } finally {
    outcome.left = hashes.length - running.sent;
    outcome.stopped = running.stopping && outcome.left > 0;
    running = null;
    holdThePage(-1);
    tell();
  }
  return outcome;
}

// The end of a run's summary, after what it did: "; 9 had it already; 3 no longer exist;
// 20 not done". `unchanged(n)` says what the models it did not change were like.
export function describeTheRest(outcome, unchanged) {
  const parts = [];
  if (outcome.unchanged) parts.push(unchanged(outcome.unchanged));
  if (outcome.gone.length) parts.push(`${formatCount(outcome.gone.length)} no longer ${outcome.gone.length === 1 ? "exists" : "exist"}`);
  if (outcome.left) parts.push(`${formatCount(outcome.left)} not done`);
  if (outcome.error) parts.push(`it failed: ${outcome.error.message}`);
  return parts.map((part) => `; ${part}`).join("");
}
