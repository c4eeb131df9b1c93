// The FUSE 3 block-file bridge: a libfuse 3 low-level session, served by libfuse's worker threads,
// exposing one file, `volume`, whose bytes are the cleartext of a container (XTS-AES-256 per sector,
// OpenSSL EVP) or of a plain file (bench passthrough). Reads and writes never enter JavaScript: a
// worker preads the ciphertext, decrypts it and replies; a write is encrypted, pwritten, and only
// then acknowledged. JavaScript starts and stops the session, reads its counters and gets its errors.
#define _GNU_SOURCE
#define FUSE_USE_VERSION 312
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "secure.h"

extern char **environ;

/** The largest request asked for (max_read / max_write): 256 pages, the kernel's max_pages_limit here. */
#define MAX_REQUEST (1u << 20)
#define KEY_BYTES 64
#define MAX_SECTOR (1u << 16)
/** Workers that may serve requests at once; each owns one slot (cipher contexts and a buffer). */
#define MAX_WORKERS 16
#define MAX_SIZES 64
#define VOLUME_INO 2
#define VOLUME_NAME "volume"
/**
 * Reads of at least this many aligned bytes bypass the host's page cache (O_DIRECT on a second
 * descriptor): a sequential read then costs one copy (the reply) instead of two; measured, 1 GiB cold
 * reads ran 2.5-5x faster with a third to a quarter of the daemon's CPU time. Smaller reads stay
 * buffered, where the host's cache serves random reads of data just written. (The kernel writes back
 * dirty pages of the range before an O_DIRECT read, so a direct read sees every earlier write.)
 */
#define DIRECT_READ_BYTES (128u << 10)
#define DIRECT_ALIGN 4096u
/** Start the host's writeback after this many bytes written (sync_file_range, not waited for). */
#define WRITEBACK_BYTES (32u << 20)
// 2^53: the largest integer a JS number holds exactly together with all smaller ones.
#define MAX_EXACT_NUMBER 9007199254740992.0

enum { EVENT_ERROR = 1, EVENT_PROTECTION = 2 };

// ---- request buffers (they hold cleartext while a request is served): allocated and released here --
// The key is elsewhere: in a locked page of its own (secure_key_alloc). These are 1 MiB each, more
// than RLIMIT_MEMLOCK lets a user lock: anonymous pages (zero-filled by the kernel only when first
// touched, so a mount does not pay for buffers it may never use), left out of core dumps, and wiped
// before they are unmapped. They are mapped in whole 2 MiB units, aligned, and marked for transparent
// huge pages: a buffer is then physically contiguous, so the daemon's 1 MiB O_DIRECT read reaches the
// disk as one request. In 4 KiB pages it needs 256 segments, more than a virtio disk takes (254): the
// read was split and its halves waited in the disk's queue, and cold sequential reads ran at 1.6-2.0
// GB/s instead of 2.8-3.1 here. Where huge pages are off, the buffers are ordinary pages, as before.
#define BUFFER_ALIGN (2u << 20)

/** Whole units, at least one (a request of 0 bytes still gets a mapping of its own). */
static size_t mapped_size(size_t size) {
  return size == 0 ? BUFFER_ALIGN : (size + BUFFER_ALIGN - 1) / BUFFER_ALIGN * BUFFER_ALIGN;
}

