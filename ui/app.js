// Manifold's dashboard (docs/dashboard.md): plain ES2020, no framework, no build step.
// Every number on a page comes from the public API (/v1beta) called with the user's own
// token, so IAM applies exactly as it does to any other client. The token lives in
// sessionStorage only (gone when the tab closes), never in localStorage or a URL.
// API data is hostile input (event payloads above all): it only ever reaches the page as
// textContent or attribute values, never as HTML.
'use strict';

const TOKEN_KEY = 'manifold.token';
const SVGNS = 'http://www.w3.org/2000/svg';
const app = document.getElementById('app');
let ws = null;        // the workspace shown: {name, display_name, slug}
let poll = null;      // the source debugger's refresh timer
let generation = 0;   // bumped on every navigation: late answers of a left page are dropped

// ---- DOM helpers --------------------------------------------------------------------------

// h('tag.class', {attr: v, onclick: fn}, child, …): strings become text nodes.
function h(spec, attrs, ...kids) {
  const [tag, ...cls] = spec.split('.');
  const el = document.createElement(tag);
  if (cls.length) el.className = cls.join(' ');
  setAttrs(el, attrs);
  for (const k of kids.flat()) if (k != null && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  for (const k of kids.flat()) if (k != null) el.append(k instanceof Node ? k : String(k));
  return el;
}
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}
const json = (v) => JSON.stringify(v, null, 2);
const last = (name) => String(name || '').split('/').pop();
const when = (t) => (t ? new Date(t).toLocaleString() : '—');
// Pages call show(gen, …) with the navigation they belong to: a slow answer for a page the user
// has already left must not replace the newer one.
function show(gen, ...kids) { if (gen === generation) app.replaceChildren(...kids); }
function section(title, ...kids) { return h('section.card', null, h('h2', null, title), ...kids); }
function table(head, rows) {
  return h('table', null, h('thead', null, h('tr', null, head.map((c) => h('th', null, c)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))));
}
function badge(on, yes = 'enabled', no = 'disabled') { return h('span.badge.' + (on ? 'on' : 'off'), null, on ? yes : no); }

// ---- the API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}
async function api(path, opts = {}) {
  const token = opts.token || sessionStorage.getItem(TOKEN_KEY);
  const r = await fetch(path, {
    method: opts.method || 'GET',
    headers: Object.assign({ Authorization: 'Bearer ' + token }, opts.body ? { 'Content-Type': 'application/json' } : {}),
    body: opts.body ? JSON.stringify(opts.body) : undefined,
    cache: 'no-store',
    credentials: 'omit',
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, body.error || r.statusText);
  return body;
}
// Every page of a list (the API pages with next_page_token).
async function all(path, key) {
  const out = [];
  let tok = '';
  do {
    const b = await api(path + (path.includes('?') ? '&' : '?') + 'page_size=200' + (tok ? '&page_token=' + encodeURIComponent(tok) : ''));
    out.push(...(b[key] || []));
    tok = b.next_page_token;
  } while (tok);
  return out;
}
const W = () => '/v1beta/' + ws.name;
const enc = encodeURIComponent;

// ---- sign-in --------------------------------------------------------------------------------

function signIn(message) {
  stopPoll();
  document.getElementById('nav').hidden = true;
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'Access token', required: true });
  const err = h('p.error', { id: 'signin-error', role: 'alert' }, message || '');
  const form = h('form.card.signin', { id: 'signin' },
    h('h1', null, 'Sign in'),
    h('p.muted', null, 'Paste an access token (manifold token create, or POST /v1beta/access-tokens). ' +
      'It is kept in this tab only and sent to this server only.'),
    input, h('button', { type: 'submit' }, 'Sign in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    try {
      await pickWorkspace(token);
      sessionStorage.setItem(TOKEN_KEY, token);
      route();
    } catch (x) {
      err.textContent = x.status === 401 ? 'That token was not accepted: it is invalid, expired or revoked.'
        : x.status === 403 ? 'That token may not read any workspace.' : 'Sign-in failed: ' + x.message;
    }
  });
  show(generation, form);
  input.focus();
}

