// dedupe.js - a bounded memory of the event ids already delivered.
//
// Across reconnections the hub may send an event again (the client resumes
// from the last seq it delivered, and an event can arrive between that save
// and the drop). Ids are the key: the newest `limit` ids are kept, the
// oldest forgotten first, so memory stays bounded however long a console
// stays open.

export class RecentIds {
  /** limit: how many ids to remember (at least 1). */
  constructor(limit = 1000) {
    this.limit = Math.max(1, Math.floor(limit));
    this.ring = new Array(this.limit);
    this.next = 0; // slot the next id goes to
    this.set = new Set();
  }

  has(id) {
    return this.set.has(id);
  }

  /** Remembers id; returns false when it was already known. */
  add(id) {
    if (this.set.has(id)) return false;
    const old = this.ring[this.next];
    if (old !== undefined) this.set.delete(old);
    this.ring[this.next] = id;
    this.next = (this.next + 1) % this.limit;
    this.set.add(id);
    return true;
  }

  get size() {
    return this.set.size;
  }
}