static void *secret_alloc(size_t size) {
  const size_t mapped = mapped_size(size);
  uint8_t *memory = mmap(NULL, mapped + BUFFER_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return NULL;
  // One extra unit was mapped so that an aligned start exists inside; unmap what lies around it.
  const size_t head = (BUFFER_ALIGN - (uintptr_t)memory % BUFFER_ALIGN) % BUFFER_ALIGN;
  if (head > 0) munmap(memory, head);
  munmap(memory + head + mapped, BUFFER_ALIGN - head);
  memory += head;
  madvise(memory, mapped, MADV_DONTDUMP);
  madvise(memory, mapped, MADV_HUGEPAGE);
  return memory;
}

static void secret_free(void *memory, size_t size) {
  if (memory == NULL) return;
  OPENSSL_cleanse(memory, size);
  munmap(memory, mapped_size(size));
}

typedef struct {
  EVP_CIPHER_CTX *cipher; // keyed at the start of each request's XTS run, cleansed at its end
  uint8_t *buffer; // MAX_REQUEST + one sector: ciphertext on its way out, partial sectors
  bool busy;
  bool writing; // [first, last] below is a write in progress (sector lock)
  uint64_t first;
  uint64_t last;
} Slot;

typedef struct {
  uint32_t size;
  uint64_t count;
} SizeCount;

typedef struct Volume Volume;
typedef void (*ReportFn)(Volume *volume, int kind, const char *message);
enum { FORWARD_READ = 1, FORWARD_WRITE = 2, FORWARD_SYNC = 3 };
/** A device this addon cannot read itself (no raw access): each request is a round trip to JavaScript. */
typedef int (*ForwardFn)(Volume *volume, int kind, uint8_t *data, size_t length, uint64_t offset);

struct Volume {
  int fd;
  int direct_fd; // the same file opened with O_DIRECT, or -1
  uint64_t data_offset;
  uint64_t size;
  uint32_t sector;
  uint64_t iv_offset; // tweak of data sector s: iv_offset + s * iv_stride (the vault: 0 and 1)
  uint64_t iv_stride; // sector / IV unit: dm-crypt and VeraCrypt count 512-byte units
  bool read_only;
  bool encrypted;
  size_t key_bytes;      // 64 (AES-256-XTS) or 32 (AES-128-XTS)
  uint8_t *key;          // key_bytes in a locked, undumpable page (secure_key_alloc); NULL: plain
  EVP_CIPHER *algorithm; // AES-256-XTS or AES-128-XTS, fetched once
  uint64_t protect_start;
  uint64_t protect_end; // empty range: nothing protected
  atomic_bool tripped;
  pthread_mutex_t lock; // slots, sector locks, sizes
  pthread_cond_t changed;
  Slot slots[MAX_WORKERS];
  SizeCount read_sizes[MAX_SIZES];
  SizeCount write_sizes[MAX_SIZES];
  atomic_int in_flight;
  atomic_int max_in_flight;
  atomic_uint_fast64_t direct_reads;
  atomic_uint_fast64_t unsynced;
  atomic_llong modified_ns;
  atomic_uint_fast64_t requests; // reads, writes and syncs the kernel sent: idle-dismount's activity count
  struct timespec mounted_at;
  uid_t uid;
  gid_t gid;
  ReportFn report;
  void *report_data;
  ForwardFn forward; // set: every read, write and sync goes through it (fd is -1)
};

static void report(Volume *volume, int kind, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void report(Volume *volume, int kind, const char *format, ...) {
  if (volume->report == NULL) return;
  char message[256];
  va_list args;
  va_start(args, format);
  vsnprintf(message, sizeof message, format, args);
  va_end(args);
  volume->report(volume, kind, message);
}

static void volume_free(Volume *volume) {
  for (int i = 0; i < MAX_WORKERS; i++) {
    Slot *slot = &volume->slots[i];
    // EVP_CIPHER_CTX_free cleanses a key schedule (there is none between requests).
    if (slot->cipher != NULL) EVP_CIPHER_CTX_free(slot->cipher);
    secret_free(slot->buffer, MAX_REQUEST + volume->sector);
    slot->cipher = NULL;
    slot->buffer = NULL;
  }
  if (volume->key != NULL) secure_key_free(volume->key, volume->key_bytes);
  volume->key = NULL;
  if (volume->algorithm != NULL) EVP_CIPHER_free(volume->algorithm);
  volume->algorithm = NULL;
  if (volume->fd >= 0) close(volume->fd);
  if (volume->direct_fd >= 0) close(volume->direct_fd);
  volume->fd = volume->direct_fd = -1;
  pthread_mutex_destroy(&volume->lock);
  pthread_cond_destroy(&volume->changed);
  OPENSSL_cleanse(volume, sizeof *volume);
  free(volume);
}

typedef struct {
  int fd;
  double data_offset;
  double size;
  uint32_t sector;
  double iv_offset;
  uint32_t iv_unit;
  bool read_only;
  bool forward; // no fd: requests are forwarded to JavaScript
  const uint8_t *key; // NULL: no encryption
  size_t key_bytes;
  double protect_start;
  double protect_end;
} VolumeOptions;

/** Takes its own duplicate of options->fd, and its own copy of the key, in a locked page. */
static Volume *volume_new(const VolumeOptions *options, const char **error) {
  Volume *volume = calloc(1, sizeof *volume);
  if (volume == NULL) {
    *error = "out of memory";
    return NULL;
  }
  volume->fd = volume->direct_fd = -1;
  pthread_mutex_init(&volume->lock, NULL);
  pthread_cond_init(&volume->changed, NULL);
  if (options->forward) {
    volume->size = (uint64_t)options->size;
    volume->sector = options->sector;
    volume->read_only = options->read_only;
    volume->uid = getuid();
    volume->gid = getgid();
    clock_gettime(CLOCK_REALTIME, &volume->mounted_at);
    atomic_store(&volume->modified_ns,
                 (long long)volume->mounted_at.tv_sec * 1000000000LL + volume->mounted_at.tv_nsec);
    for (int i = 0; i < MAX_WORKERS; i++) {
      volume->slots[i].buffer = secret_alloc(MAX_REQUEST + volume->sector);
      if (volume->slots[i].buffer == NULL) {
        *error = "out of memory";
        volume_free(volume);
        return NULL;
      }
    }
    return volume;
  }
  volume->fd = fcntl(options->fd, F_DUPFD_CLOEXEC, 3);
  if (volume->fd < 0) {
    *error = "cannot duplicate the container file descriptor";
    volume_free(volume);
    return NULL;
  }
  // A second open file description (not a dup: O_DIRECT must not reach JavaScript's descriptor).
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", volume->fd);
  volume->direct_fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  struct stat ours, direct;
  if (volume->direct_fd >= 0 && (fstat(volume->fd, &ours) != 0 || fstat(volume->direct_fd, &direct) != 0 ||
                                 ours.st_dev != direct.st_dev || ours.st_ino != direct.st_ino)) {
    close(volume->direct_fd);
    volume->direct_fd = -1;
  }
  volume->data_offset = (uint64_t)options->data_offset;
  volume->size = (uint64_t)options->size;
  volume->sector = options->sector;
  volume->iv_offset = (uint64_t)options->iv_offset;
  volume->iv_stride = options->sector / options->iv_unit;
  volume->read_only = options->read_only;
  volume->encrypted = options->key != NULL;
  volume->key_bytes = options->key_bytes;
  volume->protect_start = (uint64_t)options->protect_start;
  volume->protect_end = (uint64_t)options->protect_end;
  volume->uid = getuid();
  volume->gid = getgid();
  clock_gettime(CLOCK_REALTIME, &volume->mounted_at);
  atomic_store(&volume->modified_ns,
               (long long)volume->mounted_at.tv_sec * 1000000000LL + volume->mounted_at.tv_nsec);
  if (volume->encrypted) {
    volume->key = secure_key_alloc(volume->key_bytes);
    volume->algorithm = EVP_CIPHER_fetch(NULL, volume->key_bytes == KEY_BYTES ? "AES-256-XTS" : "AES-128-XTS", NULL);
    if (volume->key == NULL || volume->algorithm == NULL) {
      ERR_clear_error();
      *error = "cannot set up the cipher";
      volume_free(volume);
      return NULL;
    }
    memcpy(volume->key, options->key, volume->key_bytes);
  }
  for (int i = 0; i < MAX_WORKERS; i++) {
    Slot *slot = &volume->slots[i];
    slot->buffer = secret_alloc(MAX_REQUEST + volume->sector);
    if (volume->encrypted) slot->cipher = EVP_CIPHER_CTX_new();
    if (slot->buffer == NULL || (volume->encrypted && slot->cipher == NULL)) {
      ERR_clear_error();
      *error = "cannot set up the cipher contexts";
      volume_free(volume);
      return NULL;
    }
  }
  return volume;
}

static Slot *slot_take(Volume *volume) {
  pthread_mutex_lock(&volume->lock);
  for (;;) {
    for (int i = 0; i < MAX_WORKERS; i++) {
      if (!volume->slots[i].busy) {
        volume->slots[i].busy = true;
        pthread_mutex_unlock(&volume->lock);
        return &volume->slots[i];
      }
    }
    pthread_cond_wait(&volume->changed, &volume->lock);
  }
}

static void slot_return(Volume *volume, Slot *slot) {
  pthread_mutex_lock(&volume->lock);
  slot->busy = false;
  slot->writing = false;
  pthread_cond_broadcast(&volume->changed);
  pthread_mutex_unlock(&volume->lock);
}

/** Waits until no other write touches sectors [first, last], then claims them for this slot. */
static void sectors_lock(Volume *volume, Slot *slot, uint64_t first, uint64_t last) {
  pthread_mutex_lock(&volume->lock);
  for (;;) {
    bool overlap = false;
    for (int i = 0; i < MAX_WORKERS && !overlap; i++) {
      const Slot *other = &volume->slots[i];
      overlap = other != slot && other->writing && other->first <= last && first <= other->last;
    }
    if (!overlap) break;
    pthread_cond_wait(&volume->changed, &volume->lock);
  }
  slot->writing = true;
  slot->first = first;
  slot->last = last;
  pthread_mutex_unlock(&volume->lock);
}

static void count_size(Volume *volume, SizeCount *table, size_t size) {
  pthread_mutex_lock(&volume->lock);
  for (int i = 0; i < MAX_SIZES; i++) {
    if (table[i].count == 0 || table[i].size == size) {
      table[i].size = (uint32_t)size;
      table[i].count++;
      break;
    }
  }
  pthread_mutex_unlock(&volume->lock);
}

static void begin_request(Volume *volume) {
  int now = atomic_fetch_add(&volume->in_flight, 1) + 1;
  int seen = atomic_load(&volume->max_in_flight);
  while (now > seen && !atomic_compare_exchange_weak(&volume->max_in_flight, &seen, now)) {
  }
}

static void end_request(Volume *volume) { atomic_fetch_sub(&volume->in_flight, 1); }

/** pread of exactly `length` bytes; -errno, or -EIO when the file ends first. */
static int read_fully(int fd, uint8_t *into, size_t length, uint64_t at) {
  while (length > 0) {
    ssize_t got = pread(fd, into, length, (off_t)at);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -errno;
    if (got == 0) return -EIO;
    into += got;
    length -= (size_t)got;
    at += (uint64_t)got;
  }
  return 0;
}

static int write_fully(int fd, const uint8_t *from, size_t length, uint64_t at) {
  while (length > 0) {
    ssize_t put = pwrite(fd, from, length, (off_t)at);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return -errno;
    if (put == 0) return -EIO;
    from += put;
    length -= (size_t)put;
    at += (uint64_t)put;
  }
  return 0;
}

/**
 * XTS over `count` whole sectors from `input` to `output` (may be the same), tweak first + j. The
 * context is keyed from the locked key for this run only and cleansed after it, so between requests
 * no AES key schedule exists outside the locked page.
 */
static int xts(Volume *volume, Slot *slot, bool enc, const uint8_t *input, uint8_t *output, uint64_t first,
               size_t count) {
  EVP_CIPHER_CTX *ctx = slot->cipher;
  int result = 0;
  if (EVP_CipherInit_ex(ctx, volume->algorithm, NULL, volume->key, NULL, enc) != 1) result = -EIO;
  uint8_t iv[16] = {0};
  for (size_t j = 0; j < count && result == 0; j++) {
    const uint64_t tweak = volume->iv_offset + (first + j) * volume->iv_stride;
    for (int b = 0; b < 8; b++) iv[b] = (uint8_t)(tweak >> (8 * b)); // little-endian, high half 0
    const size_t offset = j * volume->sector;
    int written = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, enc) != 1 ||
        EVP_CipherUpdate(ctx, output + offset, &written, input + offset, (int)volume->sector) != 1 ||
        (uint32_t)written != volume->sector)
      result = -EIO;
  }
  EVP_CIPHER_CTX_reset(ctx); // cleanses the key schedule
  if (result != 0) ERR_clear_error();
  return result;
}

