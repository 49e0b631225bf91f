// The event wire format (SPEC section 2), field for field what the Python client's
// telemetry_client/events.py writes; clients/golden/events.json pins both.

export const BASE_TYPE = 'Ms.Qos.IncomingServiceRequest';
// Major version 5 is what tells the pipeline to read scenario and partner from data.cC
// rather than the legacy data.scScenario / data.scPartner fields.
export const LIB_VERSION = '5.0.0';

export const SCENARIO_KEY = 'ms.b.tel.scenario';
export const PARTNER_KEY = 'ms.b.tel.partner';

// The pipeline counts a request as successful when its status is present and below 5, so a
// caller's mistake (4xx) does not count against the service.
export const STATUS_SUCCESS = 3;
export const STATUS_CALLER_ERROR = 4;
export const STATUS_SERVICE_ERROR = 6;

// ';' and ',' separate pairs and '=' separates key from value in data.cC; a value carrying
// one of them would be read back as a different scenario or partner.
const CONTEXT_SEPARATORS = /[;,=]/g;
// Python's str.strip() set, not String.prototype.trim()'s: the two differ on U+001C-U+001F,
// U+0085 and U+FEFF, and both clients must write the same bytes for the same input.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/** requestStatus for an HTTP response code: 4xx is the caller's error, 5xx the service's. */
export function statusFromHttp(code) {
  if (code >= 500) return STATUS_SERVICE_ERROR;
  if (code >= 400) return STATUS_CALLER_ERROR;
  return STATUS_SUCCESS;
}

/** data.cC for a scenario and partner, e.g. `ms.b.tel.scenario=quote;ms.b.tel.partner=acme`. */
export function correlationContext(scenario, partner) {
  const pairs = [];
  for (const [key, value] of [[SCENARIO_KEY, scenario], [PARTNER_KEY, partner]]) {
    if (!value) continue;
    if (typeof value !== 'string') {
      throw new TypeError(`${key} must be a string, got ${typeof value}`);
    }
    pairs.push(`${key}=${value.replace(PY_STRIP, '').replace(CONTEXT_SEPARATORS, '_')}`);
  }
  return pairs.join(';');
}

/** ISO-8601 UTC with milliseconds and a Z, e.g. `2026-11-20T10:15:03.120Z`. */
export function formatTime(moment) {
  const date = moment instanceof Date ? moment : new Date(moment);
  // toISOString throws a RangeError for an invalid date, which is what a caller should see.
  return date.toISOString();
}

/**
 * Python's round(x, 3): the decimal nearest to the double's exact value, ties to even.
 * toFixed is exact too but breaks ties upwards; a double is exactly halfway between two
 * thousandths only when it is an odd number of sixteenths.
 */
function roundMillis(x) {
  if (!Number.isFinite(x)) return x;
  const sixteenths = x * 16;
  if (Number.isInteger(sixteenths) && Math.abs(sixteenths % 2) === 1 && Math.abs(x) < 2 ** 48) {
    const below = Math.floor(x * 1000);
    return (below % 2 === 0 ? below : below + 1) / 1000;
  }
  return Number(x.toFixed(3));
}

/** One request event with every field SPEC section 2 names; a missing status stays missing. */
export function buildEvent({
  eventId,
  time,
  operation,
  latencyMs,
  requestStatus = null,
  requestType = '',
  caller = '',
  scenario = null,
  partner = null,
  environment = '',
  role = '',
  roleInstance = '',
  isTest = false,
} = {}) {
  if (typeof latencyMs !== 'number') {
    throw new TypeError(`latencyMs must be a number, got ${typeof latencyMs}`);
  }
  const rounded = roundMillis(latencyMs);
  if (rounded === Infinity) throw new RangeError('latencyMs must be finite');
  const baseData = {
    operationName: operation,
    callerName: caller ?? '',
    requestType: requestType ?? '',
    // Like Python's max(0.0, x): NaN and negatives become 0.
    latencyMs: rounded > 0 ? rounded : 0,
  };
  if (requestStatus !== null && requestStatus !== undefined) baseData.requestStatus = requestStatus;
  const data = {
    baseType: BASE_TYPE,
    cC: correlationContext(scenario, partner),
    baseData,
  };
  if (isTest) data.isTest = 'true';
  return {
    id: eventId,
    time,
    data,
    ext: {
      cloud: {
        environment: environment ?? '',
        role: role ?? '',
        roleInstance: roleInstance ?? '',
      },
      sll: { libVer: LIB_VERSION },
    },
  };
}
