// The dashboard's Docker side, its keyboard use and its two colour
// schemes, in a real (headless) Chromium. Only the keyboard drives the
// page where a user could: Tab to the views, Enter on links and buttons.
// Changes made by another client (the Docker API on the daemon's socket,
// as the docker CLI makes them) show up without a reload.
//
// node docker.mjs LOGIN_URL SCREENSHOT_DIR SOCKET WEB_PORT
// (SOCKET: the daemon's Docker API socket; WEB_PORT: where the `web`
// container, kubia, is published. Running: `web`, and `shell`, a busybox
// `sleep`; exited: `done`.)
// Environment: CHROMIUM (the browser's path, default /usr/bin/chromium).
// Prints one line per step; exits non-zero at the first failure.

import http from 'node:http';

import { WAIT, check, launch, psAuxInTerminal, step } from './common.mjs';

const [loginUrl, shots, socket, webPort] = process.argv.slice(2);
if (!loginUrl || !shots || !socket || !webPort) {
  console.error('usage: node docker.mjs LOGIN_URL SCREENSHOT_DIR SOCKET WEB_PORT');
  process.exit(2);
}
const origin = new URL(loginUrl).origin;

/** One Docker API call on the daemon's socket: [status, body]. */
function docker(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve([res.statusCode, text]));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A request to the published `web` container. */
function curl() {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: webPort, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body.trim()));
    }).on('error', reject);
  });
}