/** Reads one sector's cleartext into slot->buffer + MAX_REQUEST. */
static int read_sector(Volume *volume, Slot *slot, uint64_t index) {
  uint8_t *plain = slot->buffer + MAX_REQUEST;
  int result = read_fully(volume->fd, plain, volume->sector, volume->data_offset + index * volume->sector);
  if (result == 0) result = xts(volume, slot, false, plain, plain, index, 1);
  return result;
}

/** A data read: large aligned ones through the O_DIRECT descriptor (falling back to the other). */
static int read_data(Volume *volume, uint8_t *into, size_t length, uint64_t at) {
  if (volume->direct_fd >= 0 && length >= DIRECT_READ_BYTES &&
      length % DIRECT_ALIGN == 0 && at % DIRECT_ALIGN == 0 && (uintptr_t)into % DIRECT_ALIGN == 0) {
    int result = read_fully(volume->direct_fd, into, length, at);
    if (result != -EINVAL) {
      atomic_fetch_add(&volume->direct_reads, 1);
      return result;
    }
  }
  return read_fully(volume->fd, into, length, at);
}

/**
 * Fills out[0, length) with the cleartext at `offset`; the caller checked offset + length <= size.
 * Returns 0 or -errno.
 */
static int volume_read(Volume *volume, Slot *slot, uint8_t *out, size_t length, uint64_t offset) {
  if (volume->forward != NULL) return volume->forward(volume, FORWARD_READ, out, length, offset);
  if (!volume->encrypted) return read_data(volume, out, length, volume->data_offset + offset);
  const uint64_t sector = volume->sector;
  const uint64_t end = offset + length;
  uint64_t at = offset;
  while (at < end) {
    const uint64_t index = at / sector;
    const uint64_t within = at % sector;
    if (within == 0 && end - at >= sector) {
      const size_t count = (size_t)((end - at) / sector);
      uint8_t *into = out + (at - offset);
      int result = read_data(volume, into, count * sector, volume->data_offset + at);
      if (result == 0) result = xts(volume, slot, false, into, into, index, count);
      if (result != 0) return result;
      at += count * sector;
    } else {
      const uint64_t take = end - at < sector - within ? end - at : sector - within;
      int result = read_sector(volume, slot, index);
      if (result != 0) return result;
      memcpy(out + (at - offset), slot->buffer + MAX_REQUEST + within, (size_t)take);
      at += take;
    }
  }
  return 0;
}

/** Writes plain[0, length) at `offset`; the caller checked the range. 0 or -errno. */
static int volume_write_locked(Volume *volume, Slot *slot, const uint8_t *plain, size_t length,
                               uint64_t offset) {
  if (volume->forward != NULL) return volume->forward(volume, FORWARD_WRITE, (uint8_t *)plain, length, offset);
  if (!volume->encrypted) return write_fully(volume->fd, plain, length, volume->data_offset + offset);
  const uint64_t sector = volume->sector;
  const uint64_t end = offset + length;
  uint64_t at = offset;
  while (at < end) {
    const uint64_t index = at / sector;
    const uint64_t within = at % sector;
    int result;
    if (within == 0 && end - at >= sector) {
      uint64_t count = (end - at) / sector;
      if (count > MAX_REQUEST / sector) count = MAX_REQUEST / sector;
      result = xts(volume, slot, true, plain + (at - offset), slot->buffer, index, (size_t)count);
      if (result == 0)
        result = write_fully(volume->fd, slot->buffer, (size_t)(count * sector), volume->data_offset + at);
      at += count * sector;
    } else {
      // A partial sector: read-modify-write (mkfs sends 1 KiB and 3 KiB writes).
      const uint64_t take = end - at < sector - within ? end - at : sector - within;
      uint8_t *cleartext = slot->buffer + MAX_REQUEST;
      result = read_sector(volume, slot, index);
      if (result == 0) {
        memcpy(cleartext + within, plain + (at - offset), (size_t)take);
        result = xts(volume, slot, true, cleartext, slot->buffer, index, 1);
        OPENSSL_cleanse(cleartext, sector);
      }
      if (result == 0)
        result = write_fully(volume->fd, slot->buffer, (size_t)sector, volume->data_offset + index * sector);
      at += take;
    }
    if (result != 0) return result;
  }
  return 0;
}

