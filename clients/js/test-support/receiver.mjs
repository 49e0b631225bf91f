// The platform's real HTTP receiver as a child process on a free loopback port, and what the
// tests read back from its landing folder. Kept out of test/ so the runner does not take it for
// a test file.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = path.resolve(here, '..');
export const PACKAGE_ENTRY = path.join(PACKAGE_DIR, 'src', 'index.js');
export const TELEMETRY_BIN = process.env.TELEMETRY_BIN || path.resolve(PACKAGE_DIR, '../../.venv/bin/telemetry');
export const TOKEN = 'js-client-test-token';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port nothing listens on now. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', resolve).on('error', reject));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * One HTTP request on its own connection (no keep-alive, so nothing outlives the test);
 * resolves with the status, headers and body as text.
 */
export function send(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Poll until `predicate()` is true; false when `timeoutMs` passed first. */
export async function waitFor(predicate, timeoutMs = 10000, everyMs = 25) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await predicate()) return true;
    await sleep(everyMs);
  }
  return Boolean(await predicate());
}

/** A logger that keeps what it is told. */
export function captureLogger() {
  const lines = { warn: [], info: [] };
  return {
    lines,
    logger: { warn: (message) => lines.warn.push(message), info: (message) => lines.info.push(message) },
  };
}

function walk(folder) {
  let entries;
  try {
    entries = readdirSync(folder, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) return walk(full);
    return entry.name.startsWith('.') ? [] : [full];
  });
}

export class Receiver {
  constructor({ env = {}, port } = {}) {
    this.env = env;
    this.port = port;
    this.landingDir = mkdtempSync(path.join(os.tmpdir(), 'telemetry-js-landing-'));
    this.process = null;
    this.output = '';
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    this.port ??= await freePort();
    const child = spawn(
      TELEMETRY_BIN,
      ['serve', '--host', '127.0.0.1', '--port', String(this.port), '--landing-dir', this.landingDir],
      { env: { ...process.env, TELEMETRY_INGEST_TOKENS: TOKEN, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.process = child;
    let exited = null;
    child.once('exit', (code, signal) => {
      exited = { code, signal };
    });
    child.once('error', (error) => {
      exited = { error };
    });
    const keep = (chunk) => {
      this.output = (this.output + chunk).slice(-20000);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    const up = await waitFor(async () => exited !== null || (await accepts(this.port)), 30000, 50);
    if (!up || exited) {
      await this.stop();
      throw new Error(
        `receiver (${TELEMETRY_BIN}) did not start on port ${this.port}: ` +
          `${JSON.stringify(exited)}\n${this.output}`,
      );
    }
    return this;
  }

  async stop() {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  async remove() {
    await this.stop();
    rmSync(this.landingDir, { recursive: true, force: true });
  }

  /** The landing files, plain and gzip'd, under events/date=…/hour=…/. */
  files() {
    return walk(path.join(this.landingDir, 'events')).filter((file) => /\.jsonl(\.gz)?$/.test(file));
  }

  /** Every landed event, with the file it is in. */
  landed() {
    return this.files().flatMap((file) => {
      const raw = readFileSync(file);
      const text = (file.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8');
      return text
        .split('\n')
        .filter((line) => line.trim())
        .map((line) => ({ file, event: JSON.parse(line) }));
    });
  }

  /** Landed events by id, for the ids that start with `prefix`. */
  events(prefix = '') {
    const byId = new Map();
    for (const { event } of this.landed()) {
      if (String(event.id).startsWith(prefix)) byId.set(event.id, event);
    }
    return byId;
  }

  /** How many landing files hold events whose id starts with `prefix`. */
  filesWith(prefix) {
    return new Set(this.landed().filter(({ event }) => String(event.id).startsWith(prefix)).map(({ file }) => file)).size;
  }

  /** Sum of a counter's samples whose labels include `labels`. */
  async metric(name, labels = {}) {
    const { body: text } = await send(`${this.url}/metrics`);
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || !' {'.includes(line[name.length])) continue;
      const wanted = Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`));
      if (wanted) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  }
}
