// The admin console, end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core). tests/engine/browser.rs boots the engine, creates the admin and the target
// user, and runs this script; it can also be run by hand against any engine:
//
//   ASSAY_URL=http://127.0.0.1:3000 ADMIN_EMAIL=... ADMIN_PASSWORD=... \
//   TARGET_EMAIL=... TARGET_PASSWORD=... SCREENSHOT_DIR=/tmp/shots node tests/node/console.mjs
//
// Prints one line per step, saves a numbered full-page screenshot after each, and exits 1
// with the failing step, the page's URL and its text on the first failure (exit 2: bad env).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const GENERIC_LOGIN_ERROR = 'Incorrect email or password.';

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`console.mjs: environment variable ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const base = env('ASSAY_URL').replace(/\/+$/, '');
const admin = { email: env('ADMIN_EMAIL'), password: env('ADMIN_PASSWORD') };
const target = { email: env('TARGET_EMAIL'), password: env('TARGET_PASSWORD') };
const shots = env('SCREENSHOT_DIR');
mkdirSync(shots, { recursive: true });

class StepFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new StepFailure(message);
}

const url = (path) => base + path;
const pathOf = (page) => new URL(page.url()).pathname;
const attr = (s) => JSON.stringify(s); // a quoted CSS attribute value

// Server errors and script errors on any page fail the run, whichever step they happen in.
const problems = [];
function watch(page, who) {
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${who}: HTTP ${r.status()} from ${r.request().method()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who}: script error on ${page.url()}: ${e.message}`));
  // The console's only script is the Delete button's confirm(); accept any dialog.
  page.on('dialog', (d) => d.accept().catch(() => {}));
}

let stepNo = 0;
let current = null; // the page the running step is about, for the failure report

async function step(name, page, fn) {
  stepNo += 1;
  const tag = String(stepNo).padStart(2, '0');
  current = page;
  const started = Date.now();
  try {
    await fn();
    if (problems.length) throw new StepFailure(problems.join('\n'));
  } catch (e) {
    console.log(`FAIL ${tag} ${name}`);
    let where = '';
    try {
      where = `\n  page: ${current.url()}`;
      await current.screenshot({ path: join(shots, `${tag}-${name}-FAILED.png`), fullPage: true });
      const text = (await current.locator('body').innerText({ timeout: 2000 })).trim();
      where += `\n  page text:\n    ${text.slice(0, 1500).replace(/\n+/g, '\n    ')}`;
    } catch {
      // The page may be gone; the error itself is what matters.
    }
    const msg = e instanceof StepFailure ? e.message : (e && e.stack) || String(e);
    throw new StepFailure(`step ${tag} ${name}: ${msg}${where}`);
  }
  await page.screenshot({ path: join(shots, `${tag}-${name}.png`), fullPage: true });
  console.log(`ok ${tag} ${name} (${Date.now() - started} ms)`);
}

async function signIn(page, who) {
  await page.locator('#email').fill(who.email);
  await page.locator('#password').fill(who.password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
}

// A .table-wrap scrolls sideways when its table is wider than the page: the last columns (the
// Revoke buttons) are then out of sight at a common laptop width. None may at 1280 px.
async function tablesFit(page) {
  const over = await page.evaluate(() =>
    [...document.querySelectorAll('.table-wrap')]
      .filter((w) => w.scrollWidth > w.clientWidth + 1)
      .map((w) => `#${w.querySelector('table')?.id}: ${w.scrollWidth}px wide in ${w.clientWidth}px`));
  check(over.length === 0, `a table is wider than the page and scrolls sideways: ${over.join('; ')}`);
}

async function text(locator) {
  return (await locator.innerText()).replace(/\s+/g, ' ').trim();
}

// --- the run -------------------------------------------------------------------------------

// launch() starts Chromium with a fresh temporary profile (--user-data-dir) of its own and
// removes it on close; each newContext() is a separate cookie jar within it.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: 60_000,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-quic',
    '--no-first-run',
    '--disable-component-update',
    '--disable-sync',
  ],
});

async function newPage(who) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = await context.newPage();
  watch(page, who);
  return { context, page };
}

