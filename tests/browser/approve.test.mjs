// Real-browser test of personal approval links (issue 15): the demo pipeline is
// re-applied as 2-of-3 (alice, bob and the pusher); each approver's e-mail holds
// only their own link. Alice opens hers on a phone ("Approving as
// alice@example.com", no name to type) and taps Approve: "1 of 2 approvals";
// production is untouched. The pusher's own link shows the refusal (no Approve
// button; a POST approve is refused). Bob approves with his: prod deploys.
//
// Starts `shipgate dev` (SHIPGATE_BIN, default target/debug/shipgate) with a
// temporary state dir, pushes a signed GitHub webhook, waits for the approval
// email in the dev outbox, then drives Debian's chromium (/usr/bin/chromium,
// override with SHIPGATE_CHROMIUM) through playwright-core. Screenshots go to
// target/browser/. Run with `node --test tests/browser/` or
// scripts/browser-test.sh.

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
// A phone: iPhone 12-15 sized viewport. Scale 2 keeps the PNGs sharp but small.
const VIEWPORT = { width: 390, height: 844 };
const SCALE = Number(process.env.SHIPGATE_BROWSER_SCALE || 2);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  // Without these, chromium keeps trying to reach Google's hosts, which this
  // closed network refuses.
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const BEFORE_SHA = '1e3c5a7b9d2f4e6a8c0b1d3f5a7c9e2b4d6f8a0c';
const PUSHER = 'browser@example.com';

// ---------------------------------------------------------------- sandbox ---

let sandbox = null; // { child, exited, log: string[] }
let stateDir = null;
let userDataDir = null;
let browserContext = null;

function sandboxLogTail(lines = 40) {
  return sandbox ? sandbox.log.join('').split('\n').slice(-lines).join('\n') : '';
}

function startSandbox() {
  stateDir = mkdtempSync(path.join(tmpdir(), 'shipgate-browser-state-'));
  const child = spawn(
    SHIPGATE_BIN,
    ['dev', '--port', '0', '--build-seconds', '1', '--deploy-seconds', '1', '--state-dir', stateDir],
    // cwd: the sandbox finds ./.venv/bin/python (moto) relative to the repo root.
    // detached: own process group, so a last-resort SIGKILL reaches moto too.
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const log = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  sandbox = { child, exited, log, done: false };
  exited.then(() => { sandbox.done = true; });
  // Keep draining both pipes for the whole run: the sandbox prints every
  // approval message, and a full pipe would block it.
  child.stderr.setEncoding('utf8').on('data', (chunk) => log.push(chunk));
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`sandbox printed no API URL within 60 s\n${sandboxLogTail()}`)), 60_000);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited early (code ${code}, signal ${signal})\n${sandboxLogTail()}`));
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
  try { child.kill('SIGTERM'); } catch { /* already gone */ }
  const timedOut = Symbol('timeout');
  // Unref'd timers: a pending grace timer must not keep the test process alive.
  const res = await Promise.race([exited, sleep(10_000, timedOut, { ref: false })]);
  if (res === timedOut) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    await Promise.race([exited, sleep(5_000, undefined, { ref: false })]);
  }
}

// Last resort if the test process dies without running `after`.
process.on('exit', () => {
  if (sandbox && !sandbox.done) {
    try { process.kill(-sandbox.child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

function readDevEnv(dir) {
  const env = {};
  for (const line of readFileSync(path.join(dir, 'dev.env'), 'utf8').split('\n')) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

async function waitFor(what, timeoutMs, probe, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${sandboxLogTail()}`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------- API -------

let baseUrl;
let secret;
let sha;
let executionId;
let links = {}; // approver e-mail -> their personal link

