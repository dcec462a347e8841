#!/bin/bash
# The test and demo PKI for mod_auth_eid: a SITHS-style hierarchy, an
# e-legitimation issuer, a CA that no trust profile names, a TLS server
# certificate, person, function and hostile client certificates, and
# manifest.json saying what the module should make of each.  See README.md.
#
#   tests/pki/mkpki.sh <path-to-eid-mkcert> <outdir>
#
# Idempotent: <outdir> is wiped and made again.  Test material only.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <path-to-eid-mkcert> <outdir>" >&2
  exit 2
fi
MK=$(realpath "$1")
OUT=$2
[ -x "$MK" ] || { echo "$0: $MK is not executable" >&2; exit 2; }
case "$OUT" in ""|/) echo "$0: refusing to wipe '$OUT'" >&2; exit 2 ;; esac

rm -rf "$OUT"
mkdir -p "$OUT/ca" "$OUT/server" "$OUT/users"
umask 022

# ---- identifiers: every check digit computed here --------------------------------

# Luhn check digit over a string of digits (weights 2,1,2,1,... from the left,
# as for the 9 digits YYMMDDNNN of a personnummer or of an organisation number).
luhn_digit() {
  local s=$1 sum=0 i d
  for ((i = 0; i < ${#s}; i++)); do
    d=${s:i:1}
    if ((i % 2 == 0)); then d=$((d * 2)); ((d > 9)) && d=$((d - 9)); fi
    sum=$((sum + d))
  done
  echo $(((10 - sum % 10) % 10))
}
# 12-digit personnummer / samordningsnummer from YYYYMMDD + NNN
pnr() { echo "$1$2$(luhn_digit "${1:2}$2")"; }
# 10-digit organisation number from its first 9 digits
orgnr() { echo "$1$(luhn_digit "$1")"; }
luhn_ok() { local s=${1: -10}; [ "$(luhn_digit "${s:0:9}")" = "${s:9:1}" ]; }
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }

KOMMUN=$(orgnr 212000287)           # Sjöviks kommun (a municipality: 212000-xxxx)
REGION=2321000016                   # Region Stockholm
NURSE_HSA="SE$KOMMUN-P000000004711"
NURSE_HSA2="SE$KOMMUN-P000000004712"
DOCTOR_HSA="SE$REGION-K3X9"
FUNCTION_HSA="SE$REGION-F0000123"
NURSE_PNR=$(pnr 19780514 242)       # Åsa Öberg (9th digit even: a woman)
CITIZEN_PNR=$(pnr 19850317 123)     # Lars Ängström
COORD=$(pnr 19900883 457)           # samordningsnummer: born 1990-08-23, day + 60
PNOSE_PNR=$(pnr 19690902 391)       # Björn Nyström, in ETSI form PNOSE-...
BAD_LUHN=${CITIZEN_PNR:0:11}$(((${CITIZEN_PNR:11:1} + 1) % 10))
for v in "$KOMMUN" "$REGION" "$NURSE_PNR" "$CITIZEN_PNR" "$COORD" "$PNOSE_PNR"; do
  luhn_ok "$v" || { echo "$0: $v fails the Luhn check" >&2; exit 1; }
done
if luhn_ok "$BAD_LUHN"; then echo "$0: $BAD_LUHN passes the Luhn check" >&2; exit 1; fi

MOBILE_SITHS=1.2.752.74.8.512
NURSE_EMAIL=asa.oberg@sjovik.se
NURSE_UPN=aob001@sjovik.se
DOCTOR_EMAIL=karl-goran.akesson@regionstockholm.se

# ---- CAs --------------------------------------------------------------------------

# ca NICK "O" "CN" [PARENT]      RSA-2048, ten years
ca() {
  local nick=$1 org=$2 cn=$3 parent=${4:-} bc=ca signby=()
  if [ -n "$parent" ]; then
    signby=(--ca "$OUT/ca/$parent.pem" --ca-key "$OUT/ca/$parent.key")
    bc=ca:0
  fi
  "$MK" --out "$OUT/ca/$nick.pem" --key-out "$OUT/ca/$nick.key" --key-type rsa \
    "${signby[@]}" --subj-attr C=SE --subj-attr "O=$org" --subj-attr "CN=$cn" \
    --not-before -1 --not-after 3650 --basic-constraints "$bc" \
    --key-usage digitalSignature,keyCertSign,cRLSign
}

ca root       "Inera AB" "TEST SITHS e-id Root CA v2"
ca hsa3       "Inera AB" "TEST SITHS e-id Person HSA-id 3 CA v1" root
ca hsa2       "Inera AB" "TEST SITHS e-id Person HSA-id 2 CA v1" root
ca id3        "Inera AB" "TEST SITHS e-id Person ID 3 CA v1" root
ca function   "Inera AB" "TEST SITHS e-id Function CA v1" root
ca eid-root   "Testbanken AB" "Test e-legitimation Root CA v1"
ca eid        "Testbanken AB" "Test e-legitimation CA v1" eid-root
ca other-root "Annan Org AB" "Other Root"
ca other      "Annan Org AB" "Other Issuing CA" other-root
ca server-ca  "mod_auth_eid test" "Test Server CA"

for n in root hsa3 hsa2 id3 function eid-root eid other-root other; do
  cat "$OUT/ca/$n.pem"
done > "$OUT/ca/client-trust.pem"

"$MK" --out "$OUT/server/localhost.pem" --key-out "$OUT/server/localhost.key" \
  --ca "$OUT/ca/server-ca.pem" --ca-key "$OUT/ca/server-ca.key" \
  --subj-attr C=SE --subj-attr "O=mod_auth_eid test" --subj-attr CN=localhost \
  --basic-constraints leaf --key-usage digitalSignature --eku serverAuth \
  --san-dns localhost --san-ip 127.0.0.1 --san-ip ::1 --not-before -1 --not-after 825

# ---- users ------------------------------------------------------------------------

MANIFEST=()

# jstr KEY VALUE: a JSON member "KEY": "VALUE", VALUE escaped
jstr() {
  local v=$2 out="" c i
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  for ((i = 0; i < ${#v}; i++)); do
    c=${v:i:1}
    case "$c" in [[:cntrl:]]) printf -v c '\\u%04x' "'$c" ;; esac
    out+=$c
  done
  printf '"%s": "%s"' "$1" "$out"
}

# user NAME ISSUER EXPECT "IDENTITY-JSON" [eid-mkcert options...]
# Defaults: EC P-256, validity -1..+365 days, keyUsage digitalSignature,
# EKU clientAuth; options given later override them.
user() {
  local name=$1 issuer=$2 expect=$3 ident=$4
  shift 4
  local f="$OUT/users/$name"
  "$MK" --out "$f.pem" --key-out "$f.key" --key-type ec \
    --ca "$OUT/ca/$issuer.pem" --ca-key "$OUT/ca/$issuer.key" \
    --not-before -1 --not-after 365 --key-usage digitalSignature --eku clientAuth \
    --basic-constraints leaf "$@"
  cat "$f.pem" "$OUT/ca/$issuer.pem" > "$f.chain.pem"
  local m
  m="  \"$name\": {$(jstr file "users/$name.pem"), $(jstr key "users/$name.key"), "
  m+="$(jstr chain "users/$name.chain.pem"), $(jstr issuer_ca "ca/$issuer.pem"), "
  m+="$(jstr expect "$expect")${ident:+, $ident}}"
  MANIFEST+=("$m")
}

# identity JSON for accepted users: kind loa [key value]...
ident() {
  local out
  out="$(jstr serial_kind "$1"), \"loa\": $2"
  shift 2
  while [ $# -gt 0 ]; do out+=", $(jstr "$1" "$2")"; shift 2; done
  printf '%s' "$out"
}

# The municipal nurse, Åsa Öberg; each hostile case below is her certificate
# with exactly one thing wrong.
NURSE_BASE=(--subj-attr C=SE --subj-attr "O=Sjöviks kommun" --subj-attr "L=Sjövik"
            --subj-attr "givenName=Åsa" --subj-attr "surname=Öberg")
NURSE=("${NURSE_BASE[@]}" --subj-attr "CN=Åsa Öberg" --subj-attr "serialNumber=$NURSE_HSA")
NURSE_SAN=(--san-email "$NURSE_EMAIL" --san-upn "$NURSE_UPN")
NURSE_ID=$(ident hsa 3 hsa_id "$NURSE_HSA" given_name Åsa surname Öberg \
           org_number "$KOMMUN" email "$NURSE_EMAIL" upn "$NURSE_UPN")
RESERVE_ID=$(ident hsa 2 hsa_id "$NURSE_HSA" given_name Åsa surname Öberg \
           org_number "$KOMMUN" email "$NURSE_EMAIL" upn "$NURSE_UPN")

user nurse-kommun hsa3 ok "$NURSE_ID" --key-type rsa "${NURSE[@]}" "${NURSE_SAN[@]}"
user nurse-kommun-reserve hsa2 ok "$RESERVE_ID" \
  "${NURSE[@]}" "${NURSE_SAN[@]}"
user doctor-region hsa3 ok \
  "$(ident hsa 3 hsa_id "$DOCTOR_HSA" given_name Karl-Göran surname Åkesson \
     org_number "$REGION" email "$DOCTOR_EMAIL")" \
  --subj-attr C=SE --subj-attr "O=Region Stockholm" --subj-attr L=Stockholm \
  --subj-attr givenName=Karl-Göran --subj-attr surname=Åkesson \
  --subj-attr "CN=Karl-Göran Åkesson" --subj-attr "serialNumber=$DOCTOR_HSA" \
  --san-email "$DOCTOR_EMAIL" --policy "$MOBILE_SITHS"
user nurse-pnr id3 ok \
  "$(ident pnr 3 pnr "$NURSE_PNR" given_name Åsa surname Öberg)" \
  --subj-attr C=SE --subj-attr givenName=Åsa --subj-attr surname=Öberg \
  --subj-attr "CN=Åsa Öberg" --subj-attr "serialNumber=$NURSE_PNR"
user citizen eid ok \
  "$(ident pnr 3 pnr "$CITIZEN_PNR" given_name Lars surname Ängström)" \
  --subj-attr C=SE --subj-attr givenName=Lars --subj-attr surname=Ängström \
  --subj-attr "CN=Lars Ängström" --subj-attr "serialNumber=$CITIZEN_PNR"
user citizen-coord eid ok \
  "$(ident coord 3 pnr "$COORD" given_name Mirja surname Häkkinen)" \
  --subj-attr C=SE --subj-attr givenName=Mirja --subj-attr surname=Häkkinen \
  --subj-attr "CN=Mirja Häkkinen" --subj-attr "serialNumber=$COORD"
user citizen-pnose eid ok \
  "$(ident pnr 3 pnr "$PNOSE_PNR" given_name Björn surname Nyström)" \
  --subj-attr C=SE --subj-attr givenName=Björn --subj-attr surname=Nyström \
  --subj-attr "CN=Björn Nyström" --subj-attr "serialNumber=PNOSE-$PNOSE_PNR"
user bmp-cn hsa3 ok "$NURSE_ID" \
  "${NURSE_BASE[@]}" --subj-attr "bmp:CN=Åsa Öberg" --subj-attr "serialNumber=$NURSE_HSA" \
  "${NURSE_SAN[@]}"

user function function function "" \
  --subj-attr C=SE --subj-attr "O=Region Stockholm" --subj-attr L=Stockholm \
  --subj-attr CN=journal.regionstockholm.se --subj-attr "serialNumber=$FUNCTION_HSA" \
  --key-usage digitalSignature,keyEncipherment --eku clientAuth,serverAuth \
  --san-dns journal.regionstockholm.se
user other-ca other untrusted "" "${NURSE[@]}" "${NURSE_SAN[@]}"

# ---- hostile and otherwise refused -------------------------------------------------
user expired hsa3 expired "" "${NURSE[@]}" --not-before -30 --not-after -1
user notyet hsa3 notyet "" "${NURSE[@]}" --not-before 1 --not-after 365
user no-eku hsa3 eku "" "${NURSE[@]}" --eku none
user eku-server hsa3 eku "" "${NURSE[@]}" --eku serverAuth
user ku-nonrep hsa3 keyusage "" "${NURSE[@]}" --key-usage nonRepudiation
user two-serials hsa3 multi_serial "" "${NURSE[@]}" --subj-attr "serialNumber=$NURSE_HSA2"
user multivalued-rdn hsa3 multi_serial "" "${NURSE_BASE[@]}" \
  --subj-attr "serialNumber=$NURSE_HSA" --same-rdn --subj-attr "CN=Åsa Öberg"
# A C string reader sees "SE...-P0000": another, well-formed HSA-ID.
user serial-nul hsa3 bad_string "" "${NURSE_BASE[@]}" --subj-attr "CN=Åsa Öberg" \
  --subj-attr-hex "serialNumber=$(hex "${NURSE_HSA:0:18}")00$(hex "${NURSE_HSA:18}")"
# OpenSSL 3 refuses to parse a name whose UTF8String is malformed UTF-8 (see
# cn-bad-utf8-unparseable below), so the certificate the module can be shown
# carries U+0085 (NEL, a C1 control: a line break to some readers) instead of the space.
user cn-bad-utf8 hsa3 bad_string "" "${NURSE_BASE[@]}" \
  --subj-attr-hex "utf8:CN=$(hex "Åsa")c285$(hex "Öberg")" --subj-attr "serialNumber=$NURSE_HSA"
user given-crlf hsa3 bad_string "" --subj-attr C=SE --subj-attr "O=Sjöviks kommun" \
  --subj-attr $'givenName=Åsa\r\nX-Eid-Loa: 4' --subj-attr "surname=Öberg" \
  --subj-attr "CN=Åsa Öberg" --subj-attr "serialNumber=$NURSE_HSA"
user bad-luhn eid bad_serial "" --subj-attr C=SE --subj-attr givenName=Lars \
  --subj-attr surname=Ängström --subj-attr "CN=Lars Ängström" \
  --subj-attr "serialNumber=$BAD_LUHN"
user serial-garbage hsa3 bad_serial "" "${NURSE_BASE[@]}" --subj-attr "CN=Åsa Öberg" \
  --subj-attr serialNumber=hello
user no-serial hsa3 no_serial "" "${NURSE_BASE[@]}" --subj-attr "CN=Åsa Öberg" \
  "${NURSE_SAN[@]}"
user hsa-from-eid eid id_kind "" --subj-attr C=SE --subj-attr givenName=Åsa \
  --subj-attr surname=Öberg --subj-attr "CN=Åsa Öberg" --subj-attr "serialNumber=$NURSE_HSA"
user dup-cn hsa3 dup_attr "" "${NURSE[@]}" --subj-attr "CN=Annan Person"

# Not in the manifest: the CN holds Latin-1 "Ö" (0xD6) inside a UTF8String, i.e.
# malformed UTF-8.  OpenSSL 3 (so mod_ssl, curl, and the module's PEM reader) refuses
# to parse the certificate at all; it is here to show that and for parser tests.
f="$OUT/users/cn-bad-utf8-unparseable"
"$MK" --out "$f.pem" --key-out "$f.key" --ca "$OUT/ca/hsa3.pem" --ca-key "$OUT/ca/hsa3.key" \
  "${NURSE_BASE[@]}" --subj-attr-hex "utf8:CN=$(hex "Åsa ")d6$(hex "berg")" \
  --subj-attr "serialNumber=$NURSE_HSA" --key-usage digitalSignature --eku clientAuth \
  --basic-constraints leaf 2>/dev/null
cat "$f.pem" "$OUT/ca/hsa3.pem" > "$f.chain.pem"

{
  echo "{"
  for ((i = 0; i < ${#MANIFEST[@]}; i++)); do
    if ((i + 1 < ${#MANIFEST[@]})); then echo "${MANIFEST[i]},"; else echo "${MANIFEST[i]}"; fi
  done
  echo "}"
} > "$OUT/manifest.json"

echo "test PKI: ${#MANIFEST[@]} users in $OUT"
