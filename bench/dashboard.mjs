// The dashboard's benchmark, in headless Chromium (playwright-core from
// tests/browser): against a cluster that runs PODS pods,
//  1. time to first paint of the workloads view: from the navigation to
//     the Pods table showing its first page (100 rows, as the dashboards
//     page their tables) with the count of all PODS (RUNS times, a fresh
//     page each);
//  2. the delay from a change in the API to the change on the page: the
//     RC's replicas patched through the API (from just before the PATCH
//     is sent) to the page showing the new DESIRED (ROUNDS times).
// Prints one JSON object (milliseconds).
//
// node bench/dashboard.mjs LOGIN_URL PODS RUNS ROUNDS

const { chromium } = await import(new URL('../tests/browser/node_modules/playwright-core/index.mjs', import.meta.url));

const [loginUrl, podsArg, runsArg, roundsArg] = process.argv.slice(2);
const PODS = Number(podsArg);
const RUNS = Number(runsArg);
const ROUNDS = Number(roundsArg);
if (!loginUrl || !PODS || !RUNS || !ROUNDS) {
  console.error('usage: node bench/dashboard.mjs LOGIN_URL PODS RUNS ROUNDS');
  process.exit(2);
}
const origin = new URL(loginUrl).origin;
// A guard against hangs, not a measure.
const HANG = 120_000;

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
  return { n: s.length, min: s[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[s.length - 1] };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await context.newPage();
  await login.goto(loginUrl);
  await login.waitForURL(`${origin}/ui/overview`);
  const cookie = (await context.cookies()).find((c) => c.name === 'wrun-dashboard');
  await login.close();

  // 1. First paint of the workloads view with every pod.
  const paints = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    const began = Date.now();
    await page.goto(`${origin}/ui/workloads`);
    await page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Pods"] tbody tr').length >= Math.min(n, 100)
      && (n <= 100 || document.getElementById('main').textContent.includes(`of ${n} pods`)),
    PODS, { timeout: HANG, polling: 'raf' });
    // The frame with every row is painted at the next animation frame.
    const painted = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(Date.now()))));
    paints.push(painted - began);
    await page.close();
  }

  // 2. From a PATCH to the page showing it.
  const page = await context.newPage();
  await page.goto(`${origin}/ui/workloads`);
  await page.waitForFunction((n) => document.querySelectorAll('table[aria-label="Pods"] tbody tr').length >= Math.min(n, 100),
    PODS, { timeout: HANG });
  const desired = () => page.evaluate(() => {
    const row = [...document.querySelectorAll('table[aria-label="ReplicationControllers"] tbody tr')].find((r) => r.dataset.name === 'kubia');
    return row ? Number(row.cells[2].textContent) : -1;
  });
  const delays = [];
  let replicas = await desired();
  for (let i = 0; i < ROUNDS; i++) {
    // Toggle between N and N+1: the API changes, the page follows.
    const next = i % 2 === 0 ? replicas + 1 : replicas - 1;
    // The page records when the cell changes, by the same clock.
    const seen = page.evaluate((want) => new Promise((resolve) => {
      const check = () => {
        const row = [...document.querySelectorAll('table[aria-label="ReplicationControllers"] tbody tr')].find((r) => r.dataset.name === 'kubia');
        if (row && Number(row.cells[2].textContent) === want) { resolve(Date.now()); return true; }
        return false;
      };
      if (check()) return;
      const obs = new MutationObserver(() => { if (check()) obs.disconnect(); });
      obs.observe(document.getElementById('main'), { subtree: true, childList: true, characterData: true });
    }), next);
    await new Promise((r) => setTimeout(r, 50));
    const sent = Date.now();
    const r = await fetch(`${origin}/api/v1/namespaces/default/replicationcontrollers/kubia/scale`, {
      method: 'PATCH',
      headers: { cookie: `wrun-dashboard=${cookie.value}`, origin, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ spec: { replicas: next } }),
    });
    if (!r.ok) throw new Error(`PATCH: ${r.status} ${await r.text()}`);
    delays.push((await seen) - sent);
    replicas = next;
    // Let the pod come or go before the next round.
    await new Promise((r2) => setTimeout(r2, 300));
  }
  console.log(JSON.stringify({ pods: PODS, first_paint_ms: stats(paints), first_paint_runs: paints, change_delay_ms: stats(delays), change_delay_runs: delays }));
} finally {
  await browser.close();
}
