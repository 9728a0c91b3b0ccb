#!/usr/bin/env bash
# Checks the iOS demo on Linux, where Xcode cannot run (called by `make test`).
#
#   1. the Xcode project is up to date with the Swift files on disk and, read back with the
#      PyPI pbxproj parser, compiles every Swift file and links ExecuTorch (gen_pbxproj.py);
#   2. DoTCoMKit's Package.swift dumps cleanly, `swift build` and `swift test` pass
#      (statistics vs report/schemas/stats_vectors.json, report encoding, manifest
#      decoding, preprocessing) and the contract tool used by tests/test_ios_*.py is built;
#   3. every Swift file of the app and the benchmark tests parses (`swiftc -parse`), and
#      the portable app files type-check against DoTCoMKit (Apple-only types stubbed).
#
# Swift 6 comes from a Debian trixie chroot under ~/.cache/dotcom-mobile/toolchains (see swift-env.sh),
# created on the first run and reused afterwards. Idempotent; needs root.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=swift-env.sh
source "$HERE/swift-env.sh"
cd "$REPO_ROOT"

log "project file vs sources on disk (pbxproj parser)"
PY="$REPO_ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY=python3
"$PY" ios_demo/tools/gen_pbxproj.py --check --verify

ensure_swift

log "swift package dump-package"
dump_out="$(mktemp)"
dump_err="$(mktemp)"
trap 'rm -f "$dump_out" "$dump_err"' EXIT
in_chroot bash -c 'cd /src/ios_demo/DoTCoMKit && swift package dump-package' >"$dump_out" 2>"$dump_err" \
    || { cat "$dump_err" >&2; die "dump-package failed"; }
if grep -qiE 'warning|error' "$dump_err"; then
    cat "$dump_err" >&2
    die "dump-package is not clean"
fi
"$PY" - "$dump_out" <<'PYEOF' || die "Package.swift does not declare what the app and the tests use"
import json, sys
package = json.load(open(sys.argv[1]))
products = {p["name"] for p in package["products"]}
platforms = {p["platformName"]: p["version"] for p in package["platforms"]}
assert {"DoTCoMKit", "dotcomkit-contract"} <= products, products
assert platforms.get("ios") == "17.0", platforms
assert not any(t.get("dependencies") and any("product" in d for d in t["dependencies"]) for t in package["targets"]), \
    "DoTCoMKit must stay Foundation-only (no package dependencies)"
PYEOF

log "swift build + swift test (DoTCoMKit)"
in_chroot bash -c 'set -euo pipefail; cd /src/ios_demo/DoTCoMKit && swift build -q
    swift test 2>&1 | tee .build/swift-test.log | grep -E "Executed [0-9]+ tests" | tail -n 1'

log "swiftc -parse (app and benchmark tests) and type-check of the portable app files"
in_chroot bash -c '
    set -euo pipefail
    cd /src/ios_demo
    shopt -s nullglob
    files=(DoTCoMDemo/*.swift DoTCoMDemoBenchmarks/*.swift DoTCoMKit/Sources/*/*.swift)
    [[ ${#files[@]} -gt 10 ]] || { echo "too few Swift files: ${#files[@]}" >&2; exit 1; }
    for f in "${files[@]}"; do swiftc -parse "$f"; done
    modules="$(cd DoTCoMKit && swift build --show-bin-path)/Modules"
    swiftc -typecheck -I "$modules" \
        DoTCoMDemo/ModelEntry.swift DoTCoMDemo/InferenceEngine.swift DoTCoMDemo/Benchmarker.swift \
        tools/linux-stubs/PlatformStubs.swift
    echo "parsed ${#files[@]} files"
'
log "ok"