async function push() {
  sha = randomBytes(20).toString('hex');
  const body = JSON.stringify({
    ref: 'refs/heads/main',
    before: BEFORE_SHA,
    after: sha,
    repository: { full_name: 'shipgate-demo/hello' },
    pusher: { name: 'browser', email: PUSHER },
    sender: { login: 'browser' },
    compare: 'https://github.com/shipgate-demo/hello/compare/a...b',
    head_commit: { id: sha, message: 'Browser test change', author: { name: 'Browser Test', email: PUSHER } },
    commits: [{ id: sha, added: [], removed: [], modified: ['src/main.py'] }],
  });
  const signature = createHmac('sha256', secret).update(body).digest('hex');
  const res = await fetch(`${baseUrl}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': `browser-${randomBytes(8).toString('hex')}`,
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
  const text = await res.text();
  assert.equal(res.status, 202, `webhook answered ${res.status}: ${text}`);
  const json = JSON.parse(text);
  assert.equal(typeof json.execution_id, 'string', `no execution_id in ${text}`);
  return json.execution_id;
}

async function control(command) {
  const res = await fetch(`${baseUrl}/2015-03-31/functions/shipgate-control/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(command),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `control ${command.command} answered ${res.status}: ${text}`);
  const json = JSON.parse(text);
  assert.ok(!json.error, `control ${command.command}: ${text}`);
  return json;
}

async function show(id) {
  const json = await control({ command: 'show', execution_id: id });
  assert.ok(json.execution, `no execution in show answer: ${JSON.stringify(json)}`);
  return json.execution;
}

// The demo pipeline as 2-of-3: alice, bob and the pusher.
async function applyTwoOfThree() {
  const shown = await control({ command: 'show_pipeline', pipeline: 'demo' });
  const def = shown.pipeline.definition;
  def.approval.required = 2;
  def.approval.approvers = [
    { email: 'alice@example.com' },
    { email: 'bob@example.com' },
    { email: PUSHER },
  ];
  await control({ command: 'apply_pipeline', pipeline: def });
}

// Every approver's personal link, from the outbox (each message says who it is for).
async function findApprovalMessages() {
  const res = await fetch(`${baseUrl}/_dev/outbox`);
  if (!res.ok) return null;
  const found = {};
  for (const msg of await res.json()) {
    if (!String(msg.subject).includes('Approve demo')) continue;
    if (!String(msg.message).includes(executionId)) continue;
    const mine = (msg.links || []).filter((l) => l.includes('/approvals/'));
    assert.equal(mine.length, 1, `one link per message: ${msg.message}`);
    found[msg.audience] = mine[0];
  }
  return Object.keys(found).length === 3 ? found : null;
}

async function waitForStatus(status, timeoutMs = 30_000) {
  return waitFor(`status ${status}`, timeoutMs, async () => {
    const e = await show(executionId);
    if (['BUILD_FAILED', 'TEST_FAILED', 'REJECTED', 'EXPIRED', 'SUPERSEDED', 'PROD_FAILED', 'ROLLED_BACK'].includes(e.status)) {
      throw new Error(`execution ended ${e.status}: ${JSON.stringify(e.history?.at(-1))}`);
    }
    return e.status === status ? e : null;
  }, 500);
}

// ---------------------------------------------------------------- tests -----

