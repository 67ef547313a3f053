// block-msgpack-hooks.js - the module resolution hook block-msgpack.js
// registers: @msgpack/msgpack (and its subpaths) is not found.
export async function resolve(specifier, context, nextResolve) {
  if (specifier === '@msgpack/msgpack' || specifier.startsWith('@msgpack/msgpack/')) {
    const err = new Error(`Cannot find package '@msgpack/msgpack' imported from ${context.parentURL}`);
    err.code = 'ERR_MODULE_NOT_FOUND';
    throw err;
  }
  return nextResolve(specifier, context);
}
