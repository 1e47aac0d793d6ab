// Manifold Functions worker (functions-runtime.md §11). The C runtime (src/functions/)
// starts `node -e BOOT` in a contained process and sends this file as the first frame on
// stdin; BOOT compiles it as a function expression and calls it with `require`. After that
// every frame is a 4-byte big-endian length followed by UTF-8 JSON, in both directions.
//
// Trust model: this file is trusted; function code is not. Function code runs in a `vm`
// context whose global object holds only the §3.3 globals, with code generation from
// strings disabled; the outer realm runs with --frozen-intrinsics and
// --disallow-code-generation-from-strings and loses `process`/`require` before any function
// code runs. The vm context is NOT a security boundary on its own: the process containment
// set up by the C side (empty environment, landlock, seccomp, rlimits, unprivileged user)
// is what holds when code escapes. Must run on Node.js 18 (Debian 12) and 20.
(function (require) {
'use strict';
const vm = require('vm');
const util = require('util');
const http = require('http');
let httpsModule = null; // loaded on the first https fetch: TLS costs start-up time
const getHttps = () => httpsModule || (httpsModule = require('https'));
const dns = require('dns');
const net = require('net');
const fs = require('fs');
const nodeCrypto = require('crypto');
const { Buffer } = require('buffer');
const { URL, URLSearchParams } = require('url');
const { TextEncoder, TextDecoder } = require('util');
// Node's Headers/Request/Response (undici) take long to load (~20 ms on a quiet machine, far
// more on a busy one): loaded, and frozen, on first use rather than at every worker start.
const outerGlobal = globalThis;
let webClasses = null;
function web() {
    if (!webClasses) {
        webClasses = { Headers: outerGlobal.Headers, Request: outerGlobal.Request, Response: outerGlobal.Response };
        deepFreeze(webClasses);
    }
    return webClasses;
}
const hostAtob = globalThis.atob;
const hostBtoa = globalThis.btoa;
const proc = process;
// The C side starts node with two tuning variables only (MALLOC_ARENA_MAX, UV_THREADPOOL_SIZE);
// they have done their work by now, and nothing of the environment is left for anyone.
for (const k of Object.keys(proc.env)) delete proc.env[k];
const perf = performance;
const hrnow = () => Math.floor(perf.now()); // monotonic ms (a BigInt hrtime costs more)

const LOG_CAP = 4096;
const MAX_CONTEXTS = 64;
const IDLE_MS = 15 * 60 * 1000; // a warm context unused this long is dropped (§11)
const MAX_FETCH_BODY = 32 << 20;
const MAX_REDIRECTS = 20;
const MAX_OUTPUT = 16 << 20; // characters of a handler's JSON result
const HANDLERS = { identify: 'onIdentify', track: 'onTrack', page: 'onPage', screen: 'onScreen',
                   group: 'onGroup', alias: 'onAlias', delete: 'onDelete' };
const HANDLER_NAMES = ['onRequest', 'onIdentify', 'onTrack', 'onPage', 'onScreen', 'onGroup',
                       'onAlias', 'onDelete', 'onBatch'];

let config = { deny: '', allow: '', cpuBudgetMs: 0 };
const CPU_CHECK_MS = 100; // RLIMIT_CPU is seconds away when the budget check trips (80%)
let cpuCheckedAt = -Infinity;
let policy = null;

// ---- outbound policy (delivery.md §4.3) ---------------------------------------------------
// An address is refused when it matches DENY and not ALLOW; with only ALLOW set, every
// address outside ALLOW is refused. Checked on every resolved address, not on the name.
function parseCidrs(text) {
    const list = new net.BlockList();
    let n = 0;
    for (const raw of String(text || '').split(/[\s,]+/)) {
        if (!raw) continue;
        const [addr, bits] = raw.split('/');
        const family = net.isIP(addr);
        if (!family) continue;
        const type = family === 6 ? 'ipv6' : 'ipv4';
        const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
        try { list.addSubnet(addr, prefix, type); n++; } catch (e) { /* ignored: bad prefix */ }
    }
    return { list, n };
}
function makePolicy(deny, allow) {
    const d = parseCidrs(deny), a = parseCidrs(allow);
    return function allowed(addr) {
        let family = net.isIP(addr);
        if (!family) return false;
        const m = family === 6 && /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
        if (m) { addr = m[1]; family = 4; }
        const type = family === 6 ? 'ipv6' : 'ipv4';
        if (a.n && a.list.check(addr, type)) return true;
        if (d.n) return !d.list.check(addr, type);
        return a.n === 0;
    };
}

// ---- logs ----------------------------------------------------------------------------------
function addLog(inv, args) {
    if (!inv || inv.done) return;
    let text;
    try { text = util.format.apply(null, args); } catch (e) { text = '[unformattable log line]'; }
    const bytes = Buffer.byteLength(text);
    if (inv.logsTruncated || inv.logBytes + bytes > LOG_CAP) { inv.logsTruncated = true; return; }
    inv.logBytes += bytes;
    inv.logs.push({ m: text, t: Date.now() });
}

// ---- fetch on node's http/https, policy-checked --------------------------------------------
function policyLookup(hostname, options, cb) {
    if (typeof options === 'function') { cb = options; options = {}; }
    dns.lookup(hostname, { all: true, family: options.family || 0, hints: options.hints || 0 }, (err, addrs) => {
        if (err) return cb(err);
        for (const a of addrs) {
            if (!policy(a.address)) {
                const e = new Error(a.address + ' is refused by the outbound policy');
                e.code = 'EOUTBOUNDPOLICY';
                return cb(e);
            }
        }
        if (options.all) return cb(null, addrs);
        cb(null, addrs[0].address, addrs[0].family);
    });
}

function isBytes(v) { return ArrayBuffer.isView(v); }
function tagOf(v) { return Object.prototype.toString.call(v); }

async function bodyBytes(body, headers) {
    if (body === undefined || body === null) return null;
    if (typeof body === 'string') return Buffer.from(body);
    if (isBytes(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (tagOf(body) === '[object ArrayBuffer]') return Buffer.from(body);
    if (body instanceof URLSearchParams) {
        if (!headers.has('content-type')) headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
        return Buffer.from(body.toString());
    }
    if (body && typeof body.arrayBuffer === 'function') return Buffer.from(await body.arrayBuffer());
    return Buffer.from(String(body));
}

function requestOnce(url, method, headers, body, inv) {
    return new Promise((resolve, reject) => {
        const mod = url.protocol === 'https:' ? getHttps() : http;
        let host = url.hostname;
        if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
        if (net.isIP(host) && !policy(host)) {
            const e = new Error(host + ' is refused by the outbound policy');
            e.code = 'EOUTBOUNDPOLICY';
            return reject(e);
        }
        const h = {};
        for (const [k, v] of headers) h[k] = v;
        if (!('accept' in h)) h.accept = '*/*';
        if (!('user-agent' in h)) h['user-agent'] = 'manifold-functions';
        if (body) h['content-length'] = String(body.length);
        const req = mod.request({ protocol: url.protocol, hostname: host, port: url.port || undefined,
                                  path: url.pathname + url.search, method, headers: h,
                                  lookup: policyLookup, agent: false });
        const abort = () => req.destroy(new Error('the invocation ended'));
        inv.aborters.add(abort);
        req.on('error', (e) => { inv.aborters.delete(abort); reject(e); });
        req.on('response', (res) => {
            const chunks = [];
            let size = 0;
            res.on('data', (c) => {
                size += c.length;
                if (size > MAX_FETCH_BODY) { req.destroy(new Error('response body over ' + MAX_FETCH_BODY + ' bytes')); return; }
                chunks.push(c);
            });
            res.on('error', (e) => { inv.aborters.delete(abort); reject(e); });
            res.on('end', () => {
                inv.aborters.delete(abort);
                resolve({ status: res.statusCode, statusText: res.statusMessage || '', rawHeaders: res.rawHeaders,
                          body: Buffer.concat(chunks) });
            });
        });
        if (body) req.end(body); else req.end();
    });
}

// Returns {response} or {error: message}; never rejects, so the context-side wrapper can
// throw a TypeError of the function's own realm.
async function hostFetch(inv, input, init) {
    try {
        if (!inv || inv.done) return { error: 'fetch failed: the invocation has ended' };
        init = init || {};
        const { Headers: HostHeaders, Request: HostRequest } = web();
        let urlText, method = 'GET', headers = new HostHeaders(), body = null;
        if (input instanceof HostRequest) {
            urlText = input.url;
            method = input.method;
            headers = new HostHeaders(input.headers);
            if (method !== 'GET' && method !== 'HEAD') body = Buffer.from(await input.arrayBuffer());
        } else {
            urlText = String(input);
        }
        if (init.method !== undefined) method = String(init.method).toUpperCase();
        if (init.headers !== undefined && init.headers !== null) {
            const src = init.headers;
            headers = new HostHeaders();
            if (src instanceof HostHeaders || (src && typeof src.forEach === 'function' && typeof src.get === 'function')) {
                src.forEach((v, k) => headers.append(k, v));
            } else if (Array.isArray(src)) {
                for (const pair of src) headers.append(String(pair[0]), String(pair[1]));
            } else if (typeof src === 'object') {
                for (const k of Object.keys(src)) headers.append(k, String(src[k]));
            }
        }
        if (init.body !== undefined) body = await bodyBytes(init.body, headers);
        const redirect = init.redirect || 'follow';
        let url = new URL(urlText);
        for (let hop = 0; ; hop++) {
            if (url.protocol !== 'http:' && url.protocol !== 'https:')
                return { error: 'fetch failed: unsupported protocol ' + url.protocol };
            const r = await requestOnce(url, method, headers, body, inv);
            if ([301, 302, 303, 307, 308].includes(r.status) && redirect !== 'manual') {
                if (redirect === 'error') return { error: 'fetch failed: redirect mode is set to error' };
                if (hop >= MAX_REDIRECTS) return { error: 'fetch failed: redirect count exceeded' };
                const loc = rawHeader(r.rawHeaders, 'location');
                if (loc) {
                    url = new URL(loc, url);
                    if (r.status === 303 || ((r.status === 301 || r.status === 302) && method === 'POST')) {
                        method = 'GET'; body = null; headers.delete('content-type'); headers.delete('content-length');
                    }
                    continue;
                }
            }
            return { response: makeResponse(r, url, hop > 0) };
        }
    } catch (e) {
        return { error: 'fetch failed', cause: e && e.message ? String(e.message) : String(e) };
    }
}
function rawHeader(raw, name) {
    for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) return raw[i + 1];
    return null;
}
function makeResponse(r, url, redirected) {
    const { Headers: HostHeaders, Response: HostResponse } = web();
    const headers = new HostHeaders();
    for (let i = 0; i < r.rawHeaders.length; i += 2) {
        try { headers.append(r.rawHeaders[i], r.rawHeaders[i + 1]); } catch (e) { /* invalid header: skipped */ }
    }
    const nullBody = [101, 204, 205, 304].includes(r.status);
    const status = r.status >= 200 && r.status <= 599 ? r.status : 200;
    const res = new HostResponse(nullBody ? null : r.body, { status, statusText: r.statusText, headers });
    Object.defineProperty(res, 'url', { value: url.href });
    Object.defineProperty(res, 'redirected', { value: redirected });
    return res;
}

// ---- the context a function runs in -----------------------------------------------------------
// The prelude runs inside each new context: everything the function can see that must be of
// its own realm (error classes, console, cache, Segment, fetch's wrapper, timers) is defined
// there, holding the host bridge in a closure the function cannot reach.
const PRELUDE = `(function (host) {
'use strict';
const G = globalThis;
const JSONparse = JSON.parse, JSONstringify = JSON.stringify, OKeys = Object.keys, ArrayIsArray = Array.isArray;
const def = (name, value) => Object.defineProperty(G, name, { value, writable: true, configurable: true, enumerable: false });
function mkError(name) {
  const C = ({ [name]: class extends Error { constructor(message) { super(message); } } })[name];
  Object.defineProperty(C.prototype, 'name', { value: name, writable: true, configurable: true });
  return C;
}
const errs = {};
for (const n of ['EventNotSupported', 'InvalidEventPayload', 'ValidationError', 'RetryError', 'DropEvent']) {
  errs[n] = mkError(n); def(n, errs[n]);
}
const con = {};
for (const m of ['log', 'info', 'warn', 'error', 'debug', 'trace'])
  con[m] = function (...args) { host.log(args); };
con.dir = function (o) { host.log([o]); };
def('console', con);
def('window', G);
const timers = new Map();
let timerSeq = 0;
function addTimer(repeat, fn, ms, args) {
  if (typeof fn !== 'function') throw new TypeError('The "callback" argument must be of type function');
  const id = ++timerSeq;
  const h = host.timer(repeat, () => { if (!repeat) timers.delete(id); fn(...args); }, ms);
  timers.set(id, h);
  return { id, ref() { return this; }, unref() { return this; }, hasRef() { return true; },
           [Symbol.toPrimitive]() { return id; } };
}
function clearTimer(t) {
  const id = t && typeof t === 'object' ? t.id : Number(t);
  const h = timers.get(id);
  if (h !== undefined) { timers.delete(id); host.clearTimer(h); }
}
def('setTimeout', (fn, ms, ...args) => addTimer(false, fn, ms, args));
def('setInterval', (fn, ms, ...args) => addTimer(true, fn, ms, args));
def('clearTimeout', clearTimer);
def('clearInterval', clearTimer);
def('queueMicrotask', (fn) => { Promise.resolve().then(fn); });
const store = new Map();
def('cache', Object.freeze({
  async load(key, ttl, fn) {
    const now = Date.now();
    const e = store.get(key);
    if (e && (e.expires === null || e.expires > now)) return e.value;
    const value = await fn();
    const t = Number(ttl);
    store.set(key, { value, expires: ttl === undefined || ttl === null || t < 0 ? null : now + t });
    return value;
  },
  delete(key) { store.delete(key); }
}));
def('fetch', async function fetch(input, init) {
  const r = await host.fetch(input, init);
  if (r.error !== undefined) {
    const e = new TypeError(String(r.error));
    if (r.cause !== undefined) e.cause = new Error(String(r.cause));
    throw e;
  }
  return r.response;
});
for (const [k, v] of OKeys(host.globals).map((k) => [k, host.globals[k]])) def(k, v);
for (const n of ['Headers', 'Request', 'Response']) {
  Object.defineProperty(G, n, {
    get() { const v = host.web(n); def(n, v); return v; },
    set(v) { def(n, v); },
    enumerable: false, configurable: true
  });
}
let segment = null;
if (host.kind === 'source') {
  const COMMON = ['userId', 'anonymousId', 'context', 'integrations', 'messageId', 'sentAt', 'timestamp'];
  const missing = (v) => v === undefined || v === '';
  const build = (type, o, required, optional, identity) => {
    o = o || {};
    if (identity && !o.userId && !o.anonymousId)
      throw new errs.ValidationError('One of userId,anonymousId is required but not defined');
    const m = { type };
    for (const f of required) {
      if (missing(o[f])) throw new errs.ValidationError(f + ' is required but not defined');
      m[f] = o[f];
    }
    for (const f of optional.concat(COMMON)) if (o[f]) m[f] = o[f];
    return m;
  };
  const out = { events: [], objects: [] };
  const ev = (type, required, optional) => function (o) {
    const m = build(type, o, required, optional, true);
    out.events.push(m);
    return m;
  };
  segment = out;
  def('Segment', Object.freeze({
    identify: ev('identify', [], ['traits']),
    track: ev('track', ['event'], ['properties']),
    group: ev('group', ['groupId'], ['traits']),
    page: ev('page', [], ['name', 'properties']),
    screen: ev('screen', [], ['name', 'properties']),
    alias: ev('alias', ['previousId'], []),
    set(o) {
      o = o || {};
      for (const f of ['collection', 'id'])
        if (missing(o[f])) throw new errs.ValidationError(f + ' is required but not defined');
      const m = { collection: String(o.collection).toLowerCase(), id: o.id };
      if (o.properties) m.properties = o.properties;
      out.objects.push(m);
      return m;
    }
  }));
}
function describe(e) {
  try {
    if (e !== null && typeof e === 'object' && 'message' in e) {
      const name = e.name === undefined ? 'Error' : String(e.name);
      return { name: name || 'Error', message: String(e.message) };
    }
    return { name: 'Error', message: String(e) };
  } catch (x) {
    return { name: 'Error', message: 'unprintable error' };
  }
}
function toJSONText(v) {
  const s = JSONstringify(v);
  return s === undefined ? 'null' : s;
}
class FunctionRequest {
  #body; #text;
  constructor(body, headers, url) {
    this.#body = body;
    Object.defineProperty(this, 'headers', { value: headers, enumerable: true });
    Object.defineProperty(this, 'url', { value: url, enumerable: true });
  }
  json() { return typeof this.#body === 'string' ? JSONparse(this.#body) : this.#body; }
  text() { return typeof this.#body === 'string' ? this.#body : (this.#body === undefined ? '' : JSONstringify(this.#body)); }
}
// Deployed source functions receive the body with object keys sorted alphabetically,
// recursively; preview does not sort (functions-runtime.md §4.2).
function sortKeys(v) {
  if (ArrayIsArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  const o = {};
  for (const k of OKeys(v).sort()) o[k] = sortKeys(v[k]);
  return o;
}
async function run(handlers, kind, inputText, settingsText, deployed) {
  let input, settings;
  try { input = JSONparse(inputText); } catch (e) { throw new errs.InvalidEventPayload('payload is not valid JSON: ' + e.message); }
  try { settings = settingsText ? JSONparse(settingsText) : {}; } catch (e) { throw new errs.ValidationError('settings are not valid JSON: ' + e.message); }
  if (settings === null || typeof settings !== 'object' || ArrayIsArray(settings)) settings = {};
  if (kind === 'source') {
    segment.events = []; segment.objects = [];
    const p = input !== null && typeof input === 'object' && input.payload !== null && typeof input.payload === 'object'
      ? input.payload : (input || {});
    const headers = new G.Headers();
    const hs = p.headers && typeof p.headers === 'object' ? p.headers : {};
    for (const k of OKeys(hs)) {
      const v = hs[k];
      try { headers.set(k, ArrayIsArray(v) ? v.map(String).join(', ') : String(v)); } catch (e) { /* invalid name */ }
    }
    let url;
    if (typeof p.url === 'string') url = new G.URL(p.url);
    else {
      url = new G.URL('https://fn.segmentapis.com/');
      const q = p.queryParameters && typeof p.queryParameters === 'object' ? p.queryParameters : {};
      for (const k of OKeys(q)) {
        const v = q[k];
        if (ArrayIsArray(v)) for (const x of v) url.searchParams.append(k, String(x));
        else if (v !== undefined && v !== null) url.searchParams.append(k, String(v));
      }
    }
    const h = handlers.onRequest;
    if (typeof h !== 'function') throw new errs.EventNotSupported('request not supported');
    await h(new FunctionRequest(deployed ? sortKeys(p.body) : p.body, headers, url), settings);
    return JSONstringify({ events: segment.events, objects: segment.objects });
  }
  if (kind === 'batch') {
    if (!ArrayIsArray(input)) throw new errs.InvalidEventPayload('a batch must be an array of events');
    const h = handlers.onBatch;
    if (typeof h !== 'function') throw new errs.EventNotSupported('batch not supported');
    return toJSONText(await h(input, settings));
  }
  if (input === null || typeof input !== 'object' || ArrayIsArray(input))
    throw new errs.InvalidEventPayload('the event must be an object');
  const name = host.handlerFor(input.type);
  if (name === null) return 'null';
  const h = handlers[name];
  if (typeof h !== 'function') throw new errs.EventNotSupported(String(input.type) + ' not supported');
  return toJSONText(await h(input, settings));
}
return {
  invoke(handlers, kind, inputText, settingsText, deployed) {
    return run(handlers, kind, inputText, settingsText, deployed).then(
      (out) => ({ ok: true, out: String(out) }),
      (e) => { const d = describe(e); return { ok: false, name: d.name, message: d.message }; });
  },
  describe,
  clearTimers() { for (const h of timers.values()) host.clearTimer(h); timers.clear(); }
};
})`;

const COLLECT = `(function () { return { ${HANDLER_NAMES.map((n) => `${n}: typeof ${n} === 'undefined' ? undefined : ${n}`).join(', ')} }; })()`;

const preludeScript = new vm.Script(PRELUDE, { filename: 'manifold:prelude' });
const collectScript = new vm.Script(COLLECT, { filename: 'manifold:collect' });

const safeCrypto = {};
for (const k of Object.keys(nodeCrypto)) {
    if (k === 'setEngine' || k === 'secureHeapUsed' || k === 'setFips') continue;
    safeCrypto[k] = nodeCrypto[k];
}
for (const k of ['webcrypto', 'subtle']) if (nodeCrypto[k]) safeCrypto[k] = nodeCrypto[k];
Object.freeze(safeCrypto);

const HOST_GLOBALS = { Buffer, URL, URLSearchParams, TextEncoder, TextDecoder, atob: hostAtob, btoa: hostBtoa,
                       crypto: safeCrypto };

// The host objects above are shared by every instance in this process, and by this file:
// freeze everything reachable from them (the ECMAScript intrinsics are already frozen by
// --frozen-intrinsics), so that `Buffer.from = …` in one function cannot change what another
// function, or the worker itself, sees.
// A frozen prototype turns `derived.prop = x` into an error when prop is inherited (the
// "override mistake"); Node's own modules do that when loaded lazily. So, as Node's
// --frozen-intrinsics does, every writable data property becomes an accessor whose setter
// defines an own property on a derived object and refuses to change the frozen one.
function deepFreeze(root) {
    const seen = new Set();
    const stack = [root];
    while (stack.length) {
        const o = stack.pop();
        if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o)) continue;
        seen.add(o);
        if (Object.isFrozen(o)) { stack.push(Object.getPrototypeOf(o)); continue; }
        for (const k of Reflect.ownKeys(o)) {
            let d;
            try { d = Object.getOwnPropertyDescriptor(o, k); } catch (e) { continue; }
            if (!d) continue;
            if ('value' in d) {
                stack.push(d.value);
                if (d.writable && d.configurable) {
                    const value = d.value;
                    try {
                        Object.defineProperty(o, k, {
                            get() { return value; },
                            set(v) {
                                if (this === o) return;
                                Object.defineProperty(this, k, { value: v, writable: true, enumerable: true, configurable: true });
                            },
                            enumerable: d.enumerable, configurable: false
                        });
                    } catch (e) { /* left as it is; freeze below */ }
                }
            }
            if (d.get) stack.push(d.get);
            if (d.set) stack.push(d.set);
        }
        try { Object.freeze(o); } catch (e) { /* exotic objects: left as they are */ }
        stack.push(Object.getPrototypeOf(o));
    }
}
deepFreeze(HOST_GLOBALS);

// One record per loaded instance: its context, its handlers, and the invocation it serves.
function loadContext(kind, code, deadline, inv) {
    // inv: the invocation loading the instance, so that top-level console output is its log
    const rec = { inv, handlers: null, api: null, ctx: null };
    const host = {
        kind,
        globals: HOST_GLOBALS,
        web: (name) => web()[name],
        log: (args) => addLog(rec.inv, args),
        fetch: (input, init) => hostFetch(rec.inv, input, init),
        timer: (repeat, fn, ms) => {
            const wrapped = () => {
                try { fn(); } catch (e) { if (rec.inv && !rec.inv.done) rec.inv.uncaught = e; }
            };
            ms = Math.max(0, Number(ms) || 0);
            return repeat ? setInterval(wrapped, Math.max(1, ms)) : setTimeout(wrapped, ms);
        },
        clearTimer: (h) => { clearTimeout(h); clearInterval(h); },
        handlerFor: (type) => (typeof type === 'string' && Object.prototype.hasOwnProperty.call(HANDLERS, type) ? HANDLERS[type] : null)
    };
    const ctx = vm.createContext({}, { name: 'function', codeGeneration: { strings: false, wasm: false } });
    rec.ctx = ctx;
    rec.api = preludeScript.runInContext(ctx)(Object.freeze(host));
    const script = new vm.Script(code, { filename: 'function.js' });
    const left = Math.max(1, deadline - hrnow());
    script.runInContext(ctx, { timeout: left, displayErrors: false });
    rec.handlers = collectScript.runInContext(ctx, { timeout: Math.max(1, deadline - hrnow()) });
    return rec;
}

const contexts = new Map(); // key -> rec, in least-recently-used order
let lastKey = null;         // the most recently used key (already last in contexts)
let sweptAt = 0;            // when contexts were last looked at for idle ones

function dropContext(key) {
    const rec = contexts.get(key);
    if (!rec) return;
    contexts.delete(key);
    try { rec.api.clearTimers(); } catch (e) { /* its own problem */ }
}

function isMemoryError(e) {
    return e && /allocation failed|out of memory|heap out of memory/i.test(String(e.message || ''));
}

function send(obj) {
    const body = Buffer.from(JSON.stringify(obj));
    const frame = Buffer.allocUnsafe(4 + body.length);
    frame.writeUInt32BE(body.length, 0);
    body.copy(frame, 4);
    let off = 0;
    while (off < frame.length) {
        try {
            off += fs.writeSync(1, frame, off, frame.length - off);
        } catch (e) {
            if (e.code !== 'EAGAIN') proc.exit(3);
        }
    }
}

async function handle(msg) {
    if (msg.op === 'config') {
        config = msg;
        policy = makePolicy(msg.deny, msg.allow);
        return;
    }
    if (msg.op !== 'invoke') return;
    const started = hrnow();
    const timeout = msg.timeout_ms > 0 ? msg.timeout_ms : 5000;
    const deadline = started + timeout;
    const inv = { logs: [], logBytes: 0, logsTruncated: false, done: false, aborters: new Set(), uncaught: undefined };
    let reply;
    let retire = false;
    const key = msg.fresh ? null : String(msg.key);
    let rec = key === null ? undefined : contexts.get(key);
    try {
        if (!rec) {
            rec = loadContext(msg.kind === 'source' ? 'source' : 'event', String(msg.code), deadline, inv);
            if (key !== null) {
                contexts.set(key, rec);
                while (contexts.size > MAX_CONTEXTS) dropContext(contexts.keys().next().value);
            }
        } else if (key !== lastKey) {
            contexts.delete(key);
            contexts.set(key, rec); // most recently used last
        }
        lastKey = key;
        rec.usedAt = started;
        // least recently used first: drop the ones idle for too long (looked at once a second)
        if (started - sweptAt >= 1000) {
            sweptAt = started;
            for (const [k, r] of contexts) {
                if (started - r.usedAt < IDLE_MS) break;
                dropContext(k);
            }
        }
        rec.inv = inv;
        let timer;
        const timedOut = new Promise((resolve) => {
            timer = setTimeout(() => resolve({ ok: false, name: 'Timeout', message: 'function exceeded ' + timeout + ' ms', timeout: true }),
                               Math.max(0, deadline - hrnow()));
        });
        const r = await Promise.race([rec.api.invoke(rec.handlers, msg.kind, String(msg.input),
                                                     msg.settings == null ? '' : String(msg.settings), !msg.fresh), timedOut]);
        clearTimeout(timer);
        if (r.ok && inv.uncaught !== undefined) {
            const d = rec.api.describe(inv.uncaught);
            reply = { success: false, name: d.name, message: d.message };
        } else if (r.ok && r.out.length > MAX_OUTPUT) {
            reply = { success: false, name: 'RangeError', message: 'the result is over ' + MAX_OUTPUT + ' characters of JSON' };
        } else if (r.ok) {
            reply = { success: true, output: r.out };
        } else {
            reply = { success: false, name: String(r.name), message: String(r.message) };
            if (r.timeout && key !== null) dropContext(key);
        }
    } catch (e) {
        // Compile errors, top-level code that threw or ran out of time.
        if (key !== null && rec && contexts.get(key) === rec && !rec.handlers) dropContext(key);
        let name = 'Error', message = '';
        try { name = String(e && e.name !== undefined ? e.name : 'Error'); message = String(e && e.message !== undefined ? e.message : e); } catch (x) { /* keep defaults */ }
        if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') { name = 'Timeout'; message = 'function exceeded ' + timeout + ' ms'; }
        if (key !== null && contexts.get(key) === rec) dropContext(key);
        reply = { success: false, name, message };
    }
    if (!reply.success && reply.name === 'RangeError' && isMemoryError({ message: reply.message })) {
        reply.name = 'MemoryLimit';
        reply.message = 'function exceeded the memory limit (' + reply.message + ')';
        retire = true;
    }
    inv.done = true;
    for (const a of inv.aborters) a();
    if (rec) rec.inv = null;
    if (msg.fresh && rec) { try { rec.api.clearTimers(); } catch (e) { /* ignore */ } }
    // getrusage costs more than a warm invocation: asked at most every CPU_CHECK_MS
    if (config.cpuBudgetMs > 0 && (retire || started - cpuCheckedAt >= CPU_CHECK_MS)) {
        cpuCheckedAt = started;
        const u = proc.cpuUsage();
        if ((u.user + u.system) / 1000 > config.cpuBudgetMs * 0.8) retire = true;
    }
    reply.id = msg.id;
    reply.logs = inv.logs;
    reply.logs_truncated = inv.logsTruncated;
    reply.duration_ms = hrnow() - started;
    if (retire) reply.retire = true;
    send(reply);
}

// Function code must not crash the worker from a stray callback or rejected promise.
proc.on('uncaughtException', () => {});
proc.on('unhandledRejection', () => {});

let pending = Buffer.alloc(0);
const queue = [];
let running = false;
async function pump() {
    if (running) return;
    running = true;
    while (queue.length) {
        const msg = queue.shift();
        try { await handle(msg); } catch (e) { send({ id: msg.id, success: false, name: 'Error', message: 'worker: ' + String(e && e.message), logs: [] }); }
    }
    running = false;
}
const stdin = new net.Socket({ fd: 0, readable: true, writable: false });
stdin.on('data', (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 4) {
        const n = pending.readUInt32BE(0);
        if (pending.length < 4 + n) break;
        const text = pending.toString('utf8', 4, 4 + n);
        pending = pending.subarray(4 + n);
        let msg;
        try { msg = JSON.parse(text); } catch (e) { proc.exit(4); }
        queue.push(msg);
    }
    pump();
});
stdin.on('end', () => proc.exit(0));

// From here on nothing in the outer realm should hand function code a way out: the globals
// that lead to the process, the module loader or an unchecked network client go away.
for (const name of ['process', 'require', 'module', 'exports', '__filename', '__dirname', 'fetch',
                    'WebAssembly', 'SharedArrayBuffer', 'Atomics']) {
    try { delete globalThis[name]; } catch (e) { /* non-configurable: left */ }
}
send({ ready: true, pid: proc.pid, node: proc.version, boot_ms: Math.round(performance.now()) });
})
