// One tool-call object as it is written, {"name": ..., "arguments" | "parameters": ...},
// read a character at a time for tool-call-parser.ts: the call starts (through the sink)
// once its name is read and known, and argument text goes to the sink as it arrives
// (held until the name when the arguments come first). Not a full JSON validator: values
// are delimited (strings, nesting), not checked.

/** Where a call object reports to. */
export interface CallSink {
  readonly names: ReadonlySet<string>;
  /** Starts a call; returns its index. */
  startCall(name: string): number;
  emitArgs(index: number, text: string): void;
}

export const isWs = (c: string): boolean => c === ' ' || c === '\n' || c === '\t' || c === '\r';

/** Scans one JSON value char by char: done once it is complete (primitives end at a delimiter, not consumed). */
class ValueScanner {
  raw = '';
  done = false;
  private depth = 0;
  private inStr = false;
  private esc = false;
  private primitive = false;

  /** false: the char is not part of the value (a primitive's delimiter). */
  feed(c: string): boolean {
    if (this.raw === '') {
      if (c === '{' || c === '[') this.depth = 1;
      else if (c === '"') this.inStr = true;
      else this.primitive = true;
      this.raw = c;
      return true;
    }
    if (this.primitive) {
      if (c === ',' || c === '}' || c === ']' || isWs(c)) {
        this.done = true;
        return false;
      }
      this.raw += c;
      return true;
    }
    this.raw += c;
    if (this.inStr) {
      if (this.esc) this.esc = false;
      else if (c === '\\') this.esc = true;
      else if (c === '"') {
        this.inStr = false;
        if (this.depth === 0) this.done = true;
      }
    } else if (c === '"') this.inStr = true;
    else if (c === '{' || c === '[') this.depth++;
    else if (c === '}' || c === ']') {
      if (--this.depth === 0) this.done = true;
    }
    return true;
  }
}

type ObjState = 'open' | 'key' | 'keyStr' | 'colon' | 'valueStart' | 'value' | 'after';

/** One call object, from its '{' on. */
export class CallObject {
  raw = '';
  state: ObjState = 'open';
  failed = false;
  done = false;
  name: string | null = null;
  /** Set once the call started (a valid name was read). */
  index = -1;
  private key = '';
  private keyEsc = false;
  private role: 'name' | 'args' | 'skip' = 'skip';
  private value: ValueScanner | null = null;
  private heldArgs = '';
  private argsSeen = false;

  constructor(private readonly p: CallSink) {}

  /** false: the char ends the object or is not part of it (the caller handles it). */
  feed(c: string): boolean {
    if (this.done || this.failed) return false;
    switch (this.state) {
      case 'open':
        if (c !== '{') return this.fail();
        this.state = 'key';
        break;
      case 'key':
        if (isWs(c)) break;
        if (c === '}') return this.finish(c);
        if (c !== '"') return this.fail();
        this.key = '';
        this.state = 'keyStr';
        break;
      case 'keyStr':
        if (this.keyEsc) this.keyEsc = false;
        else if (c === '\\') this.keyEsc = true;
        else if (c === '"') {
          this.state = 'colon';
          break;
        }
        this.key += c;
        break;
      case 'colon':
        if (isWs(c)) break;
        if (c !== ':') return this.fail();
        this.state = 'valueStart';
        break;
      case 'valueStart':
        if (isWs(c)) break;
        // A repeated "name" (the call already started under the first) is skipped: one object, one call.
        this.role =
          this.key === 'name' ? (this.name === null ? 'name' : 'skip') : this.key === 'arguments' || this.key === 'parameters' ? 'args' : 'skip';
        this.value = new ValueScanner();
        this.state = 'value';
        return this.valueChar(c);
      case 'value':
        return this.valueChar(c);
      case 'after':
        if (isWs(c)) break;
        if (c === ',') {
          this.state = 'key';
          break;
        }
        if (c === '}') return this.finish(c);
        return this.fail();
    }
    this.raw += c;
    return true;
  }

  private valueChar(c: string): boolean {
    const v = this.value!;
    if (!v.feed(c)) {
      this.endValue();
      return this.feed(c);
    }
    this.raw += c;
    if (this.role === 'args' && (v.raw[0] === '{' || v.raw[0] === '[')) this.args(c);
    if (v.done) this.endValue();
    return true;
  }

  private endValue(): void {
    const v = this.value!;
    this.state = 'after';
    if (this.role === 'name') {
      let name: unknown;
      try {
        name = JSON.parse(v.raw);
      } catch {
        name = null;
      }
      if (typeof name !== 'string' || !this.p.names.has(name)) {
        this.failed = true;
        return;
      }
      this.name = name;
      this.index = this.p.startCall(name);
      if (this.heldArgs) this.p.emitArgs(this.index, this.heldArgs);
      this.heldArgs = '';
    } else if (this.role === 'args') {
      this.argsSeen = true;
      // Arguments written as a JSON string (some models do): the string's content is the arguments.
      if (v.raw[0] !== '{' && v.raw[0] !== '[') {
        let text = v.raw;
        try {
          const s: unknown = JSON.parse(v.raw);
          if (typeof s === 'string') text = s;
        } catch {
          /* kept as written */
        }
        this.args(text);
      }
    }
  }

  private args(text: string): void {
    if (this.index >= 0) this.p.emitArgs(this.index, text);
    else this.heldArgs += text;
  }

  private finish(c: string): boolean {
    this.raw += c;
    if (this.index < 0) {
      this.failed = true;
      return true;
    }
    if (!this.argsSeen) this.p.emitArgs(this.index, '{}');
    this.done = true;
    return true;
  }

  private fail(): boolean {
    this.failed = true;
    return false;
  }
}
