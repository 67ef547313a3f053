// common.mjs - what both Node peers share: configuration, the token check
// and the outbox reader. It does what the Armonía backend does today:
// jsonwebtoken's HS256 verify, a tenant check against the database (cached),
// and, on every NOTIFY hub_outbox, read the new outbox rows in seq order and
// hand each to the peer's emit function.
// Each peer passes in its own pg and jsonwebtoken (installed in its own
// directory, so this file resolves no package itself).
let pg;
let jwt;
let work;

/** Must be called first, with the peer's pg and jsonwebtoken modules. */
export function useModules(pgModule, jwtModule) {
  pg = pgModule;
  jwt = jwtModule;
  work = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
}

export const PORT = Number(process.env.PORT ?? 3002);
export const DATABASE_URL = process.env.DATABASE_URL;
export const SECRET = process.env.JWT_SECRET_KEY;
if (!DATABASE_URL || !SECRET) {
  console.error('peer: DATABASE_URL and JWT_SECRET_KEY are required');
  process.exit(2);
}

const tenantCache = new Map(); // tenant -> Promise<boolean>

/** Verifies token; resolves with {sub, tenant, role, units} or rejects. */
export async function authenticate(token) {
  const c = jwt.verify(String(token ?? ''), SECRET, { algorithms: ['HS256'], clockTolerance: 30 });
  const tenant = c.tenant ?? c.schemaName;
  const role = String(c.role ?? '').toLowerCase();
  if (!c.sub || !tenant || !['resident', 'guard', 'admin'].includes(role)) throw new Error('bad claims');
  let known = tenantCache.get(tenant);
  if (!known) {
    known = work.query('SELECT hub.is_tenant($1) AS ok', [tenant]).then((r) => r.rows[0].ok);
    tenantCache.set(tenant, known);
  }
  if (!(await known)) throw new Error('bad signature');
  const units = Array.isArray(c.units) ? c.units.map(String) : [];
  return { sub: String(c.sub), tenant, role, units };
}

/** The rooms a connection joins, as "tenant:room" keys. */
export function roomsOf(id) {
  const r = ['all', `user:${id.sub}`, `role:${id.role}`, ...id.units.map((u) => `unit:${u}`)];
  return r;
}

/**
 * LISTENs on hub_outbox and calls emit(row) for every committed outbox row in
 * seq order, starting after the newest row present at start.
 */
export async function followOutbox(emit) {
  const listener = new pg.Client({ connectionString: DATABASE_URL });
  await listener.connect();
  const start = await listener.query('SELECT coalesce(max(seq), 0)::text AS s FROM hub.outbox');
  let cursor = start.rows[0].s;
  let running = false;
  let again = false;
  const drain = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        for (;;) {
          const r = await work.query(
            `SELECT id::text, seq::text, tenant, kind, rooms, data, priority, ack,
                    (extract(epoch FROM created_at) * 1000)::bigint::text AS ts
               FROM hub.outbox WHERE seq > $1 ORDER BY seq LIMIT 500`,
            [cursor]);
          for (const row of r.rows) {
            cursor = row.seq;
            emit(row);
          }
          if (r.rows.length < 500) break;
        }
      } while (again);
    } catch (e) {
      console.error('peer: outbox read failed:', e.message);
    } finally {
      running = false;
    }
  };
  listener.on('notification', drain);
  await listener.query('LISTEN hub_outbox');
  return drain;
}

/** The event map the hub sends (docs/protocol.md), for one row. */
export function eventOf(row, room) {
  return {
    type: 'event', id: Number(row.id), seq: Number(row.seq), kind: row.kind,
    priority: row.priority, ack: row.ack, ts: Number(row.ts), room, data: row.data,
  };
}
