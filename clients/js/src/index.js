// A small, dependency-free client that services use to emit one telemetry event per request.
export { TelemetryClient } from './client.js';
export { correlation } from './context.js';
export {
  BASE_TYPE,
  LIB_VERSION,
  STATUS_CALLER_ERROR,
  STATUS_SERVICE_ERROR,
  STATUS_SUCCESS,
  buildEvent,
  correlationContext,
  formatTime,
  statusFromHttp,
} from './events.js';
export { parseBaggage } from './middleware.js';
export { RequestScope } from './scope.js';
