// openkvs web console: sign-in, stream list, live view, fragment timeline, history playback, clip download.
import { canSign, signedHeaders } from './sigv4.js';

const HOUR = 3_600_000;
const HISTORY_WINDOW = 10 * 60_000; // an ON_DEMAND session covers this much after the clicked time
const $ = (id) => document.getElementById(id);

// ---- sign-in ----
// A server with users wants signed requests. Signing in trades the access key for temporary
// credentials (1 hour, issueCredentials); only those are kept, in this tab's sessionStorage. When
// they expire, or the server refuses them, the sign-in form comes back.
const SESSION_KEY = 'openkvs-session';
const AUTH_ERRORS = new Set(['MissingAuthenticationTokenException', 'ExpiredTokenException', 'UnrecognizedClientException', 'InvalidSignatureException']);
let session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');

async function rawCall(op, body, creds) {
  const text = JSON.stringify(body);
  const headers = creds ? await signedHeaders(creds, `/${op}`, text) : { 'content-type': 'application/json' };
  return fetch(`/${op}`, { method: 'POST', headers, body: text });
}

async function errorOf(res) {
  const err = await res.json().catch(() => ({}));
  const e = new Error(`${res.headers.get('x-amzn-errortype') ?? res.status}: ${err.Message ?? res.statusText}`);
  e.code = res.headers.get('x-amzn-errortype');
  return e;
}

function showSignIn(message) {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  $('signin').hidden = false;
  $('signin-error').textContent = canSign() ? message ?? '' : 'Signing needs a secure page: open the console over https (openkvs serve --tls auto) or on localhost.';
  $('signout').hidden = true;
}

$('signin-form').onsubmit = async (ev) => {
  ev.preventDefault();
  const creds = { accessKeyId: $('signin-key').value.trim(), secretAccessKey: $('signin-secret').value.trim() };
  try {
    const res = await rawCall('issueCredentials', { DurationSeconds: 3600 }, creds);
    if (!res.ok) throw await errorOf(res);
    const { Credentials: c } = await res.json();
    session = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiresMs: c.Expiration * 1000, user: creds.accessKeyId };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    $('signin-secret').value = '';
    $('signin').hidden = true;
    $('signout').hidden = false;
    route();
  } catch (e) {
    $('signin-error').textContent = String(e.message ?? e);
  }
};
$('signout').onclick = () => showSignIn('Signed out.');

/** Calls a JSON operation of the server, signed when signed in. */
async function call(op, body) {
  if (session && session.expiresMs <= Date.now()) {
    showSignIn('Your session expired: sign in again.');
    throw new Error('ExpiredTokenException: the session expired');
  }
  const res = await rawCall(op, body, session);
  if (!res.ok) {
    const e = await errorOf(res);
    if (AUTH_ERRORS.has(e.code)) showSignIn(e.code === 'ExpiredTokenException' ? 'Your session expired: sign in again.' : session ? e.message : '');
    throw e;
  }
  return res;
}
const callJson = async (op, body) => (await call(op, body)).json();

/** Fragments of a stream by producer time in [fromMs, toMs), all pages. */
async function listFragments(stream, fromMs, toMs) {
  const out = [];
  let token;
  do {
    const req = token
      ? { StreamName: stream, NextToken: token }
      : { StreamName: stream, FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: fromMs / 1000, EndTimestamp: toMs / 1000 } } };
    const page = await callJson('listFragments', req);
    out.push(...page.Fragments);
    token = page.NextToken;
  } while (token);
  return out
    .map((f) => ({ number: f.FragmentNumber, start: Math.round(f.ProducerTimestamp * 1000), server: Math.round(f.ServerTimestamp * 1000), ms: f.FragmentLengthInMilliseconds, bytes: f.FragmentSizeInBytes }))
    .sort((a, b) => a.start - b.start);
}

