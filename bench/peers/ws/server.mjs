// bench/peers/ws - the hub's job on Node's plain `ws` package + pg
// LISTEN/NOTIFY: the hub's own wire protocol (ws://HOST:PORT/ws, subprotocol
// armonia.v1.json, first frame {"type":"auth","token":…} → welcome), rooms
// as Map<"tenant:room", Set<socket>>, each event encoded once per room and
// sent to every member not already reached through an earlier room.
//   PORT=3003 DATABASE_URL=… JWT_SECRET_KEY=… node bench/peers/ws/server.mjs
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import pg from 'pg';
import jwt from 'jsonwebtoken';
import { PORT, useModules, authenticate, roomsOf, followOutbox, eventOf } from '../common.mjs';

useModules(pg, jwt);

const rooms = new Map();
const http = createServer((req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({
  server: http,
  path: '/ws',
  perMessageDeflate: false,
  handleProtocols: (set) => (set.has('armonia.v1.json') ? 'armonia.v1.json' : false),
});

function join(ws, key) {
  let s = rooms.get(key);
  if (!s) rooms.set(key, (s = new Set()));
  s.add(ws);
  ws.rooms.push(key);
}

wss.on('connection', (ws) => {
  ws.rooms = [];
  ws.authed = false;
  const deadline = setTimeout(() => ws.close(4001), 10000);
  ws.on('message', async (buf) => {
    let m;
    try {
      m = JSON.parse(buf.toString());
    } catch {
      return ws.send('{"type":"error","code":"bad_request"}');
    }
    if (m.type === 'auth' && !ws.authed) {
      try {
        const id = await authenticate(m.token);
        clearTimeout(deadline);
        ws.authed = true;
        ws.id = id;
        const names = roomsOf(id);
        for (const r of names) join(ws, `${id.tenant}:${r}`);
        ws.send(JSON.stringify({ type: 'welcome', session: String(Math.random()).slice(2), user: id.sub, tenant: id.tenant, role: id.role, rooms: names, last_seq: 0 }));
      } catch {
        ws.send('{"type":"error","code":"unauthorized","message":"bad token"}');
        ws.close(4001);
      }
    } else if (m.type === 'ping') ws.send('{"type":"pong"}');
  });
  ws.on('close', () => {
    clearTimeout(deadline);
    for (const k of ws.rooms) {
      const s = rooms.get(k);
      if (s) {
        s.delete(ws);
        if (!s.size) rooms.delete(k);
      }
    }
  });
});

await followOutbox((row) => {
  const seen = row.rooms.length > 1 ? new Set() : null;
  for (const r of row.rooms) {
    const members = rooms.get(`${row.tenant}:${r}`);
    if (!members) continue;
    const text = JSON.stringify(eventOf(row, r));
    for (const ws of members) {
      if (seen) {
        if (seen.has(ws)) continue;
        seen.add(ws);
      }
      ws.send(text);
    }
  }
});
http.listen(PORT, '127.0.0.1', () => console.log(`ws peer: listening on 127.0.0.1:${PORT}`));
