#!/usr/bin/env bash
# Takes a fresh Debian machine, as root, to a working vault: Debian packages, npm ci (which builds
# the native XTS addon and dist/), a `vault` command on PATH, then a first real command.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command with its output (compilers, node-gyp) kept in a log that is shown only if it fails.
quietly() {
  local log
  log=$(mktemp -t vault-setup.XXXXXX)
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "vault setup: error: $* failed (output above; also in $log)" >&2
    return 1
  fi
  rm -f "$log"
}

# What vault needs from Debian, and why:
#   libfuse3-3          the FUSE bridge (build/Release/vault_fuse.node links libfuse3.so.3)
#   libfuse3-dev, pkg-config   to build that addon (native/fuse3.c) at npm ci
#   fuse                fusermount (unmounting; mounting with --user); Debian's fuse3 may replace it,
#                       it then provides fusermount3 and a fusermount link to it: vault uses either
#   e2fsprogs           mkfs.ext4, e2fsck, resize2fs
#   dosfstools          mkfs.vfat        exfatprogs   mkfs.exfat
#   exfat-fuse          mounts exfat (the outer volume of hidden-volume vaults) on kernels without exfat
#   xfsprogs, btrfs-progs   mkfs.xfs, mkfs.btrfs (vault create --filesystem xfs|btrfs)
#   ntfs-3g             mkfs.ntfs and the NTFS FUSE driver (--filesystem ntfs; kernels without ntfs3)
#   util-linux, mount   losetup, mount, umount, script (tests)
#   fio                 the load tests
#   mtools              mcopy: files onto vfat images in the hidden-volume unit tests
#   fuse2fs             vault mount --user: ext4 without root (FUSE instead of a loop device)
#   cryptsetup-bin      tests only: makes LUKS1/LUKS2 volumes and reads VeraCrypt/TrueCrypt headers (no
#                       device-mapper needed); vault itself opens those volumes without it
#   tcplay              tests only: makes TrueCrypt volumes (on a loop device)
packages=(libfuse3-3 libfuse3-dev pkg-config e2fsprogs dosfstools exfatprogs exfat-fuse xfsprogs btrfs-progs ntfs-3g util-linux mount fio fuse2fs mtools cryptsetup-bin tcplay)
# fuse or fuse3, whichever is there (each Breaks the other): only when neither provides fusermount.
if ! PATH=$PATH:/usr/bin:/bin command -v fusermount3 >/dev/null && ! PATH=$PATH:/usr/bin:/bin command -v fusermount >/dev/null; then
  packages+=(fuse)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "vault setup: error: missing Debian packages: ${missing[*]}" >&2
    echo "vault setup: hint: run this script as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "vault setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci builds three native addons against the headers of this Node.js (no download): ours,
# native/xts.c (OpenSSL XTS) and native/fuse3.c (the FUSE 3 bridge), and argon2's.
# argon2's prebuilt binary crashes (SIGSEGV) on this
# machine kind, so package.json allows its install script to compile it from source.
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [[ -f $node_prefix/include/node/node_api.h ]]; then export npm_config_nodedir=$node_prefix; fi
echo "vault setup: npm ci (builds the native addons and dist/; takes a minute)"
quietly npm ci --no-audit --no-fund --loglevel=error

if [[ $(id -u) -eq 0 && -d /usr/local/bin ]]; then
  ln -sf "$PWD/bin/vault" /usr/local/bin/vault
fi

# The last word: does the main job work here? Every part checked, then (as root) a small vault made,
# mounted, written, dismounted and remounted in a private temporary directory; one verdict line.
bin/vault --version
bin/vault doctor