const fmtTime = (ms) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
const fmtRate = (bps) => (bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${(bps / 1e3).toFixed(0)} kbit/s`);

// ---- stream list ----
async function refreshList() {
  const { StreamInfoList: streams } = await callJson('listStreams', { MaxResults: 100 });
  const now = Date.now();
  const rows = await Promise.all(streams.map(async (s) => {
    let frags = [];
    try { frags = await listFragments(s.StreamName, now - 30_000, now + 60_000); } catch { /* no retention or deleting */ }
    const recent = frags.filter((f) => f.server >= now - 10_000);
    const ms = recent.reduce((a, f) => a + f.ms, 0);
    const bits = recent.reduce((a, f) => a + f.bytes * 8, 0);
    const last = frags.length ? Math.max(...frags.map((f) => f.server)) : undefined;
    return { s, last, rate: ms > 0 ? (bits * 1000) / ms : 0 };
  }));
  const tbody = document.querySelector('#streams tbody');
  tbody.replaceChildren(...rows.map(({ s, last, rate }) => {
    const tr = document.createElement('tr');
    tr.dataset.stream = s.StreamName;
    const cells = [s.StreamName, s.Status, `${s.DataRetentionInHours} h`, s.MediaType ?? '–', last ? fmtTime(last) : '–', rate ? fmtRate(rate) : '–'];
    for (const c of cells) tr.appendChild(Object.assign(document.createElement('td'), { textContent: c }));
    tr.onclick = () => { location.hash = `#/stream/${encodeURIComponent(s.StreamName)}`; };
    return tr;
  }));
  $('list-empty').hidden = streams.length > 0;
}

// ---- stream page ----
const state = { stream: undefined, hls: undefined, mode: 'live', fragments: [], range: [0, 0], seekTarget: undefined };
window.openkvsConsole = state; // for tests and the curious

function play(url, hlsConfig) {
  state.hls?.destroy();
  const video = $('video');
  const hls = new Hls({ enableWorker: true, backBufferLength: 30, ...hlsConfig });
  state.hls = hls;
  hls.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) $('error').textContent = `player: ${d.type} ${d.details}`; });
  hls.loadSource(url);
  hls.attachMedia(video);
  video.play().catch(() => {});
}

async function playLive() {
  state.mode = 'live';
  state.seekTarget = undefined;
  $('mode').textContent = 'live';
  $('go-live').hidden = true;
  $('cursor').style.display = 'none';
  try {
    const { HLSStreamingSessionURL: url } = await callJson('getHLSStreamingSessionURL', {
      StreamName: state.stream, PlaybackMode: 'LIVE', MaxMediaPlaylistFragmentResults: 3, DisplayFragmentTimestamp: 'ALWAYS', Expires: 43200,
    });
    // Low latency: stay about one fragment behind the live edge.
    play(url, { liveSyncDuration: 1, liveMaxLatencyDuration: 4, maxLiveSyncPlaybackRate: 1.5, maxBufferLength: 4 });
  } catch (e) { $('error').textContent = String(e.message ?? e); }
}

/** Plays stored video from time `t` (epoch ms): an ON_DEMAND session from the fragment holding t. */
async function playFrom(t) {
  const frags = state.fragments;
  const f = frags.find((x) => x.start <= t && t < x.start + x.ms) ?? frags.find((x) => x.start > t);
  if (!f) return;
  state.mode = 'history';
  state.seekTarget = Math.max(t, f.start);
  $('mode').textContent = `history from ${fmtTime(state.seekTarget)}`;
  $('go-live').hidden = false;
  $('clip-from').value = new Date(state.seekTarget).toISOString();
  $('clip-to').value = new Date(state.seekTarget + 30_000).toISOString();
  try {
    const { HLSStreamingSessionURL: url } = await callJson('getHLSStreamingSessionURL', {
      StreamName: state.stream, PlaybackMode: 'ON_DEMAND', DisplayFragmentTimestamp: 'ALWAYS', Expires: 43200,
      HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: (f.start - 1) / 1000, EndTimestamp: (f.start + HISTORY_WINDOW) / 1000 } },
    });
    // The playlist starts at fragment f: position 0 is f.start.
    play(url, { startPosition: (state.seekTarget - f.start) / 1000 });
  } catch (e) { $('error').textContent = String(e.message ?? e); }
}

