// One timed request, shared by client.request() and the middleware.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import { STATUS_SERVICE_ERROR, STATUS_SUCCESS, statusFromHttp } from './events.js';

/** A random event id: 32 hex digits, the form of Python's uuid4().hex. */
export function newEventId() {
  return randomUUID().replaceAll('-', '');
}

/** One timed request; set `httpStatus` or `status` before it ends. */
export class RequestScope {
  constructor({ operation, requestType = '', caller = '', scenario, partner, eventId } = {}) {
    this.operation = operation;
    this.requestType = requestType;
    this.caller = caller;
    this.scenario = scenario;
    this.partner = partner;
    this.eventId = eventId || newEventId();
    this.httpStatus = null;
    this.status = null;
    this.time = new Date();
    this._started = performance.now();
  }

  requestStatus(failed) {
    if (this.status !== null && this.status !== undefined) return this.status;
    if (this.httpStatus !== null && this.httpStatus !== undefined) return statusFromHttp(this.httpStatus);
    return failed ? STATUS_SERVICE_ERROR : STATUS_SUCCESS;
  }

  elapsedMs() {
    return performance.now() - this._started;
  }
}
