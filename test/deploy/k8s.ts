// The Kubernetes manifests under deploy/k8s (kustomize directories) read without kubectl:
// each directory's resources and patches, patches merged the way kustomize's strategic
// merge does for what these files use (maps merged, lists of named items merged by name).

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { existsInRepo, readRepo, root } from './repo.js';
import type { Query } from './promql.js';

export const K8S = 'deploy/k8s';

export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function readYamlDocs(rel: string): Obj[] {
  return parseAllDocuments(readRepo(rel)).map((d) => {
    if (d.errors.length > 0) throw new Error(`${rel}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  }).filter((d) => d !== null);
}

export function kustomizations(): string[] {
  return readdirSync(path.join(root, K8S), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsInRepo(`${K8S}/${e.name}/kustomization.yaml`))
    .map((e) => `${K8S}/${e.name}`);
}

function mergeNamed(base: Obj[], patch: Obj[]): Obj[] {
  const out = base.map((b) => ({ ...b }));
  for (const p of patch) {
    const i = out.findIndex((b) => b.name === p.name);
    if (i >= 0) out[i] = merge(out[i], p);
    else out.push(p);
  }
  return out;
}

export function merge(base: unknown, patch: unknown): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (Array.isArray(base) && Array.isArray(patch)) {
    const named = (a: unknown[]) => a.every((x) => x !== null && typeof x === 'object' && 'name' in (x as Obj));
    return named(base) && named(patch) ? mergeNamed(base as Obj[], patch as Obj[]) : patch;
  }
  if (base && patch && typeof base === 'object' && typeof patch === 'object' && !Array.isArray(base) && !Array.isArray(patch)) {
    const out: Obj = { ...(base as Obj) };
    for (const [k, v] of Object.entries(patch as Obj)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  }
  return patch;
}

/** The objects a kustomization renders (resources recursively, then its patches). */
export function render(dir: string): Obj[] {
  const k = readYamlDocs(`${dir}/kustomization.yaml`)[0];
  let objs: Obj[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    const rel = path.posix.normalize(`${dir}/${r}`);
    if (!existsInRepo(rel)) throw new Error(`${dir}/kustomization.yaml: resource ${r} does not exist`);
    objs = objs.concat(existsInRepo(`${rel}/kustomization.yaml`) ? render(rel) : readYamlDocs(rel).map((o) => ({ ...o, __file: rel })));
  }
  for (const p of (k.patches ?? []) as { path: string }[]) {
    const rel = path.posix.normalize(`${dir}/${p.path}`);
    if (!existsInRepo(rel)) throw new Error(`${dir}/kustomization.yaml: patch ${p.path} does not exist`);
    for (const patch of readYamlDocs(rel)) {
      const i = objs.findIndex((o) => o.kind === patch.kind && o.metadata?.name === patch.metadata?.name);
      if (i < 0) throw new Error(`${rel}: patches ${patch.kind}/${patch.metadata?.name}, which ${dir} does not have`);
      objs[i] = { ...merge(objs[i], patch), __file: `${objs[i].__file} + ${rel}` };
    }
  }
  return objs;
}

export function one(objs: Obj[], kind: string): Obj {
  const found = objs.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
}

/** The autoscaler's PromQL (KEDA prometheus triggers) in every kustomization. */
export function autoscalerQueries(): Query[] {
  const out: Query[] = [];
  const seen = new Set<string>();
  for (const dir of kustomizations()) {
    for (const o of render(dir)) {
      if (o.kind !== 'ScaledObject') continue;
      for (const t of o.spec.triggers as Obj[]) {
        const key = `${o.__file}:${t.metadata.query}`;
        if (t.type === 'prometheus' && !seen.has(key)) {
          seen.add(key);
          out.push({ where: `${o.__file} (KEDA trigger)`, expr: t.metadata.query });
        }
      }
    }
  }
  return out;
}
