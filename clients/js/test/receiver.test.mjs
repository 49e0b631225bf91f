// The client against the platform's real receiver: what it records is what lands.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { STATUS_SERVICE_ERROR, TelemetryClient, buildEvent, correlation } from '../src/index.js';
import {
  PACKAGE_ENTRY,
  Receiver,
  TOKEN,
  captureLogger,
  freePort,
  sleep,
  waitFor,
} from '../test-support/receiver.mjs';

const POSTS_OK = ['telemetry_ingest_requests_total', { path: '/v1/events', code: '200' }];
const POSTS_413 = ['telemetry_ingest_requests_total', { path: '/v1/events', code: '413' }];

// One landed line of the split test, to size the small receiver's limit from.
function splitLine(n) {
  return JSON.stringify(
    buildEvent({
      eventId: `split-${String(n).padStart(26, '0')}`,
      time: new Date().toISOString(),
      operation: 'Split',
      latencyMs: 1,
      requestStatus: 3,
      roleInstance: 'vm-1',
    }),
  );
}
const SPLIT_LINE_BYTES = Buffer.byteLength(splitLine(0)) + 1;

let receiver;
let small;

before(async () => {
  receiver = new Receiver();
  // Ten events fit under the limit, twenty do not: a batch of 40 is split twice.
  small = new Receiver({ env: { TELEMETRY_INGEST_MAX_BODY_BYTES: String(SPLIT_LINE_BYTES * 14) } });
  await Promise.all([receiver.start(), small.start()]);
});

after(async () => {
  await Promise.all([receiver?.remove(), small?.remove()]);
});

