/* The server's vocabularies, asked once per sign-in: job states (GET /states, the server's one
   state machine) and models with their entity labels (GET /models). */
import { api } from "./api.js";
import { orderLabels } from "./format.js";

export let STATES = [];
export let TERMINAL = new Set();

export async function loadStates() {
  const s = await api("/states");
  STATES = s.job.states;
  TERMINAL = new Set(s.job.terminal);
}

// The first answer of GET /models this sign-in (null when it failed, e.g. a key without the scope).
let cached = null;

/** The models, from the cache (fetched on first use); null when GET /models failed. */
export function models() {
  if (!cached) cached = api("/models").catch(() => null);
  return cached;
}

/** A fresh GET /models (the model pickers show live worker counts); it refreshes the cache. */
export function refreshModels() {
  const p = api("/models");
  const settled = p.catch(() => null);
  if (!cached) cached = settled;
  else settled.then((ms) => { if (ms) cached = Promise.resolve(ms); });
  return p;
}

/** Forget the cache (a new key may see other models). */
export function forgetModels() { cached = null; }

/**
 * The entity labels to offer, in display order: those of the models named `model` (a job's),
 * or of every model when none is named or that model lists none. [] when GET /models failed:
 * the views then show the labels seen in the data alone.
 */
export async function modelLabels(model = null) {
  const ms = await models();
  if (!Array.isArray(ms)) return [];
  const own = model ? ms.filter((m) => m.name === model).flatMap((m) => m.labels || []) : [];
  return orderLabels(own.length ? own : ms.flatMap((m) => m.labels || []));
}
