// Tagging many models at once (POST /api/models/tags), run in parts by bulk.js.
import { post, refusedCharacters } from "./api.js";
import { plural, formatCount, spelledOut } from "./dom.js";
import { runInParts, describeTheRest } from "./bulk.js";

// Add the tag `name` to every model of `hashes`, or remove it, `limit` models a request.
// Resolves as runInParts does.
export function tagModels(hashes, name, adding, limit) {
  const send = (these) => post("api/models/tags", { hashes: these, add: adding ? [name] : [], remove: adding ? [] : [name] });
  return runInParts(hashes, send, { what: "Tagging", limit });
}

// The API names a refused tag by its place in the list sent ("add.0: needs a character…"), a
// list the person never saw: the reason is said of the name, which the summary shows.
const PLACE = /^(?:add|remove)\.\d+: /;

// What a run did, in words: "Tag “x” added to 900 models; 9 had it already; 3 no longer exist".
export function describeTagging(outcome, name, adding) {
  const done = (outcome.stopped ? "Stopped: tag " : "Tag ") + `“${spelledOut(name, refusedCharacters())}” ${adding ? "added to" : "removed from"} ${plural(outcome.changed, "model")}`;
  const message = outcome.error?.message;
  const error = message && PLACE.test(message) ? { message: `the name ${message.replace(PLACE, "")}` } : outcome.error;
  return done + describeTheRest({ ...outcome, error }, (n) => `${formatCount(n)} ${adding ? "had it already" : "did not have it"}`);
}
