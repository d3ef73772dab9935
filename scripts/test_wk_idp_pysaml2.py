#!/usr/bin/env python3
"""Self-check of scripts/wk_idp_pysaml2.py without GSKO: plays the service provider.

Signs the AuthnRequest, ArtifactResolve and LogoutRequest with signxml and throwaway P-256
keys, drives the IdP through SSO, artifact resolution and logout over HTTP, verifies every
signature the IdP returns with xmlsec1 against idp-cert.pem, decrypts the assertion with
`cryptography` (ECDH-ES, ConcatKDF, AES key unwrap, AES-GCM) and checks what a service
provider would read from it. Also checks the IdP refuses what it must refuse.

Usage: python3 scripts/test_wk_idp_pysaml2.py   (prints "N passed, N failed"; exit 1 on failure)
Set WK_IDP_DUMP=FILE to keep the SOAP ArtifactResponse for a look.
Needs pysaml2, signxml, lxml, cryptography (scripts/requirements-test.txt) and xmlsec1.
"""

import base64
import html as html_module
import datetime
import hashlib
import os
import re
import select
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner

HERE = os.path.dirname(os.path.abspath(__file__))
IDP_SCRIPT = os.path.join(HERE, "wk_idp_pysaml2.py")

IDP_ENTITY_ID = "pysaml2-idp.test"
SP_ENTITY_ID = "https://gsko.test/sp"
ACS_URL = "https://gsko.test/login/acs"
PESEL = "44051401359"
RESIDENT = f"{PESEL},Jan,Kowalski,1944-05-14"
LOA_HIGH = "http://eidas.europa.eu/LoA/high"

