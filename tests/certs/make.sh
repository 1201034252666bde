#!/bin/sh
# Regenerates the TLS test certificates: a CA, and a server certificate it signs
# for "localhost" / 127.0.0.1 / ::1 (valid for 100 years), with the extensions
# Python 3.13's default context checks (VERIFY_X509_STRICT). Run from this folder.
set -eu
cat > ca.ext <<'END'
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
END
cat > server.ext <<'END'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
authorityKeyIdentifier=keyid
subjectKeyIdentifier=hash
END
openssl req -newkey rsa:2048 -nodes -subj "/CN=mioloop test CA" -keyout ca.key -out ca.csr 2>/dev/null
openssl x509 -req -in ca.csr -signkey ca.key -days 36500 -extfile ca.ext -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 \
    -extfile server.ext -out server.pem 2>/dev/null
cat server.key >> server.pem
rm -f ca.csr ca.key ca.ext ca.srl server.csr server.key server.ext