/** Presses Tab until the focused element's text is `name`; checks each stop shows its focus. */
async function tabTo(page, name) {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return { text: (el.textContent || el.getAttribute('aria-label') || '').trim(), outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    check(f.outline !== 'none' && f.width > 0, `the focus on "${f.text}" is visible (outline ${f.outline} ${f.width}px)`);
    if (f.text === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

/** The Containers table's state cell, by container name. */
function states(page) {
  return page.evaluate(() => Object.fromEntries([...document.querySelectorAll('table[aria-label="Containers"] tbody tr')]
    .map((r) => [r.dataset.name, r.cells[4].textContent])));
}

/**
 * Contrast ratios (WCAG) of the page's text against its background, for
 * the body, muted text, links, and the state colours.
 */
function contrasts(page) {
  return page.evaluate(() => {
    const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const bg = rgb(getComputedStyle(document.body).backgroundColor);
    const probe = (cls) => {
      const el = document.createElement('span');
      el.className = cls;
      document.getElementById('main').append(el);
      const c = rgb(getComputedStyle(el).color);
      el.remove();
      return c;
    };
    const link = rgb(getComputedStyle(document.querySelector('main a') || document.querySelector('a')).color);
    return {
      background: lum(bg),
      body: ratio(rgb(getComputedStyle(document.body).color), bg),
      muted: ratio(probe('muted'), bg),
      link: ratio(link, bg),
      running: ratio(probe('status-running'), bg),
      exited: ratio(probe('status-exited'), bg),
      bad: ratio(probe('status-Failed'), bg),
      warn: ratio(probe('status-Pending'), bg),
    };
  });
}

const browser = await launch();
let page;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  if (process.env.DEBUG) page.on('pageerror', (e) => console.log('page error', e.message));

  step('log in; the overview counts containers and images');
  await page.goto(loginUrl);
  await page.waitForURL(`${origin}/ui/overview`);
  await page.waitForFunction(() => document.querySelector('[data-kind="containers"] .n')?.textContent === '2/3'
    && Number(document.querySelector('[data-kind="images"] .n')?.textContent) >= 2, null, { timeout: WAIT });

  step('by keyboard: skip link, then Tab to Containers and Enter');
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => {
    const el = document.activeElement;
    const r = el.getBoundingClientRect();
    return { text: el.textContent, visible: r.left >= 0 && r.top >= 0 && r.width > 0 };
  });
  check(skip.text === 'Skip to content' && skip.visible, `the first Tab shows the skip link: ${JSON.stringify(skip)}`);
  await tabTo(page, 'Containers');
  await page.keyboard.press('Enter');
  await page.waitForURL(`${origin}/ui/containers`);
  check(await page.evaluate(() => document.activeElement.id) === 'main', 'after a view change the focus is on the content');
  await page.waitForFunction(() => {
    const rows = Object.fromEntries([...document.querySelectorAll('table[aria-label="Containers"] tbody tr')].map((r) => [r.dataset.name, r.cells[4].textContent]));
    return rows.web === 'running' && rows.shell === 'running' && rows.done === 'exited';
  }, null, { timeout: WAIT });
  // The running ones' memory, live.
  await page.waitForFunction(() => Number(document.querySelector('table[aria-label="Containers"] tr[data-name="web"] [data-memory]')?.dataset.memory) > 0,
    null, { timeout: WAIT });
  await page.screenshot({ path: `${shots}/containers.png`, fullPage: true });

  step('another client creates and starts a container: its row appears without a reload');
  const navigations = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
  const [made, madeBody] = await docker('POST', '/containers/create?name=late', { Image: 'busybox', Cmd: ['sleep', '3600'] });
  check(made === 201, `create: ${made} ${madeBody}`);
  const [started] = await docker('POST', '/containers/late/start');
  check(started === 204, `start: ${started}`);
  await page.waitForFunction(() => document.querySelector('table[aria-label="Containers"] tr[data-name="late"]')?.cells[4].textContent === 'running',
    null, { timeout: WAIT });
  check(navigations.length === 0, `no reload: ${navigations}`);

  step("by keyboard: open web's page, follow its logs, see a request arrive");
  await page.getByRole('link', { name: 'web', exact: true }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(`${origin}/ui/containers/web`);
  await page.getByRole('heading', { name: 'Container web' }).waitFor();
  await page.getByRole('button', { name: 'Show logs' }).focus();
  await page.keyboard.press('Enter');
  const logs = page.getByLabel('Logs');
  await logs.getByText('Kubia server starting').waitFor();
  const seen = (await logs.textContent()).split('Received request').length;
  const answer = await curl();
  check(/you've hit/i.test(answer), `web answers: ${answer}`);
  await page.waitForFunction((n) => document.querySelector('pre[aria-label="Logs"]').textContent.split('Received request').length === n + 1,
    seen, { timeout: WAIT });
  check(/^\d{4}-\d\d-\d\dT/m.test(await logs.textContent()), 'lines carry timestamps');
  // Its inspect, as YAML.
  await page.getByLabel('Inspect').getByText('HostConfig:').waitFor();

  step("run ps aux in a terminal into shell");
  await page.goto(`${origin}/ui/containers/shell`);
  await psAuxInTerminal(page, 'sleep 3600');
  await page.screenshot({ path: `${shots}/container-terminal.png`, fullPage: true });

  step('by keyboard: stop late from its page, then delete it');
  await page.goto(`${origin}/ui/containers/late`);
  await page.getByRole('button', { name: 'Stop' }).focus();
  await page.keyboard.press('Enter');
  await page.locator('[data-status="exited"]').waitFor();
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(`${origin}/ui/containers`);
  await page.waitForFunction(() => document.querySelector('table[aria-label="Containers"] tr[data-name="web"]')
    && !document.querySelector('table[aria-label="Containers"] tr[data-name="late"]'), null, { timeout: WAIT });
  const [gone] = await docker('GET', '/containers/late/json');
  check(gone === 404, `late is deleted: ${gone}`);

  step("the images: kubia's history and the container that uses it");
  await page.getByRole('navigation').getByRole('link', { name: 'Images' }).click();
  await page.getByRole('table', { name: 'Images' }).getByRole('link', { name: 'kubia', exact: true }).click();
  await page.getByRole('heading', { name: 'Image kubia:latest' }).waitFor();
  await page.getByRole('table', { name: 'Containers of the image' }).getByRole('link', { name: 'web' }).waitFor();
  const steps = page.getByRole('table', { name: 'History' }).locator('tbody tr');
  await steps.first().waitFor();
  check(await steps.count() >= 2, `kubia's history has its steps and busybox's: ${await steps.count()}`);
  // An image in use is not deleted, and the page says why.
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  check(/is using its referenced image/.test(await alert.textContent()), `why kubia stays: ${await alert.textContent()}`);
  await page.screenshot({ path: `${shots}/image.png`, fullPage: true });

  step('refusals: the Docker side needs the session; a terminal into no container is named');
  const session = (await context.cookies()).find((c) => c.name === 'wrun-dashboard');
  const anonymous = await fetch(`${origin}/docker/containers/json`);
  check(anonymous.status === 401, `the Docker API without a session: ${anonymous.status}`);
  const noSuch = await fetch(`${origin}/wrun/containers/nope/exec?command=sh`, { headers: { cookie: `wrun-dashboard=${session.value}` } });
  const why = await noSuch.text();
  check(noSuch.status === 400 && why.includes('nope'), `a terminal into no container: ${noSuch.status} ${why}`);

  step('readable in light and dark');
  await page.goto(`${origin}/ui/containers`);
  await page.locator('table[aria-label="Containers"]').waitFor();
  const light = await contrasts(page);
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await contrasts(page);
  await page.screenshot({ path: `${shots}/containers-dark.png`, fullPage: true });
  check(light.background > 0.8, `a light background in light mode: ${light.background}`);
  check(dark.background < 0.05, `a dark background in dark mode: ${dark.background}`);
  for (const [scheme, c] of [['light', light], ['dark', dark]]) {
    check(c.body >= 7, `${scheme}: body text contrast ${c.body}`);
    for (const k of ['muted', 'link', 'running', 'exited', 'bad', 'warn']) {
      check(c[k] >= 4.5, `${scheme}: ${k} text contrast ${c[k]} (WCAG AA asks 4.5)`);
    }
  }
  console.log('ok');
} catch (e) {
  console.error(String(e && e.stack || e));
  if (page) await page.screenshot({ path: `${shots}/docker-failure.png`, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
