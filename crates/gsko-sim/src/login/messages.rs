//! The XML the simulated Węzeł Krajowy writes (spec §3.3–§3.6), by hand. Each signable
//! element declares its own namespaces, so it can be signed, verified and parsed on its own.

use base64::Engine as _;

use super::crypto::Encrypted;
use super::xmlsec::{signature_template, Digest};
use crate::xml::escaped;

pub(crate) const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub(crate) const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub(crate) const NS_SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub(crate) const NS_SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const NS_DSIG11: &str = "http://www.w3.org/2009/xmldsig11#";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
const NS_NATURALPERSON: &str = "http://eidas.europa.eu/attributes/naturalperson";
const NS_DS: &str = super::xmlsec::NS_DS;

pub(crate) const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub(crate) const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const ATTRNAME_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
const AUTHENTICATING_AUTHORITY: &str = "pz.gov.pl";

/// `xmlsec1 --id-attr:ID` names of the elements the simulator signs.
pub(crate) const ID_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion";
pub(crate) const ID_RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:Response";
pub(crate) const ID_ARTIFACT_RESPONSE: &str =
    "urn:oasis:names:tc:SAML:2.0:protocol:ArtifactResponse";
pub(crate) const ID_LOGOUT_RESPONSE: &str = "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A random (version 4) UUID, as Węzeł Krajowy's IDs carry.
pub(crate) fn random_uuid() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// `xsd:dateTime` in UTC with milliseconds, as Węzeł Krajowy writes it.
pub(crate) fn instant(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn signature(id: &str, digest: Option<Digest>) -> String {
    digest.map_or_else(String::new, |d| signature_template(id, d))
}

/// Everything that goes into one assertion; the faults are applied by the caller.
pub(crate) struct AssertionFields<'a> {
    pub id: &'a str,
    pub issue_instant: &'a str,
    pub issuer: &'a str,
    pub pesel: &'a str,
    pub given_name: &'a str,
    pub family_name: &'a str,
    pub date_of_birth: &'a str,
    pub in_response_to: &'a str,
    pub recipient: &'a str,
    pub not_before: &'a str,
    pub not_on_or_after: &'a str,
    pub audience: &'a str,
    pub session_index: &'a str,
    pub loa: &'a str,
}

/// The `saml2:Assertion` template (signed when `digest` is set).
pub(crate) fn assertion(f: &AssertionFields<'_>, digest: Option<Digest>) -> String {
    let attribute = |friendly: &str, name: &str, ty: &str, value: &str| {
        format!(
            "<saml2:Attribute FriendlyName=\"{friendly}\" Name=\"{NS_NATURALPERSON}/{name}\" \
             NameFormat=\"{ATTRNAME_URI}\"><saml2:AttributeValue xsi:type=\"naturalperson:{ty}\">{}\
             </saml2:AttributeValue></saml2:Attribute>",
            escaped(value)
        )
    };
    format!(
        "<saml2:Assertion xmlns:saml2=\"{NS_SAML}\" xmlns:saml2p=\"{NS_SAMLP}\" xmlns:ds=\"{NS_DS}\" \
         xmlns:xenc=\"{NS_XENC}\" xmlns:xsi=\"{NS_XSI}\" xmlns:naturalperson=\"{NS_NATURALPERSON}\" \
         ID=\"{id}\" IssueInstant=\"{issue_instant}\" Version=\"2.0\">\
         <saml2:Issuer>{issuer}</saml2:Issuer>{signature}\
         <saml2:Subject><saml2:NameID Format=\"{NAMEID_UNSPECIFIED}\">{pesel}</saml2:NameID>\
         <saml2:SubjectConfirmation Method=\"{BEARER}\"><saml2:SubjectConfirmationData \
         InResponseTo=\"{in_response_to}\" NotOnOrAfter=\"{not_on_or_after}\" Recipient=\"{recipient}\"/>\
         </saml2:SubjectConfirmation></saml2:Subject>\
         <saml2:Conditions NotBefore=\"{not_before}\" NotOnOrAfter=\"{not_on_or_after}\">\
         <saml2:AudienceRestriction><saml2:Audience>{audience}</saml2:Audience></saml2:AudienceRestriction>\
         </saml2:Conditions>\
         <saml2:AuthnStatement AuthnInstant=\"{issue_instant}\" SessionIndex=\"{session_index}\">\
         <saml2:AuthnContext><saml2:AuthnContextClassRef>{loa}</saml2:AuthnContextClassRef>\
         <saml2:AuthenticatingAuthority>{AUTHENTICATING_AUTHORITY}</saml2:AuthenticatingAuthority>\
         </saml2:AuthnContext></saml2:AuthnStatement>\
         <saml2:AttributeStatement>{given}{family}{birth}{person}</saml2:AttributeStatement>\
         </saml2:Assertion>",
        id = escaped(f.id),
        issue_instant = escaped(f.issue_instant),
        issuer = escaped(f.issuer),
        signature = signature(f.id, digest),
        pesel = escaped(f.pesel),
        in_response_to = escaped(f.in_response_to),
        not_on_or_after = escaped(f.not_on_or_after),
        recipient = escaped(f.recipient),
        not_before = escaped(f.not_before),
        audience = escaped(f.audience),
        session_index = escaped(f.session_index),
        loa = escaped(f.loa),
        given = attribute(
            "FirstName",
            "CurrentGivenName",
            "CurrentGivenNameType",
            f.given_name
        ),
        family = attribute(
            "FamilyName",
            "CurrentFamilyName",
            "CurrentFamilyNameType",
            f.family_name
        ),
        birth = attribute("DateOfBirth", "DateOfBirth", "DateOfBirthType", f.date_of_birth),
        person = attribute(
            "PersonIdentifier",
            "PersonIdentifier",
            "PersonIdentifierType",
            f.pesel
        ),
    )
}

