// FQL benchmark driver for Segment's JavaScript evaluator (see run.sh).
//
//   node tsub_bench.js FILTERS.tsv EVENTS.jsonl SECONDS [cached]
//
// FQL text is lexed by @segment/fql-ts (Segment's lexer) and turned into the
// JSON IR that @segment/tsub evaluates (spec/fql.md §9) by the small parser
// below; then each filter is run through tsub's public matches(event,
// {type: 'fql', ir}) against all events for SECONDS of CPU time. tsub JSON.parses the IR
// string on every call; with "cached" JSON.parse is memoised for IR strings so
// that only evaluation is measured (the most favourable case for tsub).
// Output mirrors fql_bench.c: name, evaluations/second, matching events.
'use strict'
const fs = require('fs')
const { lex } = require('@segment/fql-ts')
const { matches } = require('@segment/tsub')

function compile(src) {
  const { tokens, error } = lex(src)
  if (error) throw new Error(`${src}: ${error.message}`)
  let i = 0
  const peek = () => tokens[i]
  const next = () => tokens[i++]
  const isOp = (t, v) => t && t.type === 'operator' && t.value === v
  const expect = (type) => {
    const t = next()
    if (!t || t.type !== type) throw new Error(`${src}: expected ${type}, got ${JSON.stringify(t)}`)
    return t
  }
  const literal = (t) => {
    if (t.type === 'string') return { value: t.value.slice(1, -1) }
    if (t.type === 'number') return { value: Number(t.value) }
    if (t.type === 'null') return { value: null }
    if (t.type === 'ident' && (t.value === 'true' || t.value === 'false')) return { value: t.value === 'true' }
    return undefined
  }
  function operand() {
    const t = next()
    if (isOp(t, '!')) return ['!', operand()]
    if (t.type === 'parenleft') {
      const e = expr()
      expect('parenright')
      return e
    }
    if (t.type === 'brackleft') {
      const items = []
      while (peek().type !== 'brackright') {
        items.push(literal(next()))
        if (peek().type === 'comma') next()
      }
      next()
      return { value: items }
    }
    const lit = literal(t)
    if (lit) return lit
    if (t.type !== 'ident') throw new Error(`${src}: unexpected ${JSON.stringify(t)}`)
    if (peek().type === 'parenleft') {
      next()
      const args = []
      while (peek().type !== 'parenright') {
        args.push(expr())
        if (peek().type === 'comma') next()
      }
      next()
      return [t.value, ...args]
    }
    let path = t.value
    while (peek().type === 'dot') {
      next()
      path += '.' + expect('ident').value
    }
    return path
  }
  function comparison() {
    const left = operand()
    const t = peek()
    if (t.type === 'operator' && t.value !== '!') {
      next()
      return [t.value, left, operand()]
    }
    if (t.type === 'ident' && t.value === 'in') {
      next()
      return ['in', left, operand()]
    }
    return left
  }
  function chain(word, sub) {
    const items = [sub()]
    while (peek().type === 'conditional' && peek().value === word) {
      next()
      items.push(sub())
    }
    return items.length === 1 ? items[0] : [word, ...items]
  }
  const andExpr = () => chain('and', comparison)
  const expr = () => chain('or', andExpr)
  const ir = expr()
  if (peek().type !== 'eos') throw new Error(`${src}: trailing ${JSON.stringify(peek())}`)
  return ir
}

function main() {
  const [filtersFile, eventsFile, secs, mode] = process.argv.slice(2)
  const budget = Number(secs) * 1000
  const events = fs.readFileSync(eventsFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
  if (mode === 'cached') {
    const parse = JSON.parse
    const cache = new Map()
    JSON.parse = (s, r) => {
      let v = cache.get(s)
      if (v === undefined) {
        v = parse(s, r)
        if (typeof s === 'string' && s.length < 4096) cache.set(s, v)
      }
      return v
    }
  }
  for (const line of fs.readFileSync(filtersFile, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue
    const [name, src] = line.split('\t')
    const matcher = { type: 'fql', ir: JSON.stringify(compile(src)) }
    let hits = 0
    for (const ev of events) if (matches(ev, matcher)) hits++
    let evals = 0
    let sink = 0
    // CPU time of the process (user + system), like fql_bench.c: robust on a
    // shared machine. It includes V8's GC/JIT threads, which are part of the cost.
    const cpu = () => {
      const u = process.cpuUsage()
      return (u.user + u.system) / 1000
    }
    const t0 = cpu()
    let elapsed = 0
    do {
      for (let rep = 0; rep < 16; rep++) for (const ev of events) if (matches(ev, matcher)) sink++
      evals += 16 * events.length
      elapsed = cpu() - t0
    } while (elapsed < budget)
    process.stdout.write(`${name}\t${Math.round((evals * 1000) / elapsed)}\t${hits}\n`)
    if (sink < 0) console.log(sink)
  }
}

main()