async function pickWorkspace(token) {
  const b = await api('/v1beta/workspaces?page_size=200', { token });
  if (!b.workspaces || !b.workspaces.length) throw new ApiError(403, 'no workspace');
  const w = b.workspaces[0];
  ws = { name: w.name, display_name: w.display_name, slug: last(w.name) };
}

// ---- pages ----------------------------------------------------------------------------------

async function pageWorkspace() {
  const gen = generation;
  const sources = await all(W() + '/sources', 'sources');
  const dests = await Promise.all(sources.map((src) => all(W() + '/sources/' + enc(last(src.name)) + '/destinations', 'destinations')));
  const filters = await Promise.all(dests.flat().map((d) => all('/v1beta/' + d.name + '/filters', 'filters')));
  const fmap = new Map(dests.flat().map((d, i) => [d.name, filters[i]]));
  show(gen, h('h1', null, ws.display_name || ws.slug),
    section('Sources → destinations', flowGraph(sources, dests, fmap)),
    section('Destinations', dests.flat().length ? table(['Destination', 'Source', 'Mode', 'State', 'Filters'],
      dests.flat().map((d) => [h('a', { href: '#/' + d.name.split('/').slice(2).join('/') }, d.display_name || last(d.name)),
        last(d.parent), d.connection_mode || '', badge(d.enabled),
        filterList(fmap.get(d.name))])) : h('p.muted', null, 'No destinations yet.')));
}

function filterList(fs) {
  if (!fs || !fs.length) return h('span.muted', null, 'none');
  return h('ul.plain', null, fs.map((f) => h('li', null, badge(f.enabled, 'on', 'off'), ' ', f.title || last(f.name), ' ', h('code', null, f.if))));
}

// Sources in the left column, their destinations in the right, one curve per connection.
function flowGraph(sources, dests, fmap) {
  if (!sources.length) return h('p.muted', null, 'No sources yet.');
  const rowH = 56, nodeW = 230, nodeH = 40, gap = 200;
  const rows = Math.max(sources.length, dests.flat().length, 1);
  const width = nodeW * 2 + gap + 20, height = rows * rowH + 10;
  const g = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'flow', role: 'img', 'aria-label': 'Sources and their destinations', id: 'flow' });
  const srcY = new Map();
  const spread = (n, i) => 10 + (i + 0.5) * (height - 10) / n - nodeH / 2;
  sources.forEach((src, i) => srcY.set(src.name, spread(sources.length, i)));
  const allD = dests.flat();
  allD.forEach((d, i) => {
    const y = spread(allD.length, i), sy = srcY.get(d.parent);
    if (sy == null) return;
    const x1 = 10 + nodeW, y1 = sy + nodeH / 2, x2 = 10 + nodeW + gap, y2 = y + nodeH / 2;
    g.append(s('path', { class: 'edge' + (d.enabled ? '' : ' off'), d: `M${x1},${y1} C${x1 + gap / 2},${y1} ${x2 - gap / 2},${y2} ${x2},${y2}` }));
  });
  const node = (href, x, y, title, sub, cls, data) => s('a', { href, class: 'node ' + cls, 'data-name': data },
    s('rect', { x, y, width: nodeW, height: nodeH, rx: 6 }),
    s('text', { x: x + 10, y: y + 16, class: 'title' }, clip(title, 30)),
    s('text', { x: x + 10, y: y + 32, class: 'sub' }, clip(sub, 36)));
  sources.forEach((src) => g.append(node('#/sources/' + enc(last(src.name)), 10, srcY.get(src.name),
    src.display_name || last(src.name), last(src.catalog_name), 'source', src.name)));
  allD.forEach((d, i) => {
    const n = (fmap.get(d.name) || []).length;
    g.append(node('#/' + d.name.split('/').slice(2).join('/'), 10 + nodeW + gap, spread(allD.length, i),
      d.display_name || last(d.name), (d.enabled ? 'enabled' : 'disabled') + ' · ' + n + ' filter' + (n === 1 ? '' : 's'),
      'dest' + (d.enabled ? '' : ' off'), d.name));
  });
  return h('div.scroll', null, g);
}
const clip = (t, n) => (String(t).length > n ? String(t).slice(0, n - 1) + '…' : String(t));

