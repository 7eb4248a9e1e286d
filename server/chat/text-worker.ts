// Chat templates and tokenisation in a worker thread, under a time budget. Templates
// come from downloaded model files: one that loops 10^8 times used to block the event
// loop (no /health, SIGTERM ignored). Tokenising a large prompt took seconds of event
// loop too. Here each request runs in one worker thread; when one overruns its budget
// the thread is terminated (V8 stops it mid-loop), the request fails naming the
// template, and a fresh thread serves the next. The thread's heap is capped so a
// template that builds a giant string fails there and not in the server.

import { Worker } from 'node:worker_threads';
import type { GgufValue } from '../engine/types.js';
import type { ChatMessage } from '../http/validate.js';
import type { TextService } from '../scheduler/runtime.js';
import { ChatTemplateError, type RenderOptions } from './template.js';
import type { TokensOrBound } from './prompt-tokens.js';

export interface TextInit {
  /** The tokenizer's GGUF metadata (tokenizer.* keys). */
  meta: Map<string, GgufValue>;
  template: { source: string; origin: string };
}

export type TextRequest =
  | { id: number; op: 'chat'; messages: ChatMessage[]; limit: number | null; opts: RenderOptions }
  | { id: number; op: 'encode'; text: string; addBos: boolean; special: boolean; limit: number | null };

export type TextReply =
  | { ready: true }
  | { id: number; rendered: true }
  | { id: number; result: TokensOrBound }
  | { id: number; error: { name: string; message: string } };

/** A request that overran its budget, or a thread that died under it. */
export class TextWorkerError extends Error {
  constructor(message: string, readonly inTemplate: boolean) {
    super(message);
    this.name = 'TextWorkerError';
  }
}

/** Too many requests already wait for the worker (a 429, like a full wait queue). */
export class TextWorkerBusyError extends Error {
  constructor(readonly waiting: number) {
    super(`${waiting} prompts are already waiting to be tokenised`);
    this.name = 'TextWorkerBusyError';
  }
}

export interface TextWorkerOptions {
  /** Budget per request (render + tokenise), ms. */
  timeoutMs?: number;
  /** Requests that may wait for the thread; beyond that they are refused (default 64). */
  maxWaiting?: number;
  /** Heap cap of the thread, MiB. */
  heapMb?: number;
}

/** How long a new thread may take to start before its first request fails. */
const STARTUP_LIMIT_MS = 30_000;

type Body = { op: 'chat'; messages: ChatMessage[]; limit: number | null; opts: RenderOptions } | { op: 'encode'; text: string; addBos: boolean; special: boolean; limit: number | null };

interface Pending {
  id: number;
  body: Body;
  resolve(r: TokensOrBound): void;
  reject(e: Error): void;
  rendered: boolean;
}

export class TextWorker implements TextService {
  private worker: Worker | null = null;
  private readonly queue: Pending[] = [];
  private current: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private nextId = 1;
  /** The thread has built its tokenizer and template. */
  private ready = false;
  private closed = false;
  readonly timeoutMs: number;
  private readonly heapMb: number;
  private readonly maxWaiting: number;

  constructor(private readonly init: TextInit, opts: TextWorkerOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.heapMb = opts.heapMb ?? 256;
    this.maxWaiting = opts.maxWaiting ?? 64;
  }

  chat(messages: readonly ChatMessage[], limit: number | null, opts: RenderOptions = {}): Promise<TokensOrBound> {
    // Plain data for the thread (structured clone): the messages as validated, tool calls included.
    return this.submit({ op: 'chat', messages: messages.map((m) => ({ ...m })), limit, opts });
  }

  encode(text: string, addBos: boolean, special: boolean, limit: number | null): Promise<TokensOrBound> {
    return this.submit({ op: 'encode', text, addBos, special, limit });
  }

  /** Stops the thread; waiting requests fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new TextWorkerError('the server is shutting down', false));
    this.current?.reject(new TextWorkerError('the server is shutting down', false));
    this.current = null;
    this.clearTimer();
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private submit(body: Body): Promise<TokensOrBound> {
    if (this.closed) return Promise.reject(new TextWorkerError('the server is shutting down', false));
    // Bounded like the engine's queue: a flood of slow templates must not pile up without end.
    if (this.queue.length >= this.maxWaiting) return Promise.reject(new TextWorkerBusyError(this.queue.length));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, body, resolve, reject, rendered: false });
      this.pump();
    });
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./text-worker-thread.js', import.meta.url), {
      workerData: this.init,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    });
    // Never keeps the process alive on its own.
    w.unref();
    w.on('message', (m: TextReply) => this.onReply(w, m));
    w.on('error', (err) => this.onDeath(w, `failed: ${err.message}`));
    w.on('exit', (code) => this.onDeath(w, `stopped (exit code ${code})`));
    return w;
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    if (!this.worker) {
      this.worker = this.spawn();
      this.ready = false;
    }
    this.worker.postMessage({ id: next.id, ...next.body } as TextRequest);
    // A fresh thread first loads its modules and builds the tokenizer: that time is not
    // the request's, so its budget starts once the thread says it is ready (the
    // startup itself has a generous limit of its own).
    this.startTimer(this.ready ? this.timeoutMs : STARTUP_LIMIT_MS + this.timeoutMs);
  }

  private startTimer(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => this.onTimeout(), ms);
    this.timer.unref();
  }

  private onReply(w: Worker, m: TextReply): void {
    if (w !== this.worker) return;
    if ('ready' in m) {
      this.ready = true;
      if (this.current) this.startTimer(this.timeoutMs);
      return;
    }
    const p = this.current;
    if (!p || m.id !== p.id) return;
    if ('rendered' in m) {
      p.rendered = true;
      return;
    }
    this.finish();
    if ('result' in m) p.resolve(m.result);
    else if (m.error.name === 'ChatTemplateError') p.reject(new ChatTemplateError(m.error.message));
    else p.reject(new Error(m.error.message));
    this.pump();
  }

  private onTimeout(): void {
    const p = this.current;
    if (!p) return;
    const inTemplate = p.body.op === 'chat' && !p.rendered;
    const what = inTemplate ? 'rendering the chat template' : 'tokenising the prompt';
    this.kill();
    p.reject(new TextWorkerError(`${what} took longer than ${this.timeoutMs} ms and was stopped`, inTemplate));
    this.pump();
  }

  /** The thread died (heap cap, a crash): the request it held fails, the next gets a new thread. */
  private onDeath(w: Worker, how: string): void {
    if (w !== this.worker) return;
    const p = this.current;
    this.worker = null;
    if (!p) return;
    this.finish();
    const inTemplate = p.body.op === 'chat' && !p.rendered;
    p.reject(new TextWorkerError(`the text worker ${how} while ${inTemplate ? 'rendering the chat template' : 'tokenising the prompt'}`, inTemplate));
    this.pump();
  }

  private kill(): void {
    const w = this.worker;
    this.worker = null;
    this.finish();
    void w?.terminate();
  }

  private finish(): void {
    this.current = null;
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
