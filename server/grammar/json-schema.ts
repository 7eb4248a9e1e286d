// JSON Schema -> GBNF, for response_format json_schema (and json_object: any JSON object).
// No npm package does this step on its own (node-llama-cpp has one inside, with llama.cpp's
// binaries); this is our own, for the subset structured-output clients use:
//
//   type (one or a list), properties, required, additionalProperties: false (the default
//   here: only the listed keys), items, minItems, maxItems, enum, const, anyOf / oneOf,
//   $ref to #/$defs/... or #/definitions/..., minLength / maxLength on strings, and the
//   annotations title, description, default, examples, $schema, $id, strict.
//
// Anything else (pattern, format, minimum, allOf, additionalProperties: true, ...)
// cannot be enforced by the grammar and throws SchemaError naming the keyword and where
// it sits, for a 400. Output is compact (at most one space between tokens), required keys
// first in schema order then optional ones in schema order; strings are any JSON string
// with escapes, numbers at most 16 digits each side.

export class SchemaError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
    this.name = 'SchemaError';
  }
}

type Schema = Record<string, unknown> | boolean;

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', 'strict', '$comment']);
const KNOWN = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions', 'minLength', 'maxLength']);

/** The shared JSON rules (ws, string, number, value, ...) every converted schema uses. */
export const BASE = `ws ::= " "?
string ::= "\\"" char* "\\""
char ::= [^"\\\\\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
value ::= object | array | string | number | boolean | null
object ::= "{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"
array ::= "[" ws ( value ( ws "," ws value )* )? ws "]"
`;

/** GBNF literal for a JSON text. */
function lit(json: string): string {
  return JSON.stringify(json);
}

/** Schemas nest at most this deep; deeper is refused (a 400, not a stack overflow). */
const MAX_DEPTH = 64;

/** A client-supplied name or path, cut for an error message (they can be megabytes long). */
function short(s: string): string {
  return s.length <= 60 ? s : `${s.slice(0, 60)}... (${s.length} characters)`;
}

/** JSON text of a const / enum value, refused when it nests too deep to serialise. */
function jsonOf(v: unknown, at: string): string {
  try {
    return JSON.stringify(v);
  } catch {
    throw new SchemaError(at, `the value at '${short(at)}' nests too deep`);
  }
}

class Converter {
  private readonly rules: string[] = [];
  private n = 0;
  private readonly refs = new Map<string, string>();

  constructor(private readonly rootSchema: Schema, private readonly prefix = 'r') {}

  convert(): string {
    const root = this.visit(this.rootSchema, '');
    this.rules.unshift(`root ::= ws ${root} ws`);
    return this.rules.join('\n') + '\n' + BASE;
  }

  /** The schema's own rules (names start with the prefix) and the element naming its value; BASE not included. */
  rulesOnly(): { value: string; rules: string } {
    const value = this.visit(this.rootSchema, '');
    return { value, rules: this.rules.join('\n') };
  }

  private rule(body: string): string {
    const name = `${this.prefix}${this.n++}`;
    this.rules.push(`${name} ::= ${body}`);
    return name;
  }

  private depth = 0;

  private visit(s: Schema, at: string): string {
    if (this.depth >= MAX_DEPTH) throw new SchemaError(short(at), `the schema nests deeper than ${MAX_DEPTH} levels`);
    this.depth++;
    try {
      return this.visitInner(s, at);
    } finally {
      this.depth--;
    }
  }