static int volume_write(Volume *volume, Slot *slot, const uint8_t *plain, size_t length, uint64_t offset) {
  if (volume->protect_end > volume->protect_start && offset < volume->protect_end &&
      volume->protect_start < offset + length && !atomic_exchange(&volume->tripped, true)) {
    report(volume, EVENT_PROTECTION,
           "write refused to protect the hidden volume; the outer volume is read-only until dismounted");
    return -EIO;
  }
  if (atomic_load(&volume->tripped)) return -EIO;
  const uint64_t sector = volume->encrypted ? volume->sector : 1;
  // Writes that share a sector wait for each other, so a read-modify-write never undoes another write.
  sectors_lock(volume, slot, offset / sector, (offset + length - 1) / sector);
  int result = volume_write_locked(volume, slot, plain, length, offset);
  pthread_mutex_lock(&volume->lock);
  slot->writing = false;
  pthread_cond_broadcast(&volume->changed);
  pthread_mutex_unlock(&volume->lock);
  if (result == 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    atomic_store(&volume->modified_ns, (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    // Start the host's writeback early instead of leaving it all to the final fdatasync.
    uint64_t unsynced = atomic_fetch_add(&volume->unsynced, length) + length;
    if (volume->fd >= 0 && unsynced >= WRITEBACK_BYTES &&
        atomic_compare_exchange_strong(&volume->unsynced, &unsynced, 0))
      sync_file_range(volume->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  return result;
}

static int volume_sync(Volume *volume) {
  if (volume->read_only) return 0;
  if (volume->forward != NULL) return volume->forward(volume, FORWARD_SYNC, NULL, 0, 0);
  atomic_store(&volume->unsynced, 0);
  while (fdatasync(volume->fd) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

// ---- the FUSE session ----------------------------------------------------------------------------

typedef struct {
  Volume *volume;
  struct fuse_session *session;
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t lock;
  pthread_cond_t ended_changed;
  bool ended;    // the session loop returned
  bool detached; // stop() gave up waiting: the loop thread frees everything when it ends
  int loop_result;
  napi_threadsafe_function events;
  napi_threadsafe_function requests; // forwarded mode only
} Bridge;

/** One forwarded request: the worker waits on it until JavaScript calls complete(). */
typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t answered;
  bool done;
  int result;
  int kind;
  uint8_t *data;
  size_t length;
  uint64_t offset;
} Pending;

static const napi_type_tag PENDING_TAG = {0x7661756c74667573ULL, 0x6533506e64696e67ULL};

static int forward_to_js(Volume *volume, int kind, uint8_t *data, size_t length, uint64_t offset) {
  Bridge *bridge = volume->report_data;
  Pending pending = {.done = false, .result = -EIO, .kind = kind, .data = data, .length = length, .offset = offset};
  pthread_mutex_init(&pending.lock, NULL);
  pthread_cond_init(&pending.answered, NULL);
  pthread_mutex_lock(&bridge->lock);
  bool sent = bridge->requests != NULL &&
              napi_call_threadsafe_function(bridge->requests, &pending, napi_tsfn_nonblocking) == napi_ok;
  pthread_mutex_unlock(&bridge->lock);
  pthread_mutex_lock(&pending.lock);
  while (sent && !pending.done) pthread_cond_wait(&pending.answered, &pending.lock);
  pthread_mutex_unlock(&pending.lock);
  pthread_mutex_destroy(&pending.lock);
  pthread_cond_destroy(&pending.answered);
  return sent ? pending.result : -EIO;
}

static void answer(Pending *pending, int result) {
  pthread_mutex_lock(&pending->lock);
  pending->result = result;
  pending->done = true;
  pthread_cond_signal(&pending->answered);
  pthread_mutex_unlock(&pending->lock);
}

static void deliver_request(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  Pending *pending = data;
  napi_value args[4], global, token;
  if (env == NULL || callback == NULL) {
    answer(pending, -EIO);
    return;
  }
  // The buffer is the worker's (or libfuse's) memory, valid until complete() is called.
  if (napi_create_int32(env, pending->kind, &args[0]) != napi_ok ||
      napi_create_double(env, (double)pending->offset, &args[1]) != napi_ok ||
      (pending->data != NULL
           ? napi_create_external_arraybuffer(env, pending->data, pending->length, NULL, NULL, &args[2])
           : napi_get_null(env, &args[2])) != napi_ok ||
      napi_create_external(env, pending, NULL, NULL, &token) != napi_ok ||
      napi_type_tag_object(env, token, &PENDING_TAG) != napi_ok || napi_get_global(env, &global) != napi_ok) {
    answer(pending, -EIO);
    return;
  }
  args[3] = token;
  if (napi_call_function(env, global, callback, 4, args, NULL) != napi_ok) answer(pending, -EIO);
}

// complete(token, result): answers a forwarded request (0, or a negative errno).
static napi_value bridge_complete(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t result = -EIO;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "complete(token, result)");
    return NULL;
  }
  bool tagged = false;
  void *data = NULL;
  if (napi_check_object_type_tag(env, argv[0], &PENDING_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL ||
      napi_get_value_int32(env, argv[1], &result) != napi_ok) {
    napi_throw_type_error(env, NULL, "complete(token, result) needs a request token and a number");
    return NULL;
  }
  // A token must answer once: the worker's Pending is gone right after (bridge.ts calls it once).
  answer(data, result > 0 ? 0 : result);
  return NULL;
}

static void fill_attr(Volume *volume, fuse_ino_t ino, struct stat *attr) {
  memset(attr, 0, sizeof *attr);
  attr->st_ino = ino;
  attr->st_uid = volume->uid;
  attr->st_gid = volume->gid;
  attr->st_atim = volume->mounted_at;
  if (ino == FUSE_ROOT_ID) {
    attr->st_mode = S_IFDIR | 0700;
    attr->st_nlink = 2;
    attr->st_size = 4096;
    attr->st_mtim = attr->st_ctim = volume->mounted_at;
  } else {
    const long long modified = atomic_load(&volume->modified_ns);
    attr->st_mode = S_IFREG | (volume->read_only ? 0400 : 0600);
    attr->st_nlink = 1;
    attr->st_size = (off_t)volume->size;
    attr->st_blksize = 4096;
    attr->st_blocks = (blkcnt_t)((volume->size + 511) / 512);
    attr->st_mtim.tv_sec = modified / 1000000000LL;
    attr->st_mtim.tv_nsec = modified % 1000000000LL;
    attr->st_ctim = attr->st_mtim;
  }
}

static Volume *volume_of(fuse_req_t req) { return ((Bridge *)fuse_req_userdata(req))->volume; }

static void op_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  conn->max_write = MAX_REQUEST;
  conn->max_read = MAX_REQUEST;
  // The loop device's direct I/O becomes several FUSE requests in flight at once.
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (parent != FUSE_ROOT_ID || strcmp(name, VOLUME_NAME) != 0) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct fuse_entry_param entry;
  memset(&entry, 0, sizeof entry);
  entry.ino = VOLUME_INO;
  entry.attr_timeout = 1.0;
  entry.entry_timeout = 1.0;
  fill_attr(volume_of(req), VOLUME_INO, &entry.attr);
  fuse_reply_entry(req, &entry);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  if (ino != FUSE_ROOT_ID && ino != VOLUME_INO) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct stat attr;
  fill_attr(volume_of(req), ino, &attr);
  fuse_reply_attr(req, &attr, 1.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *wanted, int to_set,
                       struct fuse_file_info *fi) {
  Volume *volume = volume_of(req);
  if (ino != VOLUME_INO) {
    fuse_reply_err(req, EPERM);
    return;
  }
  // The size is fixed; times are accepted and ignored (touch, cp -p); owner and mode stay.
  if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) ||
      ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)wanted->st_size != volume->size)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  op_getattr(req, ino, fi);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (ino != VOLUME_INO) {
    fuse_reply_err(req, ino == FUSE_ROOT_ID ? EISDIR : ENOENT);
    return;
  }
  if (volume_of(req)->read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  // No direct_io: a loop-mounted FUSE file with direct_io can hang (libfuse issue 56).
  fi->direct_io = 0;
  fi->keep_cache = 0;
  fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  Volume *volume = volume_of(req);
  atomic_fetch_add(&volume->requests, 1);
  if (ino != VOLUME_INO) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if ((uint64_t)off >= volume->size || size == 0) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  uint64_t left = volume->size - (uint64_t)off;
  size_t length = size < left ? size : (size_t)left;
  count_size(volume, volume->read_sizes, length);
  begin_request(volume);
  Slot *slot = slot_take(volume);
  // Larger than any request the kernel sends here (max_read); served all the same.
  uint8_t *out = length <= MAX_REQUEST ? slot->buffer : secret_alloc(length);
  int result = out == NULL ? -ENOMEM : volume_read(volume, slot, out, length, (uint64_t)off);
  end_request(volume);
  if (result == 0) fuse_reply_buf(req, (const char *)out, length);
  else {
    if (volume->forward == NULL) report(volume, EVENT_ERROR, "read failed: %s", strerror(-result));
    fuse_reply_err(req, EIO);
  }
  if (out != NULL && out != slot->buffer) secret_free(out, length);
  slot_return(volume, slot);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
  (void)fi;
  Volume *volume = volume_of(req);
  atomic_fetch_add(&volume->requests, 1);
  if (ino != VOLUME_INO) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  if (volume->read_only) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if ((uint64_t)off >= volume->size) {
    fuse_reply_err(req, ENOSPC);
    return;
  }
  if (size == 0) {
    fuse_reply_write(req, 0);
    return;
  }
  uint64_t left = volume->size - (uint64_t)off;
  size_t length = size < left ? size : (size_t)left;
  count_size(volume, volume->write_sizes, length);
  begin_request(volume);
  Slot *slot = slot_take(volume);
  int result = volume_write(volume, slot, (const uint8_t *)buf, length, (uint64_t)off);
  slot_return(volume, slot);
  end_request(volume);
  if (result == 0) fuse_reply_write(req, length);
  else {
    if (!atomic_load(&volume->tripped) && volume->forward == NULL)
      report(volume, EVENT_ERROR, "write failed: %s", strerror(-result));
    fuse_reply_err(req, EIO);
  }
}

static void op_sync(fuse_req_t req, Volume *volume, const char *what) {
  atomic_fetch_add(&volume->requests, 1);
  int result = volume_sync(volume);
  if (result != 0 && volume->forward == NULL) report(volume, EVENT_ERROR, "%s failed: %s", what, strerror(-result));
  fuse_reply_err(req, result == 0 ? 0 : EIO);
}

// close() of the file: what was written becomes durable (mkfs, dd and loop all close at the end).
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  (void)fi;
  op_sync(req, volume_of(req), "flush");
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino;
  (void)datasync;
  (void)fi;
  op_sync(req, volume_of(req), "fsync");
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)fi;
  if (ino != FUSE_ROOT_ID) {
    fuse_reply_err(req, ENOTDIR);
    return;
  }
  char listing[512];
  size_t used = 0;
  const char *names[] = {".", "..", VOLUME_NAME};
  const fuse_ino_t inos[] = {FUSE_ROOT_ID, FUSE_ROOT_ID, VOLUME_INO};
  for (off_t i = off < 0 ? 0 : off; i < 3; i++) {
    struct stat attr;
    memset(&attr, 0, sizeof attr);
    attr.st_ino = inos[i];
    attr.st_mode = i < 2 ? S_IFDIR : S_IFREG;
    size_t need = fuse_add_direntry(req, NULL, 0, names[i], NULL, 0);
    if (used + need > sizeof listing || used + need > size) break;
    fuse_add_direntry(req, listing + used, sizeof listing - used, names[i], &attr, i + 1);
    used += need;
  }
  fuse_reply_buf(req, listing, used);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  struct statvfs info;
  memset(&info, 0, sizeof info);
  info.f_bsize = 4096;
  info.f_frsize = 4096;
  info.f_blocks = (fsblkcnt_t)((volume_of(req)->size + 4095) / 4096);
  info.f_files = 1;
  info.f_namemax = 255;
  fuse_reply_statfs(req, &info);
}

