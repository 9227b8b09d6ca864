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
  },
  en: {
    title: 'Xueliang · video platform', search: 'Search name or code', name: 'Name', division: 'Division', status: 'Status',
    pick: 'Pick a channel', lang: '中文', summary: '{n} channels, {on} online',
    online: 'online', offline: 'offline', idle: 'idle', connecting: 'connecting', error: 'error',
    requesting: 'Requesting a live URL…', loading: 'Connecting to the stream…', playing: 'Playing',
    failed: 'Playback failed: {msg}', retrying: 'Stream interrupted, reconnecting…',
    unreachable: 'camera unreachable', auth_failed: 'authentication failed', no_video: 'no video track', codec_unsupported: 'codec not supported',
    timeout: 'timeout', source_closed: 'camera disconnected', protocol_error: 'protocol error',
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
}

function setState(key, vars) { const el = $('#state'); el.dataset.state = key; el.textContent = t(key, vars); }

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
window.xl = { play, load, framesDecoded, channels: () => channels };

applyLang();
load().catch((e) => setState('failed', { msg: e.message }));
setInterval(() => load().catch(() => {}), 5000);