let exitCode = 0;
try {
  console.log(`console.mjs: ${await browser.version()} against ${base}`);
  let targetId;

  // The target signs in first, in a browser of its own, so it has a session that disabling the
  // account must end.
  const targetBrowser = await newPage('target');
  const tp = targetBrowser.page;
  await step('target-signed-in', tp, async () => {
    await tp.goto(url('/auth/login'));
    await signIn(tp, target);
    check(pathOf(tp) === '/auth/welcome', `expected /auth/welcome after the target's sign-in, got ${tp.url()}`);
    check((await text(tp.locator('main'))).includes(target.email), 'the welcome page does not name the target');
  });

  const { page } = await newPage('admin');

  // (a) The console sends a stranger to the sign-in page, which brings them back after it.
  await step('login-page', page, async () => {
    await page.goto(url('/auth/console'));
    const u = new URL(page.url());
    check(u.pathname === '/auth/login', `expected a redirect to /auth/login, got ${page.url()}`);
    check(u.searchParams.get('return_to') === '/auth/console', `expected return_to=/auth/console, got ${page.url()}`);
    check((await page.locator('input[name=return_to]').inputValue()) === '/auth/console', 'the form does not carry return_to');
    await page.locator('#email').fill(admin.email);
    await page.locator('#password').fill(admin.password);
  });

  // (b) Signed in: the Users pane; search for the target.
  await step('users-pane', page, async () => {
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/users'),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    check((await text(page.locator('#signed-in-as'))) === admin.email, 'the top bar does not show the admin');
    check((await page.locator('#console-nav a[aria-current=page]').innerText()) === 'Users', 'Users is not the current pane');
    check((await page.locator('#users-table').count()) === 1, 'no #users-table');
    check(await page.locator(`#users-table tr[data-email=${attr(admin.email)}]`).count() === 1, 'the admin is not listed');
    await tablesFit(page);
  });

  await step('users-search', page, async () => {
    await page.locator('#q').fill(target.email);
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/users' && u.searchParams.get('q') === target.email),
      page.getByRole('button', { name: 'Search', exact: true }).click(),
    ]);
    const rows = page.locator('#users-table tbody tr');
    check((await rows.count()) === 1, `expected exactly the target in the results, got ${await rows.count()} rows`);
    const row = page.locator(`#users-table tr[data-email=${attr(target.email)}]`);
    check((await row.count()) === 1, 'the target is not in the results');
    targetId = await row.getAttribute('data-id');
    check(targetId, 'the row has no data-id');
    check((await text(row.locator('td').nth(3))) === 'no', 'the target is already shown as disabled');
    check((await page.locator('#q').inputValue()) === target.email, 'the search box lost the query');
  });

  // (c) The user's page; disable the account.
  await step('user-page', page, async () => {
    const row = page.locator(`#users-table tr[data-email=${attr(target.email)}]`);
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/auth/console/users/${targetId}`),
      row.getByRole('link', { name: target.email }).click(),
    ]);
    check((await text(page.locator('h1'))) === target.email, 'the heading is not the target email');
    check((await text(page.locator('#user-status'))) === 'Active', 'the target is not shown as active');
    const sessions = page.locator('#sessions-table tbody tr[data-session-id]');
    check((await sessions.count()) === 1, `expected the target's one session, got ${await sessions.count()}`);
    await tablesFit(page);
  });

  await step('user-disabled', page, async () => {
    await Promise.all([
      page.waitForURL((u) => u.pathname === `/auth/console/users/${targetId}` && u.searchParams.get('notice') === 'user-disabled'),
      page.locator('#user-actions').getByRole('button', { name: 'Disable', exact: true }).click(),
    ]);
    check((await text(page.locator('#notice'))) === 'The user was disabled and signed out everywhere.', 'no "disabled" notice');
    check((await text(page.locator('#user-status'))) === 'Disabled', 'the status does not say Disabled');
    const actions = page.locator('#user-actions');
    check((await actions.getByRole('button', { name: 'Disable', exact: true }).count()) === 0, 'the Disable button is still there');
    check((await actions.getByRole('button', { name: 'Enable', exact: true }).count()) === 1, 'no Enable button');
    check((await page.locator('#sessions-table tbody tr[data-session-id]').count()) === 0, 'the target still has sessions');
  });

  await step('target-signed-out', tp, async () => {
    await tp.goto(url('/auth/welcome'));
    check(pathOf(tp) === '/auth/login', `the target's old session still works: ${tp.url()}`);
  });
  await targetBrowser.context.close();

  // (d) Sessions pane: the admin's own session; none left for the target.
  await step('sessions-pane', page, async () => {
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/sessions'),
      page.locator('#console-nav').getByRole('link', { name: 'Sessions', exact: true }).click(),
    ]);
    check((await page.locator('#console-nav a[aria-current=page]').innerText()) === 'Sessions', 'Sessions is not the current pane');
    const mine = page.locator(`#sessions-table tr[data-email=${attr(admin.email)}]`);
    check((await mine.count()) >= 1, "the admin's own session is not listed");
    check((await page.locator(`#sessions-table tr[data-email=${attr(target.email)}]`).count()) === 0, 'the disabled target still has a session');
    check((await text(mine.first().locator('td').nth(6))) === 'pwd', "the admin's session does not show the password method");
    await tablesFit(page);
  });

  await step('sessions-filter', page, async () => {
    await page.locator('#user').fill(target.email);
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/sessions' && u.searchParams.get('user') === target.email),
      page.getByRole('button', { name: 'Filter', exact: true }).click(),
    ]);
    const error = page.locator('#error');
    if ((await error.count()) > 0) throw new StepFailure(`the filter failed: ${await text(error)}`);
    check((await text(page.locator('#sessions-table tbody'))) === 'No active sessions.', 'the target has sessions');
  });

  // The audit log records the disable, with the admin as the actor and the target as target.
  await step('audit-log', page, async () => {
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/audit'),
      page.locator('#console-nav').getByRole('link', { name: 'Audit log', exact: true }).click(),
    ]);
    check((await page.locator('#console-nav a[aria-current=page]').innerText()) === 'Audit log', 'Audit log is not the current pane');
    const entries = page.locator('#audit-table tr[data-action="user.disable"]');
    check((await entries.count()) === 1, `expected one user.disable entry, got ${await entries.count()}`);
    const cells = entries.first().locator('td');
    check((await text(cells.nth(3))) === targetId, `the user.disable entry's target is not ${targetId}`);
    check((await text(cells.nth(1))).startsWith('user:'), "the user.disable entry's actor is not a user");
    await tablesFit(page);
  });

  await step('audit-filter', page, async () => {
    await page.locator('#action').fill('user.disable');
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/auth/console/audit' && u.searchParams.get('action') === 'user.disable'),
      page.getByRole('button', { name: 'Filter', exact: true }).click(),
    ]);
    const rows = page.locator('#audit-table tbody tr');
    check((await rows.count()) === 1, `expected one row for action=user.disable, got ${await rows.count()}`);
    check((await rows.first().getAttribute('data-action')) === 'user.disable', 'the filtered row is not user.disable');
  });

  // (e) A fresh browser (no cookies): the disabled user cannot sign in, and is told only the
  // generic message.
  const fresh = await newPage('disabled target');
  const fp = fresh.page;
  await step('disabled-login-refused', fp, async () => {
    await fp.goto(url('/auth/login'));
    await signIn(fp, target);
    check(pathOf(fp) === '/auth/login', `the browser left /auth/login: ${fp.url()}`);
    const error = fp.locator('#form-error');
    check((await error.count()) === 1, 'no error message on the sign-in form');
    check((await text(error)) === GENERIC_LOGIN_ERROR, `expected "${GENERIC_LOGIN_ERROR}", got "${await text(error)}"`);
    check((await fp.locator('#email').inputValue()) === target.email, 'the form lost the email');
    const cookies = (await fp.context().cookies()).map((c) => c.name).filter((n) => n !== 'assay_csrf');
    check(cookies.length === 0, `a refused sign-in set cookies: ${cookies.join(', ')}`);
  });
  await fresh.context.close();

  console.log(`console.mjs: all ${stepNo} steps passed; screenshots in ${shots}`);
} catch (e) {
  console.error(e instanceof StepFailure ? `console.mjs: ${e.message}` : `console.mjs: ${(e && e.stack) || e}`);
  exitCode = 1;
} finally {
  await browser.close().catch(() => {});
}
process.exit(exitCode);
