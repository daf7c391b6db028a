// The dashboard driven as a user drives it, in a real (headless) Chromium:
// log in through the URL `wrun dashboard --url` printed, see the seed's
// pod Running, scale the RC to 3 from the page, delete a pod and see it
// replaced, watch the LoadBalancer's traffic reach each pod, follow a
// pod's logs, run `ps aux` in a terminal in the browser, create a
// Deployment from pasted YAML; and the refusals (no session, another
// origin, a login link used twice).
//
// node dashboard.mjs LOGIN_URL SCREENSHOT_DIR LB_PORT
// (LB_PORT: where the `kubia-http` LoadBalancer in front of the RC
// listens; a busybox pod `toolbox` runs `sleep`.)
// Environment: CHROMIUM (the browser's path, default /usr/bin/chromium).
// Prints one line per step; exits non-zero at the first failure.

import http from 'node:http';

import { WAIT, check, launch, psAuxInTerminal, step } from './common.mjs';

const [loginUrl, shots, lbPort] = process.argv.slice(2);
if (!loginUrl || !shots || !lbPort) {
  console.error('usage: node dashboard.mjs LOGIN_URL SCREENSHOT_DIR LB_PORT');
  process.exit(2);
}
const origin = new URL(loginUrl).origin;

/** One request to the LoadBalancer on a connection of its own: the pod that answered. */
function curl() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: lbPort, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body.trim()));
    }).on('error', reject);
  });
}