/// `saml2:EncryptedAssertion` laid out as in the COI test vector (spec §3.5).
pub(crate) fn encrypted_assertion(e: &Encrypted) -> String {
    let data_id = format!("_{}", random_uuid().simple());
    let key_id = format!("_{}", random_uuid().simple());
    format!(
        "<saml2:EncryptedAssertion><xenc:EncryptedData Id=\"{data_id}\" Type=\"{NS_XENC}Element\">\
         <xenc:EncryptionMethod Algorithm=\"{NS_XENC11}aes256-gcm\">\
         <ds:DigestMethod Algorithm=\"{NS_XENC}sha256\"/></xenc:EncryptionMethod>\
         <ds:KeyInfo><xenc:EncryptedKey Id=\"{key_id}\">\
         <xenc:EncryptionMethod Algorithm=\"{NS_XENC}kw-aes256\"/>\
         <ds:KeyInfo><xenc:AgreementMethod Algorithm=\"{NS_XENC11}ECDH-ES\">\
         <xenc11:KeyDerivationMethod Algorithm=\"{NS_XENC11}ConcatKDF\">\
         <xenc11:ConcatKDFParams AlgorithmID=\"{alg}\" PartyUInfo=\"{u}\" PartyVInfo=\"{v}\">\
         <ds:DigestMethod Algorithm=\"{NS_XENC}sha256\"/></xenc11:ConcatKDFParams>\
         </xenc11:KeyDerivationMethod>\
         <xenc:OriginatorKeyInfo><ds:KeyValue><dsig11:ECKeyValue>\
         <dsig11:NamedCurve URI=\"urn:oid:1.2.840.10045.3.1.7\"/>\
         <dsig11:PublicKey>{public}</dsig11:PublicKey></dsig11:ECKeyValue></ds:KeyValue>\
         </xenc:OriginatorKeyInfo></xenc:AgreementMethod></ds:KeyInfo>\
         <xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData>\
         </xenc:EncryptedKey></ds:KeyInfo>\
         <xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData>\
         </xenc:EncryptedData></saml2:EncryptedAssertion>",
        alg = hex::encode_upper(&e.algorithm_id),
        u = hex::encode_upper(&e.party_u_info),
        v = hex::encode_upper(&e.party_v_info),
        public = b64(&e.ephemeral_public),
        wrapped = b64(&e.wrapped_key),
        cipher = b64(&e.cipher_value),
    )
}

/// The namespace declarations every protocol message of the simulator carries.
fn protocol_namespaces() -> String {
    format!(
        "xmlns:saml2p=\"{NS_SAMLP}\" xmlns:saml2=\"{NS_SAML}\" xmlns:ds=\"{NS_DS}\" \
         xmlns:xenc=\"{NS_XENC}\" xmlns:xenc11=\"{NS_XENC11}\" xmlns:dsig11=\"{NS_DSIG11}\""
    )
}

fn status(code: &str) -> String {
    format!("<saml2p:Status><saml2p:StatusCode Value=\"{code}\"/></saml2p:Status>")
}

/// Identity of a protocol message: its `ID`, `InResponseTo`, `IssueInstant` and `Issuer`.
pub(crate) struct Header<'a> {
    pub id: &'a str,
    pub in_response_to: &'a str,
    pub issue_instant: &'a str,
    pub issuer: &'a str,
}