// The plan a source is connected to (at most one): asked of every plan's connections at once.
async function planOfSource(srcName) {
  const plans = await all(W() + '/tracking-plans', 'tracking_plans');
  const conns = await Promise.all(plans.map((p) => all('/v1beta/' + p.name + '/source-connections', 'connections')));
  return plans.find((p, i) => conns[i].some((c) => c.source_name === srcName)) || null;
}

async function pageSource(slug) {
  const gen = generation;
  const base = W() + '/sources/' + enc(slug);
  // Everything the page needs is asked at once: one round trip of latency, not four.
  const fetchEvents = () => Promise.all([api(base + '/events:summary'), api(base + '/events?page_size=50')]);
  const first = fetchEvents();
  first.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
  const [src, sc, dests, plan] = await Promise.all([api(base), api(base + '/schema-config'),
    all(base + '/destinations', 'destinations'), planOfSource(ws.name + '/sources/' + slug)]);
  const key = (src.write_keys || [])[0] || '';
  const copied = h('span.muted', { id: 'copied' });
  const copy = h('button', { type: 'button', id: 'copy-key', onclick: async () => {
    try { await navigator.clipboard.writeText(key); copied.textContent = 'copied'; } catch (e) {
      window.getSelection().selectAllChildren(keyEl); copied.textContent = 'selected: press Ctrl+C';
    }
  } }, 'Copy');
  const keyEl = h('code.key', { id: 'write-key' }, key);
  const scRows = Object.entries(sc).filter(([k]) => k !== 'name' && k !== 'parent').map(([k, v]) => [k, String(v === '' ? '—' : v)]);
  const summary = h('div', { id: 'events-summary' }), events = h('div', { id: 'events' });
  show(gen, h('h1', null, src.display_name || slug, ' ', h('span.muted', null, last(src.catalog_name))),
    h('div.row', null,
      section('Write key', h('p', null, keyEl), h('p', null, copy, ' ', copied)),
      section('Tracking plan', plan ? h('p', { id: 'source-plan' }, h('a', { href: '#/tracking-plans/' + enc(last(plan.name)) }, plan.display_name))
        : h('p.muted', { id: 'source-plan' }, 'No tracking plan connected.')),
      section('Destinations', dests.length ? h('ul.plain', null, dests.map((d) => h('li', null,
        h('a', { href: '#/' + d.name.split('/').slice(2).join('/') }, d.display_name || last(d.name)), ' ', badge(d.enabled))))
        : h('p.muted', null, 'None.'))),
    section('Debugger', h('p.muted', null, 'The last events the Tracking API stored for this source; refreshes every 2 s.'), summary, events),
    section('Schema configuration', table(['Setting', 'Value'], scRows)));
  let seen = null; // the events shown: redrawn only when they change, so an opened payload stays open
  const refresh = async (pending) => {
    const [sum, ev] = await (pending || fetchEvents());
    if (gen !== generation) return;
    const sig = JSON.stringify([sum, ev.events.map((e) => [e.message_id, e.received_at, e.status])]);
    if (sig === seen) return;
    seen = sig;
    summary.replaceChildren(h('p.counts', null, ['received', 'accepted', 'blocked', 'duplicate', 'rejected'].map((k) =>
      h('span', { 'data-count': k }, h('b', null, String(sum[k] ?? 0)), ' ' + k))));
    events.replaceChildren(ev.events.length ? table(['Received', 'Type', 'Event', 'Status', 'Violations', 'Payload'],
      ev.events.map((e) => [when(e.received_at), e.type, e.event?.event || e.event?.userId || '', h('span.status.' + e.status.toLowerCase(), null, e.status),
        e.violations.length ? h('ul.plain.violations', null, e.violations.map((v) => h('li', null, (v.field ? v.field + ': ' : '') + (v.description || v.type)))) : '—',
        h('details', null, h('summary', null, 'JSON'), h('pre', null, json(e.event)))]))
      : h('p.muted', null, 'No events yet: send one with the write key.'));
  };
  await refresh(first);
  if (gen === generation) poll = setInterval(() => refresh().catch(() => {}), 2000);
}

