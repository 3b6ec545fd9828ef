#!/usr/bin/env bash
# Checks that the node cross-builds for aarch64 (Raspberry-Pi-class boards): the
# release binary links and is an ARM64 ELF. Needs the rustup target and the cross C
# compiler (bundled SQLite and ring compile C):
#   rustup target add aarch64-unknown-linux-gnu
#   apt-get install -y gcc-aarch64-linux-gnu libc6-dev-arm64-cross
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
cargo build --release --target aarch64-unknown-linux-gnu -p yizhan-node
binary=target/aarch64-unknown-linux-gnu/release/yizhan
file "$binary" 2>/dev/null || true
# The ELF header says AArch64 (e_machine 0xB7 at offset 18).
machine=$(od -An -tx1 -j18 -N2 "$binary" | tr -d ' \n')
[ "$machine" = "b700" ] || { echo "$binary is not an AArch64 binary (e_machine $machine)" >&2; exit 1; }
ls -l "$binary"
echo "aarch64 build ok"