/// A signable `saml2p:{name}`: the namespaces, `leading_attributes` (each with a trailing
/// space), the header's attributes, `Issuer`, the signature template when `digest` is set,
/// `Status` and `content`.
fn protocol_message(
    name: &str,
    leading_attributes: &str,
    h: &Header<'_>,
    digest: Option<Digest>,
    status_code: &str,
    content: &str,
) -> String {
    format!(
        "<saml2p:{name} {ns} {leading_attributes}ID=\"{id}\" InResponseTo=\"{irt}\" \
         IssueInstant=\"{ii}\" Version=\"2.0\"><saml2:Issuer>{issuer}</saml2:Issuer>{signature}\
         {status}{content}</saml2p:{name}>",
        ns = protocol_namespaces(),
        id = escaped(h.id),
        irt = escaped(h.in_response_to),
        ii = escaped(h.issue_instant),
        issuer = escaped(h.issuer),
        signature = signature(h.id, digest),
        status = status(status_code),
    )
}

/// `saml2p:Response` (Destination = the ACS) around `content` (an `EncryptedAssertion` or
/// nothing).
pub(crate) fn response(
    h: &Header<'_>,
    destination: &str,
    status_code: &str,
    content: &str,
    digest: Option<Digest>,
) -> String {
    let destination = format!("Destination=\"{}\" ", escaped(destination));
    protocol_message("Response", &destination, h, digest, status_code, content)
}

/// `saml2p:ArtifactResponse` (always Success: the artifact protocol itself worked) around a
/// signed `saml2p:Response`.
pub(crate) fn artifact_response(h: &Header<'_>, response: &str, digest: Option<Digest>) -> String {
    protocol_message("ArtifactResponse", "", h, digest, STATUS_SUCCESS, response)
}

/// `saml2p:LogoutResponse`.
pub(crate) fn logout_response(h: &Header<'_>, status_code: &str, digest: Option<Digest>) -> String {
    protocol_message("LogoutResponse", "", h, digest, status_code, "")
}

/// A SOAP 1.1 envelope around one body element.
pub(crate) fn soap_envelope(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{NS_SOAP11}\">\
         <soap:Body>"
    )
    .into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"</soap:Body></soap:Envelope>");
    out
}

/// A SOAP 1.1 fault (`soap:Client`).
pub(crate) fn soap_fault(reason: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope xmlns:soap=\"{NS_SOAP11}\">\
         <soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>{}</faultstring>\
         </soap:Fault></soap:Body></soap:Envelope>",
        escaped(reason)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header<'static> {
        Header {
            id: "_r1",
            in_response_to: "_q&1",
            issue_instant: "2026-01-02T03:04:05.000Z",
            issuer: "idp",
        }
    }

    #[test]
    fn protocol_messages_keep_their_attribute_order_and_content() {
        let ns = protocol_namespaces();
        assert_eq!(
            response(
                &header(),
                "https://sp/acs?a&b",
                STATUS_SUCCESS,
                "<x/>",
                None
            ),
            format!(
                "<saml2p:Response {ns} Destination=\"https://sp/acs?a&amp;b\" ID=\"_r1\" \
                 InResponseTo=\"_q&amp;1\" IssueInstant=\"2026-01-02T03:04:05.000Z\" \
                 Version=\"2.0\"><saml2:Issuer>idp</saml2:Issuer>{}<x/></saml2p:Response>",
                status(STATUS_SUCCESS)
            )
        );
        assert_eq!(
            logout_response(&header(), STATUS_REQUESTER, None),
            format!(
                "<saml2p:LogoutResponse {ns} ID=\"_r1\" InResponseTo=\"_q&amp;1\" \
                 IssueInstant=\"2026-01-02T03:04:05.000Z\" Version=\"2.0\">\
                 <saml2:Issuer>idp</saml2:Issuer>{}</saml2p:LogoutResponse>",
                status(STATUS_REQUESTER)
            )
        );
        let signed = artifact_response(&header(), "<inner/>", Some(Digest::Sha256));
        let template = signature_template("_r1", Digest::Sha256);
        assert!(
            signed.starts_with(&format!("<saml2p:ArtifactResponse {ns} ID=\"_r1\" ")),
            "{signed}"
        );
        assert!(
            signed.ends_with(&format!(
                "<saml2:Issuer>idp</saml2:Issuer>{template}{}<inner/></saml2p:ArtifactResponse>",
                status(STATUS_SUCCESS)
            )),
            "{signed}"
        );
    }
}
