// XTS-AES-256 throughput of vault's sector API against `openssl speed` measured in the same run.
// Batches of 32 sectors of 4096 bytes (128 KiB, the size of a FUSE request), in place, one core.
// Prints a table, then as its last line one JSON object (MB = 10^6 bytes, as openssl's kB = 1000 bytes).
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { activeXtsImplementation, availableXtsImplementations, createXts } from '../dist/crypto/xts.js';

const SECTOR_BYTES = 4096;
const BATCH_SECTORS = 32;
const OPENSSL_SECONDS = 3;
const ROUNDS = 3; // median of three 1-second rounds per direction
const ROUND_SECONDS = 1;

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

/** Bytes per second of fn over one batch, for about `seconds`. */
function rate(fn, bytesPerCall, seconds) {
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let calls = 0;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 16; i++) fn();
    calls += 16;
    now = process.hrtime.bigint();
  }
  return (calls * bytesPerCall) / (Number(now - start) / 1e9);
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(implementation, rounds, seconds) {
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
  const encryptRates = [];
  const decryptRates = [];
  for (let round = 0; round < rounds; round++) {
    encryptRates.push(rate(encrypt, batch.length, seconds));
    decryptRates.push(rate(decrypt, batch.length, seconds));
  }
  xts.destroy();
  return { encrypt: median(encryptRates) / 1e6, decrypt: median(decryptRates) / 1e6 };
}

const active = activeXtsImplementation();
process.stdout.write(
  `running openssl speed -evp aes-256-xts -bytes ${SECTOR_BYTES} -seconds ${OPENSSL_SECONDS} ...\n`,
);
const openssl = opensslMBps();
const results = new Map();
results.set(active, measure(active, ROUNDS, ROUND_SECONDS));
for (const implementation of availableXtsImplementations()) {
  if (!results.has(implementation)) results.set(implementation, measure(implementation, 1, ROUND_SECONDS));
}

const rows = [['what', 'encrypt MB/s', 'decrypt MB/s', 'vs openssl']];
rows.push(['openssl speed (one core)', openssl.toFixed(0), '', '100%']);
for (const [implementation, figures] of results) {
  const label = `vault ${implementation}${implementation === active ? ' (active)' : ''}`;
  const share = Math.min(figures.encrypt, figures.decrypt) / openssl;
  rows.push([label, figures.encrypt.toFixed(0), figures.decrypt.toFixed(0), `${(share * 100).toFixed(1)}%`]);
}
const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)));
process.stdout.write(
  `\nXTS-AES-256, ${BATCH_SECTORS} x ${SECTOR_BYTES}-byte sectors per call, in place, MB = 10^6 bytes\n`,
);
for (const row of rows) {
  process.stdout.write(
    `${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ')}\n`,
  );
}

const main = results.get(active);
const round = (value, digits) => Number(value.toFixed(digits));
process.stdout.write(
  `${JSON.stringify({
    bench: 'xts',
    implementation: active,
    sector_bytes: SECTOR_BYTES,
    batch_sectors: BATCH_SECTORS,
    encrypt_MBps: round(main.encrypt, 1),
    decrypt_MBps: round(main.decrypt, 1),
    openssl_MBps: round(openssl, 1),
    ratio: round(Math.min(main.encrypt, main.decrypt) / openssl, 3),
  })}\n`,
);
