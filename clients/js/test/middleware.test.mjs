// Server-side timing with a real Express app and a plain node:http server, both on loopback,
// reporting to the real receiver.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import express from 'express';

import { TelemetryClient, correlation } from '../src/index.js';
import { Receiver, TOKEN, captureLogger, send, sleep, waitFor } from '../test-support/receiver.mjs';

let receiver;

before(async () => {
  receiver = await new Receiver().start();
});

after(async () => {
  await receiver?.remove();
});

async function listen(handler) {
  const server = http.createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

async function shut(server) {
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
}

/** Start a request and give up on it after `ms`, before the server has answered. */
function abandon(url, ms) {
  return new Promise((resolve) => {
    const request = http.get(url, { agent: false });
    request.on('error', () => resolve());
    setTimeout(() => {
      request.destroy();
      resolve();
    }, ms);
  });
}

/** The landed events of one role instance, by operation and method. */
function landedFor(instance) {
  const events = [...receiver.events().values()].filter((e) => e.ext.cloud.roleInstance === instance);
  return {
    events,
    one(operation, method = 'GET') {
      const found = events.filter(
        (e) => e.data.baseData.operationName === operation && e.data.baseData.requestType === method,
      );
      assert.equal(found.length, 1, `${method} ${operation}: ${JSON.stringify(events.map((e) => e.data.baseData))}`);
      return found[0];
    },
  };
}

const baggage = 'ms.b.tel.scenario=checkout.quote;ttl=60, other=x, ms.b.tel.partner=con%20toso';

describe('middleware', () => {
  test('an Express app: route templates, statuses, baggage and overrides', async () => {
    const { lines, logger } = captureLogger();
    const client = new TelemetryClient({ endpoint: receiver.url, token: TOKEN, roleInstance: 'express-1', logger });
    const app = express();
    // Keeps Express's own 500 handler from printing the thrown error's stack.
    app.set('env', 'test');
    app.use(client.middleware());
    app.get('/items/:id', (req, res) => res.json({ id: req.params.id }));
    app.get('/boom', () => {
      throw new Error('handler failed');
    });
    app.get('/missing', (req, res) => res.status(404).send('no'));
    app.get('/slow', async (req, res) => {
      await sleep(80);
      res.send('done');
    });
    app.get('/late', (req, res) => {
      setTimeout(() => res.end('too late'), 3000).unref();
    });
    app.get('/explicit', (req, res) => {
      req.telemetry.scenario = 'explicit.scenario';
      req.telemetry.operation = 'ExplicitName';
      res.send('ok');
    });
    app.post('/correlated', express.json(), (req, res) =>
      correlation({ partner: req.body.partner }, async () => {
        await sleep(5);
        res.json({ ok: true });
      }),
    );
    const router = express.Router();
    router.get('/orders/:orderId', (req, res) => res.send('order'));
    router.get('/orders/:orderId/fail', async () => {
      throw new Error('async failure');
    });
    app.use('/api', router);

    const { server, url } = await listen(app);
    try {
      const answers = await Promise.all([
        send(`${url}/items/42?verbose=1`, { headers: { baggage } }),
        send(`${url}/items/43`),
        send(`${url}/boom`),
        send(`${url}/missing`),
        send(`${url}/slow`),
        send(`${url}/explicit`, { headers: { baggage } }),
        send(`${url}/correlated`, {
          method: 'POST',
          headers: { baggage, 'content-type': 'application/json' },
          body: JSON.stringify({ partner: 'from-body' }),
        }),
        send(`${url}/api/orders/7`),
        send(`${url}/api/orders/7/fail`),
        send(`${url}/nowhere/at/all?q=1`),
      ]);
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 500, 404, 200, 200, 200, 200, 500, 404]);
      await abandon(`${url}/late`, 50);
      // The abandoned request is recorded when its connection closes, not when the handler
      // gets round to answering.
      assert.ok(await waitFor(() => client.stats().enqueued === 11, 5000), JSON.stringify(client.stats()));
    } finally {
      await shut(server);
    }
    assert.equal(await client.flush(20), true);
    assert.deepEqual([client.stats().accepted, client.stats().failed, client.stats().dropped], [11, 0, 0]);

    const landed = landedFor('express-1');
    assert.equal(landed.events.length, 11);
    // Both item requests under the one template, each with its own baggage (or none).
    const items = landed.events.filter((e) => e.data.baseData.operationName === '/items/:id');
    assert.deepEqual(items.map((e) => e.data.cC).sort(), ['', 'ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=con toso']);
    assert.deepEqual(items.map((e) => e.data.baseData.requestStatus), [3, 3]);
    assert.ok(items.every((e) => /^[0-9a-f]{32}$/.test(e.id)));
    assert.equal(landed.one('/boom').data.baseData.requestStatus, 6);
    assert.equal(landed.one('/missing').data.baseData.requestStatus, 4);
    assert.ok(landed.one('/slow').data.baseData.latencyMs >= 75, 'latency runs to the response');
    assert.equal(landed.one('/late').data.baseData.requestStatus, 4);
    assert.ok(landed.one('/late').data.baseData.latencyMs < 2500, 'recorded when the caller left');
    assert.equal(landed.one('ExplicitName').data.cC, 'ms.b.tel.scenario=explicit.scenario;ms.b.tel.partner=con toso');
    const correlated = landed.one('/correlated', 'POST');
    assert.equal(correlated.data.cC, 'ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=from-body');
    assert.equal(landed.one('/api/orders/:orderId').data.baseData.requestStatus, 3);
    // Recorded under its route even though Express's error handler answered outside the router.
    assert.equal(landed.one('/api/orders/:orderId/fail').data.baseData.requestStatus, 6);
    assert.equal(landed.one('/nowhere/at/all').data.baseData.requestStatus, 4);
    assert.deepEqual(lines, { warn: [], info: [] });
    await client.close();
  });

  test('a node:http handler wrapped with client.wrap()', async () => {
    const client = new TelemetryClient({ endpoint: receiver.url, token: TOKEN, roleInstance: 'http-1' });
    const handler = client.wrap(async (req, res) => {
      const path = req.url.split('?')[0];
      if (path === '/fail') {
        res.statusCode = 503;
        res.end('down');
      } else if (path === '/nested') {
        // What the handler records itself inherits the request's baggage.
        client.request('Downstream', { eventId: 'wrap-downstream' }, () => {});
        res.end('ok');
      } else if (path === '/correlated') {
        await correlation({ scenario: 'handler.scenario' }, async () => {
          await sleep(1);
          res.end('ok');
        });
      } else {
        res.end('ok');
      }
    });
    const { server, url } = await listen(handler);
    try {
      const answers = await Promise.all([
        send(`${url}/ok?x=1`, { headers: { baggage } }),
        send(`${url}/fail`),
        send(`${url}/nested`, { headers: { baggage: 'ms.b.tel.partner=acme' } }),
        send(`${url}/correlated`, { method: 'PUT', headers: { baggage } }),
      ]);
      assert.deepEqual(answers.map((a) => a.status), [200, 503, 200, 200]);
    } finally {
      await shut(server);
    }
    assert.equal(await client.flush(20), true);
    assert.equal(client.stats().accepted, 5);
    const landed = landedFor('http-1');
    const ok = landed.one('/ok');
    assert.deepEqual(
      [ok.data.baseData.requestStatus, ok.data.cC],
      [3, 'ms.b.tel.scenario=checkout.quote;ms.b.tel.partner=con toso'],
    );
    assert.equal(landed.one('/fail').data.baseData.requestStatus, 6);
    assert.equal(landed.one('/nested').data.cC, 'ms.b.tel.partner=acme');
    assert.equal(receiver.events('wrap-downstream').get('wrap-downstream').data.cC, 'ms.b.tel.partner=acme');
    assert.equal(
      landed.one('/correlated', 'PUT').data.cC,
      'ms.b.tel.scenario=handler.scenario;ms.b.tel.partner=con toso',
    );
    await client.close();
  });
});