static const struct fuse_lowlevel_ops OPERATIONS = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .readdir = op_readdir,
    .statfs = op_statfs,
};

typedef struct {
  int kind;
  char message[256];
} Event;

static void report_to_js(Volume *volume, int kind, const char *message) {
  Bridge *bridge = volume->report_data;
  if (bridge == NULL) return;
  Event *event = calloc(1, sizeof *event);
  if (event == NULL) return;
  event->kind = kind;
  snprintf(event->message, sizeof event->message, "%s", message);
  // Under the lock: stop() releases the function and clears the pointer under it too.
  pthread_mutex_lock(&bridge->lock);
  bool sent = bridge->events != NULL &&
              napi_call_threadsafe_function(bridge->events, event, napi_tsfn_nonblocking) == napi_ok;
  pthread_mutex_unlock(&bridge->lock);
  if (!sent) free(event);
}

static void deliver_event(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  Event *event = data;
  if (env != NULL && callback != NULL) {
    napi_value args[2];
    napi_value global;
    if (napi_create_int32(env, event->kind, &args[0]) == napi_ok &&
        napi_create_string_utf8(env, event->message, NAPI_AUTO_LENGTH, &args[1]) == napi_ok &&
        napi_get_global(env, &global) == napi_ok) {
      napi_call_function(env, global, callback, 2, args, NULL);
    }
  }
  free(event);
}

static void bridge_free(Bridge *bridge) {
  if (bridge->session != NULL) fuse_session_destroy(bridge->session);
  bridge->session = NULL;
  if (bridge->volume != NULL) volume_free(bridge->volume);
  bridge->volume = NULL;
  pthread_mutex_destroy(&bridge->lock);
  pthread_cond_destroy(&bridge->ended_changed);
  free(bridge);
}

static void *loop_thread(void *data) {
  Bridge *bridge = data;
  struct fuse_loop_config *config = fuse_loop_cfg_create();
  int result = -1;
  if (config != NULL) {
    fuse_loop_cfg_set_max_threads(config, MAX_WORKERS);
    fuse_loop_cfg_set_idle_threads(config, MAX_WORKERS);
    result = fuse_session_loop_mt(bridge->session, config);
    fuse_loop_cfg_destroy(config);
  }
  pthread_mutex_lock(&bridge->lock);
  bridge->ended = true;
  bridge->loop_result = result;
  const bool detached = bridge->detached;
  pthread_cond_broadcast(&bridge->ended_changed);
  pthread_mutex_unlock(&bridge->lock);
  if (detached) {
    // Nobody waits for us any more: the events function was released by stop().
    pthread_detach(pthread_self());
    bridge_free(bridge);
  }
  return NULL;
}

/**
 * Mounts without root: the setuid fusermount (fusermount3 or the older fusermount; both speak the
 * same protocol) mounts and hands the /dev/fuse descriptor back over a socket. Returns it, or -1.
 */
static int mount_with_fusermount(const char *fusermount, const char *mountpoint, const char *options,
                                 char *error, size_t error_size) {
  int sockets[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    snprintf(error, error_size, "socketpair: %s", strerror(errno));
    return -1;
  }
  // The child's end must survive exec: dup it without O_CLOEXEC inside the child via file actions.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sockets[0], 3);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  size_t count = 0;
  while (environ[count] != NULL) count++;
  char **env = calloc(count + 2, sizeof *env);
  int fd = -1;
  if (env == NULL) {
    snprintf(error, error_size, "out of memory");
  } else {
    size_t kept = 0;
    for (size_t i = 0; i < count; i++)
      if (strncmp(environ[i], "_FUSE_COMMFD=", 13) != 0) env[kept++] = environ[i];
    env[kept++] = "_FUSE_COMMFD=3";
    env[kept] = NULL;
    char *argv[] = {(char *)fusermount, "-o", (char *)options, "--", (char *)mountpoint, NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, fusermount, &actions, NULL, argv, env);
    free(env);
    close(sockets[0]);
    sockets[0] = -1;
    if (spawned != 0) {
      snprintf(error, error_size, "cannot run fusermount: %s", strerror(spawned));
    } else {
      char byte;
      struct iovec iov = {&byte, 1};
      union {
        struct cmsghdr header;
        char space[CMSG_SPACE(sizeof(int))];
      } control;
      struct msghdr message;
      memset(&message, 0, sizeof message);
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control.space;
      message.msg_controllen = sizeof control.space;
      ssize_t got;
      do got = recvmsg(sockets[1], &message, MSG_CMSG_CLOEXEC);
      while (got < 0 && errno == EINTR);
      struct cmsghdr *header = got > 0 ? CMSG_FIRSTHDR(&message) : NULL;
      if (header != NULL && header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(header), sizeof fd);
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      if (fd < 0)
        snprintf(error, error_size, "fusermount could not mount it (exit %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  if (sockets[0] >= 0) close(sockets[0]);
  close(sockets[1]);
  return fd;
}

// ---- N-API -----------------------------------------------------------------------------------------

/** What the JS handle holds: the bridge until stop() hands it back (or over to its loop thread). */
typedef struct {
  Bridge *bridge;
} BridgeHandle;

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data); // a bridge never stopped keeps serving until the process ends
}

static const napi_type_tag BRIDGE_TAG = {0x7661756c74667573ULL, 0x6533427269646765ULL};
static const napi_type_tag VOLUME_TAG = {0x7661756c74667573ULL, 0x65335465737456ULL};

static void throw_error(napi_env env, const char *message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, NULL, message);
}

static bool get_property(napi_env env, napi_value object, const char *name, napi_value *value) {
  bool has = false;
  if (napi_has_named_property(env, object, name, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, object, name, value) != napi_ok) return false;
  napi_valuetype kind;
  napi_typeof(env, *value, &kind);
  return kind != napi_undefined && kind != napi_null;
}

/** An integer property in [0, 2^53]; `fallback` when absent (a negative fallback makes it required). */
static bool get_integer(napi_env env, napi_value object, const char *name, double fallback, double *out) {
  napi_value value;
  if (!get_property(env, object, name, &value)) {
    if (fallback < 0) {
      char message[96];
      snprintf(message, sizeof message, "%s is required", name);
      napi_throw_type_error(env, NULL, message);
      return false;
    }
    *out = fallback;
    return true;
  }
  double number = -1;
  if (napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0 && number <= MAX_EXACT_NUMBER) ||
      number != (double)(uint64_t)number) {
    char message[96];
    snprintf(message, sizeof message, "%s must be an integer between 0 and 2^53", name);
    napi_throw_range_error(env, NULL, message);
    return false;
  }
  *out = number;
  return true;
}