const WINDOWS = { hour: ['MINUTE', 3600e3], day: ['HOUR', 86400e3], week: ['HOUR', 7 * 86400e3] };

async function pageDestination(src, dest) {
  const gen = generation;
  const base = W() + '/sources/' + enc(src) + '/destinations/' + enc(dest);
  const metrics = fetchMetrics(base, 'hour');
  metrics.catch(() => {}); // drawMetrics reads it
  const [d, fs] = await Promise.all([api(base), all(base + '/filters', 'filters')]);
  const charts = h('div', { id: 'charts' });
  const tabs = h('p.tabs', null, Object.keys(WINDOWS).map((w) => h('button', { type: 'button', 'data-window': w, onclick: () => drawMetrics(base, w, charts, tabs) }, 'Last ' + w)));
  show(gen, h('h1', null, d.display_name || dest, ' ', badge(d.enabled), ' ', h('span.muted', null, 'from ', h('a', { href: '#/sources/' + enc(src) }, src))),
    section('Settings', h('p.muted', null, 'Connection mode: ' + (d.connection_mode || '—') + '. Values as the API returns them: secret settings arrive masked.'),
      table(['Setting', 'Value'], (d.config || []).map((c) => [c.display_name || last(c.name), h('code', null, typeof c.value === 'string' ? c.value : JSON.stringify(c.value))]))),
    section('Filters', fs.length ? table(['Filter', 'State', 'If (FQL)', 'Actions'], fs.map((f) => [f.title || last(f.name), badge(f.enabled),
      h('code.fql', null, f.if), h('code', null, JSON.stringify(f.actions))])) : h('p.muted', null, 'No filters.')),
    section('Event Delivery Metrics', tabs, charts));
  await drawMetrics(base, 'hour', charts, tabs, metrics);
}

// Every series and the summary of a window ending now (the last bucket is the current one).
function fetchMetrics(base, win) {
  const [gran, span] = WINDOWS[win];
  const unit = gran === 'MINUTE' ? 60e3 : 3600e3;
  const start = new Date(Math.floor((Date.now() - span) / unit + 1) * unit).toISOString().replace('.000', '');
  const q = '?granularity=' + gran + '&start_time=' + enc(start);
  return Promise.all([api(base + '/metrics' + q), api(base + '/metrics:getSummary' + q)]);
}

async function drawMetrics(base, win, box, tabs, pending) {
  const gen = generation;
  for (const b of tabs.children) b.classList.toggle('active', b.dataset.window === win);
  let series, sum;
  try {
    [series, sum] = await (pending || fetchMetrics(base, win));
  } catch (x) {
    if (gen === generation) box.replaceChildren(h('p.muted', null, 'No delivery metrics: ' + x.message));
    return;
  }
  if (gen !== generation) return;
  const by = new Map(series.metrics.map((m) => [last(m.name), m]));
  const tot = new Map(sum.metrics.map((m) => [m.metric_name, m]));
  const totals = h('p.counts', { id: 'metric-totals' }, ['successes', 'retried', 'discarded'].map((k) =>
    h('span', { 'data-total': k }, h('b', null, String(tot.get(k)?.total ?? 0)), ' ' + k)), h('span', null, 'pending retry: ' + (sum.pending_retry ?? 0)));
  const codes = (k) => (tot.get(k)?.breakdown || []);
  box.replaceChildren(totals,
    h('div.grid', null,
      chart('successes', 'Successes', by.get('successes'), 'bars good'),
      chart('retried', 'Retries', by.get('retried'), 'bars warn'),
      chart('discarded', 'Discards', by.get('discarded'), 'bars bad'),
      chart('time_to_success_p95', 'Time to success (p50 / p95, ms)', by.get('time_to_success_p95'), 'line', by.get('time_to_success_p50'))),
    h('div.grid', null, breakdown('Retries by code', codes('retried'), 'retried-codes', 'warn'), breakdown('Discards by code', codes('discarded'), 'discarded-codes', 'bad')));
}

