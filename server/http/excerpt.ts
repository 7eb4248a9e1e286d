// A short, non-recursive rendering of a client's value for error messages. Error bodies
// must not echo a 900 KB string back, and JSON.stringify on a value nested thousands
// deep overflows the stack (a 500 instead of a 400), so containers are only described.

const MAX_CHARS = 40;

export function excerpt(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    if (v.length <= MAX_CHARS) return JSON.stringify(v);
    return `${JSON.stringify(cutText(v))}... (${v.length} characters)`;
  }
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length} items`;
  return `a ${typeof v}`;
}

/** A key or field name from the request, cut the same way but without quotes. */
export function shortKey(k: string): string {
  return k.length > MAX_CHARS ? `${cutText(k)}...` : k;
}

/** The first MAX_CHARS UTF-16 units, not splitting a surrogate pair (a lone half is not valid UTF-8). */
function cutText(s: string): string {
  const code = s.charCodeAt(MAX_CHARS - 1);
  return s.slice(0, code >= 0xd800 && code < 0xdc00 ? MAX_CHARS - 1 : MAX_CHARS);
}