static bool get_bool(napi_env env, napi_value object, const char *name) {
  napi_value value;
  bool result = false;
  if (get_property(env, object, name, &value)) napi_get_value_bool(env, value, &result);
  return result;
}

/** A string property into `into` (NUL-terminated); false (with a throw) when missing or too long. */
static bool get_string(napi_env env, napi_value object, const char *name, char *into, size_t size,
                       bool required) {
  napi_value value;
  into[0] = '\0';
  if (!get_property(env, object, name, &value)) {
    if (!required) return true;
    char message[96];
    snprintf(message, sizeof message, "%s is required", name);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok || length + 1 > size ||
      napi_get_value_string_utf8(env, value, into, size, &length) != napi_ok || strlen(into) != length) {
    char message[96];
    snprintf(message, sizeof message, "%s must be a string without NUL, shorter than %zu bytes", name, size);
    napi_throw_type_error(env, NULL, message);
    return false;
  }
  return true;
}

/** Reads the volume options; key points into a JS buffer only while this call runs. */
static bool get_volume_options(napi_env env, napi_value object, VolumeOptions *options) {
  memset(options, 0, sizeof *options);
  double fd = 0, sector = 0, iv_unit = 0;
  options->forward = get_bool(env, object, "forward");
  if (!get_integer(env, object, "fd", options->forward ? 0 : -1, &fd) || !get_integer(env, object, "dataOffset", 0, &options->data_offset) ||
      !get_integer(env, object, "size", -1, &options->size) ||
      !get_integer(env, object, "sectorSize", 4096, &sector) ||
      !get_integer(env, object, "protectStart", 0, &options->protect_start) ||
      !get_integer(env, object, "protectEnd", 0, &options->protect_end) ||
      !get_integer(env, object, "ivOffset", 0, &options->iv_offset) ||
      !get_integer(env, object, "ivUnitBytes", 0, &iv_unit))
    return false;
  if (fd > INT32_MAX) {
    napi_throw_range_error(env, NULL, "fd is out of range");
    return false;
  }
  if (sector < 16 || sector > MAX_SECTOR || (uint32_t)sector % 16 != 0 || MAX_REQUEST % (uint32_t)sector != 0) {
    napi_throw_range_error(env, NULL, "sectorSize must be a power of two between 16 and 64 KiB");
    return false;
  }
  if (options->data_offset + options->size > MAX_EXACT_NUMBER) {
    napi_throw_range_error(env, NULL, "dataOffset + size exceeds 2^53");
    return false;
  }
  // The tweak's unit: the sector itself unless given (dm-crypt and VeraCrypt count 512-byte units).
  if (iv_unit == 0) iv_unit = sector;
  if (iv_unit < 1 || iv_unit > sector || (uint32_t)sector % (uint32_t)iv_unit != 0) {
    napi_throw_range_error(env, NULL, "ivUnitBytes must divide sectorSize");
    return false;
  }
  // Every tweak (ivOffset + size / ivUnitBytes at most) must fit the 64-bit plain64 IV exactly.
  if (options->iv_offset + options->size / iv_unit > MAX_EXACT_NUMBER) {
    napi_throw_range_error(env, NULL, "ivOffset + size / ivUnitBytes exceeds 2^53");
    return false;
  }
  options->fd = (int)fd;
  options->sector = (uint32_t)sector;
  options->iv_unit = (uint32_t)iv_unit;
  options->read_only = get_bool(env, object, "readOnly");
  napi_value key;
  if (get_property(env, object, "key", &key)) {
    bool typed = false;
    napi_typedarray_type type;
    size_t length = 0;
    void *data = NULL;
    if (napi_is_typedarray(env, key, &typed) != napi_ok || !typed ||
        napi_get_typedarray_info(env, key, &type, &length, &data, NULL, NULL) != napi_ok ||
        type != napi_uint8_array || (length != KEY_BYTES && length != KEY_BYTES / 2)) {
      napi_throw_type_error(env, NULL, "key must be a 64-byte (or 32-byte: AES-128-XTS) Uint8Array");
      return false;
    }
    if (CRYPTO_memcmp(data, (uint8_t *)data + length / 2, length / 2) == 0) {
      napi_throw_range_error(env, NULL, "XTS key halves must differ");
      return false;
    }
    options->key = data;
    options->key_bytes = length;
    if ((uint64_t)options->size % options->sector != 0) {
      napi_throw_range_error(env, NULL, "an encrypted volume's size must be a multiple of the sector size");
      return false;
    }
  }
  return true;
}

static void *unwrap_tagged(napi_env env, napi_value value, const napi_type_tag *tag) {
  bool tagged = false;
  void *data = NULL;
  if (napi_check_object_type_tag(env, value, tag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, &data) != napi_ok || data == NULL) {
    throw_error(env, "not a handle of this addon");
    return NULL;
  }
  return data;
}

// start(options): mounts and serves; returns a handle. options: the volume's (see get_volume_options),
// plus dir, fsname, allowOther, fusermount (path; used when not root), onEvent(kind, message).
static napi_value bridge_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value object;
  if (napi_get_cb_info(env, info, &argc, &object, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "start(options) needs an options object");
    return NULL;
  }
  VolumeOptions volume_options;
  char dir[4096], fsname[256], fusermount[4096];
  if (!get_volume_options(env, object, &volume_options) || !get_string(env, object, "dir", dir, sizeof dir, true) ||
      !get_string(env, object, "fsname", fsname, sizeof fsname, true) ||
      !get_string(env, object, "fusermount", fusermount, sizeof fusermount, false))
    return NULL;
  if (strpbrk(fsname, ",\\") != NULL) {
    napi_throw_range_error(env, NULL, "fsname must not contain a comma or a backslash");
    return NULL;
  }
  napi_value on_event;
  napi_valuetype kind = napi_undefined;
  if (!get_property(env, object, "onEvent", &on_event) || napi_typeof(env, on_event, &kind) != napi_ok ||
      kind != napi_function) {
    napi_throw_type_error(env, NULL, "onEvent must be a function");
    return NULL;
  }
  const bool allow_other = get_bool(env, object, "allowOther");

  Bridge *bridge = calloc(1, sizeof *bridge);
  if (bridge == NULL) {
    throw_error(env, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&bridge->lock, NULL);
  pthread_cond_init(&bridge->ended_changed, NULL);
  const char *problem = NULL;
  bridge->volume = volume_new(&volume_options, &problem);
  if (bridge->volume == NULL) {
    bridge_free(bridge);
    throw_error(env, problem);
    return NULL;
  }
  bridge->volume->report = report_to_js;
  bridge->volume->report_data = bridge;
  napi_value on_request = NULL;
  if (volume_options.forward) {
    napi_valuetype request_kind = napi_undefined;
    if (!get_property(env, object, "onRequest", &on_request) ||
        napi_typeof(env, on_request, &request_kind) != napi_ok || request_kind != napi_function) {
      bridge_free(bridge);
      napi_throw_type_error(env, NULL, "onRequest must be a function");
      return NULL;
    }
    bridge->volume->forward = forward_to_js;
  }

  char mount_options[512];
  snprintf(mount_options, sizeof mount_options, "fsname=%s,subtype=vault,default_permissions,nosuid,nodev,noexec,max_read=%u%s%s",
           fsname, MAX_REQUEST, volume_options.read_only ? ",ro" : "", allow_other ? ",allow_other" : "");
  char *argv[] = {"vault", "-o", mount_options, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, argv);
  bridge->session = fuse_session_new(&args, &OPERATIONS, sizeof OPERATIONS, bridge);
  if (bridge->session == NULL) {
    bridge_free(bridge);
    throw_error(env, "cannot create the FUSE session");
    return NULL;
  }
  char error[512] = "";
  int mounted;
  if (geteuid() == 0 || fusermount[0] == '\0') {
    mounted = fuse_session_mount(bridge->session, dir);
    if (mounted != 0) snprintf(error, sizeof error, "libfuse could not mount it");
  } else {
    int fd = mount_with_fusermount(fusermount, dir, mount_options, error, sizeof error);
    char device[32];
    snprintf(device, sizeof device, "/dev/fd/%d", fd);
    mounted = fd < 0 ? -1 : fuse_session_mount(bridge->session, device);
    if (fd >= 0 && mounted != 0) {
      close(fd);
      snprintf(error, sizeof error, "libfuse refused the descriptor fusermount gave");
    }
  }
  if (mounted != 0) {
    bridge_free(bridge);
    throw_error(env, error);
    return NULL;
  }
  napi_value name;
  if (napi_create_string_utf8(env, "vault-fuse-events", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, on_event, NULL, name, 0, 1, NULL, NULL, NULL, deliver_event,
                                      &bridge->events) != napi_ok) {
    fuse_session_unmount(bridge->session);
    bridge_free(bridge);
    throw_error(env, "cannot create the event channel");
    return NULL;
  }
  if (on_request != NULL &&
      napi_create_threadsafe_function(env, on_request, NULL, name, 0, 1, NULL, NULL, NULL, deliver_request,
                                      &bridge->requests) != napi_ok) {
    napi_release_threadsafe_function(bridge->events, napi_tsfn_abort);
    fuse_session_unmount(bridge->session);
    bridge_free(bridge);
    throw_error(env, "cannot create the request channel");
    return NULL;
  }
  // The event function stays referenced: it keeps the process alive while the bridge serves.
  // The loop thread and the workers it starts must leave signals to Node's main thread.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  int created = pthread_create(&bridge->thread, NULL, loop_thread, bridge);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (created != 0) {
    napi_release_threadsafe_function(bridge->events, napi_tsfn_abort);
    fuse_session_unmount(bridge->session);
    bridge_free(bridge);
    throw_error(env, "cannot start the FUSE thread");
    return NULL;
  }
  bridge->thread_started = true;
  BridgeHandle *holder = calloc(1, sizeof *holder);
  napi_value handle;
  if (holder == NULL || napi_create_external(env, holder, handle_finalize, NULL, &handle) != napi_ok ||
      napi_type_tag_object(env, handle, &BRIDGE_TAG) != napi_ok) {
    throw_error(env, "cannot create the bridge handle");
    return NULL; // the session keeps serving; the process is about to report an internal error anyway
  }
  holder->bridge = bridge;
  return handle;
}

