'use strict';
// bench.js — the ajv side of the schema benchmark: the same checks as schema_bench.c
// (see there), with ajv 8 for draft-07 rules and ajv-draft-04 for draft-04 rules,
// allErrors: true and ajv-formats. Prints the same "class" and "time" lines.
const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');
const Ajv04 = require('ajv-draft-04');
const addFormats = require('ajv-formats');

const dir = process.argv[2] || path.join(__dirname, 'data');
const opts = { allErrors: true, strict: false };
const ajv7 = new Ajv(opts);
const ajv4 = new Ajv04(opts);
addFormats(ajv7);
addFormats(ajv4);

function compile(rule) {
  if (!rule) return null;
  const d4 = /draft-04/.test(rule.$schema || '');
  return (d4 ? ajv4 : ajv7).compile(rule);
}

const names = ['ecommerce', 'b2b-saas', 'mobile-app'];
let t0 = process.hrtime.bigint();
const plans = names.map((name) => {
  const rules = JSON.parse(fs.readFileSync(path.join(dir, name + '.json'), 'utf8')).rules;
  return {
    name,
    global: compile(rules.global),
    identify: compile(rules.identify),
    group: compile(rules.group),
    events: rules.events.map((e) => ({ name: e.name, version: e.version, rule: compile(e.rules) })),
  };
});
console.error(`ajv: compiled 3 plans in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)} ms`);

const events = [];
const lines = [];
for (const f of ['sample.jsonl', 'mutated.jsonl'])
  for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
    if (line.trim()) { lines.push(line); events.push(JSON.parse(line)); }

function rulesFor(p, ev) {
  const c = { event: ev, rule: null, global: p.global };
  if (ev.type === 'identify') { c.rule = p.identify; return c; }
  if (ev.type === 'group') { c.rule = p.group; return c; }
  if (ev.type !== 'track') return null;
  const want = ev.context && ev.context.protocols && ev.context.protocols.event_version;
  let best = null;
  for (const e of p.events) {
    if (e.name !== ev.event) continue;
    if (Number.isInteger(want) && want === e.version) { best = e; break; }
    if (!best || e.version < best.version) best = e;
  }
  if (!best) return null;
  c.rule = best.rule;
  return c;
}

// returns [valid, number of errors]
function runCheck(c) {
  let ok = true, n = 0;
  if (c.rule && !c.rule(c.event)) { ok = false; n += c.rule.errors.length; }
  if (c.global && !c.global(c.event)) { ok = false; n += c.global.errors.length; }
  return [ok, n];
}

// The fastest of many passes over the set, after a warm-up (see schema_bench.c).
function timeSet(set) {
  if (!set.length) return [0, 0];
  let best = Infinity, viol = 0;
  const start = process.hrtime.bigint();
  for (let pass = 0; pass < 20000 && (pass < 50 || Number(process.hrtime.bigint() - start) < 1e9); pass++) {
    let v = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < set.length; i++) v += runCheck(set[i])[1];
    const t = Number(process.hrtime.bigint() - t0);
    if (pass >= 20 && t < best) best = t;
    viol = v;
  }
  return [best / set.length, viol];
}

const all = [[], []];
for (const p of plans) {
  const set = [[], []];
  let cls = '';
  for (const ev of events) {
    const c = rulesFor(p, ev);
    if (!c) { cls += '-'; continue; }
    const ok = runCheck(c)[0];
    cls += ok ? '1' : '0';
    set[ok ? 0 : 1].push(c);
    all[ok ? 0 : 1].push(c);
  }
  console.log(`class ${p.name} ${cls}`);
  for (let v = 0; v < 2; v++) {
    const [ns, viol] = timeSet(set[v]);
    console.log(`time ${p.name} ${v ? 'invalid' : 'valid'} ${set[v].length} ${ns.toFixed(0)} ${viol}`);
  }
}
for (let v = 0; v < 2; v++) {
  const [ns, viol] = timeSet(all[v]);
  console.log(`time all ${v ? 'invalid' : 'valid'} ${all[v].length} ${ns.toFixed(0)} ${viol}`);
}

// JSON.parse of every event, ns per event (fastest pass), like schema_bench.c's "prep".
{
  let best = Infinity, sink = 0;
  const start = process.hrtime.bigint();
  for (let pass = 0; pass < 20000 && (pass < 50 || Number(process.hrtime.bigint() - start) < 1e9); pass++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < lines.length; i++) sink += JSON.parse(lines[i]).type.length;
    const t = Number(process.hrtime.bigint() - t0);
    if (pass >= 20 && t < best) best = t;
  }
  if (sink < 0) console.log(sink);
  console.log(`prep parse ${(best / lines.length).toFixed(0)}`);
}