// One series as an SVG chart: bars (counts) or a line with points (durations). Every bar and
// point carries its datapoint in data-time / data-value.
function chart(id, title, m, kind, m2) {
  const pts = m ? m.datapoints : [];
  const w = 420, ht = 140, pad = 28;
  const max = Math.max(1, ...pts.map((p) => p.value), ...(m2 ? m2.datapoints.map((p) => p.value) : []));
  const x = (i) => pad + (i * (w - pad - 6)) / Math.max(1, pts.length);
  const y = (v) => ht - 18 - (v / max) * (ht - 30);
  const bw = Math.max(1, (w - pad - 6) / Math.max(1, pts.length) - 1);
  const g = s('svg', { viewBox: `0 0 ${w} ${ht}`, class: 'chart ' + kind, id: 'chart-' + id, role: 'img', 'aria-label': title },
    s('line', { x1: pad, y1: ht - 18, x2: w - 4, y2: ht - 18, class: 'axis' }),
    s('text', { x: pad - 4, y: 14, class: 'tick', 'text-anchor': 'end' }, fmt(max)),
    s('text', { x: pad - 4, y: ht - 18, class: 'tick', 'text-anchor': 'end' }, '0'));
  if (pts.length) {
    g.append(s('text', { x: pad, y: ht - 4, class: 'tick' }, new Date(pts[0].time).toLocaleString()),
      s('text', { x: w - 4, y: ht - 4, class: 'tick', 'text-anchor': 'end' }, new Date(pts[pts.length - 1].time).toLocaleString()));
  }
  const tip = (p) => s('title', null, new Date(p.time).toLocaleString() + ': ' + p.value);
  if (kind.startsWith('bars')) {
    pts.forEach((p, i) => g.append(s('rect', { class: 'bar', x: x(i), y: y(p.value), width: bw, height: ht - 18 - y(p.value), 'data-time': p.time, 'data-value': p.value }, tip(p))));
  } else {
    for (const [mm, cls] of [[m2, 'p50'], [m, 'p95']]) {
      if (!mm) continue;
      const dp = mm.datapoints;
      // 0 is "nothing delivered in this bucket", not a duration: the line joins the buckets with data.
      g.append(s('polyline', { class: 'series ' + cls, points: dp.map((p, i) => (p.value ? `${x(i) + bw / 2},${y(p.value)}` : '')).filter(Boolean).join(' ') }));
      dp.forEach((p, i) => p.value && g.append(s('circle', { class: 'point ' + cls, cx: x(i) + bw / 2, cy: y(p.value), r: 2.5, 'data-series': last(mm.name), 'data-time': p.time, 'data-value': p.value }, tip(p))));
    }
  }
  return h('figure.chart', null, h('figcaption', null, title), g);
}
const fmt = (v) => (v >= 1e6 ? (v / 1e6).toFixed(1) + 'M' : v >= 1e3 ? (v / 1e3).toFixed(1) + 'k' : String(v));

function breakdown(title, rows, id, tone) {
  if (!rows.length) return h('figure.chart', { id }, h('figcaption', null, title), h('p.muted', null, 'none'));
  const w = 420, rh = 22, max = Math.max(...rows.map((r) => r.total ?? 0), 1);
  const g = s('svg', { viewBox: `0 0 ${w} ${rows.length * rh + 4}`, class: 'chart bars ' + tone });
  rows.forEach((r, i) => {
    const v = r.total ?? 0, label = String(r.metric_name || '').replace(/^(retried|discarded)_/, '');
    g.append(s('text', { x: 4, y: i * rh + 15, class: 'tick' }, label),
      s('rect', { class: 'bar', x: 110, y: i * rh + 4, width: Math.max(1, (v / max) * (w - 170)), height: rh - 8, 'data-code': label, 'data-value': v }),
      s('text', { x: 116 + (v / max) * (w - 170), y: i * rh + 15, class: 'tick' }, String(v)));
  });
  return h('figure.chart', { id }, h('figcaption', null, title), g);
}

async function pagePlans() {
  const gen = generation;
  const plans = await all(W() + '/tracking-plans', 'tracking_plans');
  show(gen, h('h1', null, 'Tracking plans'), section('Plans', plans.length ? table(['Plan', 'Events', 'Updated'], plans.map((p) => [
    h('a', { href: '#/tracking-plans/' + enc(last(p.name)) }, p.display_name || last(p.name)),
    String(((p.rules || {}).events || []).length), when(p.update_time)])) : h('p.muted', null, 'No tracking plans yet.')));
}

