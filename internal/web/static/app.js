// Minimal demo console: channel list and one live player.
'use strict';

const I18N = {
  'zh-CN': {
    title: '雪亮 · 视频联网平台', search: '搜索名称或编码', name: '名称', division: '行政区划', status: '状态',
    pick: '请选择一个通道', lang: 'English', summary: '通道 {n} 个，在线 {on} 个',
    online: '在线', offline: '离线', idle: '空闲', connecting: '连接中', error: '错误',
    requesting: '正在请求播放地址…', loading: '正在连接视频流…', playing: '正在播放',
    failed: '播放失败：{msg}', retrying: '连接中断，正在重连…',
    unreachable: '设备无法连接', auth_failed: '认证失败', no_video: '没有视频轨道', codec_unsupported: '编码格式不支持',
    timeout: '超时', source_closed: '设备断开', protocol_error: '协议错误',
    live: '实时', playback: '回放', length: '时长', export: '导出证据',
    recorded: '当日录像 {h} 小时 {m} 分 {s} 秒', norec: '当日无录像', pbat: '回放 {t}',
    exporting: '导出 #{id}：{p}%', exported: '导出 #{id} 完成', exportfailed: '导出 #{id} 失败：{msg}',
    pickrec: '点击时间轴上的录像段开始回放',
    device_offline: '设备离线', catalog_off: '设备报告通道关闭', video_lost: '视频丢失', device_defect: '设备故障',
    removed_from_catalog: '设备目录已删除该通道', no_packets: '未收到媒体流', wrong_ssrc: '媒体流 SSRC 不符',
    not_ps: '媒体流不是 PS 封装', no_tcp_connection: '设备未建立 TCP 连接', invite_refused: '设备拒绝点播',
    invite_timeout: '设备点播无应答', bad_sdp_answer: '设备 SDP 应答无效',
    devrec: '设备录像 {n} 段（浅色）', devpb: '正在回放设备录像', nodevrec: '设备无录像：{msg}',
  },
  en: {
    title: 'Xueliang · video platform', search: 'Search name or code', name: 'Name', division: 'Division', status: 'Status',
    pick: 'Pick a channel', lang: '中文', summary: '{n} channels, {on} online',
    online: 'online', offline: 'offline', idle: 'idle', connecting: 'connecting', error: 'error',
    requesting: 'Requesting a live URL…', loading: 'Connecting to the stream…', playing: 'Playing',
    failed: 'Playback failed: {msg}', retrying: 'Stream interrupted, reconnecting…',
    unreachable: 'camera unreachable', auth_failed: 'authentication failed', no_video: 'no video track', codec_unsupported: 'codec not supported',
    timeout: 'timeout', source_closed: 'camera disconnected', protocol_error: 'protocol error',
    live: 'Live', playback: 'Playback', length: 'Length', export: 'Export evidence',
    recorded: 'Recorded this day: {h} h {m} min {s} s', norec: 'Nothing recorded this day', pbat: 'Playback {t}',
    exporting: 'Export #{id}: {p}%', exported: 'Export #{id} done', exportfailed: 'Export #{id} failed: {msg}',
    pickrec: 'Click a recorded span of the timeline to play it',
    device_offline: 'device offline', catalog_off: 'channel off (device catalog)', video_lost: 'video lost', device_defect: 'device fault',
    removed_from_catalog: 'removed from the device catalog', no_packets: 'no media received', wrong_ssrc: 'media SSRC mismatch',
    not_ps: 'media is not MPEG-PS', no_tcp_connection: 'device did not connect (TCP)', invite_refused: 'device refused the stream',
    invite_timeout: 'device did not answer', bad_sdp_answer: 'invalid SDP answer',
    devrec: 'Device recordings: {n} spans (light)', devpb: 'Playing the device\'s recording', nodevrec: 'No device recordings: {msg}',
  },
};
let lang = localStorage.getItem('xl.lang') || 'zh-CN';
const t = (k, vars) => {
  let s = (I18N[lang] && I18N[lang][k]) || I18N['zh-CN'][k] || k;
  for (const [name, v] of Object.entries(vars || {})) s = s.replace('{' + name + '}', v);
  return s;
};

const $ = (s) => document.querySelector(s);
const video = $('#video');
let channels = [], divisions = {}, current = null, hls = null, pc = null, whepURL = null;

function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $('#lang').textContent = t('lang');
  if (current) $('#current').textContent = current.name;
  render();
  const st = $('#state');
  if (st.dataset.state) st.textContent = t(st.dataset.state, lastStateVars);
  if (typeof drawTimeline === 'function' && tl) drawTimeline();
  if (typeof renderExports === 'function') renderExports();
}

