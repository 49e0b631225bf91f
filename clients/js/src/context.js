// Scenario and partner for everything recorded inside a block: the counterpart of the
// Python client's context variable, carried across awaits, timers and callbacks.
import { AsyncLocalStorage } from 'node:async_hooks';

// One store per process even if two copies of this package are loaded (a dependency that
// bundles its own copy), or a block opened through one copy would be invisible to the other.
const STORE_KEY = Symbol.for('@telemetry-availability/client/correlation');
export const storage = (globalThis[STORE_KEY] ??= new AsyncLocalStorage());

/**
 * Run `fn` with this scenario and partner for every request recorded inside it, sync or
 * async; a nested block overrides what it sets and inherits the rest.
 */
export function correlation({ scenario, partner } = {}, fn) {
  if (typeof fn !== 'function') throw new TypeError('correlation(options, fn): fn must be a function');
  const outer = storage.getStore();
  const store = {
    scenario: scenario || outer?.scenario || undefined,
    partner: partner || outer?.partner || undefined,
    parent: outer,
    request: undefined,
  };
  return storage.run(store, fn);
}
