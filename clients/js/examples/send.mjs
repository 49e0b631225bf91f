#!/usr/bin/env node
// Record N request events through the client and report what the receiver made of them:
//   node send.mjs --endpoint URL --token T --scenario S --partner P --count N --fail-every K --operation O
//                 [--start ISO-TIME]
// With --start, the events are stamped from that instant on, a second apart (a replay); else now.
// Prints stats() as one JSON line; exits 0 only if every event was accepted.
import { parseArgs } from 'node:util';

import { STATUS_SERVICE_ERROR, STATUS_SUCCESS, TelemetryClient } from '@telemetry-availability/client';

function usage(message) {
  process.stderr.write(
    `${message}\nusage: node send.mjs [--endpoint URL] [--token T] [--scenario S] [--partner P] ` +
      '[--count N] [--fail-every K] [--operation O] [--start ISO-TIME]\n',
  );
  process.exit(2);
}

function whole(name, text, fallback, min) {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) usage(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      endpoint: { type: 'string' },
      token: { type: 'string' },
      scenario: { type: 'string' },
      partner: { type: 'string' },
      count: { type: 'string' },
      'fail-every': { type: 'string' },
      operation: { type: 'string' },
      start: { type: 'string' },
    },
    strict: true,
  }));
} catch (error) {
  usage(error.message);
}

const count = whole('count', values.count, 1, 0);
// 0, like leaving it out, means none fail.
const failEvery = whole('fail-every', values['fail-every'], 0, 0);
const operation = values.operation ?? 'SendExample';
const start = values.start === undefined ? null : Date.parse(values.start);
if (Number.isNaN(start)) usage(`--start must be an ISO-8601 time, got ${JSON.stringify(values.start)}`);

let client;
try {
  // Endpoint and token fall back to TELEMETRY_CLIENT_ENDPOINT / TELEMETRY_CLIENT_TOKEN.
  client = new TelemetryClient({ endpoint: values.endpoint, token: values.token });
} catch (error) {
  usage(error.message);
}

for (let i = 1; i <= count; i += 1) {
  client.record(operation, {
    latencyMs: 5 + (i % 20),
    requestStatus: failEvery && i % failEvery === 0 ? STATUS_SERVICE_ERROR : STATUS_SUCCESS,
    requestType: 'POST',
    scenario: values.scenario,
    partner: values.partner,
    ...(start === null ? {} : { time: new Date(start + (i - 1) * 1000) }),
  });
}
await client.flush(30);
await client.close(0);
const stats = client.stats();
process.stdout.write(`${JSON.stringify(stats)}\n`);
process.exitCode = stats.accepted === count ? 0 : 1;
