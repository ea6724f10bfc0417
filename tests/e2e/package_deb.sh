#!/usr/bin/env bash
# The Debian package: built by ops/package.sh (prefix /usr, cpack -G DEB);
# checks its file list, control fields, conffiles and maintainer scripts,
# then runs what it holds without installing it: the extracted binary's
# --version, the packaged config loads, the packaged sample equals
# `config --sample`, and `systemd-analyze verify` accepts the unit (its
# ExecStart pointed at the extracted binary).  Installing (dpkg -i) changes
# the machine, so it is not done here; .ci/run runs this script.
# usage: package_deb.sh SOURCE_DIR [BUILD_DIR]
set -euo pipefail
SRC="${1:?source dir}"
BUILD="${2:-$SRC/build-pkg}"
T="$(mktemp -d /tmp/rs-pkg.XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "package FAIL: $*"; exit 1; }

DEB="$(bash "$SRC/ops/package.sh" "$BUILD" | tail -1)"
[ -f "$DEB" ] || fail "no package built"
echo "package: $DEB ($(du -k "$DEB" | cut -f1) KiB)"
dpkg-deb -c "$DEB" >"$T/list"   # (to a file: grep -q on a pipe would SIGPIPE dpkg-deb)
awk '{print $6}' "$T/list" | sed 's#^\./#/#' >"$T/files"
for f in /usr/bin/riskstream /etc/riskstream/riskstream.yaml /etc/default/riskstream \
         /lib/systemd/system/riskstream.service /usr/share/doc/riskstream/README.md \
         /usr/share/doc/riskstream/riskstream.sample.yaml /usr/share/doc/riskstream/docs/config.md \
         /usr/share/riskstream/monitoring/riskstream-dashboard.json \
         /usr/share/riskstream/monitoring/riskstream-alerts.yml; do
  grep -qx "$f" "$T/files" || fail "$f not in the package"
done
grep -q '^/usr/local' "$T/files" && fail "files under /usr/local"
grep -q 'test\.yml$' "$T/files" && fail "the rules' unit tests are packaged"
grep -q -- '-rw------- .*\./etc/default/riskstream$' "$T/list" || fail "/etc/default/riskstream is not 0600"
dpkg-deb -I "$DEB" >"$T/info"
grep -q '^ Package: riskstream$' "$T/info" || fail "package name"
for lib in librdkafka1 libhiredis0.14 libopenblas0 libssl3 libyaml-0-2 libmicrohttpd12; do
  grep -q "^ Depends:.*$lib" "$T/info" || fail "Depends lacks $lib: $(grep Depends "$T/info")"
done
dpkg-deb -e "$DEB" "$T/control"
diff <(sort "$T/control/conffiles") <(printf '/etc/default/riskstream\n/etc/riskstream/riskstream.yaml\n') ||
  fail "conffiles"
for s in postinst prerm postrm; do [ -x "$T/control/$s" ] || fail "no $s"; sh -n "$T/control/$s" || fail "$s syntax"; done
echo "package: $(wc -l <"$T/files") paths, Depends from shlibdeps, 2 conffiles, maintainer scripts"

dpkg-deb -x "$DEB" "$T/root"
BIN="$T/root/usr/bin/riskstream"
"$BIN" --version | tee "$T/version"
grep -q '^commit ' "$T/version" || fail "--version without commit"
"$BIN" config --config "$T/root/etc/riskstream/riskstream.yaml" >/dev/null || fail "packaged config does not load"
"$BIN" config --sample | cmp -s - "$T/root/usr/share/doc/riskstream/riskstream.sample.yaml" ||
  fail "packaged sample differs from config --sample"
if command -v systemd-analyze >/dev/null; then
  sed "s#ExecStart=/usr/bin/riskstream#ExecStart=$BIN#" \
    "$T/root/lib/systemd/system/riskstream.service" >"$T/riskstream.service"
  systemd-analyze verify "$T/riskstream.service" 2>&1 | tee "$T/verify"
  [ ! -s "$T/verify" ] || fail "systemd-analyze verify complains"
  echo "package: systemd-analyze verify: unit OK"
fi
echo "package: PASS"
