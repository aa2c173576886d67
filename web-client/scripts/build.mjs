// Copies the browser build of @msgpack/msgpack into public/vendor/, the only
// third-party file the pages load. It is a classic script that defines the
// global `MessagePack` (the CSP allows scripts from our own origin only).
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const require = createRequire(path.join(root, 'package.json'));
const pkgDir = path.dirname(require.resolve('@msgpack/msgpack/package.json'));
const vendor = path.join(root, 'public', 'vendor');
mkdirSync(vendor, { recursive: true });
copyFileSync(path.join(pkgDir, 'dist.umd', 'msgpack.min.js'), path.join(vendor, 'msgpack.min.js'));
console.log('web-client: public/vendor/msgpack.min.js ready');