  private visitInner(s: Schema, at: string): string {
    if (s === true) return 'value';
    if (s === false || typeof s !== 'object' || s === null || Array.isArray(s)) {
      throw new SchemaError(short(at), `the schema at '${short(at) || '/'}' must be an object`);
    }
    for (const k of Object.keys(s)) {
      if (!KNOWN.has(k) && !ANNOTATIONS.has(k)) throw new SchemaError(short(`${at}/${k}`), `JSON schema keyword '${short(k)}' (at '${short(at) || '/'}') is not supported for structured output`);
    }
    if (s.$ref !== undefined) return this.ref(s.$ref, `${at}/$ref`);
    if (s.const !== undefined) return lit(jsonOf(s.const, `${at}/const`));
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw new SchemaError(`${at}/enum`, `'enum' at '${at || '/'}' must be a non-empty array`);
      return this.rule(s.enum.map((v) => lit(jsonOf(v, `${at}/enum`))).join(' | '));
    }
    const any = s.anyOf ?? s.oneOf;
    if (any !== undefined) {
      const key = s.anyOf !== undefined ? 'anyOf' : 'oneOf';
      if (!Array.isArray(any) || any.length === 0) throw new SchemaError(`${at}/${key}`, `'${key}' at '${at || '/'}' must be a non-empty array`);
      return this.rule(any.map((x, i) => this.visit(x as Schema, `${at}/${key}/${i}`)).join(' | '));
    }
    const type = s.type;
    if (type === undefined) return s.properties !== undefined ? this.object(s, at) : 'value';
    if (Array.isArray(type)) return this.rule(type.map((t) => this.typed(s, String(t), at)).join(' | '));
    return this.typed(s, String(type), at);
  }

  private typed(s: Record<string, unknown>, type: string, at: string): string {
    switch (type) {
      case 'object':
        return this.object(s, at);
      case 'array':
        return this.array(s, at);
      case 'string':
        return this.string(s, at);
      case 'number':
      case 'integer':
      case 'boolean':
      case 'null':
        return type;
      default:
        throw new SchemaError(`${at}/type`, `unknown type '${type}' at '${at || '/'}'`);
    }
  }

  private count(s: Record<string, unknown>, key: string, at: string): number | undefined {
    const v = s[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new SchemaError(`${at}/${key}`, `'${key}' at '${at || '/'}' must be a non-negative integer`);
    return v;
  }

  private string(s: Record<string, unknown>, at: string): string {
    const min = this.count(s, 'minLength', at) ?? 0;
    const max = this.count(s, 'maxLength', at);
    if (min === 0 && max === undefined) return 'string';
    return this.rule(`"\\"" char{${min},${max ?? ''}} "\\""`);
  }

  private array(s: Record<string, unknown>, at: string): string {
    const item = s.items === undefined ? 'value' : this.visit(s.items as Schema, `${at}/items`);
    const min = this.count(s, 'minItems', at) ?? 0;
    const max = this.count(s, 'maxItems', at);
    if (max !== undefined && max < min) throw new SchemaError(`${at}/maxItems`, `'maxItems' below 'minItems' at '${at || '/'}'`);
    const more = `( ws "," ws ${item} )`;
    if (max === 0) return this.rule(`"[" ws "]"`);
    const restMin = Math.max(0, min - 1);
    const rest = max === undefined ? `${more}{${restMin},}` : `${more}{${restMin},${max - 1}}`;
    const body = `${item} ${rest}`;
    return this.rule(min === 0 ? `"[" ws ( ${body} )? ws "]"` : `"[" ws ${body} ws "]"`);
  }

  private object(s: Record<string, unknown>, at: string): string {
    const props = (s.properties ?? {}) as Record<string, Schema>;
    if (typeof props !== 'object' || Array.isArray(props)) throw new SchemaError(`${at}/properties`, `'properties' at '${at || '/'}' must be an object`);
    const ap = s.additionalProperties;
    if (ap !== undefined && ap !== false) {
      // An empty schema with no properties is "any object" (json_object).
      if (!(ap === true && s.properties === undefined)) {
        throw new SchemaError(`${at}/additionalProperties`, `'additionalProperties' other than false (at '${at || '/'}') is not supported for structured output`);
      }
    }
    if (s.properties === undefined) return 'object';
    const required = (s.required ?? []) as unknown[];
    if (!Array.isArray(required)) throw new SchemaError(`${at}/required`, `'required' at '${at || '/'}' must be an array`);
    for (const r of required) {
      if (typeof r !== 'string' || !(r in props)) throw new SchemaError(`${at}/required`, `'required' at '${at || '/'}' names ${jsonOf(typeof r === 'string' ? short(r) : r, `${at}/required`)}, which is not in 'properties'`);
    }
    const kv = (k: string) => `${lit(JSON.stringify(k))} ws ":" ws ${this.visit(props[k], `${at}/properties/${k}`)}`;
    const req = Object.keys(props).filter((k) => required.includes(k)).map(kv);
    const opt = Object.keys(props).filter((k) => !required.includes(k)).map(kv);
    const sep = ' ws "," ws ';
    let body: string;
    if (req.length > 0) {
      body = req.join(sep) + opt.map((o) => ` ( ws "," ws ${o} )?`).join('');
    } else if (opt.length > 0) {
      // Whichever optional key comes first, the later ones may follow it.
      const starts = opt.map((o, i) => o + opt.slice(i + 1).map((x) => ` ( ws "," ws ${x} )?`).join(''));
      body = `( ${starts.map((x) => `( ${x} )`).join(' | ')} )?`;
    } else {
      body = '';
    }
    return this.rule(`"{" ws ${body} ws "}"`);
  }

  private ref(ref: unknown, at: string): string {
    if (typeof ref !== 'string') throw new SchemaError(at, `'$ref' must be a string`);
    const known = this.refs.get(ref);
    if (known) return known;
    const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
    const root = this.rootSchema as Record<string, unknown>;
    const target = m ? (root[m[1]] as Record<string, Schema> | undefined)?.[m[2]] : undefined;
    if (target === undefined) throw new SchemaError(at, `'$ref' ${jsonOf(typeof ref === 'string' ? short(ref) : ref, at)} does not point into this schema's $defs / definitions`);
    // Named before visiting, so recursive definitions refer to themselves.
    const name = `${this.prefix}${this.n++}`;
    this.refs.set(ref, name);
    const body = this.visit(target, `/${m![1]}/${m![2]}`);
    this.rules.push(`${name} ::= ${body}`);
    return name;
  }
}

/** GBNF for the schema; throws SchemaError naming what is not supported. */
export function schemaToGbnf(schema: unknown): string {
  return new Converter(schema as Schema).convert();
}

/** A schema's rules for embedding in a larger grammar (with BASE added once). */
export function schemaRules(schema: unknown, prefix: string): { value: string; rules: string } {
  return new Converter(schema as Schema, prefix).rulesOnly();
}

/** Any JSON object (response_format json_object). */
export const JSON_OBJECT_GBNF = `root ::= ws object ws\n${BASE}`;