let lastStateVars = null;
function setState(key, vars) { const el = $('#state'); el.dataset.state = key; lastStateVars = vars; el.textContent = t(key, vars); }

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.error && data.error.message) || res.statusText);
  return data;
}

function flatten(nodes) { for (const n of nodes || []) { divisions[n.code] = n.name; flatten(n.children); } }

async function load() {
  const [divs, chs] = await Promise.all([api('GET', '/api/v1/divisions'), api('GET', '/api/v1/channels?limit=1000')]);
  flatten(divs.divisions);
  channels = chs.channels || [];
  render();
}

function render() {
  const q = $('#filter').value.trim().toLowerCase();
  const rows = channels.filter((c) => !q || c.name.toLowerCase().includes(q) || c.code.includes(q));
  const on = channels.filter((c) => c.status === 'online').length;
  $('#summary').textContent = t('summary', { n: channels.length, on });
  const tb = $('#channels');
  tb.replaceChildren(...rows.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.id = c.id;
    if (current && current.id === c.id) tr.className = 'sel';
    const name = document.createElement('td');
    name.innerHTML = '<div></div><div class="code"></div>';
    name.firstChild.textContent = c.name;
    name.lastChild.textContent = c.code;
    const div = document.createElement('td');
    div.textContent = divisions[c.division] || c.division;
    const st = document.createElement('td');
    st.className = 'st-' + c.status;
    st.textContent = t(c.status) + (c.reason ? ' · ' + t(c.reason) : '');
    if (c.last_error) st.title = c.last_error;
    tr.append(name, div, st);
    tr.onclick = () => play(c.id);
    return tr;
  }));
}

function stop() {
  if (hls) { hls.destroy(); hls = null; }
  if (pc) { pc.close(); pc = null; }
  if (whepURL) { fetch(whepURL, { method: 'DELETE' }).catch(() => {}); whepURL = null; }
  video.removeAttribute('src');
  video.srcObject = null;
}

async function play(id, proto) {
  proto = proto || document.querySelector('input[name=proto]:checked').value;
  if (mode === 'pb') return pick(id);
  stop();
  current = channels.find((c) => c.id === id) || { id, name: String(id) };
  $('#current').textContent = current.name;
  render();
  setState('requesting');
  try {
    const live = await api('POST', `/api/v1/channels/${id}/live`);
    setState('loading');
    if (proto === 'webrtc') await playWHEP(live.whep); else playHLS(live.hls);
  } catch (e) {
    setState('failed', { msg: e.message });
  }
}

function playHLS(url) {
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls({ lowLatencyMode: true, liveSyncDurationCount: 2, manifestLoadingMaxRetry: 6 });
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal) return;
      if (pb && pb.device) { setState('failed', { msg: d.details }); return; }
      setState('retrying');
      const id = current && current.id;
      setTimeout(() => { if (current && current.id === id) play(id, 'hls'); }, 2000);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url; // Safari plays HLS natively
  }
  video.play().catch(() => {});
}

async function playWHEP(url) {
  pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (ev) => { stream.addTrack(ev.track); video.srcObject = stream; video.play().catch(() => {}); };
  pc.onconnectionstatechange = () => { if (pc && pc.connectionState === 'failed') setState('retrying'); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
    setTimeout(resolve, 2000);
  });
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    throw new Error((data.error && data.error.message) || res.statusText);
  }
  whepURL = new URL(res.headers.get('Location'), url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
}

video.addEventListener('playing', () => setState('playing'));
$('#filter').addEventListener('input', render);
$('#lang').addEventListener('click', () => { lang = lang === 'en' ? 'zh-CN' : 'en'; localStorage.setItem('xl.lang', lang); applyLang(); });
window.addEventListener('beforeunload', stop);
async function framesDecoded() {
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') n = r.framesDecoded || 0; });
  return n;
}
// --- Playback: a day's timeline of a channel, click to play from a time.
let mode = 'live', day = null, tl = null, pb = null; // pb: {start, end} being played

