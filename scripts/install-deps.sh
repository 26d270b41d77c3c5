#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine:
# a C compiler and make, iproute2 (network namespaces for the test
# daemons), and Debian's corosync with its C libcpg (the reference the
# test suite compares against), valgrind (make check-valgrind), and
# cargo-fuzz (make fuzz / check-fuzz; built from crates.io with
# `cargo install --locked`, about 25 s with a warm cargo cache, a few
# minutes on a fresh machine). Rust (cargo, rustfmt, clippy) must already
# be on the machine. Safe to run again.
set -euo pipefail
pkgs=(build-essential make iproute2 util-linux procps corosync libcpg-dev libcorosync-common-dev valgrind)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		# Without root the corosync suites are skipped anyway.
		echo "install-deps: not root; missing packages: ${missing[*]} (apt-get install them as root)" >&2
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# The corosync package must not start a system-wide daemon: the tests
	# run their own in private namespaces.
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found (install Rust first)" >&2; exit 1; }
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
# The fuzz targets need a nightly-only sanitizer flag; fuzz/run.sh sets
# RUSTC_BOOTSTRAP=1 for the stable toolchain. Pinned for reproducibility.
CARGO_FUZZ_VERSION=0.13.1
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
	cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
echo "install-deps: ok"
