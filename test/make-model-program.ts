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
