// Peer (b) for bench/resources/run.sh: json-server 0.17 (pinned in package.json and
// package-lock.json) taking the same POSTs as manifold. It is json-server's own
// create()/defaults()/router() — what its CLI runs — with its request log off (which only
// helps it) and a rewrite so that manifold's path reaches its /sources collection:
//   POST /v1beta/workspaces/myworkspace/sources  →  POST /sources
// Every write makes json-server (lowdb's FileSync adapter) rewrite the whole JSON file
// with writeFileSync; nothing is fsync'ed.
//   node json-server.js DB_FILE PORT
const jsonServer = require('json-server');
const [dbFile, port] = process.argv.slice(2);
const server = jsonServer.create();
server.use(jsonServer.defaults({ logger: false, noCors: true, noGzip: true }));
server.use(jsonServer.rewriter({ '/v1beta/workspaces/myworkspace/*': '/$1' }));
server.use(jsonServer.router(dbFile));
server.listen(Number(port), '127.0.0.1', () => {
  console.error(`json-server ${require('json-server/package.json').version} on 127.0.0.1:${port} (node ${process.version})`);
});