static napi_value make_sizes(napi_env env, Volume *volume, const SizeCount *table) {
  napi_value list;
  napi_create_array(env, &list);
  uint32_t n = 0;
  for (int i = 0; i < MAX_SIZES && table[i].count > 0; i++) {
    napi_value pair, size, count;
    napi_create_array_with_length(env, 2, &pair);
    napi_create_uint32(env, table[i].size, &size);
    napi_create_double(env, (double)table[i].count, &count);
    napi_set_element(env, pair, 0, size);
    napi_set_element(env, pair, 1, count);
    napi_set_element(env, list, n++, pair);
  }
  (void)volume;
  return list;
}

static napi_value make_stats(napi_env env, Volume *volume, bool ended) {
  napi_value stats, value;
  napi_create_object(env, &stats);
  pthread_mutex_lock(&volume->lock);
  napi_set_named_property(env, stats, "read", make_sizes(env, volume, volume->read_sizes));
  napi_set_named_property(env, stats, "write", make_sizes(env, volume, volume->write_sizes));
  pthread_mutex_unlock(&volume->lock);
  napi_create_int32(env, atomic_load(&volume->in_flight), &value);
  napi_set_named_property(env, stats, "inFlight", value);
  napi_create_int32(env, atomic_load(&volume->max_in_flight), &value);
  napi_set_named_property(env, stats, "maxInFlight", value);
  napi_create_double(env, (double)atomic_load(&volume->direct_reads), &value);
  napi_set_named_property(env, stats, "directReads", value);
  napi_create_double(env, (double)atomic_load(&volume->requests), &value);
  napi_set_named_property(env, stats, "requests", value);
  napi_get_boolean(env, atomic_load(&volume->tripped), &value);
  napi_set_named_property(env, stats, "protectionTripped", value);
  napi_get_boolean(env, ended, &value);
  napi_set_named_property(env, stats, "ended", value);
  return stats;
}

static BridgeHandle *get_bridge(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "expected a bridge handle");
    return NULL;
  }
  BridgeHandle *holder = unwrap_tagged(env, argv[0], &BRIDGE_TAG);
  if (holder != NULL && holder->bridge == NULL) {
    throw_error(env, "the bridge was stopped");
    return NULL;
  }
  return holder;
}

// stats(handle): request sizes seen ([size, count] pairs), requests in flight now and at most.
static napi_value bridge_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  BridgeHandle *holder = get_bridge(env, info, 1, argv);
  if (holder == NULL) return NULL;
  Bridge *bridge = holder->bridge;
  pthread_mutex_lock(&bridge->lock);
  const bool ended = bridge->ended;
  pthread_mutex_unlock(&bridge->lock);
  return make_stats(env, bridge->volume, ended);
}

// stop(handle, waitMs): call after the kernel side was unmounted. Waits up to waitMs for the session
// to end, then frees it (true); otherwise (a lazily detached mount still in use) the session frees
// itself when it ends (false). Either way the handle is dead afterwards.
static napi_value bridge_stop(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  BridgeHandle *holder = get_bridge(env, info, 2, argv);
  if (holder == NULL) return NULL;
  Bridge *bridge = holder->bridge;
  holder->bridge = NULL;
  double wait_ms = 0;
  if (napi_get_value_double(env, argv[1], &wait_ms) != napi_ok || !(wait_ms >= 0)) wait_ms = 0;
  fuse_session_exit(bridge->session);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += (time_t)(wait_ms / 1000);
  deadline.tv_nsec += (long)((uint64_t)wait_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&bridge->lock);
  while (!bridge->ended) {
    if (pthread_cond_timedwait(&bridge->ended_changed, &bridge->lock, &deadline) == ETIMEDOUT) break;
  }
  const bool ended = bridge->ended;
  if (!ended) bridge->detached = true; // the loop thread owns the bridge from here on
  napi_threadsafe_function events = bridge->events;
  napi_threadsafe_function requests = bridge->requests;
  bridge->events = NULL;
  bridge->requests = NULL;
  pthread_mutex_unlock(&bridge->lock);
  napi_release_threadsafe_function(events, napi_tsfn_release);
  if (requests != NULL) napi_release_threadsafe_function(requests, napi_tsfn_release);
  if (ended) {
    pthread_join(bridge->thread, NULL);
    bridge_free(bridge);
  }
  napi_value result;
  napi_get_boolean(env, ended, &result);
  return result;
}

// ---- the request handler without FUSE, for tests ----------------------------------------------------

typedef struct {
  Volume *volume;
} TestVolume;

static Volume *get_test_volume(napi_env env, napi_value value) {
  TestVolume *test = unwrap_tagged(env, value, &VOLUME_TAG);
  if (test == NULL) return NULL;
  if (test->volume == NULL) {
    throw_error(env, "the volume was closed");
    return NULL;
  }
  return test->volume;
}

static void test_volume_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  TestVolume *test = data;
  if (test->volume != NULL) volume_free(test->volume);
  free(test);
}

