#!/usr/bin/env bash
# Generates the TLS material of peer s (called by start.sh; usable alone):
#   tests/peers/tls.sh DIR
# Writes into DIR (wiped first), all PEM, keys unencrypted PKCS#8:
#   ca.pem ca.key                the harness CA ("ferry test CA")
#   server.pem                   key + cert (SAN IP:127.0.0.1, DNS:localhost), signed by the CA
#   server-expired.pem           key + cert for the same names, valid only in January 2020
#   server-mismatch.pem          key + cert for DNS:wrong-host.invalid only
#   client.pem client.key        client cert CN=ferry-client (principal User:CN=ferry-client)
#   client-expired.pem/.key      the same CN, expired (January 2020)
#   other-ca.pem                 a second, unrelated CA
#   other-client.pem/.key        a client cert signed by the other CA
set -euo pipefail

dir="${1:?usage: tls.sh DIR}"
rm -rf "$dir"
mkdir -p "$dir/db"
cd "$dir"
umask 077

key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
ca() { # name cn
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
# sign NAME CA SUBJECT SAN START END (SAN "-" for none; START/END "-" for now..+10y)
sign() {
  local name="$1" ca="$2" subj="$3" san="$4" start="$5" end="$6"
  key "$name.key"
  local ext=(-addext "basicConstraints=CA:FALSE")
  [[ "$san" != - ]] && ext+=(-addext "subjectAltName=$san")
  openssl req -new -key "$name.key" -out "db/$name.csr" -subj "$subj" "${ext[@]}"
  local dates=(-days 3650)
  [[ "$start" != - ]] && dates=(-startdate "$start" -enddate "$end")
  cat >db/ca.cnf <<CNF
[ ca ]
default_ca = d
[ d ]
database = db/index.txt
new_certs_dir = db
serial = db/serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[ p ]
commonName = supplied
CNF
  [[ -e db/index.txt ]] || : >db/index.txt
  [[ -e db/serial ]] || echo 1000 >db/serial
  openssl ca -batch -notext -config db/ca.cnf -cert "$ca.pem" -keyfile "$ca.key" \
    -in "db/$name.csr" -out "$name.pem" "${dates[@]}" 2>/dev/null
}
# A broker keystore in PEM: the key, then the certificate.
keystore() { cat "$1.key" "$1.pem" >"$2"; rm -f "$1.key" "$1.pem"; }

ca ca "ferry test CA"
ca other-ca "ferry other CA"
sign srv ca "/CN=localhost" "IP:127.0.0.1,DNS:localhost" - -
keystore srv server.pem
sign srvx ca "/CN=localhost" "IP:127.0.0.1,DNS:localhost" 20200101000000Z 20200131000000Z
keystore srvx server-expired.pem
sign srvm ca "/CN=wrong-host.invalid" "DNS:wrong-host.invalid" - -
keystore srvm server-mismatch.pem
sign client ca "/CN=ferry-client" - - -
sign client-expired ca "/CN=ferry-client" - 20200101000000Z 20200131000000Z
sign other-client other-ca "/CN=ferry-client" - - -
rm -rf db other-ca.key
chmod 600 ./*
