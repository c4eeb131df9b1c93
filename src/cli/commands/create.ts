// `vault create <size> <file>`: a new vault of exactly <size> bytes, data area filled with ciphertext,
// formatted (ext4 by default) by running mkfs on the bridge's cleartext block file.
// `vault create --hidden <size> <file>`: adds a hidden volume to the existing vault <file>.
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BlockDevice } from '../../container/block-device.js';
import { createVault } from '../../container/create.js';
import { VaultError } from '../../container/errors.js';
import { addHiddenVolume } from '../../container/hidden.js';
import { OVERHEAD_BYTES } from '../../container/layout.js';
import { checkNewFile } from '../../container/staged-file.js';
import { DEFAULT_COST_LEVEL } from '../../crypto/kdf.js';
import { withBridge } from '../../fuse/bridge.js';
import { refuseIfMounted } from '../../fuse/list.js';
import {
  CREATABLE_TYPES,
  checkCanMake,
  creatableFilesystem,
  type FilesystemRecord,
  HIDDEN_OUTER_TYPES,
  makeFilesystem,
} from '../../host/filesystems.js';
import { type Owner, resolveOwner } from '../../host/owner.js';
import { checkFuseDevice } from '../../host/requirements.js';
import { buildingFile, interruptSignal } from '../interrupt.js';
import { commandLine } from '../output.js';
import { createProgress } from '../progress.js';
import { warn } from '../report.js';
import {
  addCostOption,
  addSecretOptions,
  parseCost,
  readSecret,
  type SecretOptions,
  withUnlock,
} from '../secrets.js';
import { formatSize, parseSize } from '../size.js';

/** What `--filesystem` names: a record of the registry (src/host/filesystems.ts), or no filesystem. */
type Filesystem = FilesystemRecord | 'none';

interface CreateCommandOptions extends SecretOptions {
  filesystem: string;
  quick?: boolean;
  force?: boolean;
  hidden?: string;
  hiddenFilesystem: string;
  hiddenKeyfile?: string[];
  owner?: string;
}

