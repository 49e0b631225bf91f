// Ship events in the background: a bounded queue, gzip'd NDJSON batches, retries with backoff.
//
// Nothing here may block or throw into the service that records events: a full queue drops
// its oldest event and counts it, and a batch that cannot be delivered is counted as failed. Logging
// is per outage, not per batch: a service recording thousands of requests a second must not
// bury its own logs under ours while the receiver is down.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

const gzip = promisify(zlib.gzip);

// Answers worth sending the same batch again for: the receiver was overloaded, restarting or
// timed out. Any other 4xx means the batch itself is wrong and would fail again.
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
// What a kept-alive connection the receiver closed while it sat idle looks like when reused:
// not an outage, so resent at once on a new connection.
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);
// An answer lists at most one rejection per line; more than this is not our receiver.
const MAX_ANSWER_BYTES = 8 << 20;
const REPEAT_WARNING_MS = 60_000;
// setTimeout and setInterval treat anything longer as 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

class Retryable extends Error {
  constructor(message, retryAfter) {
    super(message);
    this.retryAfter = retryAfter;
  }
}

export function consoleLogger() {
  // Both levels to stderr: a library must not write into a program's stdout.
  return { warn: (message) => console.warn(message), info: (message) => console.warn(message) };
}

function safeLogger(logger) {
  const target = logger ?? consoleLogger();
  const call = (level, message) => {
    try {
      const method = target[level] ?? target.warn;
      if (typeof method === 'function') method.call(target, message);
    } catch {
      // A broken logger must not stop the sender.
    }
  };
  return { warn: (message) => call('warn', message), info: (message) => call('info', message) };
}

function retryAfterSeconds(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds : null;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}

