// `npm run bench -- mount` (or `node bench/mount.mjs` after a build): 1 GiB sequential write of random data
// (dd bs=1M conv=fsync) and cold-cache read inside the mounted filesystem, and fio 4 KiB random read and
// random write IOPS (iodepth 32, libaio, direct I/O, FIO_SECONDS each, in a 512 MiB file, caches dropped
// first), for a vault, for the same bridge and daemon without encryption (bench-only passthrough
// device), for ext4 on a loop device over a plain file (the kernel's own path, no FUSE; direct I/O on,
// as vault's loop device) and for gocryptfs, on the same disk, rounds interleaved, medians of ROUNDS.
// Also `vault mount` time minus its KDF time, the daemon's peak RSS, and the CPU time (all cores) each
// cold read took (vault_read_cpu_s, passthrough_read_cpu_s), and per 4 KiB random I/O
// (vault_randread_cpu_us and the like, microseconds per I/O). Needs root, FUSE and fio.
// Prints a table, then as its LAST line one JSON object. MB = 10^6 bytes. BENCH_DIR picks the directory
// (default: the system temp dir), BENCH_ROUNDS the rounds, BENCH_SIZE the size of the vault and of the
// passthrough's and loop's images (default 4G), BENCH_FIO_SECONDS the fio runtime (default 15).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vaultBin = join(root, 'bin/vault');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MOUNT_SAMPLES = 5;
const FIO_SECONDS = Number(process.env.BENCH_FIO_SECONDS ?? 15);
// The 1 GiB file fills a quarter of the filesystem, as a file does on a roomy disk (gocryptfs writes
// into the host's filesystem). At 1600M it filled two thirds, and ext4 itself changed the measurement:
// with less free space than twice the dirty data it starts writeback while dd is still writing
// (writeback reason fs_free_space), and below 1.5x it stops delaying allocation.
const SIZE = process.env.BENCH_SIZE ?? '4G';
const PASSWORD = 'bench password\n';
const GIB_MB = 1073741824 / 1e6; // 1 GiB in MB
// The order of the four (vault, passthrough, loop, gocryptfs) in each round: a Williams design, in
// which each comes first, second, third and last once in four rounds, and follows each of the others
// once. The plain rotation used until 2026-11-30 put vault right after gocryptfs in three rounds of
// five and the passthrough right after vault in four; in three such runs, random reads right
// after gocryptfs's random writes were 16% (vault) and 9% (passthrough) slower than the others.
const ROUND_ORDERS = [
  [0, 1, 3, 2],
  [1, 2, 0, 3],
  [2, 3, 1, 0],
  [3, 0, 2, 1],
];
const COST = '1'; // the lowest level: the KDF is subtracted anyway, and it keeps the bench quick