async function pagePlan(id) {
  const gen = generation;
  const base = W() + '/tracking-plans/' + enc(id);
  const [p, conns] = await Promise.all([api(base), all(base + '/source-connections', 'connections')]);
  const rules = p.rules || {};
  const kinds = ['events', 'identify', 'group', 'global'];
  const input = h('textarea', { id: 'validate-input', rows: 8, spellcheck: 'false' },
    json({ type: 'track', event: ((rules.events || [])[0] || {}).name || 'Order Completed', properties: {} }));
  const out = h('div', { id: 'validate-result' });
  const check = async () => {
    let ev;
    try { ev = JSON.parse(input.value); } catch (e) { out.replaceChildren(h('p.error', null, 'Not JSON: ' + e.message)); return; }
    try {
      const r = await api(base + ':validate', { method: 'POST', body: { events: Array.isArray(ev) ? ev : [ev] } });
      out.replaceChildren(...r.results.map((res) => h('div.result', null,
        h('p', null, h('b', null, res.event || res.type || '#' + res.index), ' ', res.planned ? '' : h('span.badge.off', null, 'unplanned'), ' ',
          badge(res.valid, 'valid', 'invalid')),
        res.violations && res.violations.length ? h('ul.plain.violations', null, res.violations.map((v) => h('li', null, v.type + ' at ' + (v.path || '/') + ': ' + v.message))) : null)));
    } catch (x) { out.replaceChildren(h('p.error', null, x.message)); }
  };
  show(gen, h('h1', null, p.display_name || id),
    section('Connected sources', conns.length ? h('ul.plain', { id: 'plan-sources' }, conns.map((c) => h('li', null,
      h('a', { href: '#/sources/' + enc(last(c.source_name)) }, last(c.source_name))))) : h('p.muted', null, 'No sources connected.')),
    section('Rules', ...kinds.filter((k) => rules[k]).map((k) => k === 'events'
      ? table(['Event', 'Version', 'Rules'], rules.events.map((e) => [e.name, String(e.version ?? ''), h('details', null, h('summary', null, 'JSON Schema'), h('pre', null, json(e.rules || {})))]))
      : h('details', null, h('summary', null, k), h('pre', null, json(rules[k])))),
    !kinds.some((k) => rules[k]) ? h('p.muted', null, 'No rules.') : null),
    section('Validate an event', h('p.muted', null, 'Paste an event (or an array of events) and check it against this plan.'),
      input, h('p', null, h('button', { type: 'button', id: 'validate', onclick: check }, 'Validate')), out));
}

// ---- routing ----------------------------------------------------------------------------------

function stopPoll() { if (poll) clearInterval(poll); poll = null; }

async function route() {
  stopPoll();
  const gen = ++generation;
  if (!sessionStorage.getItem(TOKEN_KEY)) return signIn();
  try {
    if (!ws) await pickWorkspace();
    document.getElementById('nav').hidden = false;
    document.getElementById('ws-name').textContent = ws.display_name || ws.slug;
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
    if (parts[0] === 'sources' && parts.length === 2) await pageSource(parts[1]);
    else if (parts[0] === 'sources' && parts[2] === 'destinations' && parts.length === 4) await pageDestination(parts[1], parts[3]);
    else if (parts[0] === 'tracking-plans' && parts.length === 1) await pagePlans();
    else if (parts[0] === 'tracking-plans' && parts.length === 2) await pagePlan(parts[1]);
    else await pageWorkspace();
    if (gen !== generation) return;
    document.body.dataset.page = parts[0] || 'workspace';
    // Milliseconds from the navigation's start to this page drawn with its data (the test reads it).
    document.body.dataset.renderedMs = Math.round(performance.now());
  } catch (x) {
    if (gen !== generation) return;
    if (x.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      ws = null;
      return signIn('Your token is no longer accepted; sign in again.');
    }
    show(gen, h('section.card', null, h('h1', null, 'Cannot show this page'), h('p.error', null, x.message)));
  }
}

document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  ws = null;
  location.hash = '#/';
  signIn();
});
window.addEventListener('hashchange', route);
route();
