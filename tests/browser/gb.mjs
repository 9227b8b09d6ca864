// Plays a GB/T 28181 channel of a running Xueliang demo in Debian's
// chromium: live, then from the device's own recordings (GB/T 28181
// Playback) picked on the timeline. Usage:
//   node gb.mjs BASE_URL [SCREENSHOT_DIR]
// Exit code 0 on success; failures print what went wrong.
import { args, launch, failures, open } from './lib.mjs';

const { base, shots } = args('gb.mjs');
const browser = await launch();
const { fail, done } = failures();

try {
  const page = await open(browser, base, { width: 1280, height: 800 });
  // The simulated NVRs register by themselves; their cameras appear.
  await page.waitForFunction(() => window.xl.channels().some((c) => !c.source_url && c.device_id), null, { timeout: 20000 });
  const ch = await page.evaluate(() => window.xl.channels().find((c) => !c.source_url && c.device_id));
  console.log(`GB/T 28181 channel ${ch.id} ${ch.code} ${ch.name} (${ch.status})`);

  // Live over LL-HLS: INVITE, PS over RTP, the hub, the browser.
  const asked = Date.now();
  await page.evaluate((id) => window.xl.play(id, 'hls'), ch.id);
  await page.waitForFunction(() => document.querySelector('#video').currentTime > 1, null, { timeout: 20000 });
  console.log(`live: playing after ${Date.now() - asked} ms`);

  // Playback of the device's recordings: the timeline shows them.
  await page.click('#mode-pb');
  await page.evaluate((id) => window.xl.pick(id), ch.id);
  await page.waitForSelector('#timeline .spans > div.dev', { timeout: 15000 });
  const span = await page.evaluate(() => {
    const items = window.xl.timeline().device.recordings.items;
    return items[items.length - 1];
  });
  const start = new Date(new Date(span.end).getTime() - 90000);
  const end = new Date(start.getTime() + 60000);
  const asked2 = Date.now();
  await page.evaluate(([id, s, e]) => window.xl.devicePlayback(id, s, e), [ch.id, start.toISOString(), end.toISOString()]);
  await page.waitForFunction(() => document.querySelector('#video').currentTime > 0.5, null, { timeout: 20000 });
  const c0 = await page.evaluate(() => document.querySelector('#video').currentTime);
  await page.waitForTimeout(2000);
  const c1 = await page.evaluate(() => ({ t: document.querySelector('#video').currentTime, w: document.querySelector('#video').videoWidth, d: window.xl.playingDate() && window.xl.playingDate().toISOString() }));
  console.log(`device playback: first frame after ${Date.now() - asked2 - 2000} ms; currentTime ${c0.toFixed(2)} -> ${c1.t.toFixed(2)}; ${c1.w} px wide; wall clock ${c1.d}`);
  if (c1.t - c0 < 1.5) fail(`currentTime advanced by ${(c1.t - c0).toFixed(2)} s in 2 s`);
  if (!(c1.w > 0)) fail(`videoWidth ${c1.w}`);
  if (!c1.d || Math.abs(new Date(c1.d) - start) > 10000) fail(`playing clock ${c1.d}, range starts ${start.toISOString()}`);
  if (shots) await page.screenshot({ path: `${shots}/demo-gb-playback-zh.png` });
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
done('browser GB/T 28181 test passed');
