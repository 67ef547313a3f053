// codec.js - the two wire formats of armonia.v1.
//
// JSON travels in text frames and needs nothing. MessagePack travels in
// binary frames and needs @msgpack/msgpack, an optional peer dependency the
// app installs only if it wants MessagePack: it is loaded only when the
// msgpack format is chosen (dynamic import), so the JSON path - the one the
// unbundled guard console uses - has no dependency at all. A browser page
// without a bundler can pass the library itself as options.msgpack.

export const SUBPROTOCOLS = Object.freeze({
  json: 'armonia.v1.json',
  msgpack: 'armonia.v1.msgpack',
});

/** Turns what a WebSocket delivers for a binary frame into a Uint8Array, or null. */
function bytesOf(data) {
  if (data instanceof Uint8Array) return data; // Node Buffers too
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    // ws with binaryType 'fragments'.
    const total = data.reduce((n, d) => n + d.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const d of data) {
      out.set(d, at);
      at += d.length;
    }
    return out;
  }
  return null;
}

const jsonCodec = Object.freeze({
  format: 'json',
  subprotocol: SUBPROTOCOLS.json,
  encode: (obj) => JSON.stringify(obj),
  decode(data) {
    if (typeof data !== 'string') throw new Error('binary frame on a JSON connection');
    return JSON.parse(data);
  },
});

function msgpackCodec(lib) {
  if (typeof lib?.encode !== 'function' || typeof lib?.decode !== 'function')
    throw new Error('options.msgpack must provide encode() and decode() (the @msgpack/msgpack module)');
  return Object.freeze({
    format: 'msgpack',
    subprotocol: SUBPROTOCOLS.msgpack,
    encode: (obj) => lib.encode(obj),
    decode(data) {
      if (typeof data === 'string') throw new Error('text frame on a MessagePack connection');
      const bytes = bytesOf(data);
      if (!bytes) throw new Error(`cannot read a binary frame of type ${Object.prototype.toString.call(data)}`);
      return lib.decode(bytes);
    },
  });
}

/**
 * Resolves with the codec of `format` ('json' or 'msgpack'). For msgpack,
 * `lib` (the @msgpack/msgpack module) is used when given, else imported.
 */
export async function loadCodec(format, lib) {
  if (format === 'json') return jsonCodec;
  if (format !== 'msgpack') throw new TypeError(`format must be 'json' or 'msgpack', not ${JSON.stringify(format)}`);
  if (lib) return msgpackCodec(lib);
  let mod;
  try {
    mod = await import('@msgpack/msgpack');
  } catch (err) {
    throw new Error(
      `format 'msgpack' needs the @msgpack/msgpack package, an optional peer dependency: npm install @msgpack/msgpack ` +
        `(or pass the library as options.msgpack, or use format 'json'). Importing it failed: ${err.message}`,
    );
  }
  return msgpackCodec(mod);
}
