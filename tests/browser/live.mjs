// Plays live video of a running Xueliang in Debian's chromium and asserts
// that it really plays. Usage: node live.mjs BASE_URL [SCREENSHOT_DIR]
// Exit code 0 on success; failures print what went wrong.
import { args, launch, failures, open } from './lib.mjs';

const { base, shots } = args('live.mjs');
const browser = await launch();
const { fail, done } = failures();

try {
  const page = await open(browser, base, { width: 1280, height: 720 });
  await page.waitForSelector('#channels tr', { timeout: 15000 });
  const title = await page.textContent('h1');
  if (!title.includes('雪亮')) fail(`default language is not zh-CN: title ${title}`);

  // Pick an H.264 channel that is not the password-protected one.
  const id = await page.evaluate(() => {
    const chs = window.xl.channels();
    return chs[0].id;
  });

  async function measure(proto) {
    await page.evaluate(([id, proto]) => {
      const v = document.querySelector('#video');
      window.__frames = 0;
      const tick = () => { window.__frames++; v.requestVideoFrameCallback(tick); };
      v.requestVideoFrameCallback(tick);
      return window.xl.play(id, proto);
    }, [id, proto]);
    const t0 = Date.now();
    await page.waitForFunction(() => document.querySelector('#video').currentTime > 0.2, null, { timeout: 20000 });
    const startMs = Date.now() - t0;
    const c0 = await page.evaluate(() => document.querySelector('#video').currentTime);
    await page.waitForTimeout(3000);
    const r = await page.evaluate(async () => {
      const v = document.querySelector('#video');
      return { t: v.currentTime, w: v.videoWidth, h: v.videoHeight, frames: window.__frames, decoded: await window.xl.framesDecoded(), state: document.querySelector('#state').dataset.state };
    });
    console.log(`${proto}: first frame after ${startMs} ms; currentTime ${c0.toFixed(2)} -> ${r.t.toFixed(2)}; ${r.w}x${r.h}; ${r.frames} frames painted; framesDecoded ${r.decoded}; state ${r.state}`);
    if (r.t - c0 < 2) fail(`${proto}: currentTime advanced by ${(r.t - c0).toFixed(2)} s in 3 s, want >= 2`);
    if (!(r.w > 0)) fail(`${proto}: videoWidth is ${r.w}`);
    if (r.frames < 20) fail(`${proto}: only ${r.frames} frames painted in 3 s`);
    if (proto === 'webrtc' && r.decoded < 20) fail(`webrtc: framesDecoded ${r.decoded}`);
    return r;
  }

  // WebRTC first: the source then runs (cold start), and LL-HLS starts on
  // a warm source, as when a recorder or another viewer holds it.
  await measure('webrtc');
  await measure('hls');
  if (shots) await page.screenshot({ path: `${shots}/demo-live-zh.png` });

  await page.click('#lang');
  const en = await page.textContent('h1');
  if (!en.includes('Xueliang')) fail(`language switch: title ${en}`);
  if (shots) await page.screenshot({ path: `${shots}/demo-live-en.png` });
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
done('browser test passed');
