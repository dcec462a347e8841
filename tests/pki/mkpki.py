#!/usr/bin/python3
"""The test and demo PKI: a SITHS-style hierarchy, an e-legitimation issuer, a CA
that no trust profile names, a TLS server certificate, and person, function and
hostile client certificates with a manifest of what each should yield.

    tests/pki/mkpki.py OUTDIR        (run by `make pki` into build/pki)

Keys are EC P-256 (fast to make; the module's checks do not depend on the key
type). Certificates whose defect cannot be expressed through the library
(invalid UTF-8, a NUL inside a value) are made by patching the bytes of a
to-be-signed certificate and signing it again with the issuing CA's key.
Everything here is test material: the keys are not secret.
"""
import datetime
import ipaddress
import json
import os
import shutil
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

NOW = datetime.datetime.utcnow().replace(microsecond=0)
CLIENT, SERVER = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
MOBILE_SITHS = "1.2.752.74.8.512"
# cn-bad-utf8: OpenSSL 3 refuses to parse a name holding malformed UTF-8 (overlong,
# surrogate, > U+10FFFF), so such a certificate never gets past mod_ssl; the module's
# own strict check is met with U+0085 (NEL, a C1 control: a line break to some readers).
BAD_UTF8 = b"\xc2\x85QQ"
C, O, L, CN = NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME, NameOID.COMMON_NAME
GN, SN, SERIAL = NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.SERIAL_NUMBER


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def attr(oid, value, bmp=False):
    if bmp:
        return x509.NameAttribute(oid, value, _type=_ASN1Type.BMPString)
    return x509.NameAttribute(oid, value)


def name(*attrs):
    return x509.Name([x509.RelativeDistinguishedName([a]) for a in attrs])


class PKI:
    def __init__(self, out):
        self.out = out
        self.cas = {}
        self.manifest = {}
        shutil.rmtree(out, ignore_errors=True)
        for d in ("ca", "server", "users"):
            os.makedirs(os.path.join(out, d))

    def write(self, rel, data, mode=0o644):
        path = os.path.join(self.out, rel)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    @staticmethod
    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    def build(self, subject, key, issuer=None, ca=False, eku=(CLIENT,), ku="sign",
              policies=(), san=None, not_before=-1, not_after=365):
        icert, ikey = self.cas[issuer] if issuer else (None, key)
        b = (x509.CertificateBuilder().subject_name(subject)
             .issuer_name(icert.subject if icert else subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(NOW + datetime.timedelta(days=not_before))
             .not_valid_after(NOW + datetime.timedelta(days=not_after))
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False))
        if icert:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), False)
        if ca:
            b = b.add_extension(x509.BasicConstraints(True, None), True)
            b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                              False, False), True)
        else:
            b = b.add_extension(x509.BasicConstraints(False, None), True)
            if ku == "sign":  # digitalSignature: an authentication certificate
                b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False,
                                                  False, False, False), True)
            elif ku == "nonrep":  # nonRepudiation only: the card's signing certificate
                b = b.add_extension(x509.KeyUsage(False, True, False, False, False, False,
                                                  False, False, False), True)
            if eku:
                b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
            if policies:
                b = b.add_extension(x509.CertificatePolicies(
                    [x509.PolicyInformation(ObjectIdentifier(p), None) for p in policies]), False)
            if san:
                b = b.add_extension(x509.SubjectAlternativeName(san), False)
        return b.sign(ikey, hashes.SHA256())

    def ca(self, nick, cn, org, parent=None):
        k = ec.generate_private_key(ec.SECP256R1())
        cert = self.build(name(attr(C, "SE"), attr(O, org), attr(CN, cn)), k, parent, ca=True)
        self.cas[nick] = (cert, k)
        self.write("ca/%s.pem" % nick, cert.public_bytes(serialization.Encoding.PEM))
        self.write("ca/%s.key" % nick, self.key_pem(k), 0o600)

    def patch(self, cert, issuer, old, new):
        """Re-sign `cert` with bytes `old` in its TBS replaced by `new` (same length)."""
        assert len(old) == len(new)
        der = cert.public_bytes(serialization.Encoding.DER)
        tbs = cert.tbs_certificate_bytes
        assert tbs.count(old) == 1, old
        tbs = tbs.replace(old, new)
        sig = self.cas[issuer][1].sign(tbs, ec.ECDSA(hashes.SHA256()))
        # the AlgorithmIdentifier follows the TBS in the original encoding
        start = der.index(cert.tbs_certificate_bytes) + len(tbs)
        alg_len = der[start + 1] + 2
        alg = der[start:start + alg_len]
        bits = b"\x00" + sig
        body = tbs + alg + b"\x03" + der_len(len(bits)) + bits
        return b"\x30" + der_len(len(body)) + body

    def user(self, nick, issuer, attrs, expect="ok", info=None, rdns=None, patch=None, **kw):
        k = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(rdns) if rdns else name(*attrs)
        cert = self.build(subject, k, issuer, **kw)
        if patch:
            der = self.patch(cert, issuer, *patch)
            pem = (b"-----BEGIN CERTIFICATE-----\n" +
                   b"\n".join(_b64lines(der)) + b"\n-----END CERTIFICATE-----\n")
        else:
            pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_pem = self.cas[issuer][0].public_bytes(serialization.Encoding.PEM)
        self.write("users/%s.pem" % nick, pem)
        self.write("users/%s.key" % nick, self.key_pem(k), 0o600)
        self.write("users/%s.chain.pem" % nick, pem + ca_pem)
        entry = {"file": "users/%s.pem" % nick, "key": "users/%s.key" % nick,
                 "chain": "users/%s.chain.pem" % nick, "issuer_ca": "ca/%s.pem" % issuer,
                 "expect": expect}
        entry.update(info or {})
        self.manifest[nick] = entry


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _b64lines(der):
    import base64
    s = base64.b64encode(der)
    return [s[i:i + 64] for i in range(0, len(s), 64)]