async function refreshTimeline() {
  const now = Date.now();
  state.range = [now - HOUR, now];
  state.fragments = await listFragments(state.stream, now - HOUR, now + 60_000);
  // Merge touching fragments into runs (gap > 50 ms starts a new bar).
  const runs = [];
  for (const f of state.fragments) {
    const r = runs[runs.length - 1];
    if (r && f.start - r.end <= 50) r.end = Math.max(r.end, f.start + f.ms);
    else runs.push({ start: f.start, end: f.start + f.ms });
  }
  const x = (ms) => `${((ms - state.range[0]) / HOUR) * 100}%`;
  $('bars').replaceChildren(...runs.map((r) => {
    const d = document.createElement('div');
    d.className = 'bar';
    d.style.left = x(Math.max(r.start, state.range[0]));
    d.style.width = `${((r.end - Math.max(r.start, state.range[0])) / HOUR) * 100}%`;
    d.title = `${fmtTime(r.start)} – ${fmtTime(r.end)}`;
    return d;
  }));
  $('axis-start').textContent = fmtTime(state.range[0]);
  $('axis-end').textContent = fmtTime(state.range[1]);
  if (state.seekTarget !== undefined) { $('cursor').style.display = 'block'; $('cursor').style.left = x(state.seekTarget); }
}

$('timeline').addEventListener('click', (ev) => {
  const box = $('timeline').getBoundingClientRect();
  const t = state.range[0] + ((ev.clientX - box.left) / box.width) * HOUR;
  playFrom(t).then(refreshTimeline);
});
$('go-live').onclick = () => playLive();
$('clip-download').onclick = async () => {
  const from = Date.parse($('clip-from').value);
  const to = Date.parse($('clip-to').value);
  if (!(to > from)) { $('clip-status').textContent = 'choose a range (From < To)'; return; }
  $('clip-status').textContent = 'fetching…';
  try {
    const res = await call('getClip', {
      StreamName: state.stream,
      ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: from / 1000, EndTimestamp: to / 1000 } },
    });
    const blob = await res.blob();
    const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: `${state.stream}-${new Date(from).toISOString()}.mp4` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    $('clip-status').textContent = `${(blob.size / 1e6).toFixed(2)} MB`;
  } catch (e) { $('clip-status').textContent = String(e.message ?? e); }
};

// The player's wall-clock position (EXT-X-PROGRAM-DATE-TIME based).
setInterval(() => {
  const d = state.hls?.playingDate;
  $('playing-at').textContent = d ? fmtTime(d.getTime()) : '–';
}, 250);

// ---- routing and refresh ----
let timer;
function route() {
  clearInterval(timer);
  $('error').textContent = '';
  const m = /^#\/stream\/(.+)$/.exec(location.hash);
  $('list-view').hidden = !!m;
  $('stream-view').hidden = !m;
  if (m) {
    state.stream = decodeURIComponent(m[1]);
    $('crumb').textContent = `/ ${state.stream}`;
    const now = Date.now();
    $('clip-from').value = new Date(now - 30_000).toISOString();
    $('clip-to').value = new Date(now).toISOString();
    playLive();
    const tick = () => refreshTimeline().catch((e) => { $('error').textContent = String(e.message ?? e); });
    tick();
    timer = setInterval(tick, 5000);
  } else {
    state.hls?.destroy();
    state.hls = undefined;
    state.stream = undefined;
    $('crumb').textContent = '';
    const tick = () => refreshList().catch((e) => console.error(e));
    tick();
    timer = setInterval(tick, 3000);
  }
}
window.addEventListener('hashchange', route);
$('signout').hidden = !session;
route();
