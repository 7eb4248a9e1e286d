// A commander program holding only `make-model`, silent and throwing instead of exiting,
// for tests that drive the subcommand's flags.
import { Command } from 'commander';
import { registerMakeModel } from '../server/cli/make-model.js';

export function makeModelProgram(): Command {
  const p = new Command().exitOverride();
  p.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerMakeModel(p);
  return p;
}

/** Runs `make-model` with these flags and returns what it printed on stdout. */
export async function runMakeModel(args: string[]): Promise<string> {
  const write = process.stdout.write;
  let said = '';
  process.stdout.write = ((s: string) => ((said += s), true)) as typeof process.stdout.write;
  try {
    await makeModelProgram().parseAsync(['make-model', ...args], { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return said;
}
