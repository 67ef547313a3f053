// Unit tests of the pure pieces: the backoff schedule, JWT expiry, the id memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCeiling, backoffDelay, jwtExpiryMs, jwtPayload, RecentIds } from '../src/index.js';
import { fakeJwt } from './lib/fakes.js';

test('the backoff ceiling doubles from 0.5 s and stops at 30 s', () => {
  const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 9, 50, 5000].map((n) => backoffCeiling(n));
  assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000]);
});

test('full jitter: the delay spans [0, ceiling) and follows random()', () => {
  assert.equal(backoffDelay(1, () => 0), 0);
  assert.equal(backoffDelay(1, () => 0.5), 250);
  assert.equal(backoffDelay(4, () => 0.25), 1000);
  assert.equal(backoffDelay(30, () => 0.999999), 29999);
  for (let n = 1; n < 12; n++) {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(n);
      assert.ok(d >= 0 && d < backoffCeiling(n), `attempt ${n}: delay ${d} outside [0, ${backoffCeiling(n)})`);
    }
  }
});

test('the schedule can be tuned', () => {
  assert.equal(backoffCeiling(3, { initialMs: 100, capMs: 250 }), 250);
  assert.equal(backoffCeiling(2, { initialMs: 100, capMs: 250 }), 200);
});

test('jwtExpiryMs reads exp without verifying, and tolerates garbage', () => {
  assert.equal(jwtExpiryMs(fakeJwt({ sub: 'g', exp: 1764262800 })), 1764262800000);
  assert.equal(jwtPayload(fakeJwt({ sub: 'José Ñandú' })).sub, 'José Ñandú');
  assert.equal(jwtExpiryMs(fakeJwt({ sub: 'g' })), null);
  assert.equal(jwtExpiryMs('not a token'), null);
  assert.equal(jwtExpiryMs('a.%%%.c'), null);
  assert.equal(jwtExpiryMs(undefined), null);
});

test('RecentIds remembers the newest ids only', () => {
  const r = new RecentIds(3);
  assert.equal(r.add(1), true);
  assert.equal(r.add(1), false);
  r.add(2);
  r.add(3);
  r.add(4); // forgets 1
  assert.equal(r.has(1), false);
  assert.equal(r.has(4), true);
  assert.equal(r.size, 3);
  assert.equal(r.add(1), true);
  assert.equal(r.has(2), false);
});
