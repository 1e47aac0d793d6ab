// Helper of bench/resources/run.sh: walks GET <collection>?page_size=100 from the first
// page to the last by following next_page_token (one keep-alive connection), checks that
// the walk sees every source once and in order, and remembers the page token that leads
// to page DEEP+1 (i.e. after following next_page_token DEEP times).
//   node walk.js BASE_URL COLLECTION_PATH TOKEN DEEP
// Prints one JSON object: {"items": N, "pages": N, "deep_page": N, "deep_token": "..."
// (URL-encoded, "" when there are not that many pages), "deep_first": NAME, "ms": N}.
const http = require('http');
const [base, path, token, deepArg] = process.argv.slice(2);
const deep = Number(deepArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode} ${body.slice(0, 200)}`));
        else resolve(JSON.parse(body));
      });
    }).on('error', reject);
  });
}

(async () => {
  const t0 = Date.now();
  let token_ = '', pages = 0, items = 0, last = '', deepToken = '', deepFirst = '';
  for (;;) {
    const q = token_ ? `&page_token=${encodeURIComponent(token_)}` : '';
    const page = await get(`${base}${path}?page_size=100${q}`);
    pages++;
    for (const s of page.sources) {
      if (!(s.name > last)) throw new Error(`walk: ${s.name} does not sort after ${last}`);
      last = s.name;
      items++;
    }
    if (pages === deep + 1) deepFirst = page.sources.length ? page.sources[0].name : '';
    token_ = page.next_page_token || '';
    if (pages === deep && token_) deepToken = encodeURIComponent(token_);
    if (!token_) break;
  }
  agent.destroy();
  console.log(JSON.stringify({ items, pages, deep_page: deepToken ? deep + 1 : 0, deep_token: deepToken,
                               deep_first: deepFirst, ms: Date.now() - t0 }));
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
