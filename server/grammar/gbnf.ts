// GBNF (llama.cpp's grammar syntax) -> a compiled grammar: rules of alternatives of
// elements, each element a character class or a reference to another rule. Groups and
// the repetition operators (* + ? {m} {m,} {m,n}) become extra anonymous rules, so the
// matcher (matcher.ts) only ever sees classes and references.
//
//   root   ::= "{" ws pair ("," ws pair)* "}"      # comments run to the end of the line
//   pair   ::= [a-z]+ ":" ws ( "true" | "false" )
//   ws     ::= [ \t\n]*
//
// Literals and classes take \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH; `.` is any
// character. The entry point is `root`.

export interface CharClass {
  t: 'c';
  /** Inclusive code point ranges, as pairs. */
  ranges: number[];
  neg: boolean;
}
export interface RuleRef {
  t: 'r';
  rule: number;
}
export type Element = CharClass | RuleRef;

export interface Grammar {
  /** rules[r] = alternatives; each alternative a sequence of elements (empty: epsilon). */
  rules: Element[][][];
  names: string[];
  root: number;
}

export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrammarError';
  }
}

const NAME = /[A-Za-z0-9_-]/;

class Parser {
  private pos = 0;
  readonly rules: Element[][][] = [];
  readonly names: string[] = [];
  private readonly ids = new Map<string, number>();
  private readonly defined = new Set<string>();

  constructor(private readonly src: string) {}

  parse(): Grammar {
    this.skip(true);
    while (this.pos < this.src.length) {
      const name = this.name();
      this.skip(true);
      if (!this.src.startsWith('::=', this.pos)) this.fail(`expected '::=' after rule name '${name}'`);
      this.pos += 3;
      if (this.defined.has(name)) this.fail(`rule '${name}' is defined twice`);
      this.defined.add(name);
      this.rules[this.id(name)] = this.alternatives(false);
      this.skip(true);
    }
    for (const n of this.ids.keys()) if (!this.defined.has(n)) throw new GrammarError(`rule '${n}' is used but not defined`);
    const root = this.ids.get('root');
    if (root === undefined) throw new GrammarError(`the grammar has no 'root' rule`);
    return { rules: this.rules, names: this.names, root };
  }

  private fail(msg: string): never {
    const line = this.src.slice(0, this.pos).split('\n').length;
    throw new GrammarError(`${msg} (line ${line})`);
  }

  private id(name: string): number {
    let r = this.ids.get(name);
    if (r === undefined) {
      r = this.names.length;
      this.ids.set(name, r);
      this.names.push(name);
      this.rules.push([]);
    }
    return r;
  }

  private anon(alts: Element[][]): RuleRef {
    const r = this.names.length;
    this.names.push(`_anon${r}`);
    this.rules.push(alts);
    return { t: 'r', rule: r };
  }

  /** Spaces and comments; newlines only where allowed. */
  private skip(newlines: boolean): void {
    for (;;) {
      const c = this.src[this.pos];
      if (c === ' ' || c === '\t' || (newlines && (c === '\n' || c === '\r'))) this.pos++;
      else if (c === '#') while (this.pos < this.src.length && this.src[this.pos] !== '\n') this.pos++;
      else return;
    }
  }

  private name(): string {
    const start = this.pos;
    while (this.pos < this.src.length && NAME.test(this.src[this.pos])) this.pos++;
    if (this.pos === start) this.fail(`expected a rule name at ${JSON.stringify(this.src.slice(this.pos, this.pos + 10))}`);
    return this.src.slice(start, this.pos);
  }

  /** Does a new rule (`name ::=`) start here? Ends the current rule's body. */
  private atRuleStart(): boolean {
    const m = /^[A-Za-z0-9_-]+[ \t]*::=/.exec(this.src.slice(this.pos, this.pos + 200));
    return m !== null;
  }

  private alternatives(nested: boolean): Element[][] {
    const alts: Element[][] = [this.sequence(nested)];
    for (;;) {
      this.skip(true);
      if (this.src[this.pos] !== '|') return alts;
      this.pos++;
      alts.push(this.sequence(nested));
    }
  }