def main(out):
    p = PKI(out)
    p.ca("root", "TEST SITHS e-id Root CA v2", "Inera AB")
    for nick, cn in (("hsa3", "Person HSA-id 3"), ("hsa2", "Person HSA-id 2"),
                     ("id3", "Person ID 3"), ("function", "Function")):
        p.ca(nick, "TEST SITHS e-id %s CA v1" % cn, "Inera AB", "root")
    p.ca("eid-root", "Test e-legitimation Root CA v1", "Testbanken AB")
    p.ca("eid", "Test e-legitimation CA v1", "Testbanken AB", "eid-root")
    p.ca("other-root", "Other Root", "Annan Org AB")
    p.ca("other", "Other Issuing CA", "Annan Org AB", "other-root")
    p.ca("server-ca", "Test Server CA", "mod_auth_eid test")

    sk = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
           x509.IPAddress(ipaddress.ip_address("::1"))]
    sc = p.build(name(attr(CN, "localhost")), sk, "server-ca", eku=(SERVER,), ku=None, san=san)
    p.write("server/localhost.pem", sc.public_bytes(serialization.Encoding.PEM))
    p.write("server/localhost.key", p.key_pem(sk), 0o600)
    p.write("ca/client-trust.pem", b"".join(
        p.cas[n][0].public_bytes(serialization.Encoding.PEM)
        for n in ("root", "hsa3", "hsa2", "id3", "function", "eid-root", "eid", "other-root",
                  "other")))

    kommun, region = "2120001231", "2321000016"  # Luhn-valid organisation numbers
    nurse_hsa, doctor_hsa = "SE%s-N0001" % kommun, "SE%s-D0002" % region
    pnr = {"nurse": "194911172296", "citizen": "191212121212", "coord": "197010632391",
           "pnose": "198112189876"}
    for v in list(pnr.values()) + [kommun, region]:
        assert luhn_ok(v[-10:]), v
    email = "asa.oberg@testkommun.se"
    nurse = [attr(C, "SE"), attr(O, "Testkommunen"), attr(L, "Teststad"), attr(GN, "Åsa"),
             attr(SN, "Öberg"), attr(CN, "Åsa Öberg"), attr(SERIAL, nurse_hsa)]
    nurse_info = {"serial_kind": "hsa", "hsa_id": nurse_hsa, "given_name": "Åsa",
                  "surname": "Öberg", "org_number": kommun, "loa": 3, "email": email}
    mail = [x509.RFC822Name(email)]

    p.user("nurse-kommun", "hsa3", nurse, info=nurse_info, san=mail)
    p.user("nurse-kommun-reserve", "hsa2", nurse, info=dict(nurse_info, loa=2), san=mail)
    p.user("doctor-region", "hsa3",
           [attr(C, "SE"), attr(O, "Region Test"), attr(GN, "Erik"), attr(SN, "Läkare"),
            attr(CN, "Erik Läkare"), attr(SERIAL, doctor_hsa)],
           info={"serial_kind": "hsa", "hsa_id": doctor_hsa, "given_name": "Erik",
                 "surname": "Läkare", "org_number": region, "loa": 3},
           policies=[MOBILE_SITHS])
    p.user("nurse-pnr", "id3", [attr(GN, "Åsa"), attr(SN, "Öberg"), attr(CN, "Åsa Öberg"),
                                attr(SERIAL, pnr["nurse"])],
           info={"serial_kind": "pnr", "pnr": pnr["nurse"], "given_name": "Åsa",
                 "surname": "Öberg", "loa": 3})
    p.user("citizen", "eid", [attr(C, "SE"), attr(GN, "Tolvan"), attr(SN, "Tolvansson"),
                              attr(CN, "Tolvan Tolvansson"), attr(SERIAL, pnr["citizen"])],
           info={"serial_kind": "pnr", "pnr": pnr["citizen"], "given_name": "Tolvan",
                 "surname": "Tolvansson", "loa": 3})
    p.user("citizen-coord", "eid", [attr(CN, "Sam Ordning"), attr(SERIAL, pnr["coord"])],
           info={"serial_kind": "coord", "pnr": pnr["coord"], "loa": 3})
    p.user("citizen-pnose", "eid", [attr(CN, "Pno Se"), attr(SERIAL, "PNOSE-" + pnr["pnose"])],
           info={"serial_kind": "pnr", "pnr": pnr["pnose"], "loa": 3})
    p.user("bmp-cn", "hsa3", [attr(C, "SE"), attr(O, "Testkommunen"),
                              attr(CN, "Åsa Öberg", bmp=True), attr(SERIAL, nurse_hsa)],
           info={"serial_kind": "hsa", "hsa_id": nurse_hsa, "org_number": kommun, "loa": 3})
    p.user("function", "function", [attr(C, "SE"), attr(O, "Region Test"),
                                     attr(CN, "Journalsystemet"),
                                     attr(SERIAL, "SE%s-F0000123" % region)],
           expect="function", eku=(CLIENT, SERVER))
    p.user("other-ca", "other", nurse, expect="untrusted", san=mail)
    # hostile and otherwise refused certificates
    p.user("expired", "hsa3", nurse, expect="expired", not_before=-30, not_after=-1)
    p.user("notyet", "hsa3", nurse, expect="notyet", not_before=1, not_after=30)
    p.user("no-eku", "hsa3", nurse, expect="eku", eku=())
    p.user("eku-server", "hsa3", nurse, expect="eku", eku=(SERVER,))
    p.user("ku-nonrep", "hsa3", nurse, expect="keyusage", ku="nonrep")
    p.user("two-serials", "hsa3", nurse + [attr(SERIAL, "SE%s-N0002" % kommun)],
           expect="multi_serial")
    p.user("multivalued-rdn", "hsa3", None, expect="multi_serial",
           rdns=[x509.RelativeDistinguishedName([attr(C, "SE")]),
                 x509.RelativeDistinguishedName([attr(SERIAL, nurse_hsa),
                                                 attr(CN, "Åsa Öberg")])])
    p.user("serial-nul", "hsa3", [attr(CN, "Nul"), attr(SERIAL, "SE2120001231-NXXXX1")],
           expect="bad_string", patch=(b"NXXXX1", b"N\x00XXX1"))
    p.user("cn-bad-utf8", "hsa3", [attr(CN, "Bad QQQQ utf8"), attr(SERIAL, nurse_hsa)],
           expect="bad_string", patch=(b"QQQQ", BAD_UTF8))
    p.user("given-crlf", "hsa3", [attr(GN, "Åsa\r\nX-Eid-Loa: 4"), attr(SERIAL, nurse_hsa)],
           expect="bad_string")
    p.user("bad-luhn", "eid", [attr(SERIAL, "191212121213")], expect="bad_serial")
    p.user("serial-garbage", "hsa3", [attr(SERIAL, "hello")], expect="bad_serial")
    p.user("no-serial", "hsa3", [attr(CN, "Ingen Alls")], expect="no_serial")
    p.user("hsa-from-eid", "eid", [attr(CN, "Fel Utfärdare"), attr(SERIAL, nurse_hsa)],
           expect="id_kind")
    p.user("dup-cn", "hsa3", nurse + [attr(CN, "Annan Person")], expect="dup_attr")

    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(p.manifest, f, ensure_ascii=False, indent=1, sort_keys=True)
    print("test PKI: %d users in %s" % (len(p.manifest), out))


if __name__ == "__main__":
    main(sys.argv[1])
