// Reads a reply as it is generated and splits it into text and tool calls, in any of the
// formats of tool-formats.ts, so that calls can be streamed as they are written: a call
// starts (id and name) as soon as its name is read and known, and its arguments follow
// piece by piece, as the model's own JSON text. The same parser reads whole replies, so
// streamed and non-streamed replies agree.
//
// A call object is {"name": ..., "arguments" | "parameters": ...} (keys in any order;
// arguments written before the name are held until the name arrives). An object whose
// name is not one of the tools, or that is not such an object, stays text (its raw text,
// markers included), as long as no call has started from it; once started, a call stays
// a call even if the model's JSON goes wrong later (like OpenAI, arguments may then not
// parse). Whitespace around calls is not content.

import { randomBytes } from 'node:crypto';
import type { ToolFormatName } from './tool-formats.js';
import { CallObject, isWs, type CallSink } from './tool-call-object.js';

export type ToolEvent =
  | { kind: 'text'; text: string }
  | { kind: 'start'; index: number; id: string; name: string }
  | { kind: 'args'; index: number; text: string };

const HERMES_OPEN = '<tool_call>';
const HERMES_CLOSE = '</tool_call>';
const MISTRAL_OPEN = '[TOOL_CALLS]';
const PYTHON_TAG = '<|python_tag|>';
type Mode =
  | { m: 'lead'; held: string } // llama3: the reply's start, until it is clearly text or a call
  | { m: 'text'; held: string } // text; held: a tail that may start a marker
  | { m: 'plain' } // text, no more calls possible
  | { m: 'region'; raw: string; obj: CallObject | null; stage: 'before' | 'obj' | 'after' | 'close' | 'drop' };

export class ToolCallParser implements CallSink {
  readonly names: Set<string>;
  private mode: Mode;
  private out: ToolEvent[] = [];
  private calls = 0;
  /** Whitespace after a call, held until text follows (then it is part of the text). */
  private ws = '';

  constructor(readonly format: ToolFormatName, names: Iterable<string>) {
    this.names = new Set(names);
    this.mode = format === 'llama3' ? { m: 'lead', held: '' } : { m: 'text', held: '' };
  }

  push(text: string): ToolEvent[] {
    for (const c of text) this.char(c);
    return this.take();
  }

  /** The end of the reply: held text comes out; an unfinished call stays as far as it got. */
  finish(): ToolEvent[] {
    const md = this.mode;
    if (md.m === 'lead' || md.m === 'text') this.text(md.held);
    // A region that never got to a call is text; the tail of one that did (separators, a
    // partial closing tag) is not.
    else if (md.m === 'region' && (md.stage === 'before' || (md.stage === 'obj' && md.obj!.index < 0))) this.text(md.raw + (md.obj?.raw ?? ''));
    this.mode = { m: 'plain' };
    return this.take();
  }

  startCall(name: string): number {
    const index = this.calls++;
    this.ws = '';
    this.out.push({ kind: 'start', index, id: `call_${randomBytes(12).toString('hex')}`, name });
    return index;
  }

  emitArgs(index: number, text: string): void {
    const last = this.out[this.out.length - 1];
    if (last && last.kind === 'args' && last.index === index) last.text += text;
    else this.out.push({ kind: 'args', index, text });
  }

