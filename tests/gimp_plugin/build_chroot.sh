#!/bin/bash
# Build (or reuse) a Debian trixie root filesystem with GIMP 3.0 for the in-GIMP tests.
#
# Usage: build_chroot.sh [ROOT]     (root only; ROOT defaults to $CLEARSHOT_GIMP_CHROOT or
#                                    /var/cache/clearshot/gimp3-chroot)
# Installs gimp, its Python bindings, numpy, Xvfb (for the dialog screenshot) and a font. The
# finished tree is marked with .clearshot-ready (holding the package list), so later runs reuse
# it in a second; a half-built tree is completed, and a tree built for another package list is
# topped up. Never touches anything outside ROOT except the mounts it undoes on exit.
set -euo pipefail
ROOT=${1:-${CLEARSHOT_GIMP_CHROOT:-/var/cache/clearshot/gimp3-chroot}}
MIRROR=${CLEARSHOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES="gimp python3-gi gir1.2-gimp-3.0 gir1.2-gtk-3.0 python3-numpy xvfb xauth fonts-dejavu-core"
STAMP="$ROOT/.clearshot-ready"

if [ "$(id -u)" != 0 ]; then echo "build_chroot.sh: needs root (debootstrap, chroot)" >&2; exit 3; fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ] && [ -x "$ROOT/usr/bin/gimp-console-3.0" ]; then
    echo "reusing $ROOT"; exit 0
fi
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
# unmount until nothing is left (mounts can be stacked; a busy one is detached lazily)
unmount() {
    for m in dev/pts dev proc sys; do
        for _ in 1 2 3; do
            mountpoint -q "$ROOT/$m" || break
            umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m" || true
        done
    done
}
mkdir -p "$(dirname "$ROOT")"
LOG="$ROOT.log"; : >"$LOG"
START=$SECONDS
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    unmount
    if grep -q " $ROOT/" /proc/mounts; then   # never rm -rf through a bind mount of /dev
        echo "build_chroot.sh: something is still mounted under $ROOT; unmount it first" >&2; exit 5
    fi
    rm -rf "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >>"$LOG" 2>&1 || {
        tail -20 "$LOG" >&2; echo "build_chroot.sh: debootstrap failed (log: $LOG)" >&2; exit 4; }
fi
echo "debootstrap: $((SECONDS - START)) s"
trap unmount EXIT
mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"
T=$SECONDS
chroot "$ROOT" apt-get update -qq >>"$LOG" 2>&1
# shellcheck disable=SC2086
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $PACKAGES >>"$LOG" 2>&1 || { tail -30 "$LOG" >&2; echo "build_chroot.sh: apt failed (log: $LOG)" >&2; exit 4; }
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/*
echo "apt install: $((SECONDS - T)) s"
unmount
echo "$PACKAGES" >"$STAMP"
echo "built $ROOT in $((SECONDS - START)) s ($(du -sxh "$ROOT" | cut -f1))"
