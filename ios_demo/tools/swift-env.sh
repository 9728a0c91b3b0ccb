# shellcheck shell=bash
# Swift 6 toolchain for Linux hosts, sourced by check.sh and contract.sh.
#
# Why a chroot: the host is Debian bookworm, whose archive has no Swift; Debian trixie
# ships `swiftlang` (Swift 6). A minbase trixie chroot under the git-ignored
# toolchains cache folder gives us `swift build`, `swift test` and `swiftc -parse` without
# touching the host. It is created once (about 65 s and 3.4 GB) and reused.
#
# Every command runs in a private mount namespace (`unshare --mount`): /proc and the
# repository bind mount exist only for that process tree and vanish when it exits,
# even if it is killed, so nothing is left mounted on the host; the EXIT trap inside
# unmounts them explicitly on the normal path too.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# Outside the clone by default, so every clone (and CI) on this machine reuses one chroot.
DOTCOM_TOOLCHAINS="${DOTCOM_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/dotcom-mobile/toolchains}"
SWIFT_CHROOT="${SWIFT_CHROOT:-$DOTCOM_TOOLCHAINS/swift-chroot}"
SWIFT_SUITE="${SWIFT_SUITE:-trixie}"
SWIFT_MIRROR="${SWIFT_MIRROR:-http://deb.debian.org/debian}"
# Where the repository appears inside the chroot.
CHROOT_REPO=/src

log() { printf '[ios-check] %s\n' "$*" >&2; }
die() { printf '[ios-check] error: %s\n' "$*" >&2; exit 1; }

# Run "$@" as root inside the chroot with /proc mounted and the repository bound at
# /src (read-write: SwiftPM writes .build/ into the package folder).
in_chroot() {
    local script
    # shellcheck disable=SC2016
    script='
        set -euo pipefail
        root=$1; repo=$2; shift 2
        mkdir -p "$root/proc" "$root/src"
        cleanup() { umount "$root/src" 2>/dev/null || true; umount "$root/proc" 2>/dev/null || true; }
        trap cleanup EXIT
        mount -t proc proc "$root/proc"
        mount --bind "$repo" "$root/src"
        chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
            LANG=C.UTF-8 "$@"
    '
    unshare --mount --propagation private bash -c "$script" in_chroot "$SWIFT_CHROOT" "$REPO_ROOT" "$@"
}

swift_ready() {
    # /usr/bin/swift is an absolute symlink inside the chroot: test it from inside.
    [[ -f "$SWIFT_CHROOT/.dotcom-swift-ready" ]] && in_chroot swift --version >/dev/null 2>&1
}

# Create the chroot when absent or broken; a no-op when it already works.
ensure_swift() {
    [[ "$(id -u)" == 0 ]] || die "the Swift chroot needs root (debootstrap, chroot, mount)"
    if swift_ready; then
        return 0
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        apt-get install -y debootstrap >/dev/null 2>&1 \
            || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; } \
            || die "could not install debootstrap"
    fi
    # A half-built chroot (interrupted debootstrap) is rebuilt from scratch: debootstrap
    # cannot resume reliably. Built into a temporary sibling, then renamed into place.
    local tmp="$SWIFT_CHROOT.partial"
    if [[ ! -x "$SWIFT_CHROOT/usr/bin/apt-get" ]]; then
        rm -rf --one-file-system "$tmp"
        mkdir -p "$(dirname "$SWIFT_CHROOT")"
        log "debootstrap $SWIFT_SUITE into $tmp (about a minute)"
        debootstrap --variant=minbase "$SWIFT_SUITE" "$tmp" "$SWIFT_MIRROR" >"$tmp.log" 2>&1 \
            || die "debootstrap failed, see $tmp.log"
        rm -rf --one-file-system "$SWIFT_CHROOT"
        mv "$tmp" "$SWIFT_CHROOT"
        mv "$tmp.log" "$SWIFT_CHROOT.debootstrap.log"
    fi
    cp /etc/resolv.conf "$SWIFT_CHROOT/etc/resolv.conf" 2>/dev/null || true
    log "installing swiftlang in the chroot (a few minutes the first time)"
    in_chroot bash -c 'export DEBIAN_FRONTEND=noninteractive;
        apt-get update -q && apt-get install -y -q --no-install-recommends \
            swiftlang libc6-dev libstdc++-14-dev ca-certificates' >"$SWIFT_CHROOT.apt.log" 2>&1 \
        || die "apt-get install swiftlang failed, see $SWIFT_CHROOT.apt.log"
    in_chroot swift --version >/dev/null 2>&1 || die "swift does not run in $SWIFT_CHROOT"
    touch "$SWIFT_CHROOT/.dotcom-swift-ready"
}
