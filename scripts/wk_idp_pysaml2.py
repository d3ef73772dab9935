#!/usr/bin/env python3
"""A login.gov.pl (Węzeł Krajowy) style SAML 2.0 identity provider built on pysaml2.

An independent implementation for GSKO's interop test: GSKO's service provider logs a resident
in through this IdP, which shares no code with GSKO's Rust (ARCHITECTURE.md, "Simulators").
It follows spec §3 of epuap-login-edoreczenia.md: HTTP-POST AuthnRequest, HTTP-Artifact answer,
SOAP ArtifactResolve, ECDSA P-256 signatures (ecdsa-sha256, sha256 digests, exc-c14n) and the
assertion encrypted with ECDH-ES + ConcatKDF + AES-KW + AES-256-GCM.

What pysaml2 does: the IdP entity (saml2.server.Server, xmlsec1 backend) parses the
AuthnRequest, ArtifactResolve and LogoutRequest and verifies their signatures against the SP
signing certificate only (inline SP metadata, only_use_keys_in_metadata); it builds the
Assertion, Response, ArtifactResponse and LogoutResponse objects and signs them (sigver via
xmlsec1). What it cannot do and is done here instead: the ECDH-ES encryption (xmlsec1 1.2 has
no ECDH-ES; done with `cryptography`, the EncryptedAssertion is laid out with lxml and placed
into the Response before the Response is signed), and the artifact itself (pysaml2 writes the
EndpointIndex as two ASCII characters instead of two bytes 0x0000).

Usage:
    python3 scripts/wk_idp_pysaml2.py --port 0 --entity-id pysaml2-idp.test \
        --sp-entity-id SP --acs-url URL --sp-signing-cert sig.pem --sp-encryption-cert enc.pem \
        --resident PESEL,Given,Family,YYYY-MM-DD --workdir DIR

Prints one line `READY <base_url> <DIR/idp-cert.pem>` when it serves on 127.0.0.1, and serves
until killed. No login page: the configured resident is logged in at once.

Needs pysaml2, lxml and cryptography (scripts/requirements-test.txt) and the xmlsec1 binary.
"""

import argparse
import base64
import datetime
import hashlib
import html
import logging
import os
import secrets
import shutil
import sys
import threading
import time
import uuid
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from cryptography.x509.oid import NameOID
from lxml import etree

# pysaml2 7.5 still names cryptography's old CFB location; the warning says nothing about this IdP.
warnings.filterwarnings("ignore", message="CFB has been moved")

from saml2 import BINDING_HTTP_ARTIFACT, BINDING_HTTP_POST, BINDING_SOAP, saml, samlp, soap
from saml2.config import IdPConfig
from saml2.s_utils import success_status_factory
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_UNSPECIFIED, SCM_BEARER
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA256, SIG_ECDSA_SHA256

log = logging.getLogger("wk_idp_pysaml2")

NS_SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
NS_SAML2P = "urn:oasis:names:tc:SAML:2.0:protocol"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_DSIG11 = "http://www.w3.org/2009/xmldsig11#"
NS_XENC = "http://www.w3.org/2001/04/xmlenc#"
NS_XENC11 = "http://www.w3.org/2009/xmlenc11#"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_NATURALPERSON = "http://eidas.europa.eu/attributes/naturalperson"
# WK's own prefixes (spec §3.3), so a capture of this IdP reads like one of the real node.
NSPAIR = {"saml2p": NS_SAML2P, "saml2": NS_SAML2, "ds": NS_DS, "xenc": NS_XENC}

ALG_KW_AES256 = "http://www.w3.org/2001/04/xmlenc#kw-aes256"
ALG_AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
ALG_ECDH_ES = "http://www.w3.org/2009/xmlenc11#ECDH-ES"
ALG_CONCAT_KDF = "http://www.w3.org/2009/xmlenc11#ConcatKDF"
ALG_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
TYPE_ELEMENT = "http://www.w3.org/2001/04/xmlenc#Element"
OID_P256 = "urn:oid:1.2.840.10045.3.1.7"

LOA_URIS = (
    "http://eidas.europa.eu/LoA/low",
    "http://eidas.europa.eu/LoA/substantial",
    "http://eidas.europa.eu/LoA/high",
)
DEFAULT_LOA = "http://eidas.europa.eu/LoA/substantial"

