#!/usr/bin/env python3
"""Signs an XML document (stdin) with an enveloped XAdES-BES signature naming a person in a
Profil Zaufany `ppZP:PodpisZP` claim, and writes the signed document to stdout.

A third-party signer (signxml, on lxml and `cryptography`) for the tests of GSKO's ePUAP
connector: the simulator signs letters with xmlsec1, the connector verifies with its own Rust
code, and this script gives a third, independent signature to verify (ARCHITECTURE.md,
"Simulators"). Layout follows the spec §2.3 (epuap-login-edoreczenia.md): the ds:Signature is
the last child of the root, rsa-sha256, sha256 digests, exclusive C14N, and the person is named
at SignedSignatureProperties/SignerRole/ClaimedRoles/ClaimedRole/ppZP:PodpisZP.

Usage:
    python3 scripts/xades_sign.py --cert cert.pem --key key.pem --pesel P \
        --first-name F --surname S --login L [--signing-time 2024-05-10T10:00:00+01:00] \
        < in.xml > out.xml

Needs `signxml>=4` (scripts/requirements-test.txt).
"""

import argparse
import sys

from lxml import etree
from signxml import DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSigner
from signxml.util import ds_tag
from signxml.xades.xades import xades_tag

NS_PPZP = "http://crd.gov.pl/xml/schematy/ppzp/"
# osoba 2009/03/06, not the 2009/11/16 of the letter itself (spec §2.3).
NS_OS = "http://crd.gov.pl/xml/schematy/osoba/2009/03/06/"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


def podpis_zp(first_name: str, surname: str, pesel: str, login: str) -> etree._Element:
    """The old-form Profil Zaufany claim (spec §2.3)."""

    def ppzp(local: str) -> str:
        return f"{{{NS_PPZP}}}{local}"

    def os_(local: str) -> str:
        return f"{{{NS_OS}}}{local}"

    root = etree.Element(ppzp("PodpisZP"), nsmap={"ppZP": NS_PPZP, "os": NS_OS})
    dane_zp = etree.SubElement(root, ppzp("DaneZP"))
    osoba = etree.SubElement(dane_zp, ppzp("DaneZPOsobyFizycznej"))
    etree.SubElement(osoba, os_("Nazwisko")).text = surname
    etree.SubElement(osoba, os_("Imie")).text = first_name
    etree.SubElement(osoba, os_("PESEL")).text = pesel
    etree.SubElement(osoba, ppzp("IdKontaUzytkownikaEpuap")).text = login
    dane_podpisu = etree.SubElement(root, ppzp("DanePodpisu"))
    etree.SubElement(dane_podpisu, ppzp("IdKontaUzytkownikaEpuap")).text = login
    return root


class PodpisZaufanySigner(XAdESSigner):
    """XAdESSigner whose ClaimedRole holds a ppZP:PodpisZP element (signxml only takes strings
    there) and whose SigningTime can be fixed (signxml uses the current time)."""

    def __init__(self, claim: etree._Element, signing_time: str | None, **kwargs):
        super().__init__(**kwargs)
        self._claim = claim
        self._signing_time = signing_time

    # signxml canonicalises the enveloping root element alone, but `URI=""` means the whole
    # document (XMLDSig §4.3.3.3), including processing instructions before the root such as
    # the CRD `<?xml-stylesheet?>` every letter carries: keep the whole tree when copying the
    # input and canonicalise the document, not the element, when the node is its root.
    def get_root(self, data):
        if isinstance(data, etree._Element) and data.getparent() is None:
            return self._fromstring(etree.tostring(data.getroottree()))
        return super().get_root(data)

    def _c14n(self, nodes, algorithm, inclusive_ns_prefixes=None):
        if isinstance(nodes, etree._Element) and nodes.getparent() is None:
            return etree.tostring(
                nodes.getroottree(),
                method="c14n",
                exclusive=algorithm.value.startswith(EXC_C14N),
                with_comments=algorithm.value.endswith("#WithComments"),
                inclusive_ns_prefixes=inclusive_ns_prefixes,
            )
        return super()._c14n(nodes, algorithm, inclusive_ns_prefixes)

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
        super().add_signing_time(signed_signature_properties, sig_root, signing_settings)
        if self._signing_time is not None:
            signed_signature_properties.find(xades_tag("SigningTime")).text = self._signing_time

    def _add_reference_to_signed_info(self, sig_root, node_to_reference, **attrs):
        # signxml digests the referenced SignedProperties/KeyInfo with its c14n algorithm but
        # writes no Transform, and a Reference without one means inclusive C14N 1.0 to every
        # verifier (XMLDSig §4.3.3.2): the digest would not match. Name exc-c14n explicitly.
        super()._add_reference_to_signed_info(sig_root, node_to_reference, **attrs)
        reference = sig_root.find(ds_tag("SignedInfo"))[-1]
        transforms = etree.Element(ds_tag("Transforms"), nsmap=self.namespaces)
        etree.SubElement(transforms, ds_tag("Transform"), nsmap=self.namespaces, Algorithm=self.c14n_alg.value)
        reference.insert(0, transforms)

    def add_signer_role(self, signed_signature_properties, sig_root, signing_settings):
        signer_role = etree.SubElement(
            signed_signature_properties, xades_tag("SignerRole"), nsmap=self.namespaces
        )
        claimed_roles = etree.SubElement(signer_role, xades_tag("ClaimedRoles"), nsmap=self.namespaces)
        claimed_role = etree.SubElement(claimed_roles, xades_tag("ClaimedRole"), nsmap=self.namespaces)
        claimed_role.append(self._claim)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", required=True, help="signing certificate, PEM")
    parser.add_argument("--key", required=True, help="its private key, PEM, unencrypted")
    parser.add_argument("--pesel", required=True)
    parser.add_argument("--first-name", required=True)
    parser.add_argument("--surname", required=True)
    parser.add_argument("--login", required=True, help="the ePUAP account id (IdKontaUzytkownikaEpuap)")
    parser.add_argument("--signing-time", help="xsd:dateTime for xades:SigningTime (default: now)")
    args = parser.parse_args()

    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()
    data = sys.stdin.buffer.read()
    try:
        root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        print(f"xades_sign.py: stdin is not well-formed XML: {e}", file=sys.stderr)
        return 1

    signer = PodpisZaufanySigner(
        claim=podpis_zp(args.first_name, args.surname, args.pesel, args.login),
        signing_time=args.signing_time,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXC_C14N,
    )
    # No ds:KeyValue (XAdESSigner adds one by default): the certificate in X509Data names the
    # key, and a verifier that trusted a bare KeyValue would accept any key.
    signed = signer.sign(root, key=key, cert=cert, always_add_key_value=False)
    # sign() returns a copy of the document with the ds:Signature as the root's last child. Move
    # the signature into the original tree (every Reference uses exc-c14n, so its ancestors do
    # not matter) and write that tree, prolog included.
    signature = signed[-1]
    assert signature.tag == ds_tag("Signature"), "signxml did not append the signature last"
    root.append(signature)
    sys.stdout.buffer.write(etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
