// Real-browser test of the read-only status page: the link every notice carries,
// opened on a phone and on a desktop.
//
// Starts `shipgate dev` (SHIPGATE_BIN, default target/debug/shipgate), sends three
// signed pushes (one approved to production, one failing its build, one left
// waiting for approval), takes the status page link from a notice in the dev
// outbox and opens it in Debian's chromium (SHIPGATE_CHROMIUM) through
// playwright-core at 390x844 (phone) and 1280x900 (desktop). Screenshots go to
// target/browser/status-*.png (docs/images/ holds committed copies). Run with
// scripts/browser-test.sh (make browser).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHIPGATE_BIN = path.resolve(REPO_ROOT, process.env.SHIPGATE_BIN || 'target/debug/shipgate');
const CHROMIUM = process.env.SHIPGATE_CHROMIUM || '/usr/bin/chromium';
const SHOTS_DIR = path.join(REPO_ROOT, 'target', 'browser');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const BEFORE_SHA = '1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c';

let sandbox = null;
let stateDir = null;
let baseUrl;
let secret;
const profiles = [];

function logTail() {
  return sandbox ? sandbox.log.join('').split('\n').slice(-40).join('\n') : '';
}

function startSandbox() {
  stateDir = mkdtempSync(path.join(tmpdir(), 'shipgate-status-state-'));
  const child = spawn(
    SHIPGATE_BIN,
    ['dev', '--port', '0', '--build-seconds', '1', '--deploy-seconds', '1', '--state-dir', stateDir],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const log = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  sandbox = { child, exited, log, done: false };
  exited.then(() => { sandbox.done = true; });
  child.stderr.setEncoding('utf8').on('data', (chunk) => log.push(chunk));
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sandbox printed no API URL within 60 s\n${logTail()}`)), 60_000);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited early (code ${code}, signal ${signal})\n${logTail()}`));
    });
    child.stdout.on('data', (chunk) => {
      log.push(chunk);
      out += chunk;
      const m = out.match(/^\s*API\s+(http:\/\/\S+)/m);
      if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, '')); }
    });
  });
}

async function stopSandbox() {
  if (!sandbox || sandbox.done) return;
  const { child, exited } = sandbox;
  try { child.kill('SIGTERM'); } catch { /* gone */ }
  const timedOut = Symbol('timeout');
  const res = await Promise.race([exited, sleep(10_000, timedOut, { ref: false })]);
  if (res === timedOut) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
}

process.on('exit', () => {
  if (sandbox && !sandbox.done) {
    try { process.kill(-sandbox.child.pid, 'SIGKILL'); } catch { /* gone */ }
  }
});

async function waitFor(what, timeoutMs, probe, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${logTail()}`);
    await sleep(intervalMs);
  }
}

async function push(message) {
  const sha = randomBytes(20).toString('hex');
  const body = JSON.stringify({
    ref: 'refs/heads/main',
    before: BEFORE_SHA,
    after: sha,
    repository: { full_name: 'shipgate-demo/hello' },
    pusher: { name: 'ada' },
    compare: `https://github.com/shipgate-demo/hello/compare/${BEFORE_SHA.slice(0, 12)}...${sha.slice(0, 12)}`,
    head_commit: { id: sha, message, author: { name: 'Ada Lovelace' } },
    commits: [{ id: sha, added: [], removed: [], modified: ['src/main.py'] }],
  });
  const signature = createHmac('sha256', secret).update(body).digest('hex');
  const res = await fetch(`${baseUrl}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': `status-${randomBytes(8).toString('hex')}`,
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
  const text = await res.text();
  assert.equal(res.status, 202, `webhook answered ${res.status}: ${text}`);
  return { id: JSON.parse(text).execution_id, sha };
}

async function show(id) {
  const res = await fetch(`${baseUrl}/2015-03-31/functions/shipgate-control/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ command: 'show', execution_id: id }),
  });
  return (await res.json()).execution;
}

async function waitStatus(id, status) {
  return waitFor(`${id} ${status}`, 40_000, async () => {
    const e = await show(id);
    return e && e.status === status ? e : null;
  });
}

async function outbox() {
  const res = await fetch(`${baseUrl}/_dev/outbox`);
  return res.ok ? res.json() : [];
}

async function approvalLinkOf(id) {
  return waitFor(`the approval request of ${id}`, 40_000, async () => {
    for (const m of await outbox()) {
      // the demo pipeline lists approvers: alice's message holds her personal link
      if (String(m.message).includes(id) && m.audience === 'alice@example.com') {
        const l = (m.links || []).find((x) => x.includes('/approvals/'));
        if (l) return l;
      }
    }
    return null;
  });
}

async function openContext(viewport, mobile) {
  const dir = mkdtempSync(path.join(tmpdir(), 'shipgate-status-chromium-'));
  profiles.push(dir);
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
    viewport,
    screen: viewport,
    deviceScaleFactor: mobile ? 2 : 1,
    isMobile: mobile,
    hasTouch: mobile,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
}

