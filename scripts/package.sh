#!/usr/bin/env bash
# Builds the Debian packages into target/debian/, with cargo-deb (the
# packaging metadata is the [package.metadata.deb] table of cli/Cargo.toml
# and plugins/mosquitto/Cargo.toml; cargo-deb reads versions, licence and
# binaries from Cargo itself, strips the binaries and writes the systemd
# unit's maintainer-script fragments, so no debian/rules to keep in step):
#
#   devicegate            the CLI: /usr/bin/devicegate, man pages, bash/zsh/fish
#                         completions, devicegate.service (not enabled), /etc/default/devicegate
#   devicegate-mosquitto  the plugin: /usr/lib/devicegate/libdevicegate_mosquitto.so,
#                         /etc/mosquitto/conf.d/devicegate.conf.example,
#                         /var/lib/devicegate owned by mosquitto
#
#   ./scripts/package.sh          release build: the packages to install
#   DEVICEGATE_PACKAGE_PROFILE=dev ./scripts/package.sh
#                                 the debug build the tests already made
#                                 (scripts/test-packages.sh: no second build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

profile="${DEVICEGATE_PACKAGE_PROFILE:-release}"
compression=()
case "$profile" in
    dev) out_dir=target/debug compression=(--fast) ;;
    *) out_dir="target/$profile" ;;
esac

ensure_build_tools
command -v dpkg-deb >/dev/null || apt_install dpkg
command -v strip >/dev/null || apt_install binutils
# Pinned: the packaging metadata and the test's dev-profile packages are
# known to work with this version.
cargo_deb_version=3.8.0
if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
    echo "==> installing cargo-deb $cargo_deb_version" >&2
    cargo install cargo-deb --version "$cargo_deb_version" --locked >&2
fi

echo "==> building the CLI and the plugin (profile $profile)" >&2
cargo build --locked --profile "$profile" -p devicegate-cli -p devicegate-mosquitto

echo "==> man pages and shell completions from the binary" >&2
assets=target/package-assets
rm -rf "$assets"
mkdir -p "$assets/completions"
"$out_dir/devicegate" manual --out "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$out_dir/devicegate" completions bash >"$assets/completions/devicegate.bash"
"$out_dir/devicegate" completions zsh >"$assets/completions/_devicegate"
"$out_dir/devicegate" completions fish >"$assets/completions/devicegate.fish"

echo "==> packages" >&2
mkdir -p target/debian
for package in devicegate-cli devicegate-mosquitto; do
    # --strip: the release profile keeps line tables for profiling, which
    # cargo-deb would otherwise ship (91 MB instead of a few).
    cargo deb --locked --no-build --strip --profile "$profile" -p "$package" "${compression[@]}" -o target/debian/ >&2
done
ls -l target/debian/*.deb
