// The repository the deploy tests read, and what the server itself says about its
// settings (defaults, environment names), so deploy files are checked against the code.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configEnvNames, loadConfig, packageRoot, type ServeConfig } from '../../server/config.js';

export const root = packageRoot;

export function repoPath(rel: string): string {
  return path.join(root, rel);
}

export function readRepo(rel: string): string {
  return readFileSync(repoPath(rel), 'utf8');
}

export function existsInRepo(rel: string): boolean {
  return existsSync(repoPath(rel));
}

/** configs/default.json over the built-in values, with no environment. */
export function defaultConfig(): ServeConfig {
  return loadConfig({ env: {} });
}

/** Environment variables the server reads for settings. */
export const serverEnvNames = new Set(configEnvNames);

export function packageJson(): { scripts: Record<string, string> } {
  return JSON.parse(readRepo('package.json')) as { scripts: Record<string, string> };
}
