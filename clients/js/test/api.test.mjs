// The wire format against the golden file both clients share, and the client's settings and
// safety without a receiver.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import {
  BASE_TYPE,
  LIB_VERSION,
  STATUS_CALLER_ERROR,
  STATUS_SERVICE_ERROR,
  STATUS_SUCCESS,
  TelemetryClient,
  buildEvent,
  correlation,
  correlationContext,
  formatTime,
  parseBaggage,
  statusFromHttp,
} from '../src/index.js';
import { PACKAGE_DIR, captureLogger, freePort } from '../test-support/receiver.mjs';

const golden = JSON.parse(readFileSync(path.resolve(PACKAGE_DIR, '../golden/events.json'), 'utf8'));

describe('golden file', () => {
  test('has cases for all three tables', () => {
    assert.ok(golden.events.length >= 10);
    assert.ok(golden.times.length >= 1);
    assert.ok(golden.httpStatus.length >= 1);
  });

  for (const { name, input, event } of golden.events) {
    test(`event: ${name}`, () => {
      // Through JSON both ways: the file is what Python wrote, so 0.0 reads back as 0.
      const built = JSON.parse(JSON.stringify(buildEvent(input)));
      assert.deepStrictEqual(built, event);
      // Key order too: Python's dicts keep insertion order, and so does the file.
      assert.equal(JSON.stringify(built), JSON.stringify(event));
    });
  }

  test('times', () => {
    for (const { epochMs, time } of golden.times) {
      assert.equal(formatTime(new Date(epochMs)), time, `epochMs ${epochMs}`);
    }
  });

  test('HTTP status codes', () => {
    for (const [code, status] of golden.httpStatus) {
      assert.equal(statusFromHttp(code), status, `HTTP ${code}`);
    }
  });
});

describe('wire format details', () => {
  test('constants', () => {
    assert.deepEqual(
      [STATUS_SUCCESS, STATUS_CALLER_ERROR, STATUS_SERVICE_ERROR, LIB_VERSION, BASE_TYPE],
      [3, 4, 6, '5.0.0', 'Ms.Qos.IncomingServiceRequest'],
    );
  });

  test('correlation context', () => {
    assert.equal(correlationContext('', ''), '');
    assert.equal(correlationContext(undefined, 'p'), 'ms.b.tel.partner=p');
    assert.equal(correlationContext(' s=1 ', null), 'ms.b.tel.scenario=s_1');
    assert.equal(correlationContext('a,b;c', 'x=y'), 'ms.b.tel.scenario=a_b_c;ms.b.tel.partner=x_y');
    assert.throws(() => correlationContext(42, ''), TypeError);
  });

  test('latency is rounded like Python round(x, 3), ties to even', () => {
    const latency = (latencyMs) => buildEvent({ eventId: 'x', time: 't', operation: 'o', latencyMs }).data.baseData.latencyMs;
    assert.equal(latency(0.0625), 0.062);
    assert.equal(latency(0.1875), 0.188);
    assert.equal(latency(2.675), 2.675);
    assert.equal(latency(1.0005), 1);
    assert.equal(latency(Number.NaN), 0);
    assert.throws(() => latency('12'), TypeError);
    assert.throws(() => latency(Infinity), RangeError);
  });

  test('formatTime takes epoch milliseconds too, and refuses an invalid date', () => {
    assert.equal(formatTime(0), '1970-01-01T00:00:00.000Z');
    assert.throws(() => formatTime(new Date('nope')), RangeError);
  });

  test('baggage entries', () => {
    assert.deepEqual(
      parseBaggage('other=1, ms.b.tel.scenario=checkout%20quote;ttl=5 , MS.B.TEL.PARTNER = con%2Ctoso'),
      { scenario: 'checkout quote', partner: 'con,toso' },
    );
    assert.deepEqual(parseBaggage('ms.b.tel.scenario=%E0%A4%A;x'), { scenario: '%E0%A4%A', partner: undefined });
    assert.deepEqual(parseBaggage(undefined), { scenario: undefined, partner: undefined });
  });
});

