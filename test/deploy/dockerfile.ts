// A small Dockerfile reader for the deploy tests: instructions (continuation lines joined,
// comments dropped) grouped into stages. Enough for the repository's own Dockerfiles, not
// a general parser (no parser directives, heredocs or ARG substitution in FROM).

export interface Instruction {
  op: string;
  /** The text after the keyword, continuation lines joined with a space. */
  args: string;
}

export interface Stage {
  /** The base: an image reference or an earlier stage's name. */
  from: string;
  name: string | null;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (cur === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // a comment inside a continued instruction
    if (line.endsWith('\\')) {
      cur += line.slice(0, -1).trim() + ' ';
      continue;
    }
    logical.push((cur + line).trim());
    cur = '';
  }
  if (cur.trim()) logical.push(cur.trim());
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const op = m[1].toUpperCase();
    const args = m[2];
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`cannot read FROM ${args}`);
      stages.push({ from: f[1], name: f[2] ?? null, instructions: [] });
    } else {
      if (stages.length === 0) {
        if (op === 'ARG') continue;
        throw new Error(`${op} before FROM`);
      }
      stages[stages.length - 1].instructions.push({ op, args });
    }
  }
  return stages;
}

export interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
}

/** A COPY instruction's --from, sources and destination (shell or JSON form). */
export function parseCopy(args: string): Copy {
  let from: string | null = null;
  const words: string[] = [];
  const rest = args.trim();
  const list: string[] = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  for (const w of list) {
    if (w.startsWith('--from=')) from = w.slice('--from='.length);
    else if (w.startsWith('--')) continue; // --chown, --chmod, --link
    else words.push(w);
  }
  if (words.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { from, sources: words.slice(0, -1), dest: words[words.length - 1] };
}

/** An exec-form (JSON array) CMD/ENTRYPOINT/HEALTHCHECK CMD. */
export function execForm(args: string): string[] {
  const a = args.trim();
  if (!a.startsWith('[')) throw new Error(`not in exec form: ${args}`);
  return JSON.parse(a) as string[];
}

/** ENV's key=value pairs (the `ENV key value` legacy form too). */
export function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const pairs = args.match(/[A-Za-z_][A-Za-z0-9_]*=("[^"]*"|\S*)/g);
  if (!pairs) {
    const [k, ...v] = args.trim().split(/\s+/);
    out[k] = v.join(' ');
    return out;
  }
  for (const p of pairs) {
    const i = p.indexOf('=');
    out[p.slice(0, i)] = p.slice(i + 1).replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** The WORKDIR in force at the end of a stage (absolute), "/" when none. */
export function workdir(stage: Stage): string {
  let dir = '/';
  for (const i of stage.instructions) if (i.op === 'WORKDIR') dir = i.args.startsWith('/') ? i.args : `${dir.replace(/\/$/, '')}/${i.args}`;
  return dir;
}