describe('personal approval links in a real browser (chromium, phone viewport)', { timeout: 240_000 }, () => {
  let page;
  const pageErrors = [];
  const ok = {};

  before(async () => {
    assert.ok(existsSync(SHIPGATE_BIN), `${SHIPGATE_BIN} not found: run \`cargo build -p shipgate\` first`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium`);
    mkdirSync(SHOTS_DIR, { recursive: true });

    baseUrl = await startSandbox();
    secret = readDevEnv(stateDir).SHIPGATE_DEV_WEBHOOK_SECRET;
    assert.ok(secret, 'SHIPGATE_DEV_WEBHOOK_SECRET missing from dev.env');
    await applyTwoOfThree();

    executionId = await push();
    links = await waitFor('one approval e-mail per approver in /_dev/outbox', 40_000, findApprovalMessages);

    userDataDir = mkdtempSync(path.join(tmpdir(), 'shipgate-chromium-profile-'));
    browserContext = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
      viewport: VIEWPORT,
      screen: VIEWPORT,
      deviceScaleFactor: SCALE,
      isMobile: true,
      hasTouch: true,
      locale: 'en-US',
      timezoneId: 'UTC',
    });
    page = browserContext.pages()[0] ?? await browserContext.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  }, { timeout: 150_000 });

  after(async () => {
    try {
      if (browserContext) await browserContext.close();
    } catch (err) {
      console.error(`closing chromium failed: ${err}`);
    } finally {
      browserContext = null;
      await stopSandbox();
      for (const dir of [userDataDir, stateDir]) {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    }
  }, { timeout: 30_000 });

  test('each approver gets their own link', () => {
    assert.deepEqual(Object.keys(links).sort(), ['alice@example.com', 'bob@example.com', PUSHER].sort());
    assert.equal(new Set(Object.values(links)).size, 3, 'the links differ');
    for (const l of Object.values(links)) assert.ok(l.startsWith(`${baseUrl}/approvals/`), `unexpected link ${l}`);
  });

  test("alice's page renders on a phone, approving as her, and opening it changes nothing", async () => {
    // The outbox can show the email a moment before the request's message id
    // is stored: take the "before" snapshot only once the execution settled.
    const beforeGet = await waitFor('execution.approval.message_id', 20_000, async () => {
      const e = await show(executionId);
      return typeof e.approval?.message_id === 'string' ? e : null;
    });
    assert.equal(beforeGet.status, 'AWAITING_APPROVAL');

    const res = await page.goto(links['alice@example.com'], { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.match(await page.title(), /Approve demo/);
    assert.match(await page.locator('h1').innerText(), /Deploy demo to production\?/);
    assert.ok(await page.getByText('Approving as', { exact: true }).isVisible(), '"Approving as" not shown');
    assert.ok(await page.getByText('alice@example.com', { exact: true }).first().isVisible());
    assert.ok(await page.getByText('0 of 2 approvals', { exact: false }).first().isVisible(), 'progress not shown');
    assert.ok(await page.getByText(sha, { exact: false }).first().isVisible(), `commit ${sha} not visible`);
    assert.ok(await page.getByText('Browser test change').first().isVisible());
    // verified promotion: the page shows what the test service answered
    assert.ok(await page.getByText('Verified', { exact: true }).first().isVisible(), 'verification not shown');
    assert.equal(await page.getByLabel('Your name').count(), 0, 'a personal link asks for no name');
    assert.ok(await page.locator('textarea[name="comment"]').isVisible(), 'comment box not visible');
    const approve = page.getByRole('button', { name: 'Approve', exact: true });
    const reject = page.getByRole('button', { name: 'Reject', exact: true });
    assert.ok(await approve.isVisible(), 'Approve button not visible');
    assert.ok(await reject.isVisible(), 'Reject button not visible');

    // Phone layout: nothing wider than the screen, buttons big enough to tap.
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      fontSize: parseFloat(getComputedStyle(document.body).fontSize),
    }));
    assert.ok(layout.scrollWidth <= layout.innerWidth,
      `page scrolls sideways on a phone: ${layout.scrollWidth}px content in ${layout.innerWidth}px`);
    assert.ok(layout.fontSize >= 14, `body text is ${layout.fontSize}px`);
    for (const [label, button] of [['Approve', approve], ['Reject', reject]]) {
      const box = await button.boundingBox();
      assert.ok(box && box.height >= 40 && box.width >= 44, `${label} button too small to tap: ${JSON.stringify(box)}`);
      assert.ok(box.x >= 0 && box.x + box.width <= VIEWPORT.width, `${label} button off screen: ${JSON.stringify(box)}`);
    }

    await page.screenshot({ path: path.join(SHOTS_DIR, 'approval-page.png'), fullPage: true });

    const afterGet = await show(executionId);
    assert.deepEqual(afterGet, beforeGet, 'loading the approval page (GET) changed the execution');
    assert.deepEqual(pageErrors, []);
    ok.page = true;
  });

  test("the pusher's own link shows the refusal and cannot approve", async () => {
    const res = await page.goto(links[PUSHER], { waitUntil: 'load' });
    assert.equal(res.status(), 200);
    assert.ok(await page.getByText(`${PUSHER} cannot approve their own change`, { exact: false }).isVisible(), 'no refusal shown');
    assert.equal(await page.getByRole('button', { name: 'Approve', exact: true }).count(), 0, 'an Approve button on the pusher\'s page');
    assert.ok(await page.getByRole('button', { name: 'Reject', exact: true }).isVisible());
    await page.screenshot({ path: path.join(SHOTS_DIR, 'own-change.png'), fullPage: true });
    const before = await show(executionId);
    // a hand-made POST approve is refused too
    const post = await fetch(links[PUSHER], {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'decision=approve',
    });
    assert.equal(post.status, 403);
    assert.match(await post.text(), /cannot approve their own change/);
    assert.deepEqual(await show(executionId), before, 'the refused POST changed the execution');
  });

  test('alice taps Approve: 1 of 2 approvals, production untouched', async () => {
    assert.ok(ok.page, 'skipped: the approval page step failed');
    await page.goto(links['alice@example.com'], { waitUntil: 'load' });
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === links['alice@example.com']),
      page.getByRole('button', { name: 'Approve', exact: true }).click(),
    ]);
    assert.ok(response.status() < 400, `POST answered ${response.status()}`);
    const h1 = page.locator('h1');
    await h1.filter({ hasText: 'Approval counted' }).waitFor();
    assert.match(await h1.innerText(), /1 of 2 approvals: alice@example\.com/);
    assert.ok(await page.getByText('alice@example.com — personal email link', { exact: false }).first().isVisible());
    await page.screenshot({ path: path.join(SHOTS_DIR, 'counted.png'), fullPage: true });
    const e = await show(executionId);
    assert.equal(e.status, 'AWAITING_APPROVAL');
    assert.ok(!e.prod, `production was deployed after one approval: ${JSON.stringify(e.prod)}`);
    assert.deepEqual(pageErrors, []);
    ok.first = true;
  });

  test('bob approves with his link: production deploys only now', async () => {
    assert.ok(ok.first, 'skipped: the first approval failed');
    await page.goto(links['bob@example.com'], { waitUntil: 'load' });
    assert.ok(await page.getByText('1 of 2 approvals: alice@example.com', { exact: false }).first().isVisible(), 'progress not shown to bob');
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url() === links['bob@example.com']),
      page.getByRole('button', { name: 'Approve', exact: true }).click(),
    ]);
    assert.ok(response.status() < 400, `POST answered ${response.status()}`);
    const h1 = page.locator('h1');
    await h1.filter({ hasText: 'Approved' }).waitFor();
    assert.match(await h1.innerText(), /Approved — production deployment started/);
    await page.screenshot({ path: path.join(SHOTS_DIR, 'approved.png'), fullPage: true });
    const done = await waitForStatus('SUCCEEDED');
    const decision = done.approval?.decision;
    assert.ok(decision, `no approval decision recorded: ${JSON.stringify(done.approval)}`);
    assert.equal(decision.actor, 'bob@example.com — personal email link');
    assert.equal(decision.approver, 'bob@example.com');
    assert.equal(decision.channel, 'email-link');
    assert.match(String(decision.user_agent), /Chrome/, `decision came from ${decision.user_agent}`);
    assert.deepEqual(done.approval.approvals.map((d) => d.approver), ['alice@example.com', 'bob@example.com']);
    assert.equal(done.commit.sha, sha);
    assert.deepEqual(pageErrors, []);
  });
});
