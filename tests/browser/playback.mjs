// Plays back a recorded range of a running Xueliang demo in Debian's
// chromium, seeks in it, and exports it. Usage:
//   node playback.mjs BASE_URL [SCREENSHOT_DIR]
// Exit code 0 on success; failures print what went wrong.
import { args, launch, failures, open } from './lib.mjs';

const { base, shots } = args('playback.mjs');
const browser = await launch();
const { fail, done } = failures();

try {
  const page = await open(browser, base, { width: 1280, height: 800 });
  await page.waitForSelector('#channels tr', { timeout: 15000 });
  const id = await page.evaluate(() => window.xl.channels()[0].id);

  // Wait until the demo has recorded 30 s of the first camera.
  const t0 = Date.now();
  let rec = null;
  for (;;) {
    const tl = await page.evaluate(async (id) => {
      const now = new Date(), from = new Date(now.getTime() - 3600e3);
      const r = await fetch(`/api/v1/channels/${id}/recordings?start=${from.toISOString()}&end=${now.toISOString()}`);
      return r.json();
    }, id);
    rec = tl.recorded && tl.recorded[tl.recorded.length - 1];
    if (rec && new Date(rec.end) - new Date(rec.start) >= 30000) break;
    if (Date.now() - t0 > 60000) throw new Error(`no 30 s of recording after 60 s: ${JSON.stringify(tl)}`);
    await page.waitForTimeout(1000);
  }

  // The playback view: the timeline shows the recording.
  await page.click('#mode-pb');
  await page.evaluate((id) => window.xl.pick(id), id);
  await page.waitForSelector('#timeline .spans > div', { timeout: 5000 });

  // Play 20 s from 5 s into the recording.
  const start = new Date(new Date(rec.start).getTime() + 5000);
  const end = new Date(start.getTime() + 20000);
  const asked = Date.now();
  await page.evaluate(([id, s, e]) => window.xl.playback(id, s, e), [id, start.toISOString(), end.toISOString()]);
  await page.waitForFunction(() => document.querySelector('#video').currentTime > 0.2, null, { timeout: 15000 });
  const firstMs = Date.now() - asked;
  const c0 = await page.evaluate(() => document.querySelector('#video').currentTime);
  await page.waitForTimeout(2000);
  const c1 = await page.evaluate(() => ({ t: document.querySelector('#video').currentTime, w: document.querySelector('#video').videoWidth, d: window.xl.playingDate() && window.xl.playingDate().toISOString() }));
  console.log(`playback: first frame after ${firstMs} ms; currentTime ${c0.toFixed(2)} -> ${c1.t.toFixed(2)}; ${c1.w} px wide; wall clock ${c1.d}`);
  if (c1.t - c0 < 1.5) fail(`currentTime advanced by ${(c1.t - c0).toFixed(2)} s in 2 s`);
  if (!(c1.w > 0)) fail(`videoWidth ${c1.w}`);
  if (!c1.d || Math.abs(new Date(c1.d) - start) > 6000) fail(`playing wall clock ${c1.d}, range starts ${start.toISOString()}`);
  if (shots) await page.screenshot({ path: `${shots}/demo-playback-zh.png` });

  // Seek 12 s further; playback goes on from there.
  const target = c1.t + 12;
  await page.evaluate((x) => { document.querySelector('#video').currentTime = x; }, target);
  await page.waitForFunction((x) => document.querySelector('#video').currentTime > x + 1, target, { timeout: 10000 });
  const c2 = await page.evaluate(() => document.querySelector('#video').currentTime);
  console.log(`seek to ${target.toFixed(2)}: playing at ${c2.toFixed(2)}`);

  // A camera with G.711 audio (recorded as PCM, which MSE cannot take):
  // the console falls back to the stitched MP4, which plays.
  const g711 = await page.evaluate(async () => {
    const c = window.xl.channels().find((c) => c.id === 7);
    if (!c) return null;
    const now = new Date(), from = new Date(now.getTime() - 3600e3);
    const tl = await (await fetch(`/api/v1/channels/7/recordings?start=${from.toISOString()}&end=${now.toISOString()}`)).json();
    const rec = tl.recorded && tl.recorded[tl.recorded.length - 1];
    if (!rec) return null;
    const s = new Date(new Date(rec.start).getTime() + 2000);
    await window.xl.playback(7, s.toISOString(), new Date(s.getTime() + 10000).toISOString());
    return s.toISOString();
  });
  if (!g711) fail('no recording of the G.711 camera (channel 7)');
  else {
    await page.waitForFunction(() => document.querySelector('#video').currentTime > 1, null, { timeout: 15000 });
    console.log(`G.711 camera: playing from ${g711} through ${await page.evaluate(() => document.querySelector('#video').currentSrc.includes('playback.mp4') ? 'the MP4' : 'HLS')}`);
  }

  // Export the range and see the files listed with their checksums.
  await page.evaluate(([id, s, e]) => window.xl.playback(id, s, e), [id, start.toISOString(), end.toISOString()]);
  const x = await page.evaluate(() => window.xl.exportRange());
  console.log(`export ${x.id}: ${x.state}, ${(x.files || []).map((f) => f.name).join(', ')}`);
  if (x.state !== 'done' || !(x.files || []).some((f) => f.name.endsWith('.mp4'))) fail(`export ${JSON.stringify(x)}`);
  await page.waitForSelector('#exports a', { timeout: 5000 });
  if (shots) {
    await page.click('#lang');
    await page.screenshot({ path: `${shots}/demo-playback-en.png` });
  }
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
done('browser playback test passed');
