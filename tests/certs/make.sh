#!/bin/sh
# Regenerates the TLS test certificates: a CA, and a server certificate it signs
# for "localhost" / 127.0.0.1 / ::1 (valid for 100 years). Run from this folder.
set -eu
openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj "/CN=mioloop test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 36500 \
    -extfile san.ext -out server.pem 2>/dev/null
cat server.key >> server.pem
rm -f server.csr server.key san.ext ca.srl ca.key