  private sequence(nested: boolean): Element[] {
    const seq: Element[] = [];
    for (;;) {
      // A rule's body may go on over several lines; it ends where the next rule starts.
      this.skip(true);
      if (!nested && this.atRuleStart()) return seq;
      const c = this.src[this.pos];
      if (c === undefined || c === '|' || c === ')') return seq;
      const start = seq.length;
      if (c === '"') {
        this.pos++;
        while (this.src[this.pos] !== '"') {
          if (this.pos >= this.src.length) this.fail('unterminated string literal');
          const cp = this.char();
          seq.push({ t: 'c', ranges: [cp, cp], neg: false });
        }
        this.pos++;
        // A repetition applies to the whole literal.
        if (seq.length - start > 1 && /[*+?{]/.test(this.src[this.pos] ?? '')) seq.push(this.anon([seq.splice(start)]));
      } else if (c === '[') {
        this.pos++;
        const neg = this.src[this.pos] === '^';
        if (neg) this.pos++;
        const ranges: number[] = [];
        while (this.src[this.pos] !== ']') {
          if (this.pos >= this.src.length) this.fail('unterminated character class');
          const lo = this.char();
          let hi = lo;
          if (this.src[this.pos] === '-' && this.src[this.pos + 1] !== ']') {
            this.pos++;
            hi = this.char();
          }
          ranges.push(lo, hi);
        }
        this.pos++;
        seq.push({ t: 'c', ranges, neg });
      } else if (c === '.') {
        this.pos++;
        seq.push({ t: 'c', ranges: [], neg: true });
      } else if (c === '(') {
        this.pos++;
        const alts = this.alternatives(true);
        this.skip(true);
        if (this.src[this.pos] !== ')') this.fail(`expected ')'`);
        this.pos++;
        seq.push(this.anon(alts));
      } else if (NAME.test(c)) {
        seq.push({ t: 'r', rule: this.id(this.name()) });
      } else {
        this.fail(`unexpected ${JSON.stringify(c)}`);
      }
      this.postfix(seq);
    }
  }

  private postfix(seq: Element[]): void {
    const c = this.src[this.pos];
    if (c !== '*' && c !== '+' && c !== '?' && c !== '{') return;
    const last = seq.pop()!;
    let min: number;
    let max: number; // -1: unbounded
    if (c === '{') {
      const m = /^\{\s*(\d+)\s*(,\s*(\d*)\s*)?\}/.exec(this.src.slice(this.pos));
      if (!m) this.fail(`bad repetition {m,n}`);
      this.pos += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
      if (max !== -1 && max < min) this.fail(`repetition {${min},${max}}: max below min`);
    } else {
      this.pos++;
      [min, max] = c === '*' ? [0, -1] : c === '+' ? [1, -1] : [0, 1];
    }
    for (let i = 0; i < min; i++) seq.push(last);
    if (max === -1) {
      // star ::= last star | (empty)
      const star = this.anon([]);
      this.rules[star.rule] = [[last, star], []];
      seq.push(star);
    } else if (max > min) {
      // Nested optionals: (last (last (...)?)?)?
      let tail: RuleRef | null = null;
      for (let i = 0; i < max - min; i++) tail = this.anon([tail ? [last, tail] : [last], []]);
      seq.push(tail!);
    }
  }

  /** One (possibly escaped) character of a literal or class. */
  private char(): number {
    const c = this.src.codePointAt(this.pos)!;
    if (c !== 0x5c) {
      this.pos += c > 0xffff ? 2 : 1;
      return c;
    }
    const e = this.src[this.pos + 1];
    this.pos += 2;
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, '\\': 92, '"': 34, '[': 91, ']': 93, '-': 45, '/': 47, "'": 39 };
    if (e in simple) return simple[e];
    const width = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    if (width === 0) this.fail(`unknown escape \\${e}`);
    const hex = this.src.slice(this.pos, this.pos + width);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) this.fail(`bad escape \\${e}${hex}`);
    this.pos += width;
    return parseInt(hex, 16);
  }
}

export function parseGbnf(src: string): Grammar {
  return new Parser(src).parse();
}