export function register(program: Command): void {
  const command = program
    .command('create')
    .description(
      'create a new vault file of <size> bytes (binary units: 64M, 2G, 1.5T) and format it, ' +
        'or add a hidden volume to an existing vault',
    )
    .usage(
      '[options] <size> <file>\n       vault create [options] --hidden <size> <file>   (add a hidden volume to the existing vault <file>)',
    )
    .argument('<size>', 'size of the vault file: 64M, 512M, 2G, 1.5T or bytes')
    .argument('[file]', 'the vault file to create')
    .option('--filesystem <type>', `filesystem inside: ${[...CREATABLE_TYPES, 'none'].join(', ')}`, 'ext4')
    .option('--quick', 'do not fill the data area with random-looking data (faster; reveals usage, see docs)')
    .option('-f, --force', 'replace an existing regular file (never a device, fifo or symlink)')
    .option(
      '--owner <user>',
      'who owns the new filesystem (root only; default: the user who ran sudo, else you)',
    )
    .option(
      '--hidden <size>',
      'also create a hidden volume of <size> in the tail (asks for a second secret); with one <file> only, add one to that existing vault',
    )
    .option('--hidden-filesystem <type>', 'filesystem inside the hidden volume', 'ext4')
    .option(
      '--hidden-keyfile <path>',
      'keyfile for the hidden volume (repeatable)',
      (path: string, previous: string[] | undefined) => [...(previous ?? []), path],
    );
  addSecretOptions(command);
  addCostOption(command);
  command.addHelpText(
    'after',
    `
Examples:
  vault create 2G secret.vol                          # asks for a password twice, formats ext4
  vault create 512M usb.vol --filesystem exfat
  vault create 64M ci.vol -k key.bin --non-interactive
  printf '%s\\n' "$PASS" | vault create 1G a.vol --password-stdin
  vault create 1G deniable.vol --hidden 300M          # outer (exfat) password, then hidden (ext4) password
  printf '%s\\n%s\\n' "$OUTER" "$HIDDEN" | vault create 1G d.vol --hidden 300M --password-stdin
  vault create --hidden 200M usb.vol                  # add one to an existing exfat/vfat vault: its password, then the hidden one

With --hidden, the outer volume gets exfat unless --filesystem says otherwise (its metadata stays at the
start, away from the hidden volume); ext4 is refused for it. A hidden volume can be added to an existing
vault only when its filesystem is exfat or vfat and leaves the tail free (ext4 spreads metadata over
the whole volume). See SECURITY.md on what deniability gives.`,
  );
  command.action(async (sizeText: string, file: string | undefined, options: CreateCommandOptions) => {
    if (file === undefined) {
      if (options.hidden === undefined) {
        throw new VaultError(
          'USAGE',
          'a size and a file are needed',
          'vault create <size> <file>, or vault create --hidden <size> <file> to add a hidden volume to an existing vault',
        );
      }
      await addHidden(command, sizeText, options);
      return;
    }
    const fileSize = parseSize(sizeText);
    const hiddenSize = options.hidden === undefined ? null : parseSize(options.hidden);
    const filesystemChosen = command.getOptionValueSource('filesystem') !== 'default';
    const filesystem = parseFilesystem(
      hiddenSize !== null && !filesystemChosen ? 'exfat' : options.filesystem,
    );
    const hiddenFilesystem = parseFilesystem(options.hiddenFilesystem);
    const costLevel = parseCost(options);
    const owner = await resolveOwner(options.owner);
    if (hiddenSize !== null && options.quick) {
      throw new VaultError(
        'USAGE',
        '--quick cannot be used with a hidden volume: never-written sectors would stand out around it',
        'leave out --quick; the fill runs at disk speed',
      );
    }
    if (hiddenSize !== null && filesystem !== 'none' && !filesystem.hiddenOuter) {
      throw new VaultError(
        'USAGE',
        `${filesystem.name} cannot be the outer filesystem of a vault with a hidden volume: it writes metadata over the whole volume`,
        `use --filesystem exfat (the default with --hidden), ${HIDDEN_OUTER_TYPES.filter((name) => name !== 'exfat').join(', ')} or none`,
      );
    }
    if (filesystem !== 'none') checkFormatTools(filesystem, fileSize - OVERHEAD_BYTES);
    if (hiddenSize !== null && hiddenFilesystem !== 'none') checkFormatTools(hiddenFilesystem, hiddenSize);
    // Fail before asking for a password when the target is obviously wrong.
    await checkNewFile(file, options.force ?? false);
    const secret = await readSecret(options, {
      prompt:
        hiddenSize === null
          ? `Password for the new vault ${file}: `
          : `Password for the OUTER volume of ${file}: `,
      confirm: true,
    });
    const hiddenSecret =
      hiddenSize === null
        ? null
        : await readSecret(options, {
            prompt: `Password for the HIDDEN volume of ${file} (must differ): `,
            confirm: true,
            stdinLine: 1,
            keyfiles: options.hiddenKeyfile ?? [],
          }).catch((error: unknown) => {
            secret.wipe();
            throw error;
          });
    const progress = createProgress(options.quick ? 'Allocating' : 'Filling', fileSize);
    buildingFile(file);
    try {
      await createVault(file, {
        fileSize,
        secret,
        costLevel,
        quick: options.quick ?? false,
        force: options.force ?? false,
        signal: interruptSignal(),
        onProgress: (done, total) => progress.update(done, total),
        ...(filesystem === 'none' ? {} : { format: formatter(filesystem, owner) }),
        ...(hiddenSize === null || !hiddenSecret
          ? {}
          : {
              hidden: {
                dataSize: hiddenSize,
                secret: hiddenSecret,
                ...(hiddenFilesystem === 'none' ? {} : { format: formatter(hiddenFilesystem, owner) }),
              },
            }),
      });
    } finally {
      progress.done();
      secret.wipe();
      hiddenSecret?.wipe();
    }
    const inside = filesystem === 'none' ? 'no filesystem' : filesystem.name;
    process.stdout.write(`Created ${file}: ${formatSize(fileSize)}, ${inside}.\n`);
    if (hiddenSize !== null) {
      process.stdout.write(
        `It holds a hidden volume of ${formatSize(hiddenSize)} (${hiddenFilesystem === 'none' ? 'no filesystem' : hiddenFilesystem.name}); its password mounts it.\n` +
          'Mount the outer volume with --protect-hidden until you are done writing to it.\n',
      );
    }
    if (filesystem !== 'none') {
      // Everything the mount needs besides the password: keyfiles and a cost level other than the default.
      const mountCommand = [
        'vault',
        'mount',
        file,
        ...(options.keyfile ?? []).flatMap((keyfile) => ['-k', keyfile]),
        ...(costLevel === DEFAULT_COST_LEVEL ? [] : ['--cost', String(costLevel)]),
      ];
      process.stdout.write(`Mount it with: ${commandLine(mountCommand)}\n`);
    }
  });
}