# (FriendlyName, Name URI, xsi:type) per spec §3.6.
EIDAS_ATTRIBUTES = {
    "first_name": ("FirstName", f"{NS_NATURALPERSON}/CurrentGivenName", "naturalperson:CurrentGivenNameType"),
    "family_name": ("FamilyName", f"{NS_NATURALPERSON}/CurrentFamilyName", "naturalperson:CurrentFamilyNameType"),
    "date_of_birth": ("DateOfBirth", f"{NS_NATURALPERSON}/DateOfBirth", "naturalperson:DateOfBirthType"),
    "pesel": ("PersonIdentifier", f"{NS_NATURALPERSON}/PersonIdentifier", "naturalperson:PersonIdentifierType"),
}

ASSERTION_LIFETIME = datetime.timedelta(minutes=30)  # as in the 2025 capture (spec §3.6)
ARTIFACT_LIFETIME_SECONDS = 300
ARTIFACT_TYPE_CODE = b"\x00\x04"
ARTIFACT_ENDPOINT_INDEX = b"\x00\x00"

SSO_PATH = "/login/SingleSignOnService"
ARTIFACT_RESOLUTION_PATH = "/login-services/idpArtifactResolutionService"
SLO_PATH = "/login-services/singleLogoutService"


class Rejected(Exception):
    """A request this IdP refuses; the message says why and holds no personal data."""


# --- keys and configuration -----------------------------------------------------------------


def make_idp_key_and_cert(workdir: str, entity_id: str) -> tuple[str, str]:
    """A fresh P-256 key and a self-signed certificate for it, written into workdir."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, entity_id[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_path = os.path.join(workdir, "idp-key.pem")
    cert_path = os.path.join(workdir, "idp-cert.pem")
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def load_cert(path: str) -> x509.Certificate:
    with open(path, "rb") as src:
        return x509.load_pem_x509_certificate(src.read())


def cert_base64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def sp_metadata(sp_entity_id: str, acs_url: str, signing_cert: x509.Certificate) -> str:
    """SP metadata naming only the signing certificate, so that pysaml2 verifies the SP's
    requests against it and nothing else (not against a certificate carried in the message)."""
    root = etree.Element(
        "{urn:oasis:names:tc:SAML:2.0:metadata}EntityDescriptor",
        nsmap={"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": NS_DS},
        entityID=sp_entity_id,
    )
    md = "{urn:oasis:names:tc:SAML:2.0:metadata}"
    sp = etree.SubElement(
        root, md + "SPSSODescriptor", AuthnRequestsSigned="true", protocolSupportEnumeration=NS_SAML2P
    )
    key_descriptor = etree.SubElement(sp, md + "KeyDescriptor", use="signing")
    key_info = etree.SubElement(key_descriptor, f"{{{NS_DS}}}KeyInfo")
    x509_data = etree.SubElement(key_info, f"{{{NS_DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{NS_DS}}}X509Certificate").text = cert_base64(signing_cert)
    etree.SubElement(
        sp, md + "AssertionConsumerService", Binding=BINDING_HTTP_ARTIFACT, Location=acs_url, index="0"
    )
    return etree.tostring(root, encoding="unicode")


def idp_server(args, base_url: str, key_path: str, cert_path: str) -> Server:
    sp_signing_cert = load_cert(args.sp_signing_cert)
    config = IdPConfig()
    config.load(
        {
            "entityid": args.entity_id,
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": key_path,
            "cert_file": cert_path,
            "metadata": {"inline": [sp_metadata(args.sp_entity_id, args.acs_url, sp_signing_cert)]},
            "only_use_keys_in_metadata": True,
            "signing_algorithm": SIG_ECDSA_SHA256,
            "digest_algorithm": DIGEST_SHA256,
            "accepted_time_diff": 120,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(base_url + SSO_PATH, BINDING_HTTP_POST)],
                        "artifact_resolution_service": [(base_url + ARTIFACT_RESOLUTION_PATH, BINDING_SOAP)],
                        "single_logout_service": [(base_url + SLO_PATH, BINDING_SOAP)],
                    },
                    "want_authn_requests_signed": True,
                }
            },
        }
    )
    return Server(config=config)


# --- XML helpers ----------------------------------------------------------------------------


def xml_without_declaration(document: str | bytes) -> bytes:
    """The root element alone, serialized as the signer wrote it (whitespace kept)."""
    if isinstance(document, str):
        document = document.encode("utf-8")
    return etree.tostring(etree.fromstring(document))


def signed(idp: Server, document: str | bytes, element: saml.SamlBase) -> bytes:
    """Signs the element of `document` that has element.id with pysaml2's xmlsec1 backend."""
    node_name = f"{element.c_namespace}:{element.c_tag}"
    text = document.decode("utf-8") if isinstance(document, bytes) else document
    return xml_without_declaration(idp.sec.sign_statement(text, node_name, node_id=element.id))