/** The Traffic table's connection counts, by pod. */
function connections(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('table[aria-label="Traffic"] tbody tr')]
    .filter((r) => r.cells[0].textContent === 'default/kubia-http')
    .map((r) => [r.dataset.name, Number(r.querySelector('[data-connections]').dataset.connections)])));
}

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  // DEBUG=1 prints the page's changes and their answers, and its errors.
  if (process.env.DEBUG) {
    page.on('request', (r) => { if (r.method() !== 'GET') console.log('request', r.method(), r.url()); });
    page.on('response', (r) => { if (r.request().method() !== 'GET') console.log('answer', r.status(), r.url()); });
    page.on('pageerror', (e) => console.log('page error', e.message));
  }

  step('log in through the one-time URL');
  await page.goto(loginUrl);
  await page.waitForURL(`${origin}/ui/overview`);
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'wrun-dashboard');
  check(session && session.httpOnly && session.sameSite === 'Strict', `an HttpOnly, SameSite=Strict session cookie: ${JSON.stringify(cookies)}`);
  await page.getByRole('table', { name: 'Node' }).getByText('Ready').waitFor();

  step("the seed's pod is Running");
  await page.getByRole('navigation').getByRole('link', { name: 'Workloads' }).click();
  await page.waitForURL(`${origin}/ui/workloads`);
  const podRows = page.getByRole('table', { name: 'Pods' }).locator('tbody tr');
  const running = podRows.filter({ hasText: 'Running' }).filter({ hasText: /kubia-/ });
  await running.first().waitFor();
  check(await running.count() === 1, 'one kubia pod before scaling');
  // Its memory and CPU, live: a figure and a chart, for every running pod.
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Pods"] tbody tr')]
    .some((r) => r.textContent.includes('kubia-') && Number(r.querySelector('[data-memory]')?.dataset.memory) > 0
      && r.querySelector('svg[aria-label^="Memory of"]')), null, { timeout: WAIT });
  await page.screenshot({ path: `${shots}/workloads-1.png`, fullPage: true });

  step('scale the RC to 3 from the page; three pods appear without a reload');
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  // By keyboard: the field, then Enter.
  await page.getByLabel('Replicas of kubia').fill('3');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Pods"] tbody tr')]
    .filter((r) => r.textContent.includes('kubia-') && r.textContent.includes('Running')).length === 3, null, { timeout: WAIT });
  const rcRow = page.getByRole('table', { name: 'ReplicationControllers' }).locator('tbody tr', { hasText: 'kubia' });
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll('table[aria-label="ReplicationControllers"] tbody tr')].find((r) => r.dataset.name === 'kubia');
    return row && [...row.cells].slice(2, 5).map((c) => c.textContent).join(' ') === '3 3 3';
  }, null, { timeout: WAIT });
  check(await rcRow.count() === 1, 'the RC row');
  check(navigations.length === 0, `no reload while scaling: ${navigations}`);
  await page.screenshot({ path: `${shots}/workloads-3.png`, fullPage: true });

  step('delete a pod from its page; it is replaced');
  const victim = (await running.first().getAttribute('data-name'));
  check(victim && victim.startsWith('kubia-'), `a pod to delete: ${victim}`);
  await page.getByRole('link', { name: victim, exact: true }).click();
  await page.waitForURL(`${origin}/ui/pods/default/${victim}`);
  await page.getByRole('heading', { name: `Pod default/${victim}` }).waitFor();
  await page.getByText('Scheduled').first().waitFor();
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('navigation').getByRole('link', { name: 'Workloads' }).click();
  await page.waitForFunction((gone) => {
    const rows = [...document.querySelectorAll('table[aria-label="Pods"] tbody tr')];
    return !rows.some((r) => r.dataset.name === gone)
      && rows.filter((r) => r.textContent.includes('kubia-') && r.textContent.includes('Running')).length === 3;
  }, victim, { timeout: WAIT });

  step("curl the LoadBalancer three times: each pod's count goes up by one");
  await page.getByRole('navigation').getByRole('link', { name: 'Services' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Traffic"] tbody tr')]
    .filter((r) => r.cells[0].textContent === 'default/kubia-http' && r.cells[2].textContent.startsWith('kubia-')).length === 3,
  null, { timeout: WAIT });
  const before = await connections(page);
  const answered = [await curl(), await curl(), await curl()];
  check(new Set(answered).size === 3, `three pods answered: ${answered}`);
  await page.waitForFunction((b) => {
    const now = Object.fromEntries([...document.querySelectorAll('table[aria-label="Traffic"] tbody tr')]
      .filter((r) => r.cells[0].textContent === 'default/kubia-http')
      .map((r) => [r.dataset.name, Number(r.querySelector('[data-connections]').dataset.connections)]));
    return Object.keys(b).length === 3 && Object.entries(b).every(([pod, n]) => now[pod] === n + 1);
  }, before, { timeout: WAIT });
  await page.screenshot({ path: `${shots}/traffic.png`, fullPage: true });

  step("follow a pod's logs: a request to it shows up");
  const pods = Object.keys(before);
  await page.getByRole('link', { name: pods[0], exact: true }).first().click();
  await page.getByRole('button', { name: 'Show logs' }).click();
  const logs = page.getByLabel('Logs');
  await logs.getByText('Kubia server starting').waitFor();
  const seen = (await logs.textContent()).split('Received request').length;
  for (let i = 0; i < 3; i++) await curl();
  await page.waitForFunction((n) => document.querySelector('pre[aria-label="Logs"]').textContent.split('Received request').length === n + 1,
    seen, { timeout: WAIT });
  check(/^\d{4}-\d\d-\d\dT/m.test(await logs.textContent()), 'lines carry timestamps');

  step('run ps aux in a terminal in the browser');
  await page.goto(`${origin}/ui/pods/default/toolbox`);
  await psAuxInTerminal(page, 'sleep 3600');
  await page.screenshot({ path: `${shots}/terminal.png`, fullPage: true });

  step('create a Deployment from pasted YAML');
  await page.getByRole('navigation').getByRole('link', { name: 'Create' }).click();
  await page.getByLabel('YAML').fill([
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: web',
    'spec:',
    '  replicas: 2',
    '  selector:',
    '    matchLabels: {app: web}',
    '  template:',
    '    metadata:',
    '      labels: {app: web}',
    '    spec:',
    '      containers:',
    '      - name: web',
    '        image: kubia',
    '        ports: [{containerPort: 8080}]',
  ].join('\n'));
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('status').getByText('deployment/web created').waitFor();
  await page.getByRole('navigation').getByRole('link', { name: 'Workloads' }).click();
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll('table[aria-label="Deployments"] tbody tr')].find((r) => r.dataset.name === 'web');
    return row && row.cells[4].textContent === '2';
  }, null, { timeout: WAIT });
  await page.screenshot({ path: `${shots}/workloads-deployment.png`, fullPage: true });

  step('bad YAML gets a clear error and creates nothing');
  await page.getByRole('navigation').getByRole('link', { name: 'Create' }).click();
  await page.getByLabel('YAML').fill('kind: Deployment\napiVersion: apps/v1\nmetadata: {name: broken}\nspec: {replicas: -1, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: kubia}]}}}');
  await page.getByRole('button', { name: 'Create' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  const message = await alert.textContent();
  check(/broken/.test(message) && /replicas/.test(message), `the error names the object and the field: ${message}`);

  step('refusals: no session, another origin, a login link used twice');
  const anonymous = await fetch(`${origin}/api/v1/pods`);
  check(anonymous.status === 401, `no session: ${anonymous.status}`);
  const page401 = await fetch(`${origin}/`);
  check(page401.status === 401, `the page without a session: ${page401.status}`);
  const cookie = `wrun-dashboard=${session.value}`;
  const withSession = await fetch(`${origin}/api/v1/pods`, { headers: { cookie } });
  check(withSession.status === 200, `with the session: ${withSession.status}`);
  const cross = await fetch(`${origin}/api/v1/namespaces/default/pods`, {
    method: 'POST', headers: { cookie, origin: 'http://evil.example', 'content-type': 'application/json' }, body: '{}',
  });
  check(cross.status === 403, `another origin: ${cross.status}`);
  const noOrigin = await fetch(`${origin}/api/v1/namespaces/default/pods`, {
    method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}',
  });
  check(noOrigin.status === 403, `a change without an Origin: ${noOrigin.status}`);
  // fetch keeps the URL's Host; node:http sends the one given, as a page
  // reached through a rebinding DNS name would.
  const rebound = await new Promise((resolve, reject) => {
    const u = new URL(`${origin}/api/v1/pods`);
    http.get({ host: u.hostname, port: u.port, path: u.pathname, headers: { cookie, host: `evil.example:${u.port}` } },
      (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
  });
  check(rebound === 421, `another Host: ${rebound}`);
  const again = await fetch(loginUrl, { redirect: 'manual' });
  check(again.status === 401, `a login link used twice: ${again.status}`);
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  const resp = await otherPage.goto(`${origin}/ui/workloads`);
  check(resp.status() === 401, `a browser without the session: ${resp.status()}`);
  await other.close();
  console.log('ok');
} catch (e) {
  console.error(String(e && e.stack || e));
  if (page) await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
