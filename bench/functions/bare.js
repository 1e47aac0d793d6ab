// The ceiling for bench/functions: the same trivial destination function called directly in
// a bare Node.js loop — no process boundary, no vm context, no JSON round trip — with the
// event parsed and the result serialized as the runtime does. Prints one JSON line.
'use strict';
const seconds = Number(process.argv[2] || 3);
const event = '{"type":"track","event":"Bench","userId":"u","properties":{"n":1}}';
async function onTrack(event, settings) { return { ok: true, n: event.properties.n }; }
(async () => {
    const end = Date.now() + seconds * 1000;
    let n = 0;
    const t0 = Date.now();
    while (Date.now() < end) {
        for (let i = 0; i < 1000; i++) {
            const out = JSON.stringify(await onTrack(JSON.parse(event), {}));
            if (out.length < 2) throw new Error('bad');
            n++;
        }
    }
    const el = (Date.now() - t0) / 1000;
    const c0 = process.hrtime.bigint();
    // cold start of a bare process is measured by the caller (time to run `node -e 0`)
    console.log(JSON.stringify({ invocations: n, seconds: el, per_second: Math.round(n / el),
                                 hr: Number(process.hrtime.bigint() - c0) }));
})();
