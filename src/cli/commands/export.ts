// `vault export <file> <out.img>`: writes the cleartext volume as a raw image (for dd, virtual machines,
// forensic tools). Refuses a terminal as output and warns that the result is unencrypted. The vault is
// opened read-only; a file output appears only when complete, "-" streams to stdout.
import { closeSync, constants, openSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isatty } from 'node:tty';
import type { Command } from 'commander';
import { VaultError } from '../../container/errors.js';
import { exportImage, refuseSameFile, streamImage } from '../../container/image.js';
import { refuseIfMounted } from '../../fuse/list.js';

import { buildingFile, interruptSignal } from '../interrupt.js';
import { createProgress } from '../progress.js';
import { warn } from '../report.js';
import { addCostOption, addSecretOptions, parseCost, type SecretOptions, withUnlock } from '../secrets.js';
import { formatSize } from '../size.js';
import { addVolumeTypeOptions, parseVolumeTypeOptions, type VolumeTypeOptions } from '../volume-options.js';

interface ExportCommandOptions extends SecretOptions, VolumeTypeOptions {
  force?: boolean;
}

export function register(program: Command): void {
  const command = program
    .command('export')
    .description('write the decrypted volume of a vault as a raw, UNENCRYPTED disk image')
    .argument('<file>', 'the vault file (or a LUKS, VeraCrypt or TrueCrypt volume)')
    .argument('<out>', 'the image file to write, or - for stdout (never a terminal)')
    .option('-f, --force', 'replace an existing file (or write onto an existing block device)');
  addSecretOptions(command);
  addCostOption(command);
  addVolumeTypeOptions(command);
  command.addHelpText(
    'after',
    `
Examples:
  vault export secret.vol disk.img                # a sparse file, mode 0600
  vault export secret.vol - --password-stdin < pass | qemu-img convert -O qcow2 /dev/stdin disk.qcow2
  sudo vault export secret.vol /dev/sdb1 --force  # onto a partition of at least the volume size

The image is the volume exactly (the volume size of \`vault info\`); all-zero 1 MiB stretches are left as
holes in a file. Anyone who can read the image can read everything in the vault.`,
  );
  command.action(async (file: string, out: string, options: ExportCommandOptions) => {
    const costLevel = parseCost(options);
    const volume = await parseVolumeTypeOptions(options);
    const toStdout = out === '-';
    if (toStdout ? isatty(1) : isTerminalPath(out)) {
      throw new VaultError(
        'USAGE',
        'refusing to write a disk image to a terminal',
        toStdout
          ? 'redirect stdout: vault export <file> - > disk.img, or give a file name'
          : 'give a file name',
      );
    }
    const info = await stat(file).catch(() => null);
    if (!info?.isFile())
      throw new VaultError('NOT_FOUND', `no such file: ${file}`, 'check the path of the vault');
    await refuseIfMounted(file, { allowReadOnly: true });
    if (!toStdout) await refuseSameFile(file, out, 'the vault and the image must be different files');
    if (!toStdout && !options.force) {
      const existing = await stat(out).catch(() => null);
      if (existing && !existing.isDirectory()) {
        throw new VaultError(
          'EXISTS',
          `file exists: ${out}`,
          'choose another name, or pass --force to replace it',
        );
      }
    }
    warn(
      `the image ${toStdout ? 'written to stdout' : out} is NOT encrypted: anyone who can read it can read everything in the vault`,
    );
    let result: Awaited<ReturnType<typeof exportImage>>;
    let progress = createProgress('Exporting', 0);
    if (!toStdout) buildingFile(out);
    const exportOptions = {
      costLevel,
      volume,
      signal: interruptSignal(),
      // The same warnings as `vault info` (backup header used, interrupted resize), before the copy starts.
      onWarning: warn,
      onProgress: (done: number, total: number) => {
        // The total is known only once the vault is open.
        if (done === 0) progress = createProgress('Exporting', total);
        progress.update(done);
      },
    };
    try {
      result = await withUnlock(
        options,
        { prompt: `Password for ${file}: `, foreign: true, costLevel, volumeType: options.type },
        (secret) =>
          toStdout
            ? streamImage(file, secret, writeStdout, exportOptions)
            : exportImage(file, secret, out, { ...exportOptions, force: options.force ?? false }),
      );
    } finally {
      progress.done();
    }
    const holes = result.sparseBytes > 0 ? ` (${formatSize(result.sparseBytes)} of zeros left as holes)` : '';
    const summary = `Exported ${file} to ${toStdout ? 'stdout' : out}: ${formatSize(result.size)} (${result.size} bytes)${holes}, unencrypted.\n`;
    // With "-" stdout is the image: the summary goes to stderr.
    (toStdout ? process.stderr : process.stdout).write(summary);
  });
}

function isTerminalPath(path: string): boolean {
  let fd: number;
  try {
    // O_NONBLOCK so a FIFO without a reader does not hang; O_NOCTTY so a terminal is not adopted.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    return isatty(fd);
  } finally {
    closeSync(fd);
  }
}

/** One chunk to stdout, resolved when the stream is done with the buffer (it is reused). */
function writeStdout(chunk: Buffer): Promise<void> {
  // A reader that goes away (EPIPE) is reported through the write callback; the stream also emits
  // 'error' a tick later, which must not crash the process, so a listener stays for good.
  if (process.stdout.listenerCount('error') === 0) process.stdout.on('error', () => {});
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (error) => {
      if (!error) return resolve();
      const code = (error as NodeJS.ErrnoException).code;
      reject(
        new VaultError(
          'IO',
          `cannot write to stdout: ${code ?? error.message}`,
          code === 'EPIPE' ? 'the program reading the image stopped early' : 'check where stdout goes',
        ),
      );
    });
  });
}
