// Options for a second, new secret (passwd, key add): its keyfiles and cost level.
import type { Command } from 'commander';
import type { Secret } from '../../container/secret.js';
import { parseCost, readSecret, type SecretOptions, withUnlock } from '../secrets.js';

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

/**
 * passwd and key add: the current secret is checked first (with its tries), and the new one is asked
 * for only once it has unlocked (stdin line 2, --new-keyfile). `change` gets the current secret, the
 * reader of the new one, and both cost levels.
 */
export function withCurrentThenNew<T>(
  file: string,
  options: SecretOptions & NewSecretOptions,
  prompt: string,
  change: (
    current: Secret,
    readNew: () => Promise<Secret>,
    costs: { costLevel: number; newCostLevel: number },
  ) => Promise<T>,
): Promise<T> {
  const costLevel = parseCost(options);
  const newCostLevel = newCost(options, costLevel);
  const readNew = () =>
    readSecret(options, {
      prompt: 'New password: ',
      confirm: true,
      stdinLine: 1,
      keyfiles: options.newKeyfile ?? [],
    });
  return withUnlock(options, { prompt, files: [file], costLevel }, (current) =>
    change(current, readNew, { costLevel, newCostLevel }),
  );
}
