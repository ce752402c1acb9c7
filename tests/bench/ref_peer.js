// The reference peer: a HarperDB 4 subscriber written the way the original tutorial would, with the
// `ws` package, JSON.parse, and one envelope line per record written to every Unix-socket consumer.
//   node ref_peer.js WS_URL SOCKET_PATH
// Prints "listening" once the socket accepts consumers. Needs NODE_PATH=.deps/bench-node/node_modules.
'use strict';
const net = require('net');
const fs = require('fs');
const WebSocket = require('ws');

const [url, socketPath] = process.argv.slice(2);
const [database, table] = new URL(url).pathname.split('/').filter(Boolean);
const consumers = new Set();

try { fs.unlinkSync(socketPath); } catch (e) { /* not there */ }
net.createServer((c) => {
  consumers.add(c);
  c.on('close', () => consumers.delete(c));
  c.on('error', () => consumers.delete(c));
}).listen(socketPath, () => console.log('listening'));

const ws = new WebSocket(url, { headers: { Authorization: 'Basic ' + Buffer.from('bench:bench').toString('base64') } });
ws.on('message', (data) => {
  const change = JSON.parse(data);
  const line = JSON.stringify({
    v: 1, server: 'feed', database, table, op: change.type, id: change.id, ts: change.version,
    cursor: String(change.localTime), record: change.value,
  }) + '\n';
  for (const c of consumers) c.write(line);
});
ws.on('error', (e) => { console.error('ref_peer: ' + e.message); process.exit(1); });
