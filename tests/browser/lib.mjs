// What the browser tests share: their arguments, Debian's chromium with
// the flags that let it play media headless on loopback, and failure
// bookkeeping.
import { chromium } from 'playwright-core';

// args returns BASE_URL and SCREENSHOT_DIR (optional) of `node NAME.mjs
// BASE_URL [SCREENSHOT_DIR]`, or exits with the usage.
export function args(name) {
  const [base, shots] = process.argv.slice(2);
  if (!base) {
    console.error(`usage: node ${name} BASE_URL [SCREENSHOT_DIR]`);
    process.exit(2);
  }
  return { base, shots };
}

// launch starts chromium (CHROMIUM or /usr/bin/chromium; never a
// downloaded browser).
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-gpu', '--disable-quic',
    ],
  });
}

// failures collects what went wrong; done exits 1 if anything did.
export function failures() {
  let failed = false;
  return {
    fail: (msg) => { console.error('FAIL:', msg); failed = true; },
    done: (passed) => { if (failed) process.exit(1); console.log(passed); },
  };
}

// open opens the console at base in a new page that reports its errors.
export async function open(browser, base, viewport) {
  const page = await browser.newPage({ viewport });
  page.on('console', (m) => { if (m.type() === 'error') console.error('page console:', m.text()); });
  await page.goto(base + '/');
  return page;
}
