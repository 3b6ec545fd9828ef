#!/usr/bin/env bash
# Builds the .deb with cargo-deb and checks it in a throwaway root: the files are where
# the unit and the docs say, the binary runs, the maintainer scripts parse, and the
# systemd unit passes `systemd-analyze verify` where that tool exists.
# Run from the repository root; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "== installing cargo-deb"
    cargo install cargo-deb --locked --version 3.8.0
fi
echo "== cargo deb"
deb=$(cargo deb -p yizhan-node | tail -n 1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }
echo "built $deb"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# (No `| grep -q` under pipefail: grep quitting early would fail the pipeline with SIGPIPE.)
[ "$(dpkg-deb --field "$deb" Package)" = "yizhan" ] || { echo "the package is not named yizhan" >&2; exit 1; }
dpkg -x "$deb" "$root"
for path in usr/bin/yizhan lib/systemd/system/yizhan.service \
            usr/share/doc/yizhan/README.md \
            usr/share/doc/yizhan/examples/station.example.toml; do
    [ -e "$root/$path" ] || { echo "missing in the package: /$path" >&2; exit 1; }
done
"$root/usr/bin/yizhan" --version
control=$(mktemp -d)
dpkg-deb --control "$deb" "$control"
for script in postinst prerm postrm; do
    [ -f "$control/$script" ] || { echo "no $script in the package" >&2; exit 1; }
    sh -n "$control/$script"
done
grep -q "never writes or overwrites a config\|Never writes or overwrites a config" "$control/postinst"
rm -rf "$control"

if command -v systemd-analyze >/dev/null; then
    # Verify the unit as installed, with ExecStart pointing into the throwaway root.
    unit=$(mktemp -d)/yizhan.service
    sed "s|/usr/bin/yizhan|$root/usr/bin/yizhan|" "$root/lib/systemd/system/yizhan.service" > "$unit"
    systemd-analyze verify "$unit"
    rm -f "$unit"
    echo "systemd-analyze verify: ok"
else
    echo "systemd-analyze is not installed here; the unit was not verified"
fi
echo "package ok"
