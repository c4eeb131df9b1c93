// Options for a second, new secret (passwd, key add): its keyfiles and cost level.
import type { Command } from 'commander';
import { parseCost } from '../secrets.js';

export interface NewSecretOptions {
  newKeyfile?: string[];
  newCost?: string;
}

export function addNewSecretOptions(command: Command): Command {
  return command
    .option(
      '--new-keyfile <path>',
      'keyfile for the new secret (repeatable; none by default)',
      (path: string, previous: string[] | undefined) => [...(previous ?? []), path],
    )
    .option('--new-cost <level>', 'Argon2id cost level for the new secret (default: the --cost level)');
}

export function newCost(options: NewSecretOptions, costLevel: number): number {
  return options.newCost === undefined ? costLevel : parseCost({ cost: options.newCost });
}
