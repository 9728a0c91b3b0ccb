#!/usr/bin/env bash
# Runs DoTCoMKit's contract tool (Sources/dotcomkit-contract) inside the Swift chroot.
#
#   contract.sh manifest   MANIFEST                      # decoded manifest JSON on stdout
#   contract.sh report     MANIFEST OUT.json [options]   # a latency report written by DoTCoMKit
#   contract.sh preprocess MANIFEST IMAGE.rgba W H OUT.f32
#   contract.sh in-turn    OUT_DIR MANIFEST MANIFEST... [options]   # reports of a group timed in turn
#
# The chroot only sees the repository, so host files given as arguments are copied into
# a scratch folder inside it and outputs are copied back. Builds the tool when missing;
# expects the chroot to exist (tools/check.sh creates it).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=swift-env.sh
source "$HERE/swift-env.sh"

[[ $# -ge 2 ]] || die "usage: contract.sh manifest|report|preprocess MANIFEST ... | in-turn OUT_DIR MANIFEST..."
swift_ready || die "no Swift toolchain at $SWIFT_CHROOT: run ios_demo/tools/check.sh first"

command="$1"
shift
scratch_rel="ios_demo/DoTCoMKit/.build/contract-io/$$-$RANDOM"
scratch="$REPO_ROOT/$scratch_rel"
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT

inside() { printf '/src/%s/%s' "$scratch_rel" "$1"; }

out_host=""
out_dir_host=""
if [[ "$command" == in-turn ]]; then
    # OUT_DIR, then the manifests up to the first option; each copied in under its own name.
    out_dir_host="$1"
    shift
    args=("$command" "$(inside out)")
    n=0
    while [[ $# -gt 0 && "$1" != --* ]]; do
        cp "$1" "$scratch/manifest-$n.json"
        args+=("$(inside "manifest-$n.json")")
        n=$((n + 1))
        shift
    done
    args+=("$@")
else
    cp "$1" "$scratch/manifest.json"
    args=("$command" "$(inside manifest.json)")
    shift
fi
case "$command" in
    manifest|in-turn) ;;
    report)
        [[ $# -ge 1 ]] || die "report needs OUT.json"
        out_host="$1"; shift
        args+=("$(inside out.bin)" "$@")
        ;;
    preprocess)
        [[ $# -eq 4 ]] || die "preprocess needs IMAGE.rgba WIDTH HEIGHT OUT.f32"
        cp "$1" "$scratch/image.rgba"
        out_host="$4"
        args+=("$(inside image.rgba)" "$2" "$3" "$(inside out.bin)")
        ;;
    *) die "unknown command '$command'" ;;
esac

# Rebuild only when a source is newer than the tool (a no-op `swift build` costs seconds).
kit="$REPO_ROOT/ios_demo/DoTCoMKit"
tool="$kit/.build/debug/dotcomkit-contract"
if [[ ! -x "$tool" ]] || [[ -n "$(find "$kit/Sources" "$kit/Package.swift" -newer "$tool" -print -quit)" ]]; then
    in_chroot bash -c 'cd /src/ios_demo/DoTCoMKit && swift build -q --product dotcomkit-contract' >&2
fi
in_chroot /src/ios_demo/DoTCoMKit/.build/debug/dotcomkit-contract "${args[@]}"

if [[ -n "$out_host" ]]; then
    cp "$scratch/out.bin" "$out_host.tmp.$$"
    mv "$out_host.tmp.$$" "$out_host"
fi
if [[ -n "$out_dir_host" ]]; then
    mkdir -p "$out_dir_host"
    for f in "$scratch/out"/*.json; do
        cp "$f" "$out_dir_host/.$(basename "$f").tmp.$$"
        mv "$out_dir_host/.$(basename "$f").tmp.$$" "$out_dir_host/$(basename "$f")"
    done
fi