describe('status page in a real browser (chromium, phone and desktop)', { timeout: 240_000 }, () => {
  let statusLink;
  let shipped;
  let broken;
  let waiting;
  const contexts = [];

  before(async () => {
    assert.ok(existsSync(SHIPGATE_BIN), `${SHIPGATE_BIN} not found: run \`cargo build -p shipgate\` first`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium`);
    mkdirSync(SHOTS_DIR, { recursive: true });
    baseUrl = await startSandbox();
    const env = Object.fromEntries(readFileSync(path.join(stateDir, 'dev.env'), 'utf8')
      .split('\n').map((l) => l.match(/^([A-Z0-9_]+)=(.*)$/)).filter(Boolean).map((m) => [m[1], m[2]]));
    secret = env.SHIPGATE_DEV_WEBHOOK_SECRET;

    // 1. a release that reaches production
    shipped = await push('Add a greeting endpoint');
    await waitStatus(shipped.id, 'AWAITING_APPROVAL');
    const link = await approvalLinkOf(shipped.id);
    const post = await fetch(link, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=approve&name=Grace+Hopper',
    });
    assert.equal(post.status, 200);
    await waitStatus(shipped.id, 'SUCCEEDED');
    // 2. a build that fails
    broken = await push('Refactor the handler [fail-build]');
    await waitStatus(broken.id, 'BUILD_FAILED');
    // 3. one waiting for approval
    waiting = await push('Tune the health check <b>bold</b>');
    await waitStatus(waiting.id, 'AWAITING_APPROVAL');

    statusLink = await waitFor('a status page link in a notice', 20_000, async () => {
      for (const m of (await outbox()).reverse()) {
        const l = (m.links || []).find((x) => x.includes('/status/'));
        if (l) return l;
      }
      return null;
    });
  }, { timeout: 200_000 });

  after(async () => {
    for (const c of contexts) {
      try { await c.close(); } catch { /* closed */ }
    }
    await stopSandbox();
    for (const dir of [...profiles, stateDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  for (const [name, viewport, mobile] of [['phone', PHONE, true], ['desktop', DESKTOP, false]]) {
    test(`the status page on a ${name}`, async () => {
      const context = await openContext(viewport, mobile);
      contexts.push(context);
      const page = context.pages()[0] ?? await context.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      const before = await show(waiting.id);
      const res = await page.goto(statusLink, { waitUntil: 'load' });
      assert.equal(res.status(), 200);
      assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
      assert.match(await page.title(), /demo status/);

      // what runs: prod is the approved release, test the one waiting
      const prod = page.locator('section[aria-label="prod environment"]');
      const test_ = page.locator('section[aria-label="test environment"]');
      assert.match(await prod.innerText(), new RegExp(shipped.sha.slice(0, 12)));
      assert.match(await prod.innerText(), /approved by alice@example\.com — personal email link/);
      assert.match(await test_.innerText(), new RegExp(waiting.sha.slice(0, 12)));
      assert.match(await test_.innerText(), /push by ada/);

      // one strip per execution, coloured by state
      const stage = (id, s) => page.locator(`article[data-execution="${id}"] li[data-stage="${s}"]`);
      assert.equal(await stage(shipped.id, 'prod').getAttribute('class'), 'succeeded');
      assert.equal(await stage(broken.id, 'build').getAttribute('class'), 'failed');
      assert.equal(await stage(broken.id, 'test').getAttribute('class'), 'pending');
      assert.equal(await stage(waiting.id, 'approval').getAttribute('class'), 'waiting');
      const colours = await page.evaluate(() => Object.fromEntries(
        ['succeeded', 'failed', 'waiting', 'pending'].map((c) => {
          const el = document.querySelector(`li.${c}`);
          return [c, el ? getComputedStyle(el).backgroundColor : null];
        })));
      assert.equal(new Set(Object.values(colours)).size, 4, `states look alike: ${JSON.stringify(colours)}`);
      const waitingCard = page.locator(`article[data-execution="${waiting.id}"]`);
      assert.match(await waitingCard.innerText(), /Tune the health check <b>bold<\/b>/, 'pusher text shown as text');
      assert.equal(await page.locator('article b:text("bold")').count(), 0, 'pusher text is not markup');
      // links: commit, compare with prod, build logs, ECS console
      const links = await page.locator(`article[data-execution="${waiting.id}"] .links a`).allInnerTexts();
      for (const l of ['commit', 'compare with prod', 'build logs', 'ECS console']) {
        assert.ok(links.includes(l), `${l} link in ${links}`);
      }
      const compare = await page.locator(`article[data-execution="${waiting.id}"] a:text("compare with prod")`).getAttribute('href');
      assert.equal(compare, `https://github.com/shipgate-demo/hello/compare/${shipped.sha}...${waiting.sha}`);

      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        fontSize: parseFloat(getComputedStyle(document.body).fontSize),
      }));
      assert.ok(layout.scrollWidth <= layout.innerWidth,
        `page scrolls sideways: ${layout.scrollWidth}px in ${layout.innerWidth}px`);
      assert.ok(layout.fontSize >= 14);
      await page.screenshot({ path: path.join(SHOTS_DIR, `status-${name}.png`), fullPage: true });
      assert.deepEqual(errors, [], 'no page or CSP errors');
      assert.deepEqual(await show(waiting.id), before, 'reading the status page changed nothing');
    });
  }

  test('a bad link is a clear error page', async () => {
    const context = contexts[0];
    const page = await context.newPage();
    const res = await page.goto(`${statusLink.slice(0, -3)}xyz`, { waitUntil: 'load' });
    assert.ok([400, 403].includes(res.status()), `answered ${res.status()}`);
    assert.match(await page.locator('h1').innerText(), /status link/i);
    assert.match(await page.locator('body').innerText(), /never changes anything/);
  });
});