// openVolume(options) -> handle: the volume alone (same options as start), for driving the handler.
static napi_value test_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value object;
  if (napi_get_cb_info(env, info, &argc, &object, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "openVolume(options) needs an options object");
    return NULL;
  }
  VolumeOptions options;
  if (!get_volume_options(env, object, &options)) return NULL;
  const char *problem = NULL;
  TestVolume *test = calloc(1, sizeof *test);
  if (test == NULL) {
    throw_error(env, "out of memory");
    return NULL;
  }
  test->volume = volume_new(&options, &problem);
  if (test->volume == NULL) {
    free(test);
    throw_error(env, problem);
    return NULL;
  }
  napi_value handle;
  if (napi_create_external(env, test, test_volume_finalize, NULL, &handle) != napi_ok ||
      napi_type_tag_object(env, handle, &VOLUME_TAG) != napi_ok) {
    throw_error(env, "cannot create the volume handle");
    return NULL;
  }
  return handle;
}

static bool get_offset(napi_env env, napi_value value, double *out) {
  if (napi_get_value_double(env, value, out) != napi_ok || !(*out >= 0 && *out <= MAX_EXACT_NUMBER) ||
      *out != (double)(uint64_t)*out) {
    napi_throw_range_error(env, NULL, "offset and length must be integers between 0 and 2^53");
    return false;
  }
  return true;
}

// volumeRead(handle, offset, length) -> Buffer (short at the end, empty past it) or -errno,
// exactly as the FUSE read handler answers.
static napi_value test_read(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  double offset = 0, length = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "volumeRead(handle, offset, length)");
    return NULL;
  }
  Volume *volume = get_test_volume(env, argv[0]);
  if (volume == NULL || !get_offset(env, argv[1], &offset) || !get_offset(env, argv[2], &length)) return NULL;
  if (length > 64.0 * MAX_REQUEST) {
    napi_throw_range_error(env, NULL, "length too large");
    return NULL;
  }
  size_t n = 0;
  if ((uint64_t)offset < volume->size) {
    uint64_t left = volume->size - (uint64_t)offset;
    n = (uint64_t)length < left ? (size_t)length : (size_t)left;
  }
  void *data = NULL;
  napi_value buffer;
  if (napi_create_buffer(env, n, &data, &buffer) != napi_ok) return NULL;
  if (n == 0) return buffer;
  // Into an aligned buffer, as the FUSE handler reads (so the O_DIRECT path is taken too).
  uint8_t *aligned = secret_alloc(n);
  if (aligned == NULL) {
    throw_error(env, "out of memory");
    return NULL;
  }
  Slot *slot = slot_take(volume);
  int result = volume_read(volume, slot, aligned, n, (uint64_t)offset);
  slot_return(volume, slot);
  if (result == 0) memcpy(data, aligned, n);
  secret_free(aligned, n);
  if (result == 0) return buffer;
  napi_value code;
  napi_create_int32(env, result, &code);
  return code;
}

// volumeWrite(handle, offset, data) -> bytes written or -errno, as the FUSE write handler answers.
static napi_value test_write(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  double offset = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "volumeWrite(handle, offset, data)");
    return NULL;
  }
  Volume *volume = get_test_volume(env, argv[0]);
  if (volume == NULL || !get_offset(env, argv[1], &offset)) return NULL;
  bool typed = false;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  if (napi_is_typedarray(env, argv[2], &typed) != napi_ok || !typed ||
      napi_get_typedarray_info(env, argv[2], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "data must be a Uint8Array");
    return NULL;
  }
  int result;
  if (volume->read_only) result = -EROFS;
  else if ((uint64_t)offset >= volume->size) result = -ENOSPC;
  else if (length == 0) result = 0;
  else {
    uint64_t left = volume->size - (uint64_t)offset;
    if (length > left) length = (size_t)left;
    Slot *slot = slot_take(volume);
    result = volume_write(volume, slot, data, length, (uint64_t)offset);
    slot_return(volume, slot);
    if (result == 0) result = (int)length;
  }
  napi_value value;
  napi_create_int32(env, result, &value);
  return value;
}

typedef struct {
  Volume *volume;
  uint32_t thread;
  uint32_t threads;
  uint32_t rounds;
  uint32_t chunk;
  int result;
} HammerJob;

/** The byte thread t writes at `position` in round r: what the test expects after the last round. */
static uint8_t hammer_byte(uint32_t thread, uint32_t round, uint64_t position) {
  return (uint8_t)(thread * 31 + round * 7 + position * 13 + 1);
}

static void *hammer_thread(void *data) {
  HammerJob *job = data;
  Volume *volume = job->volume;
  uint8_t *plain = malloc(job->chunk);
  if (plain == NULL) {
    job->result = -ENOMEM;
    return NULL;
  }
  // Chunk c belongs to thread c % threads: neighbouring chunks share sectors but not bytes.
  const uint64_t chunks = volume->size / job->chunk;
  for (uint32_t round = 0; round < job->rounds && job->result == 0; round++) {
    for (uint64_t c = job->thread; c < chunks && job->result == 0; c += job->threads) {
      const uint64_t at = c * job->chunk;
      for (uint32_t i = 0; i < job->chunk; i++) plain[i] = hammer_byte(job->thread, round, at + i);
      Slot *slot = slot_take(volume);
      job->result = volume_write(volume, slot, plain, job->chunk, at);
      slot_return(volume, slot);
    }
  }
  free(plain);
  return NULL;
}

// volumeHammer(handle, threads, rounds, chunk): threads write interleaved chunks concurrently (chunk c by
// thread c % threads, byte (t*31 + r*7 + position*13 + 1) mod 256 in round r); 0 or the first -errno.
static napi_value test_hammer(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t threads = 0, rounds = 0, chunk = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    napi_throw_type_error(env, NULL, "volumeHammer(handle, threads, rounds, chunk)");
    return NULL;
  }
  Volume *volume = get_test_volume(env, argv[0]);
  if (volume == NULL) return NULL;
  if (napi_get_value_uint32(env, argv[1], &threads) != napi_ok || threads < 1 || threads > MAX_WORKERS ||
      napi_get_value_uint32(env, argv[2], &rounds) != napi_ok || rounds > 1000 ||
      napi_get_value_uint32(env, argv[3], &chunk) != napi_ok || chunk < 1 || chunk > MAX_REQUEST) {
    napi_throw_range_error(env, NULL, "threads 1-16, rounds 0-1000, chunk 1 B-1 MiB");
    return NULL;
  }
  HammerJob jobs[MAX_WORKERS];
  pthread_t ids[MAX_WORKERS];
  uint32_t started = 0;
  for (uint32_t t = 0; t < threads; t++) {
    jobs[t] = (HammerJob){volume, t, threads, rounds, chunk, 0};
    if (pthread_create(&ids[t], NULL, hammer_thread, &jobs[t]) != 0) break;
    started++;
  }
  int result = started == threads ? 0 : -EAGAIN;
  for (uint32_t t = 0; t < started; t++) {
    pthread_join(ids[t], NULL);
    if (result == 0) result = jobs[t].result;
  }
  napi_value value;
  napi_create_int32(env, result, &value);
  return value;
}

// volumeStats(handle): as stats() of a bridge.
static napi_value test_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value handle;
  if (napi_get_cb_info(env, info, &argc, &handle, NULL, NULL) != napi_ok || argc < 1) return NULL;
  Volume *volume = get_test_volume(env, handle);
  return volume == NULL ? NULL : make_stats(env, volume, false);
}

// closeVolume(handle): frees it now (the finalizer would, later).
static napi_value test_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value handle;
  if (napi_get_cb_info(env, info, &argc, &handle, NULL, NULL) != napi_ok || argc < 1) return NULL;
  TestVolume *test = unwrap_tagged(env, handle, &VOLUME_TAG);
  if (test != NULL && test->volume != NULL) {
    volume_free(test->volume);
    test->volume = NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
      {"start", NULL, bridge_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, bridge_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stop", NULL, bridge_stop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"complete", NULL, bridge_complete, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openVolume", NULL, test_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"volumeRead", NULL, test_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"volumeWrite", NULL, test_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"volumeHammer", NULL, test_hammer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"volumeStats", NULL, test_stats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeVolume", NULL, test_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok)
    return NULL;
  return exports;
}
