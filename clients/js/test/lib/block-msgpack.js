// block-msgpack.js - loaded with `node --import`: makes @msgpack/msgpack
// impossible to resolve, as in an app that did not install the optional
// peer dependency, whatever node_modules holds.
import { register } from 'node:module';

register(new URL('./block-msgpack-hooks.js', import.meta.url));