NS = {
    "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
    "saml2p": "urn:oasis:names:tc:SAML:2.0:protocol",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "dsig11": "http://www.w3.org/2009/xmldsig11#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
    "soap": "http://schemas.xmlsoap.org/soap/envelope/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
NATURALPERSON = "http://eidas.europa.eu/attributes/naturalperson"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
FORM_RE = re.compile(
    r'<form method="post" action="([^"]*)">.*?'
    r'<input type="hidden" name="SAMLart" value="([^"]*)">.*?'
    r'<input type="hidden" name="RelayState" value="([^"]*)">',
    re.S,
)

results = {"passed": 0, "failed": 0}


def check(name: str, condition: bool, detail: str = "") -> bool:
    if condition:
        results["passed"] += 1
        print(f"ok   {name}")
    else:
        results["failed"] += 1
        print(f"FAIL {name} {detail}")
    return condition


# --- the service provider's side -------------------------------------------------------------


def key_and_cert(workdir: str, name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(workdir, f"{name}.pem")
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, cert_path


def now_text() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(xml: str, key, cert) -> bytes:
    """Enveloped ecdsa-sha256 signature; the placeholder puts it right after Issuer, where the
    SAML schema wants it."""
    root = etree.fromstring(xml.encode("utf-8"))
    signer = XMLSigner(
        signature_algorithm="ecdsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(
        root,
        key=key,
        cert=[cert],
        reference_uri=root.get("ID"),
        id_attribute="ID",
    )
    return etree.tostring(signed)


def authn_request(request_id: str, destination: str, acs_url: str = ACS_URL, loa: str = LOA_HIGH) -> str:
    return f"""<saml2p:AuthnRequest xmlns:saml2p="{NS['saml2p']}" xmlns:saml2="{NS['saml2']}" xmlns:ds="{NS['ds']}"
    xmlns:eidas="http://eidas.europa.eu/saml-extensions" AssertionConsumerServiceURL="{acs_url}"
    Destination="{destination}" ForceAuthn="true" ID="{request_id}" IssueInstant="{now_text()}"
    ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" ProviderName="gsko" Version="2.0">
  <saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>
  <ds:Signature Id="placeholder"/>
  <saml2p:Extensions>
    <eidas:SPType>public</eidas:SPType>
    <eidas:RequestedAttributes>
      <eidas:RequestedAttribute FriendlyName="PersonIdentifier" Name="{NATURALPERSON}/PersonIdentifier" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" isRequired="true"/>
    </eidas:RequestedAttributes>
  </saml2p:Extensions>
  <saml2p:NameIDPolicy AllowCreate="true" Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"/>
  <saml2p:RequestedAuthnContext Comparison="minimum">
    <saml2:AuthnContextClassRef>{loa}</saml2:AuthnContextClassRef>
  </saml2p:RequestedAuthnContext>
</saml2p:AuthnRequest>"""


def artifact_resolve(resolve_id: str, destination: str, artifact: str) -> str:
    return f"""<saml2p:ArtifactResolve xmlns:saml2p="{NS['saml2p']}" xmlns:saml2="{NS['saml2']}" xmlns:ds="{NS['ds']}"
    Destination="{destination}" ID="{resolve_id}" IssueInstant="{now_text()}" Version="2.0">
  <saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>
  <ds:Signature Id="placeholder"/>
  <saml2p:Artifact>{artifact}</saml2p:Artifact>
</saml2p:ArtifactResolve>"""


def logout_request(request_id: str, destination: str, session_index: str) -> str:
    return f"""<saml2p:LogoutRequest xmlns:saml2p="{NS['saml2p']}" xmlns:saml2="{NS['saml2']}" xmlns:ds="{NS['ds']}"
    Destination="{destination}" ID="{request_id}" IssueInstant="{now_text()}" Version="2.0">
  <saml2:Issuer>{SP_ENTITY_ID}</saml2:Issuer>
  <ds:Signature Id="placeholder"/>
  <saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{PESEL}</saml2:NameID>
  <saml2p:SessionIndex>{session_index}</saml2p:SessionIndex>
</saml2p:LogoutRequest>"""


def soap(body: bytes) -> bytes:
    return (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/><soap:Body>'
        + body
        + b"</soap:Body></soap:Envelope>"
    )


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post_authn(base_url: str, signed_request: bytes, relay_state: str) -> tuple[int, bytes]:
    form = urllib.parse.urlencode(
        {"SAMLRequest": base64.b64encode(signed_request).decode("ascii"), "RelayState": relay_state}
    ).encode("ascii")
    return post(base_url + "/login/SingleSignOnService", form, "application/x-www-form-urlencoded")


def xmlsec_verifies(xml: bytes, node_name: str, node_id: str, cert_path: str, workdir: str) -> bool:
    """xmlsec1 checks the signature of the element with node_id against cert_path alone."""
    path = os.path.join(workdir, f"verify-{uuid.uuid4().hex}.xml")
    with open(path, "wb") as out:
        out.write(xml)
    run = subprocess.run(
        [
            "xmlsec1", "--verify",
            "--enabled-key-data", "raw-x509-cert",
            "--pubkey-cert-pem", cert_path,
            "--id-attr:ID", node_name,
            "--node-id", node_id,
            path,
        ],
        capture_output=True,
        text=True,
    )
    return run.returncode == 0 and "OK" in run.stderr


def decrypt_assertion(encrypted: etree._Element, sp_encryption_key) -> bytes:
    """Independent decryption per spec §3.5."""
    data = encrypted.find("xenc:EncryptedData", NS)
    encrypted_key = data.find("ds:KeyInfo/xenc:EncryptedKey", NS)
    agreement = encrypted_key.find("ds:KeyInfo/xenc:AgreementMethod", NS)
    params = agreement.find("xenc11:KeyDerivationMethod/xenc11:ConcatKDFParams", NS)
    public_key = base64.b64decode(
        agreement.find("xenc:OriginatorKeyInfo/ds:KeyValue/dsig11:ECKeyValue/dsig11:PublicKey", NS).text
    )
    ephemeral = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
    z = sp_encryption_key.exchange(ec.ECDH(), ephemeral)
    other_info = b"".join(bytes.fromhex(params.get(name)) for name in ("AlgorithmID", "PartyUInfo", "PartyVInfo"))
    kek = ConcatKDFHash(algorithm=hashes.SHA256(), length=32, otherinfo=other_info).derive(z)
    wrapped = base64.b64decode(encrypted_key.find("xenc:CipherData/xenc:CipherValue", NS).text)
    content_key = aes_key_unwrap(kek, wrapped)
    blob = base64.b64decode(data.find("xenc:CipherData/xenc:CipherValue", NS).text)
    return AESGCM(content_key).decrypt(blob[:12], blob[12:], None)


def length_prefixed(value: str) -> str:
    raw = value.encode("utf-8")
    return (len(raw).to_bytes(4, "big") + raw).hex().upper()


# --- the run ---------------------------------------------------------------------------------


def start_idp(workdir: str, sp_sig_path: str, sp_enc_path: str) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [
            sys.executable, IDP_SCRIPT,
            "--port", "0",
            "--entity-id", IDP_ENTITY_ID,
            "--sp-entity-id", SP_ENTITY_ID,
            "--acs-url", ACS_URL,
            "--sp-signing-cert", sp_sig_path,
            "--sp-encryption-cert", sp_enc_path,
            "--resident", RESIDENT,
            "--workdir", os.path.join(workdir, "idp"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline() if ready else ""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "READY":
        process.kill()
        raise SystemExit(f"the IdP did not print READY within 30 s (got {line!r})")
    return process, parts[1], parts[2]


def run(workdir: str) -> None:
    sp_sig_key, sp_sig_cert, sp_sig_path = key_and_cert(workdir, "sp-signing")
    sp_enc_key, sp_enc_cert, sp_enc_path = key_and_cert(workdir, "sp-encryption")
    process, base_url, idp_cert_path = start_idp(workdir, sp_sig_path, sp_enc_path)
    try:
        flow(workdir, base_url, idp_cert_path, sp_sig_key, sp_sig_cert, sp_enc_key, sp_enc_cert)
    finally:
        process.terminate()
        process.wait(timeout=10)


def flow(workdir, base_url, idp_cert_path, sp_sig_key, sp_sig_cert, sp_enc_key, sp_enc_cert) -> None:
    sso_url = base_url + "/login/SingleSignOnService"
    resolve_url = base_url + "/login-services/idpArtifactResolutionService"
    slo_url = base_url + "/login-services/singleLogoutService"
    check("idp-cert.pem is written", os.path.isfile(idp_cert_path))
    with open(idp_cert_path, "rb") as src:
        idp_cert = x509.load_pem_x509_certificate(src.read())
    check("idp key is P-256", isinstance(idp_cert.public_key().curve, ec.SECP256R1))

    # Refusals: a request signed with another key (here the SP's encryption key), a request
    # altered after signing, and a request for another ACS.
    status, _ = post_authn(base_url, sign(authn_request("ID-wrongkey", sso_url), sp_enc_key, sp_enc_cert), "r")
    check("AuthnRequest signed with a key other than the SP signing key is refused", status == 400, f"status {status}")
    tampered = sign(authn_request("ID-tampered", sso_url), sp_sig_key, sp_sig_cert).replace(
        LOA_HIGH.encode(), b"http://eidas.europa.eu/LoA/low"
    )
    status, _ = post_authn(base_url, tampered, "r")
    check("AuthnRequest altered after signing is refused", status == 400, f"status {status}")
    status, _ = post_authn(
        base_url, sign(authn_request("ID-otheracs", sso_url, acs_url="https://evil.test/acs"), sp_sig_key, sp_sig_cert), "r"
    )
    check("AuthnRequest naming another ACS is refused", status == 400, f"status {status}")

    # Step 1: SSO.
    request_id = f"ID-{uuid.uuid4()}"
    relay_state = "rs-<&\"'>-123"
    status, page = post_authn(base_url, sign(authn_request(request_id, sso_url), sp_sig_key, sp_sig_cert), relay_state)
    check("signed AuthnRequest is answered 200", status == 200, f"status {status}: {page[:200]!r}")
    match = FORM_RE.search(page.decode("utf-8"))
    if not check("answer is an auto-post form with SAMLart and RelayState", match is not None and b"onload" in page):
        return
    check("form posts to the ACS", html_module.unescape(match.group(1)) == ACS_URL)
    check("RelayState comes back unchanged", html_module.unescape(match.group(3)) == relay_state)
    artifact = html_module.unescape(match.group(2))
    raw = base64.b64decode(artifact)
    check(
        "artifact is type 0x0004, endpoint 0, SourceID = SHA-1(entity id)",
        len(raw) == 44 and raw[:4] == b"\x00\x04\x00\x00" and raw[4:24] == hashlib.sha1(IDP_ENTITY_ID.encode()).digest(),
        raw[:4].hex(),
    )

    # An ArtifactResolve signed with another key is refused and does not burn the artifact.
    resolve_bad = sign(artifact_resolve("ID-bad", resolve_url, artifact), sp_enc_key, sp_enc_cert)
    status, _ = post(resolve_url, soap(resolve_bad), "text/xml")
    check("ArtifactResolve signed with another key is refused", status == 500, f"status {status}")

    # Step 2: ArtifactResolve.
    resolve_id = f"ID-{uuid.uuid4()}"
    status, answer = post(
        resolve_url, soap(sign(artifact_resolve(resolve_id, resolve_url, artifact), sp_sig_key, sp_sig_cert)), "text/xml"
    )
    check("signed ArtifactResolve is answered 200", status == 200, f"status {status}: {answer[:300]!r}")
    envelope = etree.fromstring(answer)
    artifact_response = envelope.find("soap:Body/saml2p:ArtifactResponse", NS)
    if not check("SOAP body holds an ArtifactResponse", artifact_response is not None):
        return
    check("ArtifactResponse answers the ArtifactResolve", artifact_response.get("InResponseTo") == resolve_id)
    check(
        "ArtifactResponse status is Success",
        artifact_response.find("saml2p:Status/saml2p:StatusCode", NS).get("Value") == SUCCESS,
    )
    check(
        "ArtifactResponse signature verifies with idp-cert.pem (xmlsec1)",
        xmlsec_verifies(answer, f"{NS['saml2p']}:ArtifactResponse", artifact_response.get("ID"), idp_cert_path, workdir),
    )
    signature = artifact_response.find("ds:Signature", NS)
    check(
        "ArtifactResponse signature is ecdsa-sha256 right after Issuer",
        signature is not None
        and signature.getprevious().tag == f"{{{NS['saml2']}}}Issuer"
        and signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
        == "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
        and len(base64.b64decode(signature.find("ds:SignatureValue", NS).text)) == 64,
    )
    response = artifact_response.find("saml2p:Response", NS)
    if not check("ArtifactResponse holds a Response", response is not None):
        return
    check("Response answers the AuthnRequest", response.get("InResponseTo") == request_id)
    check("Response Destination is the ACS", response.get("Destination") == ACS_URL)
    check("Response status is Success", response.find("saml2p:Status/saml2p:StatusCode", NS).get("Value") == SUCCESS)
    check(
        "Response signature verifies with idp-cert.pem (xmlsec1)",
        xmlsec_verifies(answer, f"{NS['saml2p']}:Response", response.get("ID"), idp_cert_path, workdir),
    )
    # A changed byte inside the signed Response must break its signature: the check can fail.
    with open(os.environ.get("WK_IDP_DUMP", os.devnull), "wb") as dump:
        dump.write(answer)
    tampered_answer = answer.replace(ACS_URL.encode(), b"https://evil.test/acs/", 1)
    check(
        "a Response altered after signing fails xmlsec1",
        not xmlsec_verifies(tampered_answer, f"{NS['saml2p']}:Response", response.get("ID"), idp_cert_path, workdir),
    )

    encrypted = response.find("saml2:EncryptedAssertion", NS)
    if not check("Response holds an EncryptedAssertion", encrypted is not None and response.find("saml2:Assertion", NS) is None):
        return
    data = encrypted.find("xenc:EncryptedData", NS)
    params = encrypted.find(".//xenc11:ConcatKDFParams", NS)
    check(
        "EncryptedData layout follows spec 3.5",
        data.get("Type") == "http://www.w3.org/2001/04/xmlenc#Element"
        and data.find("xenc:EncryptionMethod", NS).get("Algorithm") == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
        and data.find("ds:KeyInfo/xenc:EncryptedKey/xenc:EncryptionMethod", NS).get("Algorithm")
        == "http://www.w3.org/2001/04/xmlenc#kw-aes256"
        and encrypted.find(".//xenc:AgreementMethod", NS).get("Algorithm") == "http://www.w3.org/2009/xmlenc11#ECDH-ES"
        and encrypted.find(".//dsig11:NamedCurve", NS).get("URI") == "urn:oid:1.2.840.10045.3.1.7",
    )
    check(
        "ConcatKDFParams hold length-prefixed kw-aes256 / IdP id / SP id",
        params.get("AlgorithmID") == length_prefixed("http://www.w3.org/2001/04/xmlenc#kw-aes256")
        and params.get("PartyUInfo") == length_prefixed(IDP_ENTITY_ID)
        and params.get("PartyVInfo") == length_prefixed(SP_ENTITY_ID),
    )
    try:
        plaintext = decrypt_assertion(encrypted, sp_enc_key)
    except Exception as err:  # a wrong key derivation shows up here as InvalidUnwrap or InvalidTag
        check("assertion decrypts with the SP encryption key", False, repr(err))
        return
    check("assertion decrypts with the SP encryption key", True)
    assertion = etree.fromstring(plaintext)  # parses alone: it declares its own namespaces
    check("decrypted plaintext is a saml2:Assertion", assertion.tag == f"{{{NS['saml2']}}}Assertion")
    check(
        "Assertion signature verifies with idp-cert.pem (xmlsec1)",
        xmlsec_verifies(plaintext, f"{NS['saml2']}:Assertion", assertion.get("ID"), idp_cert_path, workdir),
    )
    check("Assertion Issuer is the IdP", assertion.findtext("saml2:Issuer", namespaces=NS) == IDP_ENTITY_ID)
    name_id = assertion.find("saml2:Subject/saml2:NameID", NS)
    check(
        "NameID is the PESEL, format unspecified",
        name_id.text == PESEL and name_id.get("Format") == "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    )
    confirmation = assertion.find("saml2:Subject/saml2:SubjectConfirmation", NS)
    confirmation_data = confirmation.find("saml2:SubjectConfirmationData", NS)
    check(
        "bearer confirmation answers the request at the ACS",
        confirmation.get("Method") == "urn:oasis:names:tc:SAML:2.0:cm:bearer"
        and confirmation_data.get("InResponseTo") == request_id
        and confirmation_data.get("Recipient") == ACS_URL,
    )
    not_on_or_after = datetime.datetime.strptime(confirmation_data.get("NotOnOrAfter"), "%Y-%m-%dT%H:%M:%SZ")
    minutes_left = (not_on_or_after - datetime.datetime.utcnow()).total_seconds() / 60
    check("confirmation is good for about 30 minutes", 28 < minutes_left <= 30.1, f"{minutes_left:.1f} min")
    check(
        "Audience is the SP",
        assertion.findtext("saml2:Conditions/saml2:AudienceRestriction/saml2:Audience", namespaces=NS) == SP_ENTITY_ID,
    )
    authn_statement = assertion.find("saml2:AuthnStatement", NS)
    session_index = authn_statement.get("SessionIndex")
    check("AuthnStatement has a SessionIndex", bool(session_index))
    check(
        "AuthnContextClassRef is the requested LoA",
        authn_statement.findtext("saml2:AuthnContext/saml2:AuthnContextClassRef", namespaces=NS) == LOA_HIGH,
    )
    attributes = {
        a.get("FriendlyName"): a for a in assertion.findall("saml2:AttributeStatement/saml2:Attribute", NS)
    }
    expected = {
        "PersonIdentifier": ("PersonIdentifier", PESEL),
        "FirstName": ("CurrentGivenName", "Jan"),
        "FamilyName": ("CurrentFamilyName", "Kowalski"),
        "DateOfBirth": ("DateOfBirth", "1944-05-14"),
    }
    for friendly, (local, value) in expected.items():
        attribute = attributes.get(friendly)
        ok = attribute is not None
        if ok:
            attribute_value = attribute.find("saml2:AttributeValue", NS)
            xsi_type = attribute_value.get(f"{{{NS['xsi']}}}type", "")
            prefix, _, type_name = xsi_type.partition(":")
            ok = (
                attribute.get("Name") == f"{NATURALPERSON}/{local}"
                and attribute.get("NameFormat") == "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
                and attribute_value.text == value
                and attribute_value.nsmap.get(prefix) == NATURALPERSON
                and type_name == f"{local}Type"
            )
        check(f"attribute {friendly} per spec 3.6", ok)

    # One-time artifact: the second resolve gets an empty Success answer.
    second_id = f"ID-{uuid.uuid4()}"
    status, again = post(
        resolve_url, soap(sign(artifact_resolve(second_id, resolve_url, artifact), sp_sig_key, sp_sig_cert)), "text/xml"
    )
    again_response = etree.fromstring(again).find("soap:Body/saml2p:ArtifactResponse", NS) if status == 200 else None
    check(
        "artifact resolves only once",
        again_response is not None
        and again_response.get("InResponseTo") == second_id
        and again_response.find("saml2p:Response", NS) is None,
        f"status {status}",
    )

    # Step 3: single logout.
    logout_id = f"ID-{uuid.uuid4()}"
    status, answer = post(
        slo_url, soap(sign(logout_request(logout_id, slo_url, session_index), sp_sig_key, sp_sig_cert)), "text/xml"
    )
    logout_response = etree.fromstring(answer).find("soap:Body/saml2p:LogoutResponse", NS) if status == 200 else None
    check(
        "signed LogoutRequest gets a Success LogoutResponse",
        logout_response is not None
        and logout_response.get("InResponseTo") == logout_id
        and logout_response.find("saml2p:Status/saml2p:StatusCode", NS).get("Value") == SUCCESS,
        f"status {status}: {answer[:300]!r}",
    )
    if logout_response is not None:
        check(
            "LogoutResponse signature verifies with idp-cert.pem (xmlsec1)",
            xmlsec_verifies(answer, f"{NS['saml2p']}:LogoutResponse", logout_response.get("ID"), idp_cert_path, workdir),
        )
    status, _ = post(
        slo_url, soap(sign(logout_request("ID-slo-bad", slo_url, session_index), sp_enc_key, sp_enc_cert)), "text/xml"
    )
    check("LogoutRequest signed with another key is refused", status == 500, f"status {status}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="wk-idp-test-") as workdir:
        run(workdir)
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] or not results["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
