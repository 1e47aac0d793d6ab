#!/usr/bin/env node
// Sends the seven calls of tracking-api.md §12 T22 (identify, 2× track, page, screen, group,
// alias) through one of Segment's Node SDKs to a given host with a given write key, flushes,
// and prints on stdout one JSON document saying what the SDK sent:
//
//   {"sdk": "...", "package": "...", "version": "...", "node": "v18.19.0",
//    "calls": [{"type": "identify", "messageId": "...", "fixed": true}, ...],   (call order)
//    "requests": [{"url": "...", "status": 200, "response": "...", "headers": {...},
//                  "body": {...}}],                                     (as sent on the wire)
//    "errors": ["..."]}
//
// Usage: node send.js SDK HOST WRITE_KEY RUN_ID
//   SDK        next     @segment/analytics-node (the version pinned in package.json; it
//                       supports Node 18)
//              next3    @segment/analytics-node 3.1.0 (installed as segment-analytics-node-3;
//                       its engines field asks for Node >= 20)
//              classic  the deprecated analytics-node 6.2.0
//   HOST       e.g. http://127.0.0.1:8080 (the SDKs append /v1/batch)
//   RUN_ID     makes the caller-chosen messageIds unique: the server deduplicates on
//              messageId across the whole installation (§9)
// Exit status 0 when every call was flushed and every POST was answered 2xx; 1 otherwise
// (the JSON is printed either way).
'use strict'

const [sdk, host, writeKey, runId] = process.argv.slice(2)
if (!sdk || !host || !writeKey || !runId) {
  process.stderr.write('usage: node send.js next|next3|classic HOST WRITE_KEY RUN_ID\n')
  process.exit(2)
}

const out = { sdk, package: '', version: '', node: process.version, calls: [], requests: [], errors: [] }

// The calls, in order. A call with `fixed` carries a caller-chosen messageId; the others
// let the SDK generate one (recorded from what it sent). Fixed timestamps on two calls let
// the test check the server's clock-skew correction (§6.5).
function calls () {
  const id = (n) => `sdk-${sdk}-${runId}-${n}`
  return [
    ['identify', { userId: 'u-1', messageId: id('identify'),
      traits: { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', logins: 7 } }],
    ['track', { userId: 'u-1', event: 'Order Completed', messageId: id('track-1'),
      timestamp: new Date('2024-03-01T10:00:00.250Z'),
      properties: { order_id: 'o-42', revenue: 14.99, currency: 'EUR', coupon: null,
        products: [{ sku: 'p-1', price: 9.99, quantity: 1 }, { sku: 'p-2', price: 5, quantity: 2 }],
        'odd key.with dots': 'ünïcödé ✓' },
      context: { ip: '203.0.113.7', locale: 'de-DE' },
      integrations: { All: false, Webhooks: true } }],
    ['track', { anonymousId: 'anon-1', event: 'Product Viewed', properties: { sku: 'p-1', big: 12345678901234 } }],
    ['page', { userId: 'u-1', category: 'Docs', name: 'Intake', messageId: id('page'),
      properties: { path: '/docs/intake', title: 'Intake' } }],
    ['screen', { userId: 'u-1', name: 'Home', properties: { variant: 'b' },
      timestamp: new Date('2024-03-01T10:00:01.500Z') }],
    ['group', { userId: 'u-1', groupId: 'g-1', messageId: id('group'), traits: { name: 'Acme', employees: 12 } }],
    ['alias', { userId: 'u-1', previousId: 'anon-1' }],
  ]
}

function recordHeaders (h) {
  const r = {}
  if (!h) return r
  if (typeof h.forEach === 'function' && !Array.isArray(h)) {
    h.forEach((v, k) => { r[String(k).toLowerCase()] = String(v) })
  } else {
    for (const k of Object.keys(h)) r[k.toLowerCase()] = String(h[k])
  }
  return r
}

function finish () {
  // Every call must have been seen in a request body, and every request answered 2xx.
  const sent = new Map()
  for (const rq of out.requests) {
    for (const m of (rq.body && rq.body.batch) || []) sent.set(m.messageId, m)
  }
  for (const c of out.calls) {
    if (!c.messageId) out.errors.push(`${c.type}: no messageId recorded`)
    else if (!sent.has(c.messageId)) out.errors.push(`${c.type} ${c.messageId}: not in any request body`)
  }
  for (const rq of out.requests) {
    if (!(rq.status >= 200 && rq.status < 300)) out.errors.push(`POST ${rq.url}: status ${rq.status}`)
  }
  if (out.requests.length === 0) out.errors.push('the SDK sent no request')
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
  process.exit(out.errors.length ? 1 : 0)
}

async function runNext (pkg) {
  const { Analytics } = require(pkg)
  out.package = '@segment/analytics-node'
  out.version = require(`${pkg}/package.json`).version
  // Records every request exactly as the SDK sends it, then lets Node's fetch send it.
  const httpClient = async (url, init) => {
    const rq = { url: String(url), method: init.method, headers: recordHeaders(init.headers), body: null, status: 0, response: '' }
    try { rq.body = JSON.parse(init.body) } catch (e) { rq.body = String(init.body) }
    out.requests.push(rq)
    const res = await globalThis.fetch(url, init)
    rq.status = res.status
    // Read a copy: the SDK may read the body itself.
    try { rq.response = await res.clone().text() } catch (e) { rq.response = `(unreadable: ${e.message})` }
    return res
  }
  const analytics = new Analytics({ writeKey, host, maxEventsInBatch: 15, flushInterval: 60000,
    maxRetries: 1, httpRequestTimeout: 10000, httpClient })
  analytics.on('error', (err) => out.errors.push(`emitter error: ${err && (err.code || '')} ${err && err.reason ? String(err.reason) : JSON.stringify(err)}`))
  const pending = []
  for (const [type, params] of calls()) {
    const entry = { type, messageId: params.messageId || null, fixed: Boolean(params.messageId) }
    out.calls.push(entry)
    pending.push(new Promise((resolve) => {
      analytics[type](params, (err, ctx) => {
        if (err) out.errors.push(`${type}: callback error ${err.message || err.code || JSON.stringify(err)}`)
        const ev = (ctx && ctx.event) || (err && err.ctx && err.ctx.event)
        if (ev && ev.messageId) entry.messageId = ev.messageId
        resolve()
      })
    }))
  }
  await analytics.closeAndFlush({ timeout: 30000 })
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 5000))])
}

