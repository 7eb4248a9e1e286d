// Bounds what JSON.parse may cost before it runs. Request bodies are parsed on the event
// loop, in one piece, and JSON.parse's time grows with the number of values, not bytes:
// measured on this project's CI machine, a 1 MiB body of 260k token ids took 30-90 ms of
// event-loop CPU, one nested 500k levels deep about 100 ms, so a few clients posting such
// bodies at once held /health for close to a second. The body is scanned as it streams in
// (a few hundred microseconds per 64 KiB chunk, between other events), counting nesting
// depth and values; past either bound the request ends with a 400 before anything is
// parsed. Bounds: JSON_MAX_DEPTH (no request field nests anywhere near it) and the
// jsonMaxValues setting (configs/README.md), whose default is well above what any field
// needs at the default context size (a prompt of token ids is at most one per position).

import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ApiError } from './errors.js';

export const JSON_MAX_DEPTH = 64;
export const DEFAULT_JSON_MAX_VALUES = 65536;

const QUOTE = 0x22, BACKSLASH = 0x5c, COMMA = 0x2c, OPEN_ARR = 0x5b, OPEN_OBJ = 0x7b, CLOSE_ARR = 0x5d, CLOSE_OBJ = 0x7d;

/** Counts JSON structure byte by byte (bytes >= 0x80 of UTF-8 never look like ASCII). */
export class JsonShapeScanner {
  private inString = false;
  private escaped = false;
  private depth = 0;
  /** Values seen: every element separator plus every array and object opened. */
  values = 1;

  constructor(private readonly maxValues: number) {}

  /** Returns the problem with the body so far, or null. */
  feed(b: Uint8Array): string | null {
    let { inString, escaped, depth, values } = this;
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
      } else if (c === QUOTE) inString = true;
      else if (c === COMMA) values++;
      else if (c === OPEN_ARR || c === OPEN_OBJ) {
        values++;
        if (++depth > JSON_MAX_DEPTH) return `the JSON body nests deeper than ${JSON_MAX_DEPTH} levels`;
      } else if (c === CLOSE_ARR || c === CLOSE_OBJ) depth--;
    }
    Object.assign(this, { inString, escaped, depth, values });
    if (values > this.maxValues)
      return `the JSON body holds more than ${this.maxValues} values (arrays, objects and their elements; the server's jsonMaxValues setting)`;
    return null;
  }
}

/** Scans JSON request bodies as they stream in; too deep or too many values: 400 before parsing. */
export function registerJsonLimits(app: FastifyInstance, maxValues: number): void {
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (!/\bjson\b/i.test(String(req.headers['content-type'] ?? ''))) return payload;
    const scan = new JsonShapeScanner(maxValues);
    const out = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        const problem = scan.feed(chunk);
        if (problem) cb(new ApiError(400, `${problem}.`, { code: 'json_too_complex' }));
        else cb(null, chunk);
      },
    });
    payload.on('error', (e) => out.destroy(e));
    return payload.pipe(out);
  });
}
