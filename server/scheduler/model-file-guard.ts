// Keeps a server alive when its model file changes on disk. The engine memory-maps the
// GGUF file (unless --no-mmap), so writing into it changes the weights under a running
// server, and truncating it makes the next read of a page past the new end a SIGBUS
// that kills the process. Design (README "Model file changes"):
//   - the file's identity (device, inode, size, mtime) is recorded when it is loaded;
//   - before every decode, and once a second while idle, it is compared again;
//   - same inode but another size or mtime (written or truncated in place): the model is
//     marked faulty: /health and generation requests answer 503 naming the reason, and
//     no decode touches the mapping again. Restarting the server loads the new file;
//   - a new inode at the path (replaced by rename, as installers and `cp` to a temporary
//     name then `mv` do) or a deleted path is harmless: the mapping keeps the old file
//     alive, so serving goes on with the weights that were loaded; a warning is logged.
// A truncation landing while a decode runs faults inside the engine; the addon recovers
// the faulting thread (addon/src/fault_guard.h) and the decode rejects with
// RS_ERR_MODEL_FILE, which fail() turns into the same "no longer served" state.
// --no-mmap (a private heap copy of the file) keeps serving through any change.

import { statSync, type Stats } from 'node:fs';

interface Identity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export interface GuardLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

function identity(st: Stats): Identity {
  return { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

export class ModelFileGuard {
  private reason: string | null = null;
  private replacedNoted = false;
  private timer: NodeJS.Timeout | null = null;

  /** `before`: the file's stat taken before the engine opened it. */
  constructor(readonly path: string, private readonly before: Identity, private readonly log?: GuardLog) {}

  static stat(path: string): Identity {
    return identity(statSync(path));
  }

  /** The public reason the model cannot be served, or null. Checks the file now. */
  check(): string | null {
    if (this.reason) return this.reason;
    let now: Identity;
    try {
      now = ModelFileGuard.stat(this.path);
    } catch {
      this.noteReplaced('the model file was removed');
      return null;
    }
    if (now.dev !== this.before.dev || now.ino !== this.before.ino) {
      this.noteReplaced('the model file was replaced by another file');
      return null;
    }
    if (now.size !== this.before.size || now.mtimeMs !== this.before.mtimeMs) {
      const how = now.size < this.before.size ? 'truncated' : 'modified';
      this.reason = `the model file was ${how} while the server had it mapped; restart the server to load it again`;
      this.log?.error({ path: this.path, before: this.before, now }, `model file ${how} in place: the model is no longer served`);
    }
    return this.reason;
  }

  /** The engine reported that reading the mapping faulted: the model is no longer served. */
  fail(detail: string): string {
    if (!this.reason) {
      this.reason = 'the model file changed on disk while a decode read it (truncated in place?); restart the server to load it again';
      this.log?.error({ path: this.path, detail }, 'reading the mapped model file faulted: the model is no longer served');
    }
    return this.reason;
  }

  /** Checks once every `ms` while the server runs (an idle server notices too). */
  watch(ms = 1000): void {
    this.timer = setInterval(() => this.check(), ms);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private noteReplaced(what: string): void {
    if (this.replacedNoted) return;
    this.replacedNoted = true;
    this.log?.warn({ path: this.path }, `${what}; still serving the weights loaded at start (restart to load the new file)`);
  }
}

/** Thrown into a decode the guard stopped; the sequences end with an error. */
export class ModelFileChangedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'ModelFileChangedError';
  }
}