  private take(): ToolEvent[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private text(t: string): void {
    if (!t) return;
    if (this.calls > 0) {
      // After a call, whitespace waits to see whether real text follows.
      const all = this.ws + t;
      if (all.trim() === '') {
        this.ws = all;
        return;
      }
      t = all;
      this.ws = '';
    }
    const last = this.out[this.out.length - 1];
    if (last && last.kind === 'text') last.text += t;
    else this.out.push({ kind: 'text', text: t });
  }

  private char(c: string): void {
    const md = this.mode;
    switch (md.m) {
      case 'plain':
        this.text(c);
        return;
      case 'lead': {
        const held = md.held + c;
        const body = held.trimStart();
        if (body === '' || PYTHON_TAG.startsWith(body)) {
          md.held = held;
          return;
        }
        const start = body.startsWith(PYTHON_TAG) ? body.slice(PYTHON_TAG.length).trimStart() : body;
        if (start === '' && body.startsWith(PYTHON_TAG)) {
          md.held = held;
          return;
        }
        if (start === '{') {
          this.mode = { m: 'region', raw: held.slice(0, held.length - 1), obj: null, stage: 'before' };
          this.char('{');
          return;
        }
        this.mode = { m: 'plain' };
        this.text(held);
        return;
      }
      case 'text': {
        const open = this.format === 'mistral' ? MISTRAL_OPEN : HERMES_OPEN;
        const buf = md.held + c;
        if (buf.endsWith(open)) {
          this.text(buf.slice(0, buf.length - open.length));
          this.mode = { m: 'region', raw: open, obj: null, stage: 'before' };
          return;
        }
        let keep = 0;
        for (let k = Math.min(open.length - 1, buf.length); k > 0; k--) {
          if (buf.endsWith(open.slice(0, k))) {
            keep = k;
            break;
          }
        }
        this.text(buf.slice(0, buf.length - keep));
        md.held = buf.slice(buf.length - keep);
        return;
      }
      case 'region':
        this.regionChar(md, c);
        return;
    }
  }

  private regionChar(md: Extract<Mode, { m: 'region' }>, c: string): void {
    const f = this.format;
    if (md.stage === 'drop') {
      // A started call went wrong: skip to the block's end (Hermes) or give up on calls here.
      md.raw += c;
      if (f === 'hermes' && md.raw.endsWith(HERMES_CLOSE)) this.mode = { m: 'text', held: '' };
      return;
    }
    if (md.stage === 'close') {
      // Hermes, after the object: whitespace, then the closing tag.
      md.raw += c;
      if (HERMES_CLOSE.startsWith(md.raw.trimStart())) {
        if (md.raw.trimStart() === HERMES_CLOSE) this.mode = { m: 'text', held: '' };
        return;
      }
      // Not the tag: this block's call is done, what follows is text again.
      this.mode = { m: 'text', held: '' };
      for (const ch of md.raw) this.char(ch);
      return;
    }
    if (md.stage === 'before' || md.stage === 'after') {
      if (isWs(c) || (md.stage === 'after' && f === 'llama3' && c === ';') || (md.stage === 'after' && f === 'mistral' && c === ',')) {
        md.raw += c;
        return;
      }
      if (md.stage === 'before' && f === 'mistral' && c === '[' && !md.raw.includes('[', MISTRAL_OPEN.length)) {
        md.raw += c;
        return;
      }
      if (md.stage === 'after' && f === 'mistral' && c === ']') {
        this.mode = { m: 'text', held: '' };
        return;
      }
      if (c === '{') {
        md.obj = new CallObject(this);
        md.stage = 'obj';
      } else {
        return this.leaveRegion(md, c);
      }
    }
    const obj = md.obj!;
    const took = obj.feed(c);
    if (obj.failed) {
      if (obj.index >= 0) {
        md.stage = 'drop';
        if (f !== 'hermes') {
          this.mode = { m: 'plain' };
          if (!took) this.char(c);
        }
        return;
      }
      // Never a call: its text (markers and all) is text, and the rest is read again as such.
      const raw = md.raw + obj.raw + (took ? '' : c);
      this.mode = f === 'llama3' ? { m: 'plain' } : { m: 'text', held: '' };
      if (f === 'hermes' || f === 'mistral') {
        this.text(raw.slice(0, 1));
        for (const ch of raw.slice(1)) this.char(ch);
      } else {
        this.text(raw);
      }
      return;
    }
    if (obj.done) {
      md.obj = null;
      md.raw = '';
      md.stage = f === 'hermes' ? 'close' : 'after';
    }
  }

  /** A char that cannot continue the region: the calls read so far stand, the rest is text. */
  private leaveRegion(md: Extract<Mode, { m: 'region' }>, c: string): void {
    const hadCall = this.calls > 0 && md.stage === 'after';
    this.mode = this.format === 'llama3' ? { m: 'plain' } : { m: 'text', held: '' };
    if (!hadCall) {
      const raw = md.raw + c;
      this.text(raw.slice(0, 1));
      for (const ch of raw.slice(1)) this.char(ch);
      return;
    }
    this.char(c);
  }
}
