// bench/peers/socketio - the seed's stack: Node.js + Socket.IO 4.8 + pg
// LISTEN/NOTIFY, doing the hub's job the way the Armonía backend does it.
// Clients connect with Engine.IO v4 (websocket transport), send the JWT as
// the namespace-connect auth payload ({token}), join tenant-scoped rooms
// (all, user:<sub>, role:<role>, unit:<u>), get a "welcome" event, and
// receive "event" events emitted to rooms on every NOTIFY hub_outbox.
//   PORT=3002 DATABASE_URL=… JWT_SECRET_KEY=… node bench/peers/socketio/server.mjs
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import pg from 'pg';
import jwt from 'jsonwebtoken';
import { PORT, useModules, authenticate, roomsOf, followOutbox, eventOf } from '../common.mjs';

useModules(pg, jwt);

const http = createServer((req, res) => {
  res.writeHead(404).end();
});
const io = new Server(http, { serveClient: false, cors: { origin: '*' } });

io.use(async (socket, next) => {
  try {
    socket.data.id = await authenticate(socket.handshake.auth?.token);
    next();
  } catch (e) {
    next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  const id = socket.data.id;
  const rooms = roomsOf(id);
  socket.join(rooms.map((r) => `${id.tenant}:${r}`));
  socket.emit('welcome', { type: 'welcome', session: socket.id, user: id.sub, tenant: id.tenant, role: id.role, rooms, last_seq: 0 });
  socket.on('subscribe', (m) => {
    const room = String(m?.room ?? '');
    if (id.role === 'admin' || (id.role === 'guard' && room.startsWith('unit:'))) {
      socket.join(`${id.tenant}:${room}`);
      socket.emit('subscribed', { type: 'subscribed', room });
    } else socket.emit('error', { type: 'error', code: 'forbidden' });
  });
});

await followOutbox((row) => {
  io.to(row.rooms.map((r) => `${row.tenant}:${r}`)).emit('event', eventOf(row, row.rooms[0]));
});
http.listen(PORT, '127.0.0.1', () => console.log(`socketio peer: listening on 127.0.0.1:${PORT}`));