const pad = (n) => String(n).padStart(2, '0');
const dayStart = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate());
const fmtTime = (d) => `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
const fmtDay = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

function setMode(m) {
  mode = m;
  $('#mode-live').classList.toggle('on', m === 'live');
  $('#mode-pb').classList.toggle('on', m === 'pb');
  $('#pb').hidden = m !== 'pb';
  document.querySelectorAll('input[name=proto]').forEach((el) => { el.disabled = m === 'pb'; });
  stop();
  pb = null;
  if (current) play(current.id);
}

async function pick(id) {
  stop();
  pb = null;
  current = channels.find((c) => c.id === id) || { id, name: String(id) };
  $('#current').textContent = current.name;
  render();
  if (!day) day = dayStart(new Date());
  $('#pb-day').value = fmtDay(day);
  await loadTimeline();
  setState('pickrec');
}

// isGB: a GB/T 28181 channel, whose device keeps recordings of its own.
const isGB = (c) => c && !c.source_url && c.device_id;

async function loadTimeline() {
  if (!current) return;
  const from = day, to = new Date(Math.min(day.getTime() + 86400e3, Date.now()));
  const dev = isGB(current) ? '&device=true' : '';
  tl = await api('GET', `/api/v1/channels/${current.id}/recordings?start=${from.toISOString()}&end=${to.toISOString()}${dev}`);
  drawTimeline();
}

// deviceSpans are the device-side recordings of the timeline, if any.
const deviceSpans = () => (tl && tl.device && tl.device.recordings && tl.device.recordings.items) || [];

function drawTimeline() {
  const el = $('#timeline');
  const spans = el.querySelector('.spans');
  const frac = (t) => Math.min(1, Math.max(0, (new Date(t) - day) / 86400e3));
  const span = (iv, cls) => {
    const d = document.createElement('div');
    if (cls) d.className = cls;
    d.style.left = (frac(iv.start) * 100) + '%';
    d.style.width = Math.max(0.15, (frac(iv.end) - frac(iv.start)) * 100) + '%';
    d.title = `${fmtTime(new Date(iv.start))} – ${fmtTime(new Date(iv.end))}`;
    return d;
  };
  spans.replaceChildren(...deviceSpans().map((iv) => span(iv, 'dev')), ...((tl && tl.recorded) || []).map((iv) => span(iv)));
  const ticks = el.querySelector('.ticks');
  if (!ticks.childElementCount) {
    for (let h = 0; h <= 24; h += 2) {
      const i = document.createElement('i'); i.style.left = (h / 24 * 100) + '%';
      const s = document.createElement('span'); s.style.left = (h / 24 * 100) + '%'; s.textContent = pad(h) + ':00';
      ticks.append(i, s);
    }
  }
  const secs = (tl && tl.recorded_seconds) || 0;
  let info = secs ? t('recorded', { h: Math.floor(secs / 3600), m: Math.floor(secs % 3600 / 60), s: Math.floor(secs % 60) }) : t('norec');
  if (deviceSpans().length) info += ' · ' + t('devrec', { n: deviceSpans().length });
  else if (tl && tl.device_error) info += ' · ' + t('nodevrec', { msg: tl.device_error });
  $('#pb-info').textContent = info;
  const sel = el.querySelector('.sel');
  if (pb) {
    sel.style.display = 'block';
    sel.style.left = (frac(pb.start) * 100) + '%';
    sel.style.width = Math.max(0.2, (frac(pb.end) - frac(pb.start)) * 100) + '%';
  } else sel.style.display = 'none';
}

// playback plays [start, start+len) of the current channel.
async function playback(id, start, end) {
  stop();
  if (!current || current.id !== id) current = channels.find((c) => c.id === id) || { id, name: String(id) };
  pb = { start: new Date(start), end: new Date(end) };
  drawTimeline();
  setState('requesting');
  try {
    const urls = await api('POST', `/api/v1/channels/${id}/playback`, { start: pb.start.toISOString(), end: pb.end.toISOString() });
    setState('loading');
    const useMP4 = () => {
      // The stitched MP4 plays what MSE cannot take (G.711 recorded as
      // PCM): the browser's own demuxer reads it, with Range requests.
      if (hls) { hls.destroy(); hls = null; }
      pb.mp4 = true;
      video.src = urls.mp4;
      video.play().catch(() => {});
    };
    if (window.Hls && Hls.isSupported()) {
      hls = new Hls({ manifestLoadingMaxRetry: 3 });
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        if (/Codec/i.test(d.details || '')) useMP4(); else setState('failed', { msg: d.details });
      });
      hls.loadSource(urls.hls);
      hls.attachMedia(video);
    } else {
      useMP4();
    }
    video.play().catch(() => {});
    return urls;
  } catch (e) {
    setState('failed', { msg: e.message });
    throw e;
  }
}

// devicePlayback plays [start, end) from the device's own recordings
// (GB/T 28181 Playback), served like a live stream.
async function devicePlayback(id, start, end) {
  stop();
  pb = { start: new Date(start), end: new Date(end), device: true };
  drawTimeline();
  setState('requesting');
  try {
    const r = await api('POST', `/api/v1/channels/${id}/device-playback`, { start: pb.start.toISOString(), end: pb.end.toISOString() });
    pb.stream = r.stream;
    playHLS(r.hls);
    setState('devpb');
    return r;
  } catch (e) {
    setState('failed', { msg: e.message });
    throw e;
  }
}

$('#timeline').addEventListener('click', (ev) => {
  if (!current) return;
  const r = ev.currentTarget.getBoundingClientRect();
  const clicked = new Date(day.getTime() + (ev.clientX - r.left) / r.width * 86400e3);
  const len = Number($('#pb-len').value) * 1000;
  // The platform's recording that holds the click (or the next one);
  // else, for a GB/T 28181 channel, the device's own.
  const holds = (x) => new Date(x.start) <= clicked && new Date(x.end) > clicked;
  const own = (tl && tl.recorded) || [];
  const dev = deviceSpans().find(holds);
  let iv = own.find(holds);
  if (!iv && dev) {
    const end = new Date(Math.min(clicked.getTime() + len, new Date(dev.end).getTime()));
    devicePlayback(current.id, clicked, end).catch(() => {});
    return;
  }
  iv = iv || own.find((x) => new Date(x.end) > clicked);
  if (!iv) return;
  const at = new Date(Math.max(clicked.getTime(), new Date(iv.start).getTime()));
  const end = new Date(Math.min(at.getTime() + len, Date.now()));
  if (end > at) playback(current.id, at, end);
});
$('#pb-day').addEventListener('change', () => { if ($('#pb-day').value) { const [y, m, d] = $('#pb-day').value.split('-').map(Number); day = new Date(y, m - 1, d); loadTimeline(); } });
$('#pb-prev').addEventListener('click', () => { day = new Date(day.getTime() - 86400e3); day = dayStart(new Date(day.getTime() + 3600e3)); $('#pb-day').value = fmtDay(day); loadTimeline(); });
$('#pb-next').addEventListener('click', () => { day = dayStart(new Date(day.getTime() + 90000e3)); $('#pb-day').value = fmtDay(day); loadTimeline(); });
$('#mode-live').addEventListener('click', () => setMode('live'));
$('#mode-pb').addEventListener('click', () => setMode('pb'));

// Export the range being played back; show progress, then the files.
const exportsShown = []; // newest first

function renderExports() {
  $('#exports').replaceChildren(...exportsShown.map((x) => {
    const line = document.createElement('div');
    if (x.state === 'failed') line.textContent = t('exportfailed', { id: x.id, msg: x.error });
    else if (x.state !== 'done') line.textContent = t('exporting', { id: x.id, p: Math.round((x.progress || 0) * 100) });
    else {
      line.textContent = t('exported', { id: x.id }) + ' ';
      for (const f of x.files || []) {
        const a = document.createElement('a');
        a.href = f.url; a.textContent = f.name; a.download = f.name;
        if (f.sha256) a.title = 'SHA-256 ' + f.sha256;
        line.append(a);
      }
    }
    return line;
  }));
}

async function exportRange() {
  if (!current || !pb) { setState('pickrec'); return; }
  let x = await api('POST', '/api/v1/exports', { channel_ids: [current.id], start: pb.start.toISOString(), end: pb.end.toISOString() });
  exportsShown.unshift(x);
  for (;;) {
    exportsShown[exportsShown.findIndex((e) => e.id === x.id)] = x;
    renderExports();
    if (x.state === 'done' || x.state === 'failed') break;
    await new Promise((r) => setTimeout(r, 500));
    x = await api('GET', `/api/v1/exports/${x.id}`);
  }
  return x;
}
$('#pb-export').addEventListener('click', () => exportRange().catch((e) => setState('failed', { msg: e.message })));

// playingDate is the wall-clock time of the frame on screen: from the
// playlist's program dates, or, for the MP4 (which starts at the asked
// start), from its start and currentTime (exact up to the first gap).
function playingDate() {
  if (pb && pb.device) {
    // Device playback is served like live video: the first frame shown
    // is the asked start.
    if (pb.base === undefined) { if (video.currentTime > 0) pb.base = video.currentTime; else return null; }
    return new Date(pb.start.getTime() + (video.currentTime - pb.base) * 1000);
  }
  if (hls && hls.playingDate) return hls.playingDate;
  if (pb && pb.mp4 && video.currentTime > 0) return new Date(pb.start.getTime() + video.currentTime * 1000);
  return null;
}

setInterval(() => {
  const at = mode === 'pb' ? playingDate() : null;
  if (at) {
    $('#clock').textContent = t('pbat', { t: fmtDay(at) + ' ' + fmtTime(at) });
    const c = $('#timeline .cursor');
    c.style.display = 'block';
    c.style.left = (Math.min(1, Math.max(0, (at - day) / 86400e3)) * 100) + '%';
  } else if (mode === 'live') {
    $('#clock').textContent = fmtDay(new Date()) + ' ' + fmtTime(new Date());
    $('#timeline .cursor').style.display = 'none';
  }
}, 250);

window.xl = { play, load, framesDecoded, channels: () => channels, setMode, pick, playback, devicePlayback, exportRange, timeline: () => tl, playingDate };

applyLang();
load().catch((e) => setState('failed', { msg: e.message }));
setInterval(() => load().catch(() => {}), 5000);
