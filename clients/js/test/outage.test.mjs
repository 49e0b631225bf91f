// When the receiver is down, slow or failing: recording stays fast, the client logs once per
// outage, and what it could keep arrives once the receiver is back.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';

import { TelemetryClient } from '../src/index.js';
import { Receiver, TOKEN, captureLogger, freePort, sleep } from '../test-support/receiver.mjs';

/** A node:http server that answers POSTs as `answer(index, req)` says; keeps every body. */
async function scripted(answer) {
  const posts = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const post = { at: performance.now(), body: Buffer.concat(chunks), headers: req.headers, port: req.socket.remotePort };
      posts.push(post);
      const { status = 200, headers = {}, hang = false, reset = false } = answer(posts.length - 1, post) ?? {};
      if (reset) {
        req.socket.destroy();
        return;
      }
      if (hang) return;
      const lines = zlib.gunzipSync(post.body).toString('utf8').split('\n').length;
      const payload = JSON.stringify(status === 200 ? { accepted: lines, rejected: [] } : { error: 'scripted' });
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    posts,
    url: `http://127.0.0.1:${server.address().port}`,
    close: async () => {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const record = (client, prefix, count) => {
  let kept = 0;
  for (let i = 0; i < count; i += 1) {
    if (client.record('Op', { latencyMs: 1, requestStatus: 3, eventId: `${prefix}${i}` })) kept += 1;
  }
  return kept;
};

describe('outages', () => {
  test('receiver down, then back: fast recording, one warning, drops counted, events arrive', async () => {
    const port = await freePort();
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({
      endpoint: `http://127.0.0.1:${port}`, token: TOKEN, maxQueue: 100, batchSize: 10, flushInterval: 0.05, logger,
    });
    const started = performance.now();
    let kept = record(client, 'down-', 5000);
    const spentMs = performance.now() - started;
    assert.ok(spentMs < 1000, `recording 5000 events took ${spentMs} ms`);
    // Nothing is sent from inside record(): every event is queued, and the oldest make room
    // for the newest before the sender has even found the receiver down.
    const burstDropped = client.stats().dropped;
    assert.deepEqual([kept, burstDropped], [5000, 4900]);
    // Keep recording while the sender retries its way through several attempts.
    for (let round = 0; round < 10; round += 1) {
      await sleep(100);
      kept += record(client, `down-${round}-`, 20);
    }
    let stats = client.stats();
    assert.equal(stats.enqueued, kept);
    assert.equal(kept, 5200);
    assert.ok(stats.dropped >= 5200 - 110, JSON.stringify(stats));
    assert.ok(stats.retries >= 2, JSON.stringify(stats));
    assert.ok(stats.queued <= 110 && stats.queued > 0, JSON.stringify(stats));
    assert.equal(stats.accepted, 0);
    assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
    assert.match(lines.warn[0], /unavailable \(ECONNREFUSED/);
    assert.deepEqual(lines.info, []);

    const receiver = await new Receiver({ port }).start();
    try {
      assert.equal(await client.flush(20), true);
      stats = client.stats();
      assert.deepEqual([stats.accepted, stats.failed, stats.queued], [kept - stats.dropped, 0, 0]);
      const arrived = receiver.events('down-');
      assert.equal(arrived.size, kept - stats.dropped);
      // The newest events are the ones kept.
      for (let i = 10; i < 20; i += 1) assert.ok(arrived.has(`down-9-${i}`), `down-9-${i} missing`);
      assert.equal(lines.info.length, 1, lines.info.join('\n'));
      const [, dropped] = lines.info[0].match(/reachable again after [\d.]+ s down; (\d+) events dropped meanwhile/);
      assert.equal(Number(dropped), stats.dropped - burstDropped);
      assert.ok(Number(dropped) > 0);

      assert.equal(record(client, 'after-', 5), 5);
      assert.equal(await client.flush(20), true);
      assert.equal(receiver.events('after-').size, 5);
      assert.equal(lines.warn.length, 1);
    } finally {
      await client.close();
      await receiver.remove();
    }
  });

  test('503 and 500 answers are retried with the same body, honouring Retry-After', async () => {
    const server = await scripted((index) => {
      if (index === 0) return { status: 503, headers: { 'Retry-After': '1' } };
      if (index === 1) return { status: 500 };
      return { status: 200 };
    });
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: server.url, token: TOKEN, flushInterval: 0.05, logger });
    try {
      record(client, 'retry-', 20);
      assert.equal(await client.flush(20), true);
      const stats = client.stats();
      assert.deepEqual([stats.retries, stats.accepted, stats.failed, stats.batches], [2, 20, 0, 1]);
      assert.equal(server.posts.length, 3);
      assert.ok(server.posts.every((post) => post.body.equals(server.posts[0].body)));
      assert.ok(server.posts[1].at - server.posts[0].at >= 950, 'waited as Retry-After asked');
      const ndjson = zlib.gunzipSync(server.posts[0].body).toString('utf8').split('\n');
      assert.deepEqual(ndjson.map((line) => JSON.parse(line).id), Array.from({ length: 20 }, (_, i) => `retry-${i}`));
      const { headers } = server.posts[0];
      assert.deepEqual(
        [headers.authorization, headers['content-type'], headers['content-encoding']],
        [`Bearer ${TOKEN}`, 'application/x-ndjson', 'gzip'],
      );
      // One kept-alive connection for all three attempts.
      assert.equal(new Set(server.posts.map((post) => post.port)).size, 1);
      assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
      assert.match(lines.warn[0], /HTTP 503/);
      assert.equal(lines.info.length, 1);
      assert.match(lines.info[0], /reachable again.*; 0 events dropped meanwhile/);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a batch still refused at the retry deadline is counted failed', async () => {
    let healthy = false;
    const server = await scripted(() => ({ status: healthy ? 200 : 502 }));
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: server.url, token: TOKEN, flushInterval: 0.05, retryDeadline: 0.5, logger });
    try {
      record(client, 'deadline-', 5);
      const started = performance.now();
      assert.equal(await client.flush(10), true);
      assert.ok(performance.now() - started < 5000);
      let stats = client.stats();
      assert.deepEqual([stats.failed, stats.accepted, stats.queued], [5, 0, 0]);
      assert.ok(stats.retries >= 1 && server.posts.length === stats.retries + 1, JSON.stringify(stats));
      healthy = true;
      record(client, 'healed-', 3);
      assert.equal(await client.flush(10), true);
      stats = client.stats();
      assert.deepEqual([stats.failed, stats.accepted], [5, 3]);
      assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
      assert.match(lines.info[0], /5 events dropped meanwhile \(0 for a full queue, 5 in batches past the retry deadline\)/);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a kept-alive connection the receiver dropped is resent at once, not an outage', async () => {
    let firstPort;
    const server = await scripted((index, post) => {
      firstPort ??= post.port;
      // The second request on the first connection meets a closed socket.
      return index === 1 && post.port === firstPort ? { reset: true } : { status: 200 };
    });
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: server.url, token: TOKEN, flushInterval: 0.05, logger });
    try {
      record(client, 'stale-a-', 3);
      assert.equal(await client.flush(10), true);
      record(client, 'stale-b-', 3);
      assert.equal(await client.flush(10), true);
      const stats = client.stats();
      assert.deepEqual([stats.accepted, stats.retries, stats.failed], [6, 0, 0]);
      assert.equal(server.posts.length, 3);
      assert.ok(server.posts[2].body.equals(server.posts[1].body));
      assert.deepEqual(lines, { warn: [], info: [] });
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a receiver that never answers: per-request timeout, and close() gives up on time', async () => {
    const server = await scripted(() => ({ hang: true }));
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: server.url, token: TOKEN, flushInterval: 0.05, timeout: 0.2, logger });
    try {
      record(client, 'hang-', 4);
      assert.equal(await client.flush(1.5), false);
      assert.ok(server.posts.length >= 2, 'the unanswered request timed out and was retried');
      assert.match(lines.warn[0], /no answer within 0\.2 s/);
      const started = performance.now();
      assert.equal(await client.close(0.1), false);
      assert.ok(performance.now() - started < 3000);
      const stats = client.stats();
      assert.deepEqual([stats.failed, stats.queued, stats.accepted], [4, 0, 0]);
      assert.equal(client.record('Op', { latencyMs: 1, requestStatus: 3 }), false);
      assert.equal(lines.warn.length, 1, lines.warn.join('\n'));
    } finally {
      await server.close();
    }
  });
});