/** `vault create --hidden <size> <file>`: the one positional is the existing vault. */
async function addHidden(command: Command, file: string, options: CreateCommandOptions): Promise<void> {
  for (const [name, flag] of [
    ['filesystem', '--filesystem'],
    ['quick', '--quick'],
    ['force', '--force'],
  ] as const) {
    const source = command.getOptionValueSource(name);
    if (source !== undefined && source !== 'default') {
      throw new VaultError(
        'USAGE',
        `${flag} cannot be used when adding a hidden volume to an existing vault`,
        `leave out ${flag}; the outer volume stays as it is (--hidden-filesystem formats the hidden one)`,
      );
    }
  }
  const hiddenSize = parseSize(options.hidden ?? '');
  const hiddenFilesystem = parseFilesystem(options.hiddenFilesystem);
  const costLevel = parseCost(options);
  const owner = await resolveOwner(options.owner);
  const info = await stat(file).catch(() => null);
  if (!info) throw new VaultError('NOT_FOUND', `no such file: ${file}`, 'check the path of the vault');
  if (!info.isFile()) throw new VaultError('USAGE', `not a vault file: ${file}`, 'name the vault file');
  await refuseIfMounted(file, { allowReadOnly: false });
  if (hiddenFilesystem !== 'none') checkFormatTools(hiddenFilesystem, hiddenSize);
  warn(
    `a hidden volume already in ${file} is replaced: the outer secret cannot see one, so it cannot be kept`,
  );
  // The existing vault's password first, --tries times at a terminal; the new hidden one only once it
  // has unlocked and the room was measured.
  const room = await withUnlock(
    options,
    { prompt: `Password of the existing vault ${file}: `, files: [file], costLevel },
    (secret) =>
      addHiddenVolume(file, {
        outerSecret: secret,
        costLevel,
        signal: interruptSignal(),
        hidden: {
          dataSize: hiddenSize,
          secret: () =>
            readSecret(options, {
              prompt: `Password for the new HIDDEN volume in ${file} (must differ): `,
              confirm: true,
              stdinLine: 1,
              keyfiles: options.hiddenKeyfile ?? [],
            }),
          ...(hiddenFilesystem === 'none' ? {} : { format: formatter(hiddenFilesystem, owner) }),
        },
      }),
  );
  const { usage } = room;
  process.stdout.write(
    `Added a hidden volume of ${formatSize(hiddenSize)} (${hiddenFilesystem === 'none' ? 'no filesystem' : hiddenFilesystem.name}) to ${file}; its password mounts it.\n` +
      `The outer ${usage.filesystem} filesystem uses the first ${formatSize(usage.usedEnd)} of ${formatSize(room.outerDataSize)}.\n` +
      'Mount the outer volume with --protect-hidden until you are done writing to it.\n',
  );
}

function formatter(filesystem: FilesystemRecord, owner: Owner): (vault: BlockDevice) => Promise<void> {
  return (vault) => withBridge(vault, (blockFile) => makeFilesystem(filesystem, blockFile, owner));
}

function parseFilesystem(text: string): Filesystem {
  return text === 'none' ? 'none' : creatableFilesystem(text);
}

/** Root (formatting goes through FUSE), /dev/fuse, and what the registry asks (tools, size, a driver). */
function checkFormatTools(filesystem: FilesystemRecord, volumeBytes: number): void {
  if (process.getuid?.() !== 0) {
    throw new VaultError(
      'NEEDS_SYSTEM',
      'formatting a new vault needs root rights (it goes through FUSE)',
      'run the command with sudo, or create it with --filesystem none',
    );
  }
  checkFuseDevice();
  checkCanMake(filesystem, volumeBytes);
}
