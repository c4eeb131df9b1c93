// `vault create` fill speed against `dd if=/dev/zero bs=1M conv=fsync` on the same disk, in one run:
// both write 1 GiB (the vault's data area is filled with XTS ciphertext under a throwaway key, then
// synced). Alternates the two, 3 rounds each, and keeps the median. Last line: one JSON object.
// Options: --dir <dir> (default: a temporary directory under /var/tmp), --size <MiB> (default 1024).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(3);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at === -1 ? fallback : args[at + 1];
};
const dir = mkdtempSync(join(option('--dir', '/var/tmp'), 'vault-bench-create-'));
const mib = Number(option('--size', '1024'));
const bytes = mib * 2 ** 20;
const vaultBin = new URL('../bin/vault', import.meta.url).pathname;
const ROUNDS = 3;

function timed(fn) {
  execFileSync('sync');
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function vaultCreate() {
  const file = join(dir, 'bench.vol');
  // The vault file is the data area plus 256 KiB of headers; the fill is what is timed.
  const seconds = timed(() => {
    const result = spawnSync(
      process.execPath,
      [
        vaultBin,
        'create',
        String(bytes + 262144),
        file,
        '--password-stdin',
        '--cost',
        '1',
        '--filesystem',
        'none',
      ],
      { input: 'bench password\n', stdio: ['pipe', 'ignore', 'inherit'] },
    );
    if (result.status !== 0) throw new Error(`vault create failed (${result.status})`);
  });
  rmSync(file);
  return seconds;
}

function ddZeros() {
  const file = join(dir, 'bench.img');
  const seconds = timed(() =>
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${mib}`, 'conv=fsync'], {
      stdio: 'ignore',
    }),
  );
  rmSync(file);
  return seconds;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const vaultTimes = [];
const ddTimes = [];
try {
  for (let round = 0; round < ROUNDS; round++) {
    ddTimes.push(ddZeros());
    vaultTimes.push(vaultCreate());
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const mb = bytes / 1e6;
const vaultMBps = mb / median(vaultTimes);
const ddMBps = mb / median(ddTimes);
console.log(`size: ${mib} MiB, rounds: ${ROUNDS} (median), directory: ${option('--dir', '/var/tmp')}`);
console.log(
  `vault create (fill + sync, incl. ~0.2 s start-up): ${vaultMBps.toFixed(0)} MB/s  [${vaultTimes.map((t) => t.toFixed(2)).join(', ')} s]`,
);
console.log(
  `dd if=/dev/zero bs=1M conv=fsync:                 ${ddMBps.toFixed(0)} MB/s  [${ddTimes.map((t) => t.toFixed(2)).join(', ')} s]`,
);
console.log(
  JSON.stringify({
    bench: 'create',
    size_MiB: mib,
    vault_create_MBps: Math.round(vaultMBps),
    dd_MBps: Math.round(ddMBps),
    ratio: Number((vaultMBps / ddMBps).toFixed(3)),
  }),
);
