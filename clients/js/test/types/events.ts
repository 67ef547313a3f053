// events.ts - compiled with `tsc --noEmit` (test/unit.types.test.js): what
// index.d.ts lets an app write, and, on each @ts-expect-error line, what it
// must refuse. Nothing here runs.
import {
  createHubClient,
  HubError,
  type AnnouncementData,
  type HubEventOf,
  type HubEventUnion,
  type PanicClaimedData,
  type StateChange,
  type UnknownHubEvent,
} from '@armonia/hub-client';

// An app's own kind, declared once: it joins the union with the same narrowing.
declare module '@armonia/hub-client' {
  interface HubEventMap {
    parcel: { parcelId: string; unitId: string; carrier: string | null };
  }
}

const hub = createHubClient('wss://hub.example.co/ws', { getToken: () => 'jwt', format: 'json' });

hub.on('event', (e) => {
  // Before narrowing: the fields every event has.
  const id: number = e.id;
  const seq: number = e.seq;
  const room: string = e.room;
  // @ts-expect-error -- data differs by kind: no field is known before narrowing on kind
  e.data.name;

  if (e.kind === 'visitor') {
    const name: string = e.data.name;
    const unit: string = e.data.unitId;
    const at: Date = new Date(e.data.createdAt);
    // @ts-expect-error -- a misspelt field does not exist
    e.data.nmae;
    // @ts-expect-error -- a panic's field is not a visitor's
    e.data.message;
    void [name, unit, at];
  }

  if (e.kind === 'panic') {
    const who: string | null = e.data.userName;
    const message: string | null = e.data.message;
    const alert: string = e.data.alertId;
    // @ts-expect-error -- userName may be null
    const sure: string = e.data.userName;
    void [who, message, alert, sure];
  }

  switch (e.kind) {
    case 'payment': {
      const amount: number | string = e.data.amount;
      const done: boolean = e.data.status === 'COMPLETED';
      // @ts-expect-error -- not one of the statuses a payment has
      const odd: boolean = e.data.status === 'PAID';
      // @ts-expect-error -- amount may be a string (MessagePack, huge values)
      const n: number = e.data.amount;
      void [amount, done, odd, n];
      break;
    }
    case 'announcement': {
      const title: string = e.data.title;
      const emergency: boolean = e.data.type === 'emergency';
      const all: AnnouncementData = e.data;
      void [title, emergency, all];
      break;
    }
    case 'panic_claimed': {
      const eventId: number = e.data.eventId;
      const by: string = e.data.guardName ?? e.data.guardId;
      const claimed: PanicClaimedData = e.data;
      // @ts-expect-error -- eventId is a number
      const asText: string = e.data.eventId;
      void [eventId, by, claimed, asText];
      break;
    }
    case 'parcel': {
      const carrier: string | null = e.data.carrier;
      // @ts-expect-error -- not a field of the declared kind
      e.data.weight;
      void carrier;
      break;
    }
    case 'panic':
    case 'visitor':
      break;
    default: {
      // A kind nobody declared still arrives at run time: handled unchecked.
      const other: UnknownHubEvent = e;
      const kind: string = other.kind;
      const anything: unknown = other.data.whatever;
      void [kind, anything];
    }
  }

  // @ts-expect-error -- a kind neither the hub nor the app declared is no member of the union
  if (e.kind === 'visiter') return;

  // Every event is an UnknownHubEvent, for code that handles any kind alike.
  const loose: UnknownHubEvent = e;
  void [id, seq, room, loose];
});

// One kind's type on its own.
function showVisitor(v: HubEventOf<'visitor'>): string {
  return `${v.data.name} → unit ${v.data.unitId}`;
}
// @ts-expect-error -- not a declared kind
type Nope = HubEventOf<'visiter'>;
const events: HubEventUnion[] = [];
for (const e of events) if (e.kind === 'visitor') showVisitor(e);

// Failed attempts arrive as states; errors are for the app to act on.
hub.on('state', (s: StateChange) => {
  if (s.state === 'reconnecting') {
    const wait: number | undefined = s.delayMs;
    const attempt: number | undefined = s.attempt;
    const failure: HubError | undefined = s.error;
    const why: string | undefined = failure?.code;
    void [wait, attempt, why, s.reason];
  }
});
hub.on('error', (err) => {
  if (err.code === 'unauthorized' || err.code === 'forbidden') void err.message;
});
// @ts-expect-error -- no such format
createHubClient('wss://hub.example.co/ws', { getToken: () => 'jwt', format: 'protobuf' });
void (null as unknown as Nope);
