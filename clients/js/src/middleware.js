// Server-side timing for Express/Connect (`client.middleware()`) and plain `node:http`
// handlers (`client.wrap(handler)`): one event per request, recorded when the response ends.
import { storage } from './context.js';
import { PARTNER_KEY, SCENARIO_KEY, STATUS_CALLER_ERROR, statusFromHttp } from './events.js';
import { RequestScope } from './scope.js';

function decode(value) {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Scenario and partner from a W3C `baggage` header: `key=value;property, key=value`. */
export function parseBaggage(header) {
  const found = { scenario: undefined, partner: undefined };
  const text = Array.isArray(header) ? header.join(',') : header;
  if (typeof text !== 'string' || !text) return found;
  for (const member of text.split(',')) {
    const pair = member.split(';', 1)[0];
    const equals = pair.indexOf('=');
    if (equals < 0) continue;
    const key = pair.slice(0, equals).trim().toLowerCase();
    const value = decode(pair.slice(equals + 1).trim());
    if (!value) continue;
    if (key === SCENARIO_KEY) found.scenario ??= value;
    else if (key === PARTNER_KEY) found.partner ??= value;
  }
  return found;
}

function pathname(url) {
  const path = String(url ?? '').split('?', 1)[0].split('#', 1)[0];
  return path || '/';
}

/**
 * The correlation block the response was ended in, if it was opened by this request's
 * handler. A callback that ran in another request's context (a pooled connection's, say)
 * must not lend that request's scenario; a block under no request at all (opened after a
 * library lost the async context on the way) is still this handler's.
 */
function handlerBlock(ended, own, outside) {
  if (!ended || ended === own || ended === outside) return undefined;
  for (let store = ended; store; store = store.parent) {
    if (store.request) return store.request === own.request ? ended : undefined;
  }
  return ended;
}

/**
 * Start timing `req`: exposes the scope as `req.telemetry` and records the event when the
 * response finishes (or is closed first: the caller gave up). Returns the correlation store
 * the handler should run in, so that what it records itself inherits the request's baggage.
 */
export function instrument(client, req, res) {
  if (req.telemetry instanceof RequestScope) return storage.getStore();
  const baggage = parseBaggage(req.headers?.baggage);
  const outside = storage.getStore();
  const scope = new RequestScope({ requestType: req.method ?? '' });
  const own = {
    scenario: baggage.scenario || outside?.scenario || undefined,
    partner: baggage.partner || outside?.partner || undefined,
    parent: outside,
    request: scope,
  };
  const path = pathname(req.originalUrl ?? req.url);
  req.telemetry = scope;

  // Express sets req.route when it dispatches to a route, and a router puts req.baseUrl back
  // when an error leaves it, before the error handler answers: both are read at that moment.
  let route;
  let routeTemplate;
  try {
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set: (value) => {
        route = value;
        const template = value?.path;
        if (typeof template === 'string') {
          const base = req.baseUrl || '';
          routeTemplate = base && template === '/' ? base : base + template;
        } else {
          routeTemplate = undefined;
        }
      },
    });
  } catch {
    // A frozen or exotic request object: the route then comes from the URL.
  }

  let ended;
  let endedSeen = false;
  const end = res.end;
  res.end = function endWithTelemetry(...args) {
    if (!endedSeen) {
      endedSeen = true;
      ended = storage.getStore();
    }
    return end.apply(this, args);
  };

  let recorded = false;
  const finish = (aborted) => {
    if (recorded) return;
    recorded = true;
    try {
      const latencyMs = scope.elapsedMs();
      let status = scope.status;
      if (status === null || status === undefined) {
        if (scope.httpStatus !== null && scope.httpStatus !== undefined) status = statusFromHttp(scope.httpStatus);
        else status = aborted ? STATUS_CALLER_ERROR : statusFromHttp(res.statusCode);
      }
      const block = handlerBlock(ended, own, outside);
      client._record(
        scope.operation || routeTemplate || path,
        {
          latencyMs,
          requestStatus: status,
          time: scope.time,
          requestType: scope.requestType,
          caller: scope.caller,
          scenario: scope.scenario || block?.scenario || own.scenario,
          partner: scope.partner || block?.partner || own.partner,
          eventId: scope.eventId,
        },
        undefined,
      );
    } catch {
      client._sender.countDropped();
    }
  };
  res.once('finish', () => finish(false));
  res.once('close', () => finish(!res.writableFinished));
  return own;
}