async function runClassic () {
  const Analytics = require('analytics-node')
  out.package = 'analytics-node'
  out.version = require('analytics-node/package.json').version
  // flushAt 20: all calls in as few requests as the SDK chooses (it sends the first call
  // alone, §11.2); no retries, so a failure shows up at once.
  const analytics = new Analytics(writeKey, { host, flushAt: 20, flushInterval: 60000, retryCount: 0,
    errorHandler: (err) => out.errors.push(`errorHandler: ${err.message}`) })
  analytics.axiosInstance.interceptors.request.use((config) => {
    const rq = { url: config.url, method: String(config.method).toUpperCase(), headers: recordHeaders(config.headers),
      body: null, status: 0, response: '' }
    rq.body = typeof config.data === 'string' ? JSON.parse(config.data) : JSON.parse(JSON.stringify(config.data))
    if (config.auth) rq.headers.authorization = 'Basic ' + Buffer.from(`${config.auth.username}:${config.auth.password || ''}`).toString('base64')
    config.__manifoldRecord = rq
    out.requests.push(rq)
    return config
  })
  analytics.axiosInstance.interceptors.response.use((res) => {
    const rq = res.config.__manifoldRecord
    if (rq) { rq.status = res.status; rq.response = typeof res.data === 'string' ? res.data : JSON.stringify(res.data) }
    return res
  }, (err) => {
    const rq = err.config && err.config.__manifoldRecord
    if (rq && err.response) { rq.status = err.response.status; rq.response = JSON.stringify(err.response.data) }
    return Promise.reject(err)
  })
  const pending = []
  for (const [type, params] of calls()) {
    const entry = { type, messageId: params.messageId || null, fixed: Boolean(params.messageId) }
    out.calls.push(entry)
    // The SDK assigns the messageId synchronously in enqueue(), on its own copy of the
    // message: find it in the queue right after the call.
    pending.push(new Promise((resolve) => {
      analytics[type](params, (err) => {
        if (err) out.errors.push(`${type}: callback error ${err.message}`)
        resolve()
      })
    }))
    if (!entry.messageId) {
      const q = analytics.queue
      const last = q.length ? q[q.length - 1].message : null
      if (last && last.type === type) entry.messageId = last.messageId
    }
  }
  await new Promise((resolve) => analytics.flush(() => resolve()))
  await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, 15000))])
}

async function main () {
  const timer = setTimeout(() => { out.errors.push('timed out after 60 s'); finish() }, 60000)
  try {
    if (sdk === 'next') await runNext('@segment/analytics-node')
    else if (sdk === 'next3') await runNext('segment-analytics-node-3')
    else if (sdk === 'classic') await runClassic()
    else throw new Error(`unknown SDK ${sdk}`)
  } catch (e) {
    out.errors.push(`exception: ${e && e.stack ? e.stack : e}`)
  }
  clearTimeout(timer)
  finish()
}

main()
