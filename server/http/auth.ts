// API keys: `Authorization: Bearer KEY` or `X-Api-Key: KEY`. Keys are compared as
// SHA-256 digests with timingSafeEqual, against every configured key without an early
// exit, so timing says nothing about how much of a key matched or which key it was.
// /health stays public (load balancers probe it). Keys are never logged: the logger
// redacts both headers.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from './errors.js';

const PUBLIC_PATHS = new Set(['/health']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
    if (m) return m[1].trim();
  }
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x.length > 0) return x.trim();
  return null;
}

export function makeKeyChecker(keys: readonly string[]): (candidate: string) => boolean {
  const digests = keys.map(digest);
  return (candidate) => {
    const d = digest(candidate);
    let ok = false;
    for (const k of digests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  };
}

export function authPlugin(keys: readonly string[]) {
  const check = makeKeyChecker(keys);
  const plugin = async (app: FastifyInstance) => {
    if (keys.length === 0) return;
    app.addHook('onRequest', async (req) => {
      if (req.method === 'OPTIONS' || PUBLIC_PATHS.has(req.url.split('?')[0])) return;
      const key = presentedKey(req);
      if (key === null) {
        throw new ApiError(401, 'Missing API key: send "Authorization: Bearer <key>" or "X-Api-Key: <key>".', { code: 'missing_api_key', headers: { 'www-authenticate': 'Bearer' } });
      }
      if (!check(key)) throw new ApiError(401, 'Incorrect API key provided.', { code: 'invalid_api_key', headers: { 'www-authenticate': 'Bearer' } });
    });
  };
  // Hooks must reach every route, not just this plugin's scope (what fastify-plugin does).
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
