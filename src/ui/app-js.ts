/**
 * `/ui/app.js`: the dashboard's browser code, plain ES module JavaScript
 * (no framework, no build step). It asks for the API token once (kept in
 * sessionStorage), polls /v1/pools, /v1/vms and /v1/alerts, follows
 * /v1/events with fetch + a ReadableStream (EventSource cannot send an
 * Authorization header) and keeps the page's state, which `/ui/view.js`
 * draws. Every list it keeps is bounded.
 */
export const UI_APP_JS = String.raw`import { SseParser, backoffMs, decodeEvent, formatMs, pushBounded } from './lib.js';
import { $, initView, render, renderStatus, vmOrder } from './view.js';

const TOKEN_KEY = 'tfc.token';
const POLL_MS = 3000;
/** Without a byte (events or heartbeat) for this long, the stream is taken as dead and reopened. */
const STALL_MS = 45000;
/** How often to look again for an events route this daemon does not have. */
const UNAVAILABLE_RETRY_MS = 30000;
const MAX_LATENCIES = 200;
const MAX_VMS_SHOWN = 500;
const MAX_LOG = 100;
const MAX_ALERTS = 200;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  /** Bumped at every sign-in and sign-out: loops of an older session stop. */
  session: 0,
  pools: new Map(),
  vms: new Map(),
  vmCount: 0,
  alerts: new Map(),
  alertsStatus: 'loading',
  latency: { allocation: [], restore: [] },
  log: [],
  events: 'connecting',
  lastEventId: '',
  selected: null,
  detail: null,
  pollError: '',
};

class Unauthorized extends Error {}
class NotAvailable extends Error {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));


/** GET a /v1 route with the token. Throws Unauthorized (401), NotAvailable (404) or Error. */
async function api(path) {
  const res = await fetch(path, { headers: { authorization: 'Bearer ' + state.token, accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 401) throw new Unauthorized('the daemon refused the token');
  if (res.status === 404) throw new NotAvailable(path + ' is not available');
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new Error((body && body.error && body.error.message) || 'HTTP ' + res.status + ' from ' + path);
  }
  return res.json();
}

// --- session -------------------------------------------------------------

function showLogin(message) {
  $('dashboard').hidden = true;
  $('sign-out').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

function signOut(message) {
  state.session++;
  state.token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin(message);
}

function signIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  state.session++;
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('sign-out').hidden = false;
  const session = state.session;
  void pollLoop(session);
  void eventLoop(session);
}

/** After a failed request: a refused token ends the session and asks for it again. */
function guard(session, err) {
  if (err instanceof Unauthorized && session === state.session) signOut('The daemon refused the token; enter it again.');
}

// --- polling -------------------------------------------------------------

async function refresh(session) {
  const [pools, vms, alerts, health] = await Promise.all([
    api('/v1/pools'),
    api('/v1/vms'),
    api('/v1/alerts').catch((err) => (err instanceof NotAvailable ? null : Promise.reject(err))),
    $('version').textContent ? null : api('/v1/health').catch(() => null),
  ]);
  if (session !== state.session) return;
  state.pools = new Map(pools.pools.map((p) => [p.name, p]));
  state.vmCount = vms.vms.length;
  state.vms = new Map(vms.vms.slice().sort(vmOrder).slice(0, MAX_VMS_SHOWN).map((v) => [v.id, v]));
  if (alerts === null) state.alertsStatus = 'unavailable';
  else {
    state.alertsStatus = 'ok';
    state.alerts = new Map(alerts.alerts.filter((a) => a.state !== 'resolved').map((a) => [a.id, a]));
  }
  if (health) $('version').textContent = 'v' + health.version;
  // The selected VM's details follow it too (state, lease end, error).
  const selected = state.selected;
  if (selected) {
    const vm = await api('/v1/vms/' + encodeURIComponent(selected)).catch((err) => (err instanceof NotAvailable ? null : Promise.reject(err)));
    if (vm && session === state.session && state.selected === selected) state.detail = vm;
  }
  state.pollError = '';
  render();
}

async function pollLoop(session) {
  while (session === state.session) {
    try {
      await refresh(session);
    } catch (err) {
      if (err instanceof Unauthorized) return guard(session, err);
      state.pollError = 'cannot reach the daemon: ' + err.message;
      render();
    }
    await sleep(POLL_MS);
  }
}

let soon = null;
/** One refresh shortly after a burst of events (an allocation brings a VM's owner and lease). */
function refreshSoon(session) {
  if (soon) return;
  soon = setTimeout(() => {
    soon = null;
    refresh(session).catch((err) => guard(session, err));
  }, 250);
}

// --- events --------------------------------------------------------------

function setEvents(status) {
  state.events = status;
  renderStatus();
}

async function eventLoop(session) {
  let failures = 0;
  while (session === state.session) {
    const parser = new SseParser();
    const abort = new AbortController();
    let stall = null;
    const watch = () => {
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(), STALL_MS);
    };
    try {
      // The first connection resumes after id 0: the daemon replays what its event buffer still holds,
      // so the latency panels start with recent history rather than empty.
      const headers = { authorization: 'Bearer ' + state.token, accept: 'text/event-stream', 'last-event-id': state.lastEventId || '0' };
      watch();
      const res = await fetch('/v1/events', { headers, cache: 'no-store', signal: abort.signal });
      if (res.status === 401) throw new Unauthorized('the daemon refused the token');
      if (res.status === 404) {
        clearTimeout(stall);
        setEvents('unavailable');
        await sleep(UNAVAILABLE_RETRY_MS);
        continue;
      }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setEvents('live');
      failures = 0;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || session !== state.session) break;
        watch();
        for (const event of parser.push(value)) onEvent(session, event);
        if (parser.lastEventId) state.lastEventId = parser.lastEventId;
      }
      await reader.cancel().catch(() => {});
    } catch (err) {
      if (err instanceof Unauthorized) return guard(session, err);
    } finally {
      clearTimeout(stall);
      abort.abort();
    }
    if (session !== state.session) return;
    setEvents('reconnecting');
    await sleep(backoffMs(failures++, parser.retryMs ?? 1000));
  }
}

/** Control events (not in the daemon's envelope): where a stream starts, and what it could not replay. */
function onControlEvent(session, raw) {
  let data = {};
  try {
    data = JSON.parse(raw.data) || {};
  } catch {
    // A control event without readable data still means the same.
  }
  if (raw.type === 'gap') logLine('gap', 'older events no longer held by the daemon: ' + data.missed + ' missed; reloading', '');
  if (raw.type === 'reset') logLine('reset', 'the daemon restarted (event ids begin again); reloading', '');
  if (raw.type !== 'hello') refreshSoon(session);
}

function onEvent(session, raw) {
  if (raw.type === 'hello' || raw.type === 'gap' || raw.type === 'reset') return onControlEvent(session, raw);
  const event = decodeEvent(raw);
  if (!event) return;
  const d = event.data;
  const logEvent = (type, text) => logLine(type, text, event.time);
  switch (event.type) {
    case 'pool': {
      const pool = state.pools.get(d.pool);
      if (pool) Object.assign(pool, { ready: d.ready, booting: d.booting, allocated: d.allocated, target: d.target });
      else refreshSoon(session);
      break;
    }
    case 'vm.state': {
      const vm = state.vms.get(d.vm_id);
      if (vm) vm.state = d.to;
      else refreshSoon(session);
      logEvent(event.type, d.vm_id + ' ' + d.from + ' -> ' + d.to + (d.reason ? ' (' + d.reason + ')' : ''));
      break;
    }
    case 'vm.ready':
      if (d.kind === 'restore') pushBounded(state.latency.restore, { ms: d.ms, label: d.vm_id }, MAX_LATENCIES);
      logEvent(event.type, d.vm_id + ' ' + d.kind + ' ' + formatMs(d.ms));
      break;
    case 'vm.failed':
      logEvent(event.type, d.driver + ' ' + d.code);
      break;
    case 'allocation': {
      pushBounded(state.latency.allocation, { ms: d.ms, label: d.vm_id }, MAX_LATENCIES);
      const vm = state.vms.get(d.vm_id);
      if (vm) vm.allocated = true;
      logEvent(event.type, d.pool + ': ' + d.vm_id + ' in ' + formatMs(d.ms));
      refreshSoon(session);
      break;
    }
    case 'allocation.failed':
      logEvent(event.type, d.pool + ': ' + d.code + ' after ' + formatMs(d.ms));
      break;
    case 'release': {
      const vm = state.vms.get(d.vm_id);
      if (vm) vm.allocated = false;
      logEvent(event.type, d.pool + ': ' + d.vm_id + ' (' + d.reason + ')');
      refreshSoon(session);
      break;
    }
    case 'alert':
      if (d.state === 'resolved') state.alerts.delete(d.id);
      else state.alerts.set(d.id, d);
      // Without GET /v1/alerts nothing else trims this map: the oldest go first.
      while (state.alerts.size > MAX_ALERTS) state.alerts.delete(state.alerts.keys().next().value);
      logEvent(event.type, d.rule + ' ' + d.state + ': ' + d.summary);
      break;
    default:
      return;
  }
  render();
}

/** One line of the recent-events list; time is the event's ISO time ('' for now). */
function logLine(type, text, time) {
  const at = time ? new Date(time) : new Date();
  pushBounded(state.log, { time: at.toLocaleTimeString([], { hour12: false }), type, text }, MAX_LOG);
}

async function select(id) {
  state.selected = id;
  state.detail = null;
  render();
  const session = state.session;
  try {
    const vm = await api('/v1/vms/' + encodeURIComponent(id));
    if (session === state.session && state.selected === id) state.detail = vm;
  } catch (err) {
    guard(session, err);
    if (state.selected === id) state.detail = { id, error: { code: 'ERROR', message: err.message } };
  }
  render();
}

// --- start ---------------------------------------------------------------

initView(state, {
  select,
  closeDetail() {
    state.selected = null;
    state.detail = null;
    render();
  },
});

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  if (token) signIn(token);
});
$('sign-out').addEventListener('click', () => signOut(''));
if (state.token) signIn(state.token);
else showLogin('');
`;
