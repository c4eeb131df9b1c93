// `vault repair <file>`: rewrites a damaged or out-of-date header copy from the good one. Every keyslot
// survives, also those of secrets you do not know (docs/FORMAT.md: the mirror).
import type { Command } from 'commander';
import { repairHeaders } from '../../container/manage.js';
import { refuseForeignVolume } from '../foreign-refusal.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  requireFile,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';

export function register(program: Command): void {
  const command = program
    .command('repair')
    .description('rewrite a damaged or out-of-date header copy from the healthy one')
    .argument('<file>', 'the vault file');
  addSecretOptions(command);
  addCostOption(command);
  command.addHelpText('after', '\nExamples:\n  vault repair secret.vol');
  command.action(async (file: string, options: SecretOptions) => {
    await requireFile(file);
    await refuseForeignVolume(file, 'repair');
    const costLevel = parseCost(options);
    const { repaired } = await withUnlock(
      options,
      { prompt: `Password for ${file}: `, files: [file], costLevel },
      (secret) => repairHeaders(file, secret, { costLevel }),
    );
    process.stdout.write(
      repaired.length === 0
        ? 'Both header copies are healthy; nothing to repair.\n'
        : `Repaired the ${repaired.join(' and ')} header.\n`,
    );
  });
}
