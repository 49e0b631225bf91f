// The service-facing API: time a request, record its status, ship it in the background.
import { resolveOptions } from './config.js';
import { correlation, storage } from './context.js';
import { buildEvent, formatTime } from './events.js';
import { instrument } from './middleware.js';
import { RequestScope, newEventId } from './scope.js';
import { BatchSender } from './transport.js';

const openClients = new Set();
let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // beforeExit, not exit: 'exit' handlers cannot wait for a network answer. It fires when the
  // event loop has run dry, which our unref'd timers and sockets let happen.
  process.on('beforeExit', () => {
    for (const client of openClients) {
      if (client._exitFlush || client._sender.idle()) continue;
      client._exitFlush = client._sender.flush(client._exitFlushTimeout).then((drained) => {
        client._exitFlush = null;
        // Otherwise the next beforeExit would wait again for a receiver that did not answer.
        if (!drained) client.close(0);
      });
    }
  });
}

/**
 * Records one event per incoming request and ships them to the HTTP receiver.
 *
 * Recording never blocks and never throws: a full queue drops its oldest event and counts it
 * (`stats().dropped`). Queued events are flushed when the process runs out of work.
 */
export class TelemetryClient {
  constructor(options = {}) {
    const settings = resolveOptions(options);
    this.endpoint = settings.url.href;
    this.environment = settings.environment;
    this.role = settings.role;
    this.roleInstance = settings.roleInstance;
    this.isTest = settings.isTest;
    this._exitFlushTimeout = settings.exitFlushTimeout;
    this._exitFlush = null;
    this._sender = new BatchSender(settings.url, settings.token, {
      maxQueue: settings.maxQueue,
      batchSize: settings.batchSize,
      flushInterval: settings.flushInterval,
      timeout: settings.timeout,
      retryDeadline: settings.retryDeadline,
      logger: settings.logger,
    });
    openClients.add(this);
    installExitHook();
  }

  static correlation = correlation;

  /** The standalone `correlation`, for symmetry with the Python client's `client.correlation`. */
  correlation(options, fn) {
    return correlation(options, fn);
  }

  /**
   * Time `fn(scope)` (sync or async) as one request. A throw or rejection records a service
   * error unless `fn` set a status first, and is passed on.
   */
  request(operation, options, fn) {
    if (typeof options === 'function') {
      fn = options;
      options = {};
    }
    if (typeof fn !== 'function') throw new TypeError('request(operation, options, fn): fn must be a function');
    const scope = new RequestScope({ ...options, operation });
    let result;
    try {
      result = fn(scope);
    } catch (error) {
      this._finish(scope, true);
      throw error;
    }
    if (result !== null && typeof result?.then === 'function') {
      return Promise.resolve(result).then(
        (value) => {
          this._finish(scope, false);
          return value;
        },
        (error) => {
          this._finish(scope, true);
          throw error;
        },
      );
    }
    this._finish(scope, false);
    return result;
  }

  /** Wrap a function (sync or async) so that every call is one request. */
  track(operation, options = {}) {
    if (operation !== null && typeof operation === 'object') {
      options = operation;
      operation = undefined;
    }
    const client = this;
    return (fn) => {
      const name = operation || fn.name || 'anonymous';
      return function tracked(...args) {
        return client.request(name, options, () => fn.apply(this, args));
      };
    };
  }

  /** Record a request measured elsewhere; false if it was dropped. */
  record(operation, options = {}) {
    return this._record(operation, options, storage.getStore());
  }

  _record(operation, options, context) {
    try {
      const event = buildEvent({
        eventId: options.eventId || newEventId(),
        time: formatTime(options.time ?? new Date()),
        operation,
        latencyMs: options.latencyMs,
        requestStatus: options.requestStatus,
        requestType: options.requestType ?? '',
        caller: options.caller ?? '',
        scenario: options.scenario || context?.scenario,
        partner: options.partner || context?.partner,
        environment: this.environment,
        role: this.role,
        roleInstance: this.roleInstance,
        isTest: this.isTest,
      });
      return this._sender.submit(JSON.stringify(event));
    } catch (error) {
      this._sender.countDropped();
      this._sender.warnEvery(
        'build',
        `telemetry client: an event for ${JSON.stringify(String(operation))} was not recorded: ` +
          `${error?.message ?? error} (counted in stats().dropped; at most one such warning a minute)`,
      );
      return false;
    }
  }

  _finish(scope, failed) {
    try {
      this.record(scope.operation, {
        latencyMs: scope.elapsedMs(),
        requestStatus: scope.requestStatus(failed),
        time: scope.time,
        requestType: scope.requestType,
        caller: scope.caller,
        scenario: scope.scenario,
        partner: scope.partner,
        eventId: scope.eventId,
      });
    } catch {
      // record() does not throw; a scope whose fields throw on access must not either.
      this._sender.countDropped();
    }
  }

  /** An Express/Connect middleware: each request becomes one event (see README). */
  middleware() {
    return (req, res, next) => {
      storage.run(instrument(this, req, res), next);
    };
  }

  /** A `node:http` request handler timed the same way as `middleware()`. */
  wrap(handler) {
    const client = this;
    return function telemetryHandler(req, res) {
      return storage.run(instrument(client, req, res), () => handler.call(this, req, res));
    };
  }

  /** Send everything queued; true if it was all handed over within `timeoutSeconds`. */
  flush(timeoutSeconds = 10) {
    return this._sender.flush(timeoutSeconds);
  }

  /** Flush, then stop; later events are dropped and counted. */
  close(timeoutSeconds = 5) {
    openClients.delete(this);
    return this._sender.close(timeoutSeconds);
  }

  /** Counters since the client was created; `dropped` and `failed` are events lost. */
  stats() {
    return this._sender.stats();
  }
}

if (typeof Symbol.asyncDispose === 'symbol') {
  TelemetryClient.prototype[Symbol.asyncDispose] = function dispose() {
    return this.close();
  };
}