function parseJson(payload) {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

function describe(error) {
  if (error instanceof Retryable) return error.message;
  return error.code ? `${error.code}: ${error.message}` : error.message || String(error);
}

function timerMs(seconds) {
  return Math.min(MAX_TIMER_MS, Math.max(0, seconds * 1000));
}

/** Posts queued NDJSON lines to the receiver's /v1/events, one batch at a time. */
export class BatchSender {
  constructor(url, token, {
    maxQueue = 10000,
    batchSize = 500,
    flushInterval = 1.0,
    timeout = 10,
    retryDeadline = 60,
    backoffInitial = 0.1,
    backoffMax = 5,
    logger,
  } = {}) {
    this._url = url;
    this._where = `${url.origin}${url.pathname}`;
    this._transport = url.protocol === 'https:' ? https : http;
    // One connection, kept alive: batches go one after another, never in parallel. An idle
    // connection is let go after 4 s, before the receiver's own 5 s keep-alive limit closes it
    // under a request being sent.
    this._agent = new this._transport.Agent({ keepAlive: true, maxSockets: 1, timeout: 4000 });
    this._headers = {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/x-ndjson',
      'Content-Encoding': 'gzip',
      Accept: 'application/json',
    };
    this._maxQueue = maxQueue;
    this._batchSize = batchSize;
    this._timeout = timeout;
    this._retryDeadline = retryDeadline;
    this._backoffInitial = backoffInitial;
    this._backoffMax = backoffMax;
    this._log = safeLogger(logger);

    this._queue = [];
    this._inFlight = 0;
    this._pumping = null;
    this._scheduled = false;
    this._due = false;
    this._flushRequested = false;
    this._closing = false;
    this._closed = null;
    this._counts = { enqueued: 0, dropped: 0, accepted: 0, rejected: 0, failed: 0, batches: 0, retries: 0 };
    this._waiters = new Set();
    this._sleeps = new Set();
    this._requests = new Set();
    this._down = null;
    this._refusedStatus = null;
    this._warnedAt = new Map();

    this._timer = setInterval(() => {
      if (!this._queue.length) return;
      this._due = true;
      this._pump();
    }, Math.max(1, timerMs(flushInterval)));
    // Telemetry must never be the reason a process does not exit.
    this._timer.unref();
  }

  /**
   * Queue one serialized event; false (and counted as dropped) once the client is closed.
   * A full queue drops its oldest event (counted) to keep this one: after an outage the latest
   * minutes are what the live figures need, and what arrives first.
   */
  submit(line) {
    if (this._closing) {
      this._counts.dropped += 1;
      return false;
    }
    if (this._queue.length >= this._maxQueue) {
      this._queue.shift();
      this._counts.dropped += 1;
    }
    this._queue.push(line);
    this._counts.enqueued += 1;
    if (this._queue.length >= this._batchSize && !this._scheduled && !this._pumping) {
      // Not now: the caller is in the middle of serving a request.
      this._scheduled = true;
      setImmediate(() => {
        this._scheduled = false;
        this._pump();
      }).unref();
    }
    return true;
  }

  /** An event the client could not even build: lost all the same, so counted. */
  countDropped() {
    this._counts.dropped += 1;
  }

  stats() {
    return { ...this._counts, queued: this._queue.length + this._inFlight };
  }

  idle() {
    return this._queue.length === 0 && this._inFlight === 0;
  }

  /** Send everything queued now; true if it was all handed over within `timeoutSeconds`. */
  flush(timeoutSeconds = 10) {
    if (this.idle()) return Promise.resolve(true);
    this._flushRequested = true;
    this._pump();
    return new Promise((resolve) => {
      const waiter = { resolve, timer: null };
      // Left referenced on purpose: whoever awaits a flush wants the process kept up for it.
      waiter.timer =
        timeoutSeconds === null || timeoutSeconds === undefined || timeoutSeconds === Infinity
          ? setInterval(() => {}, MAX_TIMER_MS)
          : setTimeout(() => this._release(waiter, this.idle()), timerMs(timeoutSeconds));
      this._waiters.add(waiter);
    });
  }

  /** Flush, then stop; what is still unsent after `timeoutSeconds` is abandoned as failed. */
  close(timeoutSeconds = 5) {
    this._closed ??= (async () => {
      const drained = await this.flush(timeoutSeconds);
      this._closing = true;
      clearInterval(this._timer);
      if (!drained) {
        for (const request of this._requests) request.destroy(new Error('telemetry client closed'));
        for (const sleep of this._sleeps) sleep.wake();
      }
      await this._pumping;
      if (this._queue.length) {
        this._counts.failed += this._queue.length;
        this._queue.length = 0;
      }
      this._agent.destroy();
      this._settle();
      return drained;
    })();
    return this._closed;
  }

  _release(waiter, result) {
    if (!this._waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    clearInterval(waiter.timer);
    waiter.resolve(result);
  }

  _settle() {
    if (!this.idle()) return;
    this._flushRequested = false;
    for (const waiter of [...this._waiters]) this._release(waiter, true);
  }

  _pump() {
    this._pumping ??= this._drain().finally(() => {
      this._pumping = null;
      this._settle();
      // Work queued while the loop was winding down would otherwise wait for the next tick.
      const queued = this._queue.length;
      if (!this._closing && queued && (this._flushRequested || queued >= this._batchSize)) this._pump();
    });
    return this._pumping;
  }

  async _drain() {
    while (!this._closing) {
      const queued = this._queue.length;
      if (queued === 0 || !(queued >= this._batchSize || this._due || this._flushRequested)) break;
      const batch = this._queue.splice(0, this._batchSize);
      this._inFlight = batch.length;
      try {
        await this._deliver(batch);
      } catch (error) {
        // A bug here must not stop the loop and silently end all telemetry.
        this._counts.failed += batch.length;
        this.warnEvery('bug', `telemetry client: a batch of ${batch.length} events was lost: ${error?.stack ?? error}`);
      } finally {
        this._inFlight = 0;
        this._settle();
      }
    }
    this._due = false;
  }

  async _deliver(lines) {
    const body = await gzip(Buffer.from(lines.join('\n'), 'utf8'), { level: 5 });
    this._counts.batches += 1;
    const started = performance.now();
    for (let attempt = 1; ; attempt += 1) {
      if (this._closing) {
        this._counts.failed += lines.length;
        return;
      }
      let error;
      try {
        const { status, payload, retryAfter } = await this._post(body);
        const answer = parseJson(payload);
        if (status === 413 && lines.length > 1) {
          // The receiver's size limit is smaller than our batch: halve until it fits.
          this._reachable();
          const middle = Math.floor(lines.length / 2);
          await this._deliver(lines.slice(0, middle));
          await this._deliver(lines.slice(middle));
          return;
        }
        // 400 with a list of rejections: every event was invalid; they are counted, not retried.
        if (status === 200 || (status === 400 && Array.isArray(answer?.rejected))) {
          this._reachable();
          this._refusedStatus = null;
          this._recordAnswer(lines.length, answer);
          return;
        }
        if (!RETRYABLE_STATUS.has(status)) {
          this._reachable();
          this._refused(status, lines.length, payload);
          return;
        }
        error = new Retryable(`HTTP ${status}`, retryAfter);
      } catch (caught) {
        error = caught;
      }
      if (this._closing) {
        // Abandoned by close(), not an outage.
        this._counts.failed += lines.length;
        return;
      }
      this._unreachable(error);
      let delay = Math.min(this._backoffMax, this._backoffInitial * 2 ** (attempt - 1));
      delay = delay / 2 + (Math.random() * delay) / 2;
      if (error.retryAfter) delay = Math.min(this._backoffMax, Math.max(delay, error.retryAfter));
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed + delay > this._retryDeadline) {
        this._counts.failed += lines.length;
        return;
      }
      this._counts.retries += 1;
      await this._sleep(delay);
    }
  }

  _recordAnswer(sent, answer) {
    let accepted = Number(answer?.accepted);
    let rejected = answer?.rejected ?? [];
    if (!Number.isInteger(accepted) || !Array.isArray(rejected)) {
      this.warnEvery('unreadable', 'telemetry client: the receiver accepted a batch with an unreadable answer');
      accepted = sent;
      rejected = [];
    }
    this._counts.accepted += accepted;
    this._counts.rejected += rejected.length;
    if (rejected.length) {
      const first = rejected[0] ?? {};
      const where = first.line !== undefined ? `line ${first.line}` : `index ${first.index}`;
      this.warnEvery(
        'rejected',
        `telemetry client: the receiver rejected ${rejected.length} of ${sent} events ` +
          `(${where}: ${first.reason}); rejections are counted in stats().rejected, ` +
          'with at most one warning a minute',
      );
    }
  }

  _refused(status, sent, payload) {
    this._counts.failed += sent;
    if (this._refusedStatus === status) return;
    this._refusedStatus = status;
    const hint = status === 401 || status === 403 ? '; check the token (TELEMETRY_CLIENT_TOKEN)' : '';
    const text = payload.subarray(0, 200).toString('utf8');
    this._log.warn(
      `telemetry client: ${this._where} refused a batch of ${sent} events: HTTP ${status} ${text}${hint}; ` +
        'batches refused the same way are counted as failed without another warning',
    );
  }

  _unreachable(error) {
    if (this._down) return;
    const { dropped, failed } = this._counts;
    this._down = { since: Date.now(), dropped, failed };
    this._log.warn(
      `telemetry client: receiver ${this._where} unavailable (${describe(error)}); events wait in a ` +
        `queue of ${this._maxQueue} and each batch is retried for up to ${this._retryDeadline} s; ` +
        'events beyond the queue are dropped. No further warning until it is back.',
    );
  }

  _reachable() {
    if (!this._down) return;
    const { since, dropped, failed } = this._down;
    this._down = null;
    const seconds = ((Date.now() - since) / 1000).toFixed(1);
    const queueDrops = this._counts.dropped - dropped;
    const batchLosses = this._counts.failed - failed;
    this._log.info(
      `telemetry client: receiver ${this._where} reachable again after ${seconds} s down; ` +
        `${queueDrops + batchLosses} events dropped meanwhile (${queueDrops} for a full queue, ` +
        `${batchLosses} in batches past the retry deadline)`,
    );
  }

  warnEvery(key, message) {
    const now = Date.now();
    const last = this._warnedAt.get(key);
    if (last !== undefined && now - last < REPEAT_WARNING_MS) return;
    this._warnedAt.set(key, now);
    this._log.warn(message);
  }

  _sleep(seconds) {
    return new Promise((resolve) => {
      const sleep = {
        wake: () => {
          clearTimeout(sleep.timer);
          this._sleeps.delete(sleep);
          resolve();
        },
      };
      sleep.timer = setTimeout(sleep.wake, timerMs(seconds));
      sleep.timer.unref();
      this._sleeps.add(sleep);
    });
  }

  _post(body) {
    return new Promise((resolve, reject) => {
      const send = (retryingStale) => {
        let answered = false;
        const request = this._transport.request(this._url, {
          method: 'POST',
          agent: this._agent,
          headers: { ...this._headers, 'Content-Length': body.length },
        });
        this._requests.add(request);
        const timer = setTimeout(
          () => request.destroy(new Error(`no answer within ${this._timeout} s`)),
          timerMs(this._timeout),
        );
        timer.unref();
        const done = () => {
          clearTimeout(timer);
          this._requests.delete(request);
        };
        // The flush at exit (or an awaited flush) holds the process; a send alone must not.
        request.on('socket', (socket) => socket.unref());
        request.on('response', (response) => {
          answered = true;
          const chunks = [];
          let size = 0;
          response.on('data', (chunk) => {
            size += chunk.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
          });
          response.on('end', () => {
            done();
            resolve({
              status: response.statusCode,
              payload: Buffer.concat(chunks),
              retryAfter: retryAfterSeconds(response.headers['retry-after']),
            });
          });
          response.on('error', (error) => {
            done();
            reject(error);
          });
        });
        request.on('error', (error) => {
          done();
          if (!answered && !retryingStale && request.reusedSocket && STALE_SOCKET_CODES.has(error.code) && !this._closing) {
            send(true);
          } else {
            reject(error);
          }
        });
        request.end(body);
      };
      send(false);
    });
  }
}