const log = (line) => process.stderr.write(`${line}\n`);
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round1 = (value) => Math.round(value * 10) / 10;

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (result.status !== 0 && !options.allowFailure) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status}): ${result.stderr || result.stdout}`,
    );
  }
  return result;
}

/** bin/vault run as a user runs it: by its shebang, not as `node bin/vault`. */
function vault(args) {
  return run(vaultBin, args, { input: PASSWORD });
}

function dropCaches() {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3\n');
}

/** dd's own figure would be in SI units with 2 digits; time it ourselves instead. */
function ddMBps(args) {
  const started = process.hrtime.bigint();
  run('dd', [...args, 'status=none']);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return GIB_MB / seconds;
}

function throughput(directory) {
  const file = join(directory, 'bench.bin');
  dropCaches();
  // Random bytes, not zeros: the passthrough would otherwise store zeros on the host disk while vault
  // and gocryptfs store ciphertext, and a storage layer may treat zeros differently.
  const write = ddMBps([`if=${paths.source}`, `of=${file}`, 'bs=1M', 'count=1024', 'conv=fsync']);
  dropCaches();
  const busyBefore = busySeconds();
  const read = ddMBps([`if=${file}`, 'of=/dev/null', 'bs=1M']);
  const readCpu = busySeconds() - busyBefore;
  rmSync(file);
  execFileSync('sync');
  return { write, read, readCpu };
}

/**
 * CPU seconds the whole machine has spent busy (all cores; neither idle nor waiting for I/O), from
 * /proc/stat in USER_HZ ticks (100 a second on Linux). Around a cold read it says how much of the
 * cores the read used: the bound on what encryption can add before the cores run out.
 */
function busySeconds() {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((sum, value) => sum + value, 0);
  return (total - ticks[3] - ticks[4]) / 100;
}

/**
 * fio 4 KiB random read, then random write, in a 512 MiB file (laid out by the first call, kept), with
 * the machine's busy CPU time per I/O in microseconds (all cores; fio, kernel and daemon together).
 */
function randomIops(directory) {
  const fio = (rw, extra) =>
    run('fio', [
      '--name=bench',
      `--filename=${join(directory, 'fio.bin')}`,
      '--size=512M',
      `--rw=${rw}`,
      '--bs=4k',
      '--iodepth=32',
      '--ioengine=libaio',
      '--direct=1',
      `--runtime=${FIO_SECONDS}`,
      '--time_based',
      '--randrepeat=0',
      '--output-format=json',
      ...extra,
    ]);
  // fio's own layout of the file, the first time, outside the measured CPU time.
  if (!existsSync(join(directory, 'fio.bin'))) fio('randread', ['--create_only=1']);
  const job = (rw) => {
    dropCaches();
    const busyBefore = busySeconds();
    const result = fio(rw, []);
    const stats = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))).jobs[0];
    const side = rw === 'randread' ? stats.read : stats.write;
    return { iops: side.iops, cpuUs: ((busySeconds() - busyBefore) * 1e6) / side.total_ios };
  };
  const read = job('randread');
  const write = job('randwrite');
  return { randread: read.iops, randwrite: write.iops, randreadCpu: read.cpuUs, randwriteCpu: write.cpuUs };
}

function ensureGocryptfs() {
  if (spawnSync('gocryptfs', ['-version']).status === 0) return;
  log('installing gocryptfs (apt-get)...');
  run('apt-get', ['install', '-y', '-qq', 'gocryptfs'], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The request sizes and in-flight count the vault daemon saw over the whole run (its log, at stop). */
function requestsServed() {
  try {
    const info = statSync(paths.vault);
    const lines = readFileSync(`/run/vault/log/${info.dev}-${info.ino}.log`, 'utf8').split('\n');
    const served = lines.filter((line) => line.includes('requests served')).at(-1);
    if (served) log(`vault daemon over the rounds: ${served.slice(served.indexOf('requests served'))}`);
  } catch {}
}

function stateOf(file) {
  const info = statSync(file);
  return JSON.parse(readFileSync(`/run/vault/${info.dev}-${info.ino}/state.json`, 'utf8'));
}

function peakRssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

if (process.getuid?.() !== 0 || !existsSync('/dev/fuse')) {
  log('bench mount: needs root and /dev/fuse');
  process.exit(1);
}
if (!existsSync(join(root, 'dist/fuse/daemon.js'))) {
  log('bench mount: build first (npx tsc -p tsconfig.build.json)');
  process.exit(1);
}
const { checkMount, mountVault } = await import('../dist/fuse/mount.js');
const { findMounted } = await import('../dist/fuse/list.js');
const { dismountVault } = await import('../dist/fuse/dismount.js');
const { formatSize, parseSize } = await import('../dist/cli/size.js');

// The vault and the passthrough's and loop's images (each allocated in full); the 1 GiB file and the
// 512 MiB fio file in gocryptfs; and room for ext4's metadata.
const benchDir = process.env.BENCH_DIR ?? tmpdir();
const needed = 3 * parseSize(SIZE) + 2 * 2 ** 30;
const { bavail, bsize } = statfsSync(benchDir);
const free = bavail * bsize;
if (free < needed) {
  log(
    `bench mount: ${benchDir} has ${formatSize(free)} free, the bench needs ${formatSize(needed)}; ` +
      'pick another disk with BENCH_DIR or a smaller volume with BENCH_SIZE (at least 2G)',
  );
  process.exit(1);
}
ensureGocryptfs();
const work = mkdtempSync(join(benchDir, 'vault-bench-mount-'));
const paths = {
  vault: join(work, 'bench.vol'),
  plain: join(work, 'plain.img'),
  loopImage: join(work, 'loop.img'),
  gocryptfsCipher: join(work, 'gocryptfs.cipher'),
  passfile: join(work, 'gocryptfs.pass'),
  // In RAM (tmpfs): dropping the page cache before each round must not drop the source too.
  source: join(mkdtempSync('/dev/shm/vault-bench-'), 'source.bin'),
};
// The data every write round copies in: 1 GiB of random bytes.
run('dd', ['if=/dev/urandom', `of=${paths.source}`, 'bs=1M', 'count=1024', 'status=none']);
const mountpoints = {
  vault: join(work, 'vault'),
  passthrough: join(work, 'passthrough'),
  loop: join(work, 'loop'),
  gocryptfs: join(work, 'gocryptfs'),
};
let loopDevice = null;
for (const dir of Object.values(mountpoints)) mkdirSync(dir);
const mounted = new Set();

async function mountAll() {
  vault(['mount', paths.vault, mountpoints.vault, '--password-stdin', '--cost', COST]);
  mounted.add('vault');
  const target = await checkMount(paths.plain, mountpoints.passthrough, { noFilesystem: false });
  await mountVault(target, {
    readOnly: false,
    noFilesystem: false,
    preserveTimestamps: false,
    costLevel: 1,
    secret: null,
    device: 'passthrough',
  });
  mounted.add('passthrough');
  loopDevice = run('losetup', ['--find', '--show', '--direct-io=on', paths.loopImage]).stdout.trim();
  run('mount', [loopDevice, mountpoints.loop]);
  mounted.add('loop');
  run('gocryptfs', ['-q', '-passfile', paths.passfile, paths.gocryptfsCipher, mountpoints.gocryptfs]);
  mounted.add('gocryptfs');
}

async function unmountAll() {
  if (mounted.delete('vault')) vault(['dismount', mountpoints.vault]);
  if (mounted.delete('passthrough'))
    await dismountVault(await findMounted(mountpoints.passthrough), { force: false });
  if (mounted.delete('loop')) {
    run('umount', [mountpoints.loop]);
    run('losetup', ['-d', loopDevice]);
  }
  if (mounted.delete('gocryptfs')) run('fusermount', ['-u', mountpoints.gocryptfs]);
}

try {
  log(`bench mount: preparing in ${work}`);
  vault(['create', SIZE, paths.vault, '--quick', '--password-stdin', '--cost', COST]);
  // The passthrough's and loop's images are allocated in full like the vault (`--quick` allocates its
  // file): in a sparse image every first write also allocates host blocks, which made the passthrough
  // write about 190 MB/s against vault's 280 (1 GiB rounds; allocated, the same writes ran 1.6-2.3x faster).
  for (const image of [paths.plain, paths.loopImage]) {
    run('fallocate', ['-l', SIZE, image]);
    run('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard', image]);
  }
  mkdirSync(paths.gocryptfsCipher);
  writeFileSync(paths.passfile, PASSWORD, { mode: 0o600 });
  run('gocryptfs', ['-init', '-q', '-scryptn', '10', '-passfile', paths.passfile, paths.gocryptfsCipher]);

  // Mount time minus KDF time: the daemon reports how long unlocking took (state.json unlockMs).
  // The setup above left dirty data; a mount's loop device setup waits for the vault file's flush.
  execFileSync('sync');
  const overheads = [];
  const mountTimes = [];
  for (let i = 0; i < MOUNT_SAMPLES; i++) {
    const started = process.hrtime.bigint();
    vault(['mount', paths.vault, mountpoints.vault, '--password-stdin', '--cost', COST]);
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    const { unlockMs } = stateOf(paths.vault);
    vault(['dismount', mountpoints.vault]);
    mountTimes.push(elapsed);
    overheads.push(elapsed - unlockMs);
  }

  await mountAll();
  const daemonPid = stateOf(paths.vault).pid;
  const results = { vault: [], passthrough: [], loop: [], gocryptfs: [] };
  const names = Object.keys(results);
  // The first write after a mount runs at about half speed whatever is mounted (the passthrough
  // measured 352 MB/s first, 734 after): one uncounted round for each, then rounds in changing orders.
  for (const name of names) {
    const figures = throughput(mountpoints[name]);
    log(`warm-up ${name.padEnd(12)} write ${figures.write.toFixed(0).padStart(5)} MB/s (not counted)`);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of ROUND_ORDERS[(round - 1) % ROUND_ORDERS.length].map((index) => names[index])) {
      const figures = { ...throughput(mountpoints[name]), ...randomIops(mountpoints[name]) };
      results[name].push(figures);
      log(
        `round ${round} ${name.padEnd(12)} write ${figures.write.toFixed(0).padStart(5)} MB/s  read ${figures.read.toFixed(0).padStart(5)} MB/s (${figures.readCpu.toFixed(2)} CPU-s)  4k randread ${figures.randread.toFixed(0).padStart(6)} IOPS (${figures.randreadCpu.toFixed(1)} CPU-us)  randwrite ${figures.randwrite.toFixed(0).padStart(6)} IOPS (${figures.randwriteCpu.toFixed(1)} CPU-us)`,
      );
    }
  }
  const rss = peakRssMiB(daemonPid);
  for (const name of names) rmSync(join(mountpoints[name], 'fio.bin'), { force: true });
  await unmountAll();

  const summary = Object.fromEntries(
    Object.entries(results).map(([name, list]) => [
      name,
      Object.fromEntries(
        Object.keys(list[0]).map((key) => [key, median(list.map((figures) => figures[key]))]),
      ),
    ]),
  );
  log('');
  log(`medians of ${ROUNDS} (1 GiB, dd bs=1M conv=fsync; read after drop_caches):`);
  for (const [name, { write, read, randread, randwrite }] of Object.entries(summary)) {
    log(
      `  ${name.padEnd(12)} write ${write.toFixed(0).padStart(5)} MB/s  read ${read.toFixed(0).padStart(5)} MB/s  4k randread ${randread.toFixed(0).padStart(6)} IOPS  randwrite ${randwrite.toFixed(0).padStart(6)} IOPS`,
    );
  }
  const ofLoop = (key) => `${((100 * summary.vault[key]) / summary.loop[key]).toFixed(0)}%`;
  log(
    `  vault / loop: write ${ofLoop('write')}, read ${ofLoop('read')}, randread ${ofLoop('randread')}, randwrite ${ofLoop('randwrite')}`,
  );
  log(
    `  vault / passthrough: write ${((100 * summary.vault.write) / summary.passthrough.write).toFixed(0)}%, read ${((100 * summary.vault.read) / summary.passthrough.read).toFixed(0)}%`,
  );
  // The disk's noise moves whole rounds; the ratio within a round (taken minutes apart at most) moves less.
  const roundRatios = (key) =>
    results.vault.map((figures, round) => (100 * figures[key]) / results.passthrough[round][key]);
  log(
    `  vault / passthrough within each round: write ${roundRatios('write')
      .map((ratio) => `${ratio.toFixed(0)}%`)
      .join(
        ' ',
      )} (median ${median(roundRatios('write')).toFixed(0)}%), read median ${median(roundRatios('read')).toFixed(0)}%`,
  );
  log(
    `  vault / passthrough within each round: randread median ${median(roundRatios('randread')).toFixed(0)}%, randwrite median ${median(roundRatios('randwrite')).toFixed(0)}%`,
  );
  // What a cold read costs the machine: at 0.9 x the passthrough's speed, vault would have 1/0.9 of
  // its time for the same work plus decrypting every byte, on the same cores.
  const cores = availableParallelism();
  const budget = (cores * GIB_MB) / (0.9 * summary.passthrough.read);
  log(
    `  cold read, busy CPU seconds per GiB (${cores} cores): vault ${summary.vault.readCpu.toFixed(2)}, passthrough ${summary.passthrough.readCpu.toFixed(2)}; at 0.9 x passthrough's speed the ${cores} cores have ${budget.toFixed(2)} in all`,
  );
  log(
    `  4 KiB random I/O, busy CPU microseconds per I/O (all cores): randread vault ${summary.vault.randreadCpu.toFixed(1)}, passthrough ${summary.passthrough.randreadCpu.toFixed(1)}; randwrite vault ${summary.vault.randwriteCpu.toFixed(1)}, passthrough ${summary.passthrough.randwriteCpu.toFixed(1)}`,
  );
  log(
    `  vault mount: median ${median(mountTimes).toFixed(0)} ms, minus KDF ${median(overheads).toFixed(0)} ms (${MOUNT_SAMPLES} samples)`,
  );
  log(`  daemon peak RSS: ${rss.toFixed(1)} MiB`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'mount',
      vault_write_MBps: round1(summary.vault.write),
      vault_read_MBps: round1(summary.vault.read),
      passthrough_write_MBps: round1(summary.passthrough.write),
      passthrough_read_MBps: round1(summary.passthrough.read),
      gocryptfs_write_MBps: round1(summary.gocryptfs.write),
      gocryptfs_read_MBps: round1(summary.gocryptfs.read),
      loop_write_MBps: round1(summary.loop.write),
      loop_read_MBps: round1(summary.loop.read),
      vault_randread_iops: Math.round(summary.vault.randread),
      vault_randwrite_iops: Math.round(summary.vault.randwrite),
      passthrough_randread_iops: Math.round(summary.passthrough.randread),
      passthrough_randwrite_iops: Math.round(summary.passthrough.randwrite),
      loop_randread_iops: Math.round(summary.loop.randread),
      loop_randwrite_iops: Math.round(summary.loop.randwrite),
      gocryptfs_randread_iops: Math.round(summary.gocryptfs.randread),
      gocryptfs_randwrite_iops: Math.round(summary.gocryptfs.randwrite),
      mount_overhead_ms: Math.round(median(overheads)),
      daemon_rss_MiB: round1(rss),
      vault_read_cpu_s: Math.round(summary.vault.readCpu * 100) / 100,
      passthrough_read_cpu_s: Math.round(summary.passthrough.readCpu * 100) / 100,
      vault_randread_cpu_us: round1(summary.vault.randreadCpu),
      passthrough_randread_cpu_us: round1(summary.passthrough.randreadCpu),
      vault_randwrite_cpu_us: round1(summary.vault.randwriteCpu),
      passthrough_randwrite_cpu_us: round1(summary.passthrough.randwriteCpu),
    })}\n`,
  );
} finally {
  await unmountAll().catch((error) => log(`bench mount: cleanup: ${error.message}`));
  requestsServed();
  // Whatever a failure left mounted: never delete through a live mount.
  if (existsSync(paths.vault)) spawnSync(process.execPath, [vaultBin, 'dismount', '--force', paths.vault]);
  if (existsSync(paths.plain)) spawnSync(process.execPath, [vaultBin, 'dismount', '--force', paths.plain]);
  spawnSync('fusermount', ['-u', '-z', mountpoints.gocryptfs]);
  spawnSync('umount', ['-l', mountpoints.loop]);
  if (loopDevice) spawnSync('losetup', ['-d', loopDevice]);
  const stillMounted = readFileSync('/proc/self/mounts', 'utf8').includes(work);
  if (stillMounted) log(`bench mount: something is still mounted under ${work}; not removing it`);
  else rmSync(work, { recursive: true, force: true });
  rmSync(dirname(paths.source), { recursive: true, force: true });
}
