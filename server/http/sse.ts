// Server-sent events on a raw Node response, the way OpenAI streams: `data: <json>\n\n`
// per chunk and `data: [DONE]\n\n` at the end. Writes after the client went away are
// dropped quietly; the caller learns about the disconnect from the 'close' event.

import type { ServerResponse } from 'node:http';

export class SseWriter {
  private started = false;

  constructor(private readonly res: ServerResponse) {}

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  start(headers: Record<string, string> = {}): void {
    if (this.started) return;
    this.started = true;
    // An explicit keep-alive would override a client's `Connection: close` (Node keeps
    // the socket open after the stream), so the reply echoes what the client asked for.
    const clientCloses = /(^|,)\s*close\s*(,|$)/i.test(String(this.res.req?.headers.connection ?? ''));
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: clientCloses ? 'close' : 'keep-alive',
      // Proxies such as nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
      ...headers,
    });
    // Send the headers now so the client sees the stream open before the first token.
    this.res.flushHeaders();
  }

  send(obj: unknown): void {
    if (!this.open) return;
    this.res.write(`data: ${JSON.stringify(obj)}\n\n`);
  }

  done(): void {
    if (!this.open) return;
    this.res.write('data: [DONE]\n\n');
    this.res.end();
  }

  /** Ends the stream without [DONE] (after an error chunk). */
  end(): void {
    if (this.open) this.res.end();
  }
}
