// Peer (b) for bench/http/run.sh: json-server 0.17 (pinned in package.json) serving a
// db file whose top-level keys are singular resources, so GET /<key> answers that
// object as it is. It is json-server's own create()/defaults()/router() — what its CLI
// runs — with two changes that only help it: no request log, and compact JSON (its CLI
// pretty-prints with 2 spaces) so that its bodies are byte-for-byte manifold's.
//   node json-server.js DB_FILE PORT
const jsonServer = require('json-server');
const [dbFile, port] = process.argv.slice(2);
const server = jsonServer.create();
server.set('json spaces', 0);
server.use(jsonServer.defaults({ logger: false, noCors: true, readOnly: true, noGzip: true }));
server.use(jsonServer.router(dbFile));
server.listen(Number(port), '127.0.0.1', () => {
  console.error(`json-server ${require('json-server/package.json').version} on 127.0.0.1:${port} (node ${process.version})`);
});