function runNode(source, env = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    const killer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

describe('against the real receiver', () => {
  test('requests, correlation and statuses land with the right fields', async () => {
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({
      endpoint: receiver.url, token: TOKEN, environment: 'prod', role: 'quote-svc', roleInstance: 'vm-7', logger,
    });
    const started = Date.now();
    const asyncHandler = client.track('Tracked', { requestType: 'GET' })(async function lookup(fail) {
      await sleep(5);
      if (fail) throw new Error('lookup failed');
      return 'found';
    });

    await correlation({ scenario: 'checkout.quote', partner: 'contoso' }, async () => {
      client.request('GetQuote', { requestType: 'POST', caller: 'web', eventId: 'rq-ok' }, (scope) => {
        scope.httpStatus = 201;
      });
      client.request('GetQuote', { eventId: 'rq-caller-error' }, (scope) => {
        scope.httpStatus = 404;
      });
      await assert.rejects(
        client.request('Slow', { eventId: 'rq-raised' }, async () => {
          await sleep(30);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.throws(() => client.request('Sync', { eventId: 'rq-sync-raised' }, () => {
        throw new TypeError('bad');
      }), TypeError);
      // A status set before the error is what counts, as in the Python client.
      assert.throws(() => client.request('Rejected', { eventId: 'rq-404-raised' }, (scope) => {
        scope.httpStatus = 404;
        throw new Error('not found');
      }));
      await correlation({ partner: 'fabrikam' }, async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        client.request('Inner', { eventId: 'rq-inner' }, () => {});
      });
      assert.equal(await asyncHandler(false), 'found');
      await assert.rejects(asyncHandler(true), /lookup failed/);
      client.record('Measured', {
        eventId: 'rq-measured', latencyMs: 12.3456, requestStatus: null, requestType: 'Read', scenario: 'search.query',
      });
    });
    client.request('NoContext', { eventId: 'rq-no-context' }, (scope) => {
      scope.status = 7;
    });

    assert.equal(await client.flush(20), true);
    const stats = client.stats();
    assert.deepEqual(
      [stats.enqueued, stats.accepted, stats.rejected, stats.dropped, stats.failed, stats.queued],
      [10, 10, 0, 0, 0, 0],
    );
    assert.deepEqual(lines, { warn: [], info: [] });

    const events = receiver.events('rq-');
    assert.equal(events.size, 8);
    const ok = events.get('rq-ok');
    assert.match(ok.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(ok.time) >= started - 1 && Date.parse(ok.time) <= Date.now());
    // The whole event, but for the latency measured.
    assert.deepEqual(ok, buildEvent({
      eventId: 'rq-ok', time: ok.time, operation: 'GetQuote', latencyMs: ok.data.baseData.latencyMs, requestStatus: 3,
      requestType: 'POST', caller: 'web', scenario: 'checkout.quote', partner: 'contoso',
      environment: 'prod', role: 'quote-svc', roleInstance: 'vm-7',
    }));
    const status = (id) => events.get(id).data.baseData.requestStatus;
    assert.equal(status('rq-caller-error'), 4);
    assert.equal(status('rq-raised'), STATUS_SERVICE_ERROR);
    assert.equal(status('rq-sync-raised'), STATUS_SERVICE_ERROR);
    assert.equal(status('rq-404-raised'), 4);
    assert.equal(status('rq-no-context'), 7);
    assert.ok(events.get('rq-raised').data.baseData.latencyMs >= 29, 'latency covers the awaited work');
    assert.equal(events.get('rq-inner').data.cC, 'ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=fabrikam');
    assert.equal(events.get('rq-no-context').data.cC, '');
    const measured = events.get('rq-measured');
    assert.equal(measured.data.cC, 'ms.b.tel.scenario=search.query;ms.b.tel.partner=contoso');
    assert.deepEqual(measured.data.baseData, {
      operationName: 'Measured', callerName: '', requestType: 'Read', latencyMs: 12.346,
    });
    const tracked = [...receiver.events().values()].filter((e) => e.data.baseData.operationName === 'Tracked');
    assert.deepEqual(tracked.map((e) => e.data.baseData.requestStatus).sort(), [3, 6]);
    assert.ok(tracked.every((e) => /^[0-9a-f]{32}$/.test(e.id) && e.data.baseData.requestType === 'GET'));
    await client.close();
  });

  test('N events go in ceil(N / batchSize) posts, full batches without waiting', async () => {
    const client = new TelemetryClient({ endpoint: receiver.url, token: TOKEN, batchSize: 25, flushInterval: 30 });
    const postsBefore = await receiver.metric(...POSTS_OK);
    for (let i = 0; i < 110; i += 1) {
      client.record('Batched', { latencyMs: 1, requestStatus: 3, eventId: `batch-${i}` });
    }
    // The 30 s interval is far off: only full batches can have gone.
    assert.ok(await waitFor(() => client.stats().accepted === 100, 15000), JSON.stringify(client.stats()));
    await sleep(100);
    assert.equal(client.stats().accepted, 100);
    assert.equal(await client.flush(20), true);
    const stats = client.stats();
    assert.deepEqual([stats.accepted, stats.batches, stats.retries, stats.failed], [110, 5, 0, 0]);
    assert.equal((await receiver.metric(...POSTS_OK)) - postsBefore, 5);
    assert.equal(receiver.events('batch-').size, 110);
    assert.equal(receiver.filesWith('batch-'), 5);
    await client.close();
  });

  test('a flush interval sends what is queued without a flush call', async () => {
    const client = new TelemetryClient({ endpoint: receiver.url, token: TOKEN, flushInterval: 0.1 });
    for (let i = 0; i < 3; i += 1) client.record('Ticked', { latencyMs: 1, requestStatus: 3, eventId: `tick-${i}` });
    assert.ok(await waitFor(() => client.stats().accepted === 3, 10000));
    assert.equal(receiver.events('tick-').size, 3);
    await client.close();
  });

  test('events the receiver refuses are counted rejected, not failed, with one warning', async () => {
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: receiver.url, token: TOKEN, logger });
    // Before 2026-01-01, the first hour the pipeline processes: the receiver refuses it.
    const old = new Date('2025-06-01T00:00:00Z');
    for (let i = 0; i < 4; i += 1) client.record('Old', { latencyMs: 1, requestStatus: 3, time: old, eventId: `old-${i}` });
    assert.equal(await client.flush(20), true);
    assert.deepEqual([client.stats().rejected, client.stats().accepted, client.stats().failed], [4, 0, 0]);
    for (let i = 0; i < 3; i += 1) client.record('Mixed', { latencyMs: 1, requestStatus: 3, eventId: `mixed-${i}` });
    client.record('Mixed', { latencyMs: 1, requestStatus: 3, time: old, eventId: 'mixed-old' });
    assert.equal(await client.flush(20), true);
    const stats = client.stats();
    assert.deepEqual([stats.rejected, stats.accepted, stats.failed, stats.retries], [5, 3, 0, 0]);
    assert.deepEqual([...receiver.events('mixed-').keys()].sort(), ['mixed-0', 'mixed-1', 'mixed-2']);
    assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
    assert.match(lines.warn[0], /rejected 4 of 4 events \(line 1: time is before 2026-01-01/);
    await client.close();
  });

  test('a bad token is not retried: counted failed, one warning', async () => {
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: receiver.url, token: 'not-a-token', logger, flushInterval: 0.05 });
    for (let round = 0; round < 3; round += 1) {
      for (let i = 0; i < 4; i += 1) client.record('Unauthorized', { latencyMs: 1, requestStatus: 3 });
      assert.equal(await client.flush(20), true);
    }
    const stats = client.stats();
    assert.deepEqual([stats.failed, stats.accepted, stats.retries, stats.batches], [12, 0, 0, 3]);
    assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
    assert.match(lines.warn[0], /HTTP 401.*TELEMETRY_CLIENT_TOKEN/);
    assert.deepEqual(lines.info, []);
    await client.close();
  });

  test('a batch over the receiver size limit (413) is halved until it fits', async () => {
    const client = new TelemetryClient({
      endpoint: small.url, token: TOKEN, batchSize: 40, flushInterval: 30, roleInstance: 'vm-1',
    });
    const refusedBefore = await small.metric(...POSTS_413);
    for (let i = 0; i < 40; i += 1) {
      const line = JSON.parse(splitLine(i));
      client.record('Split', { latencyMs: 1, requestStatus: 3, eventId: line.id });
    }
    assert.equal(await client.flush(30), true);
    const stats = client.stats();
    // 40 refused, 2 x 20 refused, 4 x 10 accepted.
    assert.deepEqual([stats.accepted, stats.failed, stats.batches, stats.retries], [40, 0, 7, 0]);
    assert.equal((await small.metric(...POSTS_413)) - refusedBefore, 3);
    assert.equal(small.events('split-').size, 40);
    assert.equal(small.filesWith('split-'), 4);
    await client.close();
  });

  const childScript = (endpoint, options, count, prefix) => `
    import { TelemetryClient } from ${JSON.stringify(pathToFileURL(PACKAGE_ENTRY).href)};
    const client = new TelemetryClient({ endpoint: ${JSON.stringify(endpoint)}, token: ${JSON.stringify(TOKEN)}, ...${JSON.stringify(options)} });
    for (let i = 0; i < ${count}; i += 1) {
      client.record('AtExit', { latencyMs: 1, requestStatus: 3, eventId: '${prefix}' + i });
    }
  `;

  test('a process that records and ends flushes its events on the way out', async () => {
    const result = await runNode(childScript(receiver.url, { flushInterval: 60 }, 50, 'exit-'));
    assert.deepEqual([result.code, result.signal], [0, null], result.stderr);
    assert.equal(result.stderr, '');
    assert.ok(result.seconds < 10, `took ${result.seconds} s`);
    assert.deepEqual(
      [...receiver.events('exit-').keys()].sort(),
      Array.from({ length: 50 }, (_, i) => `exit-${i}`).sort(),
    );
  });

  test('a process whose receiver is down exits within exitFlushTimeout', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const result = await runNode(childScript(down, { flushInterval: 60, exitFlushTimeout: 1 }, 20, 'gone-'));
    assert.deepEqual([result.code, result.signal], [0, null], result.stderr);
    // It did wait for the receiver, and no longer than it was told to (plus Node's start-up).
    assert.ok(result.seconds >= 1 && result.seconds < 4, `took ${result.seconds} s`);
    assert.equal(result.stderr.match(/unavailable/g)?.length, 1, result.stderr);
  });

  test('a process with nothing queued exits at once: no timer keeps it alive', async () => {
    const result = await runNode(childScript(receiver.url, { flushInterval: 60 }, 0, 'none-'));
    assert.deepEqual([result.code, result.signal], [0, null], result.stderr);
    assert.ok(result.seconds < 5, `took ${result.seconds} s`);
  });
});
