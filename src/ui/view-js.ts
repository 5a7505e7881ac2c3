/**
 * `/ui/view.js`: the dashboard's rendering. Draws the page's state (pools,
 * latency, alerts, VMs, the selected VM, recent events) with DOM calls only:
 * every string from the daemon (VM ids, owners, reasons and alert summaries
 * come from clients and guests) goes in as text or an attribute value, never
 * as HTML. Reads the state; changes nothing but the document.
 */
export const UI_VIEW_JS = String.raw`import { formatMs, latencyStats, sparklinePoints } from './lib.js';

const SVG = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes, never markup. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  for (const child of children.flat()) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

let state = null;
let actions = null;
let frame = 0;

/**
 * Binds the view to the page's state (read only here) and to the actions
 * it may start: select(vmId) and closeDetail(). Call once, before render().
 */
export function initView(pageState, pageActions) {
  state = pageState;
  actions = pageActions;
}

/** Redraws everything from the state, at most once per animation frame. */
export function render() {
  if (!frame) frame = requestAnimationFrame(draw);
}

function draw() {
  frame = 0;
  renderStatus();
  renderPools();
  renderLatency();
  renderAlerts();
  renderVms();
  renderLog();
}

/** The header's connection badge and poll error, at once (no frame wait). */
export function renderStatus() {
  const labels = { connecting: 'events: connecting', live: 'events: live', reconnecting: 'events: reconnecting', unavailable: 'events not available' };
  const badge = $('events-status');
  badge.textContent = labels[state.events] || state.events;
  badge.dataset.state = state.events;
  $('poll-error').textContent = state.pollError;
}

function renderPools() {
  const rows = [...state.pools.values()].map((p) =>
    h('tr', { 'data-pool': p.name },
      h('td', { class: 'name' }, p.name),
      h('td', null, p.profile || ''),
      h('td', { class: 'num ready' }, p.ready),
      h('td', { class: 'num booting' }, p.booting),
      h('td', { class: 'num allocated' }, p.allocated),
      h('td', { class: 'num target' }, p.target),
      h('td', { class: 'bar' }, poolBar(p)),
      h('td', { class: 'note' }, p.last_error ? String(p.last_error.message || p.last_error) : p.prewarm_state || ''),
    ));
  $('pools-body').replaceChildren(...rows);
  $('pools-empty').hidden = rows.length > 0;
}

/** ready / booting / allocated as one stacked bar, scaled to the larger of target and total. */
function poolBar(p) {
  const total = Math.max(p.target || 0, (p.ready || 0) + (p.booting || 0) + (p.allocated || 0), 1);
  const box = svg('svg', { width: 120, height: 10, viewBox: '0 0 120 10', role: 'img', 'aria-label': p.ready + ' ready, ' + p.booting + ' booting, ' + p.allocated + ' allocated' });
  let x = 0;
  for (const [key, n] of [['ready', p.ready], ['booting', p.booting], ['allocated', p.allocated]]) {
    const w = ((n || 0) / total) * 120;
    if (w > 0) box.append(svg('rect', { x, y: 0, width: w, height: 10, class: 'seg-' + key }));
    x += w;
  }
  return box;
}

function renderLatency() {
  const noEvents = state.events === 'unavailable';
  $('latency').replaceChildren(
    latencyCard('allocation', 'Allocation', 'POST /v1/pools/NAME/allocate, in the daemon', noEvents),
    latencyCard('restore', 'Restore', 'clone restore to agent ready', noEvents),
  );
}

function latencyCard(key, title, hint, noEvents) {
  const items = state.latency[key];
  const stats = latencyStats(items.map((i) => i.ms));
  const line = svg('svg', { class: 'spark', width: 260, height: 48, viewBox: '0 0 260 48', role: 'img', 'aria-label': title + ' latency, last ' + stats.count });
  line.append(svg('polyline', { points: sparklinePoints(items.map((i) => i.ms), 260, 48), fill: 'none' }));
  const recent = items.slice(-5).reverse().map((i) => h('li', null, h('span', { class: 'ms' }, formatMs(i.ms)), ' ', h('span', { class: 'id' }, i.label)));
  return h('div', { class: 'card', 'data-series': key },
    h('h3', null, title, ' ', h('small', null, hint)),
    h('dl', null,
      h('dt', null, 'last'), h('dd', { class: 'last' }, formatMs(stats.last)),
      h('dt', null, 'p50'), h('dd', { class: 'p50' }, formatMs(stats.p50)),
      h('dt', null, 'p99'), h('dd', { class: 'p99' }, formatMs(stats.p99)),
      h('dt', null, 'n'), h('dd', { class: 'count' }, stats.count)),
    line,
    stats.count ? h('ol', { class: 'recent' }, recent) : h('p', { class: 'empty' }, noEvents ? 'events not available' : 'none yet'),
  );
}

function renderAlerts() {
  const list = $('alerts');
  if (state.alertsStatus === 'unavailable') return list.replaceChildren(h('li', { class: 'empty' }, 'alerts not available'));
  const alerts = [...state.alerts.values()].sort((a, b) => (a.state === b.state ? sinceOf(a).localeCompare(sinceOf(b)) : a.state === 'firing' ? -1 : 1));
  if (alerts.length === 0) return list.replaceChildren(h('li', { class: 'empty' }, state.alertsStatus === 'ok' ? 'no alerts firing' : 'loading'));
  list.replaceChildren(...alerts.map((a) =>
    h('li', { class: 'alert ' + a.state, 'data-alert': a.id },
      h('strong', null, a.rule), ' ', h('span', { class: 'state' }, a.state), ' ',
      h('span', { class: 'labels' }, Object.entries(a.labels || {}).map(([k, v]) => k + '=' + v).join(' ')), ' ',
      h('span', null, a.summary), ' ',
      h('small', null, 'value ' + rounded(a.value) + ', threshold ' + rounded(a.threshold) + ', since ' + localTime(sinceOf(a))),
    )));
}

/** When an alert began: 'since' in events, fired_at or started_at in GET /v1/alerts. */
const sinceOf = (a) => String(a.since || a.fired_at || a.started_at || '');
const rounded = (n) => (typeof n === 'number' && Number.isFinite(n) ? String(Number(n.toPrecision(3))) : '-');
const localTime = (iso) => (iso && !Number.isNaN(Date.parse(iso)) ? new Date(iso).toLocaleString([], { hour12: false }) : '-');

/** Allocated VMs first, then by id. */
export const vmOrder = (a, b) => Number(b.allocated) - Number(a.allocated) || String(a.id).localeCompare(String(b.id));

// What the VM table and the detail panel show now: they are rebuilt only when it changes, so a
// click is not lost to a row replaced between press and release on a busy daemon.
let vmsShown = '';
let detailShown = '';

function renderVms() {
  const vms = [...state.vms.values()].sort(vmOrder);
  const phasesMs = (vm) => (vm.phases || []).reduce((sum, p) => sum + p.ms, 0);
  const key = JSON.stringify([state.selected, state.vmCount, vms.map((v) => [v.id, v.state, v.allocated, v.pool, v.profile, v.owner, v.created_by, phasesMs(v)])]);
  if (key !== vmsShown) {
    vmsShown = key;
    renderVmRows(vms, phasesMs);
  }
  renderDetail();
}

function renderVmRows(vms, phasesMs) {
  $('vm-count').textContent = state.vmCount > vms.length ? '(' + vms.length + ' of ' + state.vmCount + ' shown)' : '(' + vms.length + ')';
  $('vms-body').replaceChildren(...vms.map((vm) => {
    const total = phasesMs(vm);
    const row = h('tr', { 'data-vm-id': vm.id, class: vm.id === state.selected ? 'selected' : null, tabindex: 0 },
      h('td', { class: 'id' }, vm.id),
      h('td', { class: 'state', 'data-state': vm.state }, vm.state),
      h('td', { class: 'allocated' }, vm.allocated ? 'allocated' : vm.pool ? 'ready' : '-'),
      h('td', null, vm.pool || '-'),
      h('td', null, vm.profile),
      h('td', { class: 'owner' }, vm.owner || ''),
      h('td', { class: 'num' }, vm.created_by + ' ' + formatMs(total)),
    );
    row.addEventListener('click', () => actions.select(vm.id));
    row.addEventListener('keydown', (e) => e.key === 'Enter' && actions.select(vm.id));
    return row;
  }));
  $('vms-empty').hidden = vms.length > 0;
}


function renderDetail() {
  const box = $('vm-detail');
  const vm = state.detail;
  const key = JSON.stringify([state.selected, vm]);
  if (key === detailShown) return;
  detailShown = key;
  box.hidden = !state.selected;
  if (!state.selected) return;
  if (!vm) return box.replaceChildren(h('p', null, 'loading ' + state.selected));
  const phases = vm.phases || [];
  const total = phases.reduce((sum, p) => sum + p.ms, 0) || 1;
  const chart = svg('svg', { class: 'phases', width: 420, height: phases.length * 16, viewBox: '0 0 420 ' + phases.length * 16 });
  let start = 0;
  phases.forEach((p, i) => {
    const label = svg('text', { x: 0, y: i * 16 + 11 });
    label.textContent = p.name;
    chart.append(label, svg('rect', { x: 120 + (start / total) * 220, y: i * 16 + 3, width: Math.max(1, (p.ms / total) * 220), height: 10 }));
    const ms = svg('text', { x: 345, y: i * 16 + 11 });
    ms.textContent = formatMs(p.ms);
    chart.append(ms);
    start += p.ms;
  });
  const fields = [['state', vm.state], ['pool', vm.pool], ['profile', vm.profile], ['driver', vm.driver && vm.driver + ' (' + vm.accel + ')'], ['created by', vm.created_by],
    ['owner', vm.owner], ['lease ends', vm.expires_at], ['address', vm.network && vm.network.host_address], ['reason', vm.state_reason],
    ['error', vm.error && vm.error.code + ': ' + vm.error.message]].filter(([, v]) => v !== undefined && v !== null && v !== '');
  box.replaceChildren(
    h('h3', null, vm.id, ' ', h('button', { type: 'button', class: 'close', 'aria-label': 'close' }, 'x')),
    h('dl', null, fields.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
    phases.length ? chart : h('p', { class: 'empty' }, 'no phases recorded'),
  );
  box.querySelector('button.close').addEventListener('click', () => actions.closeDetail());
}

function renderLog() {
  $('event-log').replaceChildren(...state.log.slice().reverse().map((e) =>
    h('li', null, h('time', null, e.time), ' ', h('span', { class: 'type' }, e.type), ' ', e.text)));
}
`;
