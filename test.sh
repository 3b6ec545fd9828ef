#!/usr/bin/env bash
# Runs every test of the project, first installing and starting what the tests need.
#
#   ./test.sh                 install what is missing, start services, run `cargo test --workspace`
#   ./test.sh --setup-only    only install and start what the tests need
#   ./test.sh -- ARGS         run `cargo test ARGS` instead (e.g. `./test.sh -- -p yizhan-sync`)
#
# It needs Rust (stable) and a C compiler. System packages come from apt (Debian or Ubuntu):
# as root it installs them itself; otherwise it uses `sudo -n` if that works without a
# password, or stops and names the one command to run as root. A second run installs
# nothing. `.ci/run` calls this script, so CI and a developer run the same thing.
set -euo pipefail
cd "$(dirname "$0")"

setup_only=false
cargo_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --setup-only) setup_only=true ;;
        --) shift; cargo_args=("$@"); break ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "test.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '== %s\n' "$*"; }

# ---------------------------------------------------------------------------------------
# What the tests need from the system: a check, the Debian packages that satisfy it, and
# why. Add a line here when a test starts to need something new.
# ---------------------------------------------------------------------------------------
have_font() { fc-list 2>/dev/null | grep -i "wenquanyi\|noto sans cjk" >/dev/null; }
needs=(
    "python3 -c 'import venv, ensurepip'|python3-venv|the API test runs schemathesis (a Python tool) from a virtualenv"
    "command -v chromium|chromium|the web UI tests drive headless Chromium"
    "command -v chromedriver|chromium-driver|ChromeDriver is the WebDriver server between the tests and Chromium"
    "have_font|fonts-wqy-microhei|a CJK font, so the screenshots under target/screenshots/ show Chinese text"
)

missing_packages=()
for need in "${needs[@]}"; do
    IFS='|' read -r check packages why <<<"$need"
    if ! eval "$check" >/dev/null 2>&1; then
        say "missing: $packages ($why)"
        # shellcheck disable=SC2206
        missing_packages+=($packages)
    fi
done

if [ ${#missing_packages[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "test.sh: the tests need system packages that are not installed: ${missing_packages[*]}" >&2
        echo "run as root:  apt-get update && apt-get install -y ${missing_packages[*]}" >&2
        echo "(or run ./test.sh as root), then run ./test.sh again" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "test.sh: no apt-get here; install the equivalents of: ${missing_packages[*]}" >&2
        exit 1
    fi
    say "installing ${missing_packages[*]} with apt-get"
    "${as_root[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends \
        "${missing_packages[@]}"
else
    say "system packages: all present, nothing to install"
fi

if ! command -v cargo >/dev/null; then
    echo "test.sh: cargo is not on PATH; install Rust (stable) with rustup, then run ./test.sh again" >&2
    exit 1
fi
if ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then
    echo "test.sh: no C compiler (the bundled SQLite needs one); as root: apt-get install -y gcc" >&2
    exit 1
fi

# Tools from the Python package index, pinned, in a virtualenv under target/ (ignored by
# git, removed by `cargo clean`): schemathesis fuzzes the API from its OpenAPI document.
SCHEMATHESIS_VERSION=4.32.5
venv=target/tools/venv
if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    say "installing schemathesis $SCHEMATHESIS_VERSION into $venv (the API conformance test runs it)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
else
    say "schemathesis $SCHEMATHESIS_VERSION: present"
fi
export YIZHAN_SCHEMATHESIS="$PWD/$venv/bin/st"
# Under this script every test runs: one whose tool is missing fails instead of skipping.
export YIZHAN_REQUIRE_TOOLS=1

if $setup_only; then
    say "setup done"
    exit 0
fi

if [ ${#cargo_args[@]} -gt 0 ]; then
    say "cargo test ${cargo_args[*]}"
    exec cargo test "${cargo_args[@]}"
fi
say "cargo test --workspace"
exec cargo test --workspace
