// The dashboard's benchmark, in headless Chromium (playwright-core from
// tests/browser): against a cluster that runs PODS pods,
//  1. time to first paint of the workloads view: from the navigation's
//     start to the frame that shows the Pods table's first page (100 rows,
//     as the dashboards page their tables) with the count of all PODS, by
//     the page's clock (RUNS times, a fresh page each; also as the driver
//     sees it, with the DevTools protocol's round trips);
//  2. the delay from a change in the API to the change on the page: the
//     RC's replicas patched through the API (from just before the PATCH
//     is sent) to the page showing the new DESIRED (ROUNDS times).
// Prints one JSON object (milliseconds).
//
// node bench/dashboard.mjs LOGIN_URL PODS RUNS ROUNDS

import { launch } from '../tests/browser/common.mjs';

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

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await context.newPage();
  await login.goto(loginUrl);
  await login.waitForURL(`${origin}/ui/overview`);
  const cookie = (await context.cookies()).find((c) => c.name === 'wrun-dashboard');
  await login.close();

  // 1. First paint of the workloads view with every pod, by the page's
  // own clock (from the navigation's start): a MutationObserver, installed
  // before the page's scripts run, sees the Pods table get its first page
  // and the count of all; the frame with them is painted before the next
  // animation frame begins, whose time is taken. The driver's view (from
  // before page.goto to the answer of an evaluate after it) is kept too:
  // it adds the DevTools protocol's round trips.
  await context.addInitScript((n) => {
    const shown = () => document.querySelectorAll('table[aria-label="Pods"] tbody tr').length >= Math.min(n, 100)
      && (n <= 100 || document.getElementById('main')?.textContent.includes(`of ${n} pods`));
    const mo = new MutationObserver(() => {
      if (!shown()) return;
      mo.disconnect();
      requestAnimationFrame(() => { window.wrunBenchPainted = performance.now(); });
    });
    mo.observe(document, { subtree: true, childList: true, characterData: true });
  }, PODS);
  const paints = [];
  const driver = [];
  const phases = [];
  for (let i = 0; i < RUNS; i++) {
    const page = await context.newPage();
    const began = Date.now();
    await page.goto(`${origin}/ui/workloads`);
    await page.waitForFunction(() => window.wrunBenchPainted !== undefined, null, { timeout: HANG, polling: 'raf' });
    const seen = await page.evaluate(() => Date.now());
    driver.push(seen - began);
    paints.push(Math.round(await page.evaluate(() => window.wrunBenchPainted)));
    // Where the time went: when (from the navigation's start) each
    // request the page made began and ended.
    phases.push(await page.evaluate(() => {
      const at = (x) => Math.round(x);
      const nav = performance.getEntriesByType('navigation')[0];
      const out = { document: [at(nav.requestStart), at(nav.responseEnd)], domContentLoaded: at(nav.domContentLoadedEventEnd) };
      for (const r of performance.getEntriesByType('resource')) {
        const u = new URL(r.name);
        out[u.pathname + u.search] = [at(r.startTime), at(r.responseEnd)];
      }
      out.painted = at(performance.now());
      return out;
    }));
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
  console.log(JSON.stringify({ pods: PODS, first_paint_ms: stats(paints), first_paint_runs: paints, first_paint_driver_ms: stats(driver), first_paint_phases: phases, change_delay_ms: stats(delays), change_delay_runs: delays }));
} finally {
  await browser.close();
}
