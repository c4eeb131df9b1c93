// XTS-AES-256 throughput of vault's sector API against `openssl speed` measured in the same run.
// Batches of 32 sectors of 4096 bytes (128 KiB, the size of a FUSE request), in place, one core.
// Prints a table, then as its last line one JSON object (MB = 10^6 bytes, as openssl's kB = 1000 bytes).
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { activeXtsImplementation, availableXtsImplementations, createXts } from '../dist/crypto/xts.js';

const SECTOR_BYTES = 4096;
const BATCH_SECTORS = 32;
const OPENSSL_SECONDS = 3;
// `openssl speed` divides by the CPU user time it used (unless -elapsed), so a busy machine does not
// lower its figure. Ours is divided by CPU time as well (user + system of this whole process, the
// stricter choice); wall-clock figures are shown too. On an idle machine the two agree.
// Our rounds alternate with openssl's and the best of each is kept, so both meet the same conditions.
const CYCLES = 3;
const ROUND_SECONDS = OPENSSL_SECONDS;

function opensslMBps() {
  const output = execFileSync(
    'openssl',
    ['speed', '-evp', 'aes-256-xts', '-bytes', String(SECTOR_BYTES), '-seconds', String(OPENSSL_SECONDS)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const match = /^aes-256-xts\s+([\d.]+)k\s*$/im.exec(output);
  if (!match) throw new Error(`cannot read the AES-256-XTS figure from openssl speed:\n${output}`);
  return Number(match[1]) / 1000; // openssl reports 1000s of bytes per second
}

/** MB per CPU second and per wall-clock second of fn (one batch per call), over about `seconds`. */
function rate(fn, bytesPerCall, seconds) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const cpuBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  let calls = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
    now = process.hrtime.bigint();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const megabytes = (calls * bytesPerCall) / 1e6;
  return { cpu: megabytes / ((cpu.user + cpu.system) / 1e6), wall: megabytes / (Number(now - start) / 1e9) };
}

/** One keyed cipher cycling through a 128 KiB batch in place, with a sampler per direction. */
function sampler(implementation) {
  const key = Buffer.alloc(64);
  randomFillSync(key);
  const xts = createXts(key, { implementation });
  key.fill(0);
  const batch = Buffer.alloc(SECTOR_BYTES * BATCH_SECTORS);
  randomFillSync(batch);
  let sector = 1_000_000; // move through the volume as a real writer would
  const encrypt = () => {
    xts.encrypt(batch, sector);
    sector += BATCH_SECTORS;
  };
  const decrypt = () => {
    xts.decrypt(batch, sector);
    sector += BATCH_SECTORS;
  };
  rate(encrypt, batch.length, 0.3); // warm-up: JIT, caches, CPU clock
  rate(decrypt, batch.length, 0.3);
  return {
    encrypt: (seconds = ROUND_SECONDS) => rate(encrypt, batch.length, seconds),
    decrypt: (seconds = ROUND_SECONDS) => rate(decrypt, batch.length, seconds),
    destroy: () => xts.destroy(),
  };
}

const best = (values) => Math.max(...values);
const list = (values) => values.map((value) => value.toFixed(0)).join(', ');

const active = activeXtsImplementation();
const main = sampler(active);
const samples = { encrypt: [], decrypt: [], openssl: [] };
for (let cycle = 1; cycle <= CYCLES; cycle++) {
  samples.encrypt.push(main.encrypt());
  samples.decrypt.push(main.decrypt());
  process.stdout.write(
    `cycle ${cycle}/${CYCLES}: openssl speed -evp aes-256-xts -bytes ${SECTOR_BYTES} -seconds ${OPENSSL_SECONDS}\n`,
  );
  samples.openssl.push(opensslMBps());
}
main.destroy();

const summarize = (encrypt, decrypt) => ({
  encrypt: best(encrypt.map((sample) => sample.cpu)),
  decrypt: best(decrypt.map((sample) => sample.cpu)),
  encryptWall: best(encrypt.map((sample) => sample.wall)),
  decryptWall: best(decrypt.map((sample) => sample.wall)),
});
const openssl = best(samples.openssl);
const results = new Map([[active, summarize(samples.encrypt, samples.decrypt)]]);
for (const implementation of availableXtsImplementations()) {
  if (results.has(implementation)) continue;
  const other = sampler(implementation); // for comparison only: one 1-second round
  results.set(implementation, summarize([other.encrypt(1)], [other.decrypt(1)]));
  other.destroy();
}

const rows = [['what', 'encrypt MB/s', 'decrypt MB/s', 'vs openssl', 'wall-clock enc/dec MB/s']];
rows.push(['openssl speed (one core)', openssl.toFixed(0), openssl.toFixed(0), '100.0%', '']);
for (const [implementation, figures] of results) {
  const label = `vault ${implementation}${implementation === active ? ' (active)' : ''}`;
  const share = Math.min(figures.encrypt, figures.decrypt) / openssl;
  rows.push([
    label,
    figures.encrypt.toFixed(0),
    figures.decrypt.toFixed(0),
    `${(share * 100).toFixed(1)}%`,
    `${figures.encryptWall.toFixed(0)} / ${figures.decryptWall.toFixed(0)}`,
  ]);
}
const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
process.stdout.write(
  `\nXTS-AES-256, ${BATCH_SECTORS} x ${SECTOR_BYTES}-byte sectors per call, in place, one core, ` +
    'MB = 10^6 bytes per CPU second (as openssl speed counts)\n' +
    `best of ${CYCLES} alternating ${ROUND_SECONDS}-second samples: openssl ${list(samples.openssl)}; ` +
    `encrypt ${list(samples.encrypt.map((sample) => sample.cpu))}; ` +
    `decrypt ${list(samples.decrypt.map((sample) => sample.cpu))}\n\n`,
);
for (const row of rows) {
  const cells = row.map((cell, column) =>
    column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]),
  );
  process.stdout.write(`${cells.join('  ')}\n`);
}

const figures = results.get(active);
const round = (value, digits) => Number(value.toFixed(digits));
process.stdout.write(
  `${JSON.stringify({
    bench: 'xts',
    implementation: active,
    sector_bytes: SECTOR_BYTES,
    batch_sectors: BATCH_SECTORS,
    encrypt_MBps: round(figures.encrypt, 1),
    decrypt_MBps: round(figures.decrypt, 1),
    openssl_MBps: round(openssl, 1),
    ratio: round(Math.min(figures.encrypt, figures.decrypt) / openssl, 3),
  })}\n`,
);