def with_signature_template(idp: Server, element: saml.SamlBase) -> None:
    element.signature = pre_signature_part(
        element.id, idp.sec.my_cert, None, sign_alg=SIG_ECDSA_SHA256, digest_alg=DIGEST_SHA256
    )


def append_child(parent_xml: bytes, child_xml: bytes) -> bytes:
    """parent_xml with child_xml as its last child; lxml keeps the child's bytes and namespaces."""
    parent = etree.fromstring(parent_xml)
    parent.append(etree.fromstring(child_xml))
    return etree.tostring(parent)


def soap_envelope(body_xml: bytes) -> bytes:
    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
    etree.SubElement(envelope, f"{{{NS_SOAP11}}}Header")
    body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
    body.append(etree.fromstring(body_xml))
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def soap_fault(reason: str) -> bytes:
    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
    body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
    fault = etree.SubElement(body, f"{{{NS_SOAP11}}}Fault")
    etree.SubElement(fault, "faultcode").text = "soap:Client"
    etree.SubElement(fault, "faultstring").text = reason
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def utc_text(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the encrypted assertion (spec §3.5) ----------------------------------------------------


def length_prefixed_hex(value: bytes) -> str:
    """ConcatKDFParams value: hex of a 4-byte big-endian length followed by the bytes."""
    return (len(value).to_bytes(4, "big") + value).hex().upper()


def encrypted_assertion(plaintext: bytes, sp_encryption_key: ec.EllipticCurvePublicKey, idp_id: str, sp_id: str) -> bytes:
    """saml2:EncryptedAssertion holding `plaintext`: ECDH-ES with an ephemeral P-256 key,
    ConcatKDF(SHA-256) to a key-encryption key, AES-256 key wrap of a fresh AES-256-GCM key."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    # Z is the x-coordinate as a fixed 32-byte string (cryptography returns it so).
    shared_z = ephemeral.exchange(ec.ECDH(), sp_encryption_key)
    algorithm_id = ALG_KW_AES256.encode("ascii")
    party_u = idp_id.encode("utf-8")
    party_v = sp_id.encode("utf-8")
    other_info = (
        len(algorithm_id).to_bytes(4, "big") + algorithm_id
        + len(party_u).to_bytes(4, "big") + party_u
        + len(party_v).to_bytes(4, "big") + party_v
    )
    kek = ConcatKDFHash(algorithm=hashes.SHA256(), length=32, otherinfo=other_info).derive(shared_z)
    content_key = AESGCM.generate_key(bit_length=256)
    wrapped_key = aes_key_wrap(kek, content_key)
    iv = secrets.token_bytes(12)
    ciphertext_and_tag = AESGCM(content_key).encrypt(iv, plaintext, None)
    ephemeral_point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )

    def el(parent, ns, local, **attrs):
        return etree.SubElement(parent, f"{{{ns}}}{local}", **attrs)

    root = etree.Element(
        f"{{{NS_SAML2}}}EncryptedAssertion",
        nsmap={"saml2": NS_SAML2, "xenc": NS_XENC, "xenc11": NS_XENC11, "ds": NS_DS, "dsig11": NS_DSIG11},
    )
    data = el(root, NS_XENC, "EncryptedData", Id=f"_{uuid.uuid4().hex}", Type=TYPE_ELEMENT)
    method = el(data, NS_XENC, "EncryptionMethod", Algorithm=ALG_AES256_GCM)
    el(method, NS_DS, "DigestMethod", Algorithm=ALG_SHA256)
    data_key_info = el(data, NS_DS, "KeyInfo")
    encrypted_key = el(data_key_info, NS_XENC, "EncryptedKey", Id=f"_{uuid.uuid4().hex}")
    el(encrypted_key, NS_XENC, "EncryptionMethod", Algorithm=ALG_KW_AES256)
    key_key_info = el(encrypted_key, NS_DS, "KeyInfo")
    agreement = el(key_key_info, NS_XENC, "AgreementMethod", Algorithm=ALG_ECDH_ES)
    derivation = el(agreement, NS_XENC11, "KeyDerivationMethod", Algorithm=ALG_CONCAT_KDF)
    params = el(
        derivation,
        NS_XENC11,
        "ConcatKDFParams",
        AlgorithmID=length_prefixed_hex(algorithm_id),
        PartyUInfo=length_prefixed_hex(party_u),
        PartyVInfo=length_prefixed_hex(party_v),
    )
    el(params, NS_DS, "DigestMethod", Algorithm=ALG_SHA256)
    originator = el(agreement, NS_XENC, "OriginatorKeyInfo")
    key_value = el(originator, NS_DS, "KeyValue")
    ec_key_value = el(key_value, NS_DSIG11, "ECKeyValue")
    el(ec_key_value, NS_DSIG11, "NamedCurve", URI=OID_P256)
    el(ec_key_value, NS_DSIG11, "PublicKey").text = base64.b64encode(ephemeral_point).decode("ascii")
    key_cipher = el(encrypted_key, NS_XENC, "CipherData")
    el(key_cipher, NS_XENC, "CipherValue").text = base64.b64encode(wrapped_key).decode("ascii")
    data_cipher = el(data, NS_XENC, "CipherData")
    el(data_cipher, NS_XENC, "CipherValue").text = base64.b64encode(iv + ciphertext_and_tag).decode("ascii")
    return etree.tostring(root)


# --- the identity provider ------------------------------------------------------------------


class Resident:
    def __init__(self, spec: str):
        parts = spec.split(",")
        if len(parts) != 4 or not parts[0].isdigit() or len(parts[0]) != 11:
            raise ValueError("--resident must be PESEL,Given,Family,YYYY-MM-DD with an 11-digit PESEL")
        self.pesel, self.first_name, self.family_name, self.date_of_birth = parts
        datetime.date.fromisoformat(self.date_of_birth)


class WkIdentityProvider:
    def __init__(self, args, base_url: str, key_path: str, cert_path: str):
        self.entity_id = args.entity_id
        self.sp_entity_id = args.sp_entity_id
        self.acs_url = args.acs_url
        self.resident = Resident(args.resident)
        self.sp_encryption_key = load_cert(args.sp_encryption_cert).public_key()
        if not isinstance(self.sp_encryption_key, ec.EllipticCurvePublicKey):
            raise ValueError("--sp-encryption-cert must hold an EC P-256 key")
        self.idp = idp_server(args, base_url, key_path, cert_path)
        # artifact -> (signed Response, expiry); one-time, so taken out under the lock.
        self._artifacts: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        # pysaml2's Server is not documented as thread-safe; its xmlsec1 calls are quick.
        self._saml_lock = threading.Lock()

    # step 1
    def single_sign_on(self, saml_request: str) -> str:
        """Verifies the AuthnRequest, logs the resident in, and returns the artifact."""
        with self._saml_lock:
            try:
                parsed = self.idp.parse_authn_request(saml_request, BINDING_HTTP_POST)
            except Exception as err:
                raise Rejected(f"AuthnRequest refused: {type(err).__name__}") from err
            request = parsed.message
            if request.issuer is None or (request.issuer.text or "").strip() != self.sp_entity_id:
                raise Rejected("AuthnRequest from an unknown issuer")
            if request.assertion_consumer_service_url != self.acs_url:
                raise Rejected("AuthnRequest names another AssertionConsumerServiceURL")
            if request.protocol_binding != BINDING_HTTP_ARTIFACT:
                raise Rejected("AuthnRequest does not ask for the HTTP-Artifact binding")
            loa = requested_loa(request)
            response = self.signed_response(request.id, loa)
        handle = secrets.token_bytes(20)
        source_id = hashlib.sha1(self.entity_id.encode("utf-8")).digest()
        artifact = base64.b64encode(ARTIFACT_TYPE_CODE + ARTIFACT_ENDPOINT_INDEX + source_id + handle).decode("ascii")
        with self._lock:
            now = time.monotonic()
            for stale in [a for a, (_, expiry) in self._artifacts.items() if expiry < now]:
                del self._artifacts[stale]
            self._artifacts[artifact] = (response, now + ARTIFACT_LIFETIME_SECONDS)
        log.info("authn request %s answered with an artifact", request.id)
        return artifact

    def signed_assertion(self, request_id: str, loa: str) -> bytes:
        now = datetime.datetime.now(datetime.timezone.utc)
        until = utc_text(now + ASSERTION_LIFETIME)
        resident = self.resident
        attributes = []
        for field, (friendly, name, xsi_type) in EIDAS_ATTRIBUTES.items():
            value = saml.AttributeValue(text=getattr(resident, field))
            value.set_type(xsi_type)
            value.extension_attributes.pop("xmlns:xs", None)
            value.extension_attributes["xmlns:naturalperson"] = NS_NATURALPERSON
            attributes.append(
                saml.Attribute(name=name, name_format=NAME_FORMAT_URI, friendly_name=friendly, attribute_value=[value])
            )
        assertion = saml.Assertion(
            id=f"ID-{uuid.uuid4()}",
            version="2.0",
            issue_instant=utc_text(now),
            issuer=saml.Issuer(text=self.entity_id),
            subject=saml.Subject(
                name_id=saml.NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=resident.pesel),
                subject_confirmation=[
                    saml.SubjectConfirmation(
                        method=SCM_BEARER,
                        subject_confirmation_data=saml.SubjectConfirmationData(
                            in_response_to=request_id, recipient=self.acs_url, not_on_or_after=until
                        ),
                    )
                ],
            ),
            conditions=saml.Conditions(
                not_before=utc_text(now - datetime.timedelta(seconds=5)),
                not_on_or_after=until,
                audience_restriction=[saml.AudienceRestriction(audience=[saml.Audience(text=self.sp_entity_id)])],
            ),
            authn_statement=[
                saml.AuthnStatement(
                    authn_instant=utc_text(now),
                    session_index=f"SI-{uuid.uuid4()}",
                    authn_context=saml.AuthnContext(
                        authn_context_class_ref=saml.AuthnContextClassRef(text=loa),
                        authenticating_authority=[saml.AuthenticatingAuthority(text="pysaml2-test")],
                    ),
                )
            ],
            attribute_statement=[saml.AttributeStatement(attribute=attributes)],
        )
        with_signature_template(self.idp, assertion)
        return signed(self.idp, assertion.to_string(nspair=NSPAIR), assertion)

    def signed_response(self, request_id: str, loa: str) -> bytes:
        """The signed saml2p:Response carrying the encrypted, signed assertion."""
        assertion_xml = self.signed_assertion(request_id, loa)
        response = samlp.Response(
            id=f"ECC-ID-{uuid.uuid4()}",
            version="2.0",
            issue_instant=instant(),
            destination=self.acs_url,
            in_response_to=request_id,
            issuer=saml.Issuer(text=self.entity_id),
            status=success_status_factory(),
        )
        with_signature_template(self.idp, response)
        unsigned = append_child(
            response.to_string(nspair=NSPAIR),
            encrypted_assertion(assertion_xml, self.sp_encryption_key, self.entity_id, self.sp_entity_id),
        )
        return signed(self.idp, unsigned, response)

    # step 2
    def resolve_artifact(self, soap_text: bytes) -> bytes:
        with self._saml_lock:
            try:
                inner = soap.parse_soap_enveloped_saml_artifact_resolve(soap_text.decode("utf-8"))
                resolve = self.idp.sec.correctly_signed_message(inner, "artifact_resolve", must=True)
            except Exception as err:
                raise Rejected(f"ArtifactResolve refused: {type(err).__name__}") from err
            if resolve.issuer is None or (resolve.issuer.text or "").strip() != self.sp_entity_id:
                raise Rejected("ArtifactResolve from an unknown issuer")
            artifact = (resolve.artifact.text or "").strip() if resolve.artifact is not None else ""
            with self._lock:
                entry = self._artifacts.pop(artifact, None)
            # SAML core 3.5.2: an unknown or used artifact gets a Success response with no message.
            message = entry[0] if entry is not None and entry[1] >= time.monotonic() else None
            artifact_response = samlp.ArtifactResponse(
                id=f"ECC-ID-{uuid.uuid4()}",
                version="2.0",
                issue_instant=instant(),
                in_response_to=resolve.id,
                issuer=saml.Issuer(text=self.entity_id),
                status=success_status_factory(),
            )
            with_signature_template(self.idp, artifact_response)
            unsigned = artifact_response.to_string(nspair=NSPAIR)
            if message is not None:
                unsigned = append_child(unsigned, message)
            log.info("artifact resolve %s answered (%s)", resolve.id, "message" if message else "empty")
            return soap_envelope(signed(self.idp, unsigned, artifact_response))

    # step 3
    def single_logout(self, soap_text: bytes) -> bytes:
        with self._saml_lock:
            try:
                parsed = self.idp.parse_logout_request(soap_text.decode("utf-8"), BINDING_SOAP)
            except Exception as err:
                raise Rejected(f"LogoutRequest refused: {type(err).__name__}") from err
            request = parsed.message
            if request.issuer is None or (request.issuer.text or "").strip() != self.sp_entity_id:
                raise Rejected("LogoutRequest from an unknown issuer")
            response = samlp.LogoutResponse(
                id=f"ECC-ID-{uuid.uuid4()}",
                version="2.0",
                issue_instant=instant(),
                in_response_to=request.id,
                issuer=saml.Issuer(text=self.entity_id),
                status=success_status_factory(),
            )
            with_signature_template(self.idp, response)
            log.info("logout request %s answered", request.id)
            return soap_envelope(signed(self.idp, response.to_string(nspair=NSPAIR), response))


def requested_loa(request: samlp.AuthnRequest) -> str:
    context = request.requested_authn_context
    if context is None or not context.authn_context_class_ref:
        return DEFAULT_LOA
    loa = (context.authn_context_class_ref[0].text or "").strip()
    if loa not in LOA_URIS:
        raise Rejected("AuthnRequest asks for an unknown level of assurance")
    return loa


def auto_post_form(acs_url: str, artifact: str, relay_state: str) -> bytes:
    esc = lambda value: html.escape(value, quote=True)  # noqa: E731
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>login.gov.pl</title></head>\n"
        "<body onload=\"document.forms[0].submit()\">\n"
        f"<form method=\"post\" action=\"{esc(acs_url)}\">\n"
        f"<input type=\"hidden\" name=\"SAMLart\" value=\"{esc(artifact)}\">\n"
        f"<input type=\"hidden\" name=\"RelayState\" value=\"{esc(relay_state)}\">\n"
        "<noscript><button type=\"submit\">Dalej</button></noscript>\n"
        "</form>\n</body></html>\n"
    ).encode("utf-8")


def handler_for(provider: WkIdentityProvider):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # paths only, never bodies
            log.info("%s %s", self.address_string(), fmt % args)

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            body = self._body()
            try:
                if path == SSO_PATH:
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                    saml_request = (form.get("SAMLRequest") or [""])[0]
                    relay_state = (form.get("RelayState") or [""])[0]
                    if not saml_request:
                        raise Rejected("no SAMLRequest")
                    artifact = provider.single_sign_on(saml_request)
                    self._reply(200, "text/html; charset=utf-8", auto_post_form(provider.acs_url, artifact, relay_state))
                elif path == ARTIFACT_RESOLUTION_PATH:
                    self._reply(200, "text/xml; charset=utf-8", provider.resolve_artifact(body))
                elif path == SLO_PATH:
                    self._reply(200, "text/xml; charset=utf-8", provider.single_logout(body))
                else:
                    self._reply(404, "text/plain; charset=utf-8", b"not found\n")
            except Rejected as err:
                log.warning("%s: %s", path, err)
                if path == SSO_PATH:
                    self._reply(400, "text/plain; charset=utf-8", f"{err}\n".encode("utf-8"))
                else:
                    self._reply(500, "text/xml; charset=utf-8", soap_fault(str(err)))

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--entity-id", required=True)
    parser.add_argument("--sp-entity-id", required=True)
    parser.add_argument("--acs-url", required=True)
    parser.add_argument("--sp-signing-cert", required=True)
    parser.add_argument("--sp-encryption-cert", required=True)
    parser.add_argument("--resident", required=True, help="PESEL,Given,Family,YYYY-MM-DD")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="wk_idp_pysaml2: %(message)s")
    # pysaml2 may put whole SAML documents (names, PESEL) into its log records; this script logs
    # its own one-line reasons instead.
    logging.getLogger("saml2").setLevel(logging.CRITICAL + 1)

    os.makedirs(args.workdir, exist_ok=True)
    if shutil.which("xmlsec1") is None:
        print("xmlsec1 is missing: install it (Debian: apt-get install xmlsec1).", file=sys.stderr)
        return 1
    # Bind first: pysaml2 checks each request's Destination against endpoints holding the port.
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        key_path, cert_path = make_idp_key_and_cert(args.workdir, args.entity_id)
        provider = WkIdentityProvider(args, base_url, key_path, cert_path)
    except (ValueError, OSError) as err:
        httpd.server_close()
        print(f"wk_idp_pysaml2: cannot start: {err}", file=sys.stderr)
        return 2
    httpd.RequestHandlerClass = handler_for(provider)
    httpd.daemon_threads = True
    print(f"READY {base_url} {os.path.abspath(cert_path)}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
