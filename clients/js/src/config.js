// Options, then TELEMETRY_CLIENT_* environment variables, then defaults.
import os from 'node:os';

const DEFAULT_ENDPOINT = 'http://127.0.0.1:8080';

function fromEnv(name) {
  const value = process.env[name];
  // An empty variable is how shells and compose files say "not set".
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function text(option, name, fallback) {
  if (option !== undefined && option !== null) return String(option);
  return fromEnv(name) ?? fallback;
}

function number(option, optionName, envName, fallback, { integer = false, min, minExclusive }) {
  let value = option;
  let source = `option ${optionName}`;
  let shown = typeof option === 'string' ? JSON.stringify(option) : String(option);
  if (value === undefined || value === null) {
    const raw = envName && fromEnv(envName);
    if (!raw) return fallback;
    value = Number(raw);
    source = `environment variable ${envName}`;
    shown = JSON.stringify(raw);
  }
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (minExclusive !== undefined ? value > minExclusive : value >= min);
  if (!ok) {
    const kind = integer ? 'a whole number' : 'a number';
    const bound = minExclusive !== undefined ? `greater than ${minExclusive}` : `of at least ${min}`;
    throw new RangeError(`telemetry client: ${source} must be ${kind} ${bound}, got ${shown}`);
  }
  return value;
}

/** Every setting resolved and checked, so that a mistake shows at startup, not at the first send. */
export function resolveOptions(options = {}) {
  const endpoint = text(options.endpoint, 'TELEMETRY_CLIENT_ENDPOINT', DEFAULT_ENDPOINT);
  const token = text(options.token, 'TELEMETRY_CLIENT_TOKEN', '').trim();
  if (!token) {
    throw new Error(
      'telemetry client: no token; pass { token } or set TELEMETRY_CLIENT_TOKEN ' +
        '(one of the receiver\'s TELEMETRY_INGEST_TOKENS)',
    );
  }
  return {
    url: eventsUrl(endpoint),
    token,
    environment: text(options.environment, 'TELEMETRY_CLIENT_ENVIRONMENT', ''),
    role: text(options.role, 'TELEMETRY_CLIENT_ROLE', ''),
    roleInstance: text(options.roleInstance, 'TELEMETRY_CLIENT_ROLE_INSTANCE', undefined) ?? os.hostname(),
    isTest: Boolean(options.isTest),
    batchSize: number(options.batchSize, 'batchSize', 'TELEMETRY_CLIENT_BATCH_SIZE', 500,
      { integer: true, min: 1 }),
    flushInterval: number(options.flushInterval, 'flushInterval', 'TELEMETRY_CLIENT_FLUSH_INTERVAL', 1.0,
      { minExclusive: 0 }),
    maxQueue: number(options.maxQueue, 'maxQueue', 'TELEMETRY_CLIENT_MAX_QUEUE', 10000,
      { integer: true, min: 1 }),
    timeout: number(options.timeout, 'timeout', 'TELEMETRY_CLIENT_TIMEOUT', 10,
      { minExclusive: 0 }),
    exitFlushTimeout: number(options.exitFlushTimeout, 'exitFlushTimeout',
      'TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT', 5, { min: 0 }),
    retryDeadline: number(options.retryDeadline, 'retryDeadline', undefined, 60, { min: 0 }),
    logger: options.logger,
  };
}

/** The receiver's base URL or its full /v1/events URL, as the URL to post to. */
export function eventsUrl(endpoint) {
  let url;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`telemetry client: endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw new Error(`telemetry client: endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith('/v1/events') ? path : `${path}/v1/events`;
  return url;
}