const TELEMETRY_ENV = [
  'TELEMETRY_CLIENT_ENDPOINT', 'TELEMETRY_CLIENT_TOKEN', 'TELEMETRY_CLIENT_ENVIRONMENT',
  'TELEMETRY_CLIENT_ROLE', 'TELEMETRY_CLIENT_ROLE_INSTANCE', 'TELEMETRY_CLIENT_BATCH_SIZE',
  'TELEMETRY_CLIENT_FLUSH_INTERVAL', 'TELEMETRY_CLIENT_MAX_QUEUE', 'TELEMETRY_CLIENT_TIMEOUT',
  'TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT',
];

function withEnv(values, fn) {
  const saved = Object.fromEntries(TELEMETRY_ENV.map((name) => [name, process.env[name]]));
  for (const name of TELEMETRY_ENV) delete process.env[name];
  Object.assign(process.env, values);
  try {
    return fn();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

describe('settings', () => {
  test('a missing token is a clear error at construction', () => {
    withEnv({}, () => {
      assert.throws(() => new TelemetryClient(), /no token.*TELEMETRY_CLIENT_TOKEN/);
      assert.throws(() => new TelemetryClient({ token: '  ' }), /no token/);
    });
  });

  test('a bad number in an environment variable names the variable', () => {
    const cases = {
      TELEMETRY_CLIENT_BATCH_SIZE: ['abc', '0', '2.5'],
      TELEMETRY_CLIENT_FLUSH_INTERVAL: ['soon', '0', '-1'],
      TELEMETRY_CLIENT_MAX_QUEUE: ['1e', '-5'],
      TELEMETRY_CLIENT_TIMEOUT: ['ten', 'Infinity'],
      TELEMETRY_CLIENT_EXIT_FLUSH_TIMEOUT: ['5s', '-1'],
    };
    for (const [name, values] of Object.entries(cases)) {
      for (const value of values) {
        withEnv({ TELEMETRY_CLIENT_TOKEN: 't', [name]: value }, () => {
          assert.throws(
            () => new TelemetryClient(),
            (error) => error.message.includes(name) && error.message.includes(JSON.stringify(value)),
            `${name}=${value}`,
          );
        });
      }
    }
    assert.throws(() => new TelemetryClient({ token: 't', batchSize: '10' }), /option batchSize must be a whole number/);
  });

  test('options fall back to the environment, then to defaults', async () => {
    const fromEnv = withEnv(
      {
        TELEMETRY_CLIENT_ENDPOINT: 'http://receiver.example:9000/',
        TELEMETRY_CLIENT_TOKEN: 'env-token',
        TELEMETRY_CLIENT_ENVIRONMENT: 'prod',
        TELEMETRY_CLIENT_ROLE: 'quote-svc',
        TELEMETRY_CLIENT_ROLE_INSTANCE: 'vm-7',
        TELEMETRY_CLIENT_BATCH_SIZE: ' 20 ',
      },
      () => new TelemetryClient(),
    );
    assert.equal(fromEnv.endpoint, 'http://receiver.example:9000/v1/events');
    assert.deepEqual([fromEnv.environment, fromEnv.role, fromEnv.roleInstance], ['prod', 'quote-svc', 'vm-7']);
    assert.equal(fromEnv._sender._batchSize, 20);

    const overridden = withEnv(
      { TELEMETRY_CLIENT_ENVIRONMENT: 'prod', TELEMETRY_CLIENT_ROLE_INSTANCE: '' },
      () => new TelemetryClient({ token: 't', environment: 'ppe', endpoint: 'https://r.example/base/v1/events/' }),
    );
    assert.equal(overridden.endpoint, 'https://r.example/base/v1/events');
    assert.equal(overridden.environment, 'ppe');
    assert.equal(overridden.roleInstance, os.hostname());

    const defaults = withEnv({}, () => new TelemetryClient({ token: 't' }));
    assert.equal(defaults.endpoint, 'http://127.0.0.1:8080/v1/events');
    assert.deepEqual(
      [defaults._sender._batchSize, defaults._sender._maxQueue, defaults._sender._timeout, defaults._exitFlushTimeout],
      [500, 10000, 10, 5],
    );
    assert.throws(() => new TelemetryClient({ token: 't', endpoint: 'ftp://x' }), /http\(s\) URL/);
    assert.throws(() => new TelemetryClient({ token: 't', endpoint: 'not a url' }), /http\(s\) URL/);
    await Promise.all([fromEnv.close(0), overridden.close(0), defaults.close(0)]);
  });
});

describe('recording is safe', () => {
  test('an event that cannot be built is dropped and counted, never thrown', async () => {
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ token: 't', endpoint: `http://127.0.0.1:${await freePort()}`, logger });
    assert.equal(client.record('Op', { latencyMs: 'slow', requestStatus: 3 }), false);
    assert.equal(client.record('Op', { latencyMs: 1, requestStatus: 3, scenario: { not: 'a string' } }), false);
    assert.equal(client.record('Op', { latencyMs: 1, requestStatus: 3, time: new Date('invalid') }), false);
    const value = client.request('Op', (scope) => {
      scope.partner = 42;
      return 'served';
    });
    assert.equal(value, 'served');
    const stats = client.stats();
    assert.deepEqual([stats.enqueued, stats.dropped, stats.queued], [0, 4, 0]);
    assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
    assert.match(lines.warn[0], /not recorded/);
    await client.close(0);
  });

  test('request passes on results and errors, sync and async', async () => {
    const client = new TelemetryClient({ token: 't', endpoint: `http://127.0.0.1:${await freePort()}`, logger: captureLogger().logger });
    assert.equal(client.request('Sync', () => 7), 7);
    assert.equal(await client.request('Async', async () => 8), 8);
    assert.throws(() => client.request('Throws', () => { throw new SyntaxError('x'); }), SyntaxError);
    await assert.rejects(client.request('Rejects', async () => { throw new RangeError('y'); }), RangeError);
    const tracked = client.track('Tracked')(function add(a, b) { return a + b + this.offset; });
    assert.equal(tracked.call({ offset: 1 }, 2, 3), 6);
    assert.equal(client.stats().enqueued, 5);
    await client.close(0);
    assert.equal(client.record('Late', { latencyMs: 1, requestStatus: 3 }), false);
    const stats = client.stats();
    assert.deepEqual([stats.failed, stats.dropped, stats.queued], [5, 1, 0]);
  });

  test('correlation nests, inherits, and follows awaits and timers', async () => {
    const seen = [];
    const client = new TelemetryClient({ token: 't', endpoint: `http://127.0.0.1:${await freePort()}`, logger: captureLogger().logger });
    const capture = client._sender.submit.bind(client._sender);
    client._sender.submit = (line) => {
      seen.push(JSON.parse(line).data.cC);
      return capture(line);
    };
    await correlation({ scenario: 'outer', partner: 'p1' }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      client.record('A', { latencyMs: 1, requestStatus: 3 });
      await TelemetryClient.correlation({ partner: 'p2' }, async () => {
        await new Promise((resolve) => setImmediate(resolve));
        client.record('B', { latencyMs: 1, requestStatus: 3 });
        client.record('C', { latencyMs: 1, requestStatus: 3, scenario: 'explicit' });
      });
      client.record('D', { latencyMs: 1, requestStatus: 3 });
    });
    client.record('E', { latencyMs: 1, requestStatus: 3 });
    assert.deepEqual(seen, [
      'ms.b.tel.scenario=outer;ms.b.tel.partner=p1',
      'ms.b.tel.scenario=outer;ms.b.tel.partner=p2',
      'ms.b.tel.scenario=explicit;ms.b.tel.partner=p2',
      'ms.b.tel.scenario=outer;ms.b.tel.partner=p1',
      '',
    ]);
    await client.close(0);
  });
});
