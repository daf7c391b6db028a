// What the browser scripts (and bench/dashboard.mjs) share: Chromium
// launched headless with the flags ../shared/DESIGN.md gives, the step
// and check helpers, and the terminal step both test scripts take.
// Environment: CHROMIUM (the browser's path, default /usr/bin/chromium).

import { chromium } from 'playwright-core';

/** A guard against hangs, not a measure. */
export const WAIT = 60_000;

export function step(what) { console.log(`step: ${what}`); }

export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** Debian's Chromium, headless. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/**
 * Opens the terminal on the page (a pod's or a container's), runs
 * `ps aux`, and waits until its table lists `process`.
 */
export async function psAuxInTerminal(page, process) {
  await page.getByRole('button', { name: 'Open terminal' }).click();
  // busybox's sh prints no prompt: wait for the connection, then type.
  await page.locator('.terminal[data-connected="true"]').waitFor();
  await page.keyboard.type('ps aux');
  await page.keyboard.press('Enter');
  await page.waitForFunction((p) => {
    const t = document.querySelector('.xterm-rows').textContent;
    return t.includes('PID') && t.includes(p);
  }, process, { timeout: WAIT });
}
