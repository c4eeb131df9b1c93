// `vault info <file>`: unlocks (reads only) and shows the layout, cipher, KDF level, keyslots and the
// health of both header copies; for LUKS, VeraCrypt and TrueCrypt volumes what their header says.

import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ForeignVolumeInfo } from '../../container/foreign-volume.js';
import { filesystemName } from '../../container/fs-usage.js';
import type { VaultInfo } from '../../container/vault.js';
import { openVolume, type Volume } from '../../container/volume.js';
import { allMounted } from '../../fuse/list.js';
import { formatDuration } from '../duration.js';
import { printJson } from '../output.js';
import { warn } from '../report.js';
import { addCostOption, addSecretOptions, parseCost, type SecretOptions, withUnlock } from '../secrets.js';
import { formatSize } from '../size.js';
import { addVolumeTypeOptions, parseVolumeTypeOptions, type VolumeTypeOptions } from '../volume-options.js';

export function register(program: Command): void {
  const command = program
    .command('info')
    .description(
      'unlock a vault (read-only) and show its size, cipher, cost level, keyslots and header health',
    )
    .argument('<file>', 'the vault file (or a LUKS, VeraCrypt or TrueCrypt volume)')
    .option('--json', 'print one JSON object (schema in docs/CLI.md)');
  addSecretOptions(command);
  addCostOption(command);
  addVolumeTypeOptions(command);
  command.addHelpText(
    'after',
    '\nExamples:\n  vault info secret.vol\n  vault info secret.vol -k key.bin --non-interactive --json\n' +
      '  vault info old.hc --type veracrypt --pim 485\n  vault info disk.luks',
  );
  command.action(async (file: string, options: SecretOptions & VolumeTypeOptions & { json?: boolean }) => {
    const costLevel = parseCost(options);
    const volumeOptions = await parseVolumeTypeOptions(options);
    const info: (VaultInfo | ForeignVolumeInfo) & { filesystem: string | null } = await withUnlock(
      options,
      { prompt: `Password for ${file}: `, foreign: true, files: [file], costLevel, volumeType: options.type },
      async (secret) => {
        const volume = await openVolume(file, secret, { costLevel, readOnly: true, ...volumeOptions });
        try {
          for (const warning of volume.warnings) warn(warning);
          return { ...volume.info(), filesystem: await filesystemOf(volume) };
        } finally {
          await volume.close();
        }
      },
    );
    const mounted = await mountOf(file);
    if (options.json) {
      printJson({ ...('format' in info ? {} : { format: 'vault' }), ...info, mounted });
      return;
    }
    printRows([
      ...('format' in info ? foreignRows(info) : vaultRows(info)),
      ['filesystem', info.filesystem ?? 'none recognised'],
      ['mounted', mountedText(mounted)],
    ]);
  });
}

/** The filesystem inside, by its magic numbers (null: none recognised, or unreadable). */
async function filesystemOf(volume: Volume): Promise<string | null> {
  const read = async (offset: number, length: number) => {
    const plain = Buffer.alloc(length);
    await volume.readAt(plain, offset);
    return plain;
  };
  return filesystemName(read, volume.size).catch(() => null);
}

interface MountedInfo {
  mountpoint: string | null;
  blockFile: string;
  readOnly: boolean;
  filesystem: string | null;
  /** --idle-dismount, in seconds; null: never. */
  idleDismountSeconds: number | null;
}

/** Where this file is mounted now (by device and inode); null when it is not, "unknown" without access. */
async function mountOf(file: string): Promise<MountedInfo | null | 'unknown'> {
  try {
    const { dev, ino } = await stat(file);
    const state = (await allMounted()).find((candidate) => candidate.dev === dev && candidate.ino === ino);
    if (!state) return null;
    return {
      mountpoint: state.mountpoint,
      blockFile: state.blockFile,
      readOnly: state.readOnly,
      filesystem: state.fsType,
      idleDismountSeconds: state.idleDismountMs === undefined ? null : state.idleDismountMs / 1000,
    };
  } catch {
    return 'unknown';
  }
}

function mountedText(mounted: MountedInfo | null | 'unknown'): string {
  if (mounted === 'unknown') return 'unknown (cannot read /run/vault; run as root to see)';
  if (mounted === null) return 'no';
  const mode =
    (mounted.readOnly ? 'read-only' : 'read-write') +
    (mounted.idleDismountSeconds === null
      ? ''
      : `, dismounted after ${formatDuration(mounted.idleDismountSeconds * 1000)} without I/O`);
  return mounted.mountpoint === null
    ? `yes, block file only at ${mounted.blockFile} (${mode})`
    : `yes, at ${mounted.mountpoint} (${mounted.filesystem ?? 'filesystem unknown'}, ${mode})`;
}

function printRows(rows: Array<[string, string]>): void {
  const width = Math.max(...rows.map(([field]) => field.length));
  for (const [field, value] of rows) process.stdout.write(`${`${field}:`.padEnd(width + 2)}${value}\n`);
}

function vaultRows(info: VaultInfo): Array<[string, string]> {
  const copy = (state: { state: string; sequence: number | null }) =>
    state.sequence === null ? state.state : `${state.state} (sequence ${state.sequence})`;
  return [
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
}

const FORMAT_NAMES = {
  luks1: 'LUKS1',
  luks2: 'LUKS2',
  veracrypt: 'VeraCrypt',
  truecrypt: 'TrueCrypt',
} as const;

function foreignRows(info: ForeignVolumeInfo): Array<[string, string]> {
  const kdf = info.kdf;
  const kdfText =
    kdf.type === 'pbkdf2'
      ? `PBKDF2-${kdf.hash.toUpperCase()}, ${kdf.iterations} iterations`
      : `${kdf.type === 'argon2i' ? 'Argon2i' : 'Argon2id'} (${formatSize(kdf.memoryKiB * 1024)}, t=${kdf.iterations}, p=${kdf.parallelism})`;
  const rows: Array<[string, string]> = [
    ['file', info.path],
    ['volume size', `${formatSize(info.dataSize)} (${info.dataSize} bytes)`],
    ['file size', `${formatSize(info.fileSize)} (${info.fileSize} bytes)`],
    ['data offset', `${info.dataOffset} bytes`],
    [
      'sector size',
      `${info.sectorSize} bytes (IV counts ${info.ivUnitBytes}-byte units from ${info.ivOffset})`,
    ],
    [
      'format',
      `${FORMAT_NAMES[info.format]}${info.format.startsWith('luks') ? '' : ` (header version ${info.formatVersion})`}${info.kind === 'hidden' ? ', hidden volume' : ''}`,
    ],
    ['cipher', `${info.cipherName} (${info.cipher})`],
    ['kdf', kdfText],
    [
      'header',
      info.keyslot === null ? info.header : `${info.header}; this secret opens keyslot ${info.keyslot}`,
    ],
  ];
  return rows;
}
