#!/usr/bin/env bash
# tests/support/tls_certs.sh DIR -- throwaway certificates for the rediss://
# tests, made with the openssl command (EC P-256, valid 2 days):
#   DIR/ca.pem ca.key            test CA
#   DIR/server.pem server.key    signed by it; SAN DNS:localhost,
#                                DNS:redis.test, IP:127.0.0.1
#   DIR/client.pem client.key    signed by it (clientAuth, mutual TLS)
#   DIR/other-ca.pem             an unrelated CA (verification must fail)
set -euo pipefail
D="${1:?usage: tls_certs.sh DIR}"
mkdir -p "$D"
cd "$D"
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=riskstream test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem 2>/dev/null
key other-ca.key
openssl req -x509 -new -key other-ca.key -sha256 -days 2 -subj "/CN=some other CA" \
  -addext "basicConstraints=critical,CA:TRUE" -out other-ca.pem 2>/dev/null
sign() { # sign NAME CN EXT
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 2 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server localhost "subjectAltName=DNS:localhost,DNS:redis.test,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign client riskstream "extendedKeyUsage=clientAuth"
chmod 600 ./*.key
