// `vault info <file>`: unlocks (reads only) and shows the layout, cipher, KDF level, keyslots and the
// health of both header copies.
import type { Command } from 'commander';
import { openVault } from '../../container/vault.js';
import { printJson } from '../output.js';
import { warn } from '../report.js';
import { addCostOption, addSecretOptions, parseCost, readSecret, type SecretOptions } from '../secrets.js';
import { formatSize } from '../size.js';

export function register(program: Command): void {
  const command = program
    .command('info')
    .description(
      'unlock a vault (read-only) and show its size, cipher, cost level, keyslots and header health',
    )
    .argument('<file>', 'the vault file')
    .option('--json', 'print one JSON object (schema in docs/CLI.md)');
  addSecretOptions(command);
  addCostOption(command);
  command.addHelpText(
    'after',
    '\nExamples:\n  vault info secret.vol\n  vault info secret.vol -k key.bin --non-interactive --json',
  );
  command.action(async (file: string, options: SecretOptions & { json?: boolean }) => {
    const costLevel = parseCost(options);
    const secret = await readSecret(options, { prompt: `Password for ${file}: ` });
    let info: ReturnType<Awaited<ReturnType<typeof openVault>>['info']>;
    try {
      const vault = await openVault(file, secret, { costLevel, readOnly: true });
      for (const warning of vault.warnings) warn(warning);
      info = vault.info();
      await vault.close();
    } finally {
      secret.wipe();
    }
    if (options.json) {
      printJson(info);
      return;
    }
    const copy = (state: { state: string; sequence: number | null }) =>
      state.sequence === null ? state.state : `${state.state} (sequence ${state.sequence})`;
    const rows: Array<[string, string]> = [
      ['file', info.path],
      ['volume size', `${formatSize(info.dataSize)} (${info.dataSize} bytes)`],
      ['file size', `${formatSize(info.fileSize)} (${info.fileSize} bytes)`],
      ['data offset', `${info.dataOffset} bytes`],
      ['sector size', `${info.sectorSize} bytes`],
      ['format', `vault v${info.formatVersion}`],
      ['cipher', `AES-256-XTS (${info.xtsImplementation})`],
      [
        'kdf',
        `Argon2id, cost level ${info.costLevel} (${formatSize(info.kdfMemoryKiB * 1024)}, t=${info.kdfIterations}, p=${info.kdfParallelism})`,
      ],
      [
        'keyslots',
        `${info.keyslots.used.length} of ${info.keyslots.total} used (${info.keyslots.used.join(', ')}); ` +
          `this secret opens ${info.keyslots.opened === null ? 'an out-of-date copy only' : `slot ${info.keyslots.opened}`}`,
      ],
      ['primary header', copy(info.headers.primary)],
      ['backup header', copy(info.headers.backup)],
    ];
    const width = Math.max(...rows.map(([field]) => field.length));
    for (const [field, value] of rows) process.stdout.write(`${`${field}:`.padEnd(width + 2)}${value}\n`);
  });
}
