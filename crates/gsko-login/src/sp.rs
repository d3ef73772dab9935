//! The service provider: the signed AuthnRequest (HTTP-POST binding), the signed
//! ArtifactResolve over SOAP, the answer's signatures, decryption and validation, and the
//! signed LogoutRequest (spec §3.2–3.6).

use crate::decrypt::{decrypt_assertion, DecryptionKey};
use crate::xmldsig::{self, child, child_elements, is, Signer, SIGNATURE_SLOT};
use crate::{Identity, Loa, LoginError};
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use gsko_model::xml::escape;
use gsko_model::Pesel;
use std::str::FromStr;

const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NATURAL_PERSON: &str = "http://eidas.europa.eu/attributes/naturalperson/";
/// The login page's only script: submit the form to login.gov.pl.
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// Where and who: the SP's and the identity provider's names and addresses.
#[derive(Debug, Clone)]
pub struct SpSettings {
    /// The SP's entity id (its `saml2:Issuer`, the assertion's audience).
    pub entity_id: String,
    /// `ProviderName`, agreed when the SP is registered.
    pub provider_name: String,
    /// eIDAS SPType: "public" for a municipality.
    pub sp_type: String,
    /// The assertion consumer service (GSKO's `/login/acs`).
    pub acs_url: String,
    /// The identity provider's entity id (its `Issuer`, the KDF's PartyUInfo).
    pub idp_entity_id: String,
    pub sso_url: String,
    pub artifact_resolution_url: String,
    pub logout_url: String,
    /// The least level of assurance accepted (and requested).
    pub loa: Loa,
    /// Clock difference tolerated in the assertion's time window.
    pub clock_skew: Duration,
    /// Whether the decrypted assertion must carry its own signature (besides the Response's).
    pub require_signed_assertion: bool,
}

/// Where an identity provider answers: login.gov.pl, or a simulator of it.
#[derive(Debug, Clone)]
pub struct IdpEndpoints {
    pub entity_id: String,
    pub sso_url: String,
    pub artifact_resolution_url: String,
    pub logout_url: String,
}

impl IdpEndpoints {
    /// login.gov.pl's paths under `base` (`https://login.gov.pl`, a simulator's address).
    pub fn under(entity_id: &str, base: &str) -> Self {
        let base = base.trim_end_matches('/');
        IdpEndpoints {
            entity_id: entity_id.to_owned(),
            sso_url: format!("{base}/login/SingleSignOnService"),
            artifact_resolution_url: format!("{base}/login-services/idpArtifactResolutionService"),
            logout_url: format!("{base}/login-services/singleLogoutService"),
        }
    }
}

impl SpSettings {
    /// A municipality's service provider: SPType `public`, LoA substantial, 60 s of clock
    /// skew, signed assertions required, the entity id as the provider name.
    pub fn new(entity_id: &str, acs_url: &str, idp: IdpEndpoints) -> Self {
        SpSettings {
            entity_id: entity_id.to_owned(),
            provider_name: entity_id.to_owned(),
            sp_type: "public".to_owned(),
            acs_url: acs_url.to_owned(),
            idp_entity_id: idp.entity_id,
            sso_url: idp.sso_url,
            artifact_resolution_url: idp.artifact_resolution_url,
            logout_url: idp.logout_url,
            loa: Loa::Substantial,
            clock_skew: Duration::seconds(60),
            require_signed_assertion: true,
        }
    }
}

/// The SP's keys and the certificates it trusts.
pub struct ServiceProvider {
    settings: SpSettings,
    signer: Signer,
    decryption: DecryptionKey,
    idp_certificates: Vec<Vec<u8>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ServiceProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProvider")
            .field("entity_id", &self.settings.entity_id)
            .field("idp", &self.settings.idp_entity_id)
            .finish_non_exhaustive()
    }
}

/// An AuthnRequest ready to send: its ID (for `InResponseTo`) and the signed XML.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    pub id: String,
    pub xml: String,
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A fresh message ID (an NCName: it starts with a letter).
fn new_id() -> String {
    format!("ID-{}", uuid::Uuid::now_v7())
}

impl ServiceProvider {
    pub fn new(
        settings: SpSettings,
        signer: Signer,
        decryption: DecryptionKey,
        idp_certificates: Vec<Vec<u8>>,
    ) -> Result<Self, LoginError> {
        if idp_certificates.is_empty() {
            return Err(LoginError::Config(
                "no identity provider certificate to trust".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| LoginError::Config(format!("HTTP client: {e}")))?;
        Ok(ServiceProvider {
            settings,
            signer,
            decryption,
            idp_certificates,
            http,
        })
    }

    pub fn settings(&self) -> &SpSettings {
        &self.settings
    }

    /// A signed AuthnRequest asking for the artifact binding, the eIDAS attributes and at
    /// least the configured level of assurance.
    pub fn authn_request(&self, now: DateTime<Utc>) -> Result<AuthnRequest, LoginError> {
        let s = &self.settings;
        let id = new_id();
        let attribute = |friendly: &str, name: &str| {
            format!(
                r#"<eidas:RequestedAttribute FriendlyName="{friendly}" Name="{NATURAL_PERSON}{name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" isRequired="true"/>"#
            )
        };
        let xml = format!(
            concat!(
                r#"<saml2p:AuthnRequest xmlns:saml2p="{samlp}" xmlns:saml2="{saml}" xmlns:eidas="http://eidas.europa.eu/saml-extensions""#,
                r#" AssertionConsumerServiceURL="{acs}" Destination="{dest}" ForceAuthn="true" ID="{id}" IssueInstant="{now}""#,
                r#" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" ProviderName="{provider}" Version="2.0">"#,
                r#"<saml2:Issuer>{issuer}</saml2:Issuer>{slot}"#,
                r#"<saml2p:Extensions><eidas:SPType>{sp_type}</eidas:SPType><eidas:RequestedAttributes>{a1}{a2}{a3}{a4}</eidas:RequestedAttributes></saml2p:Extensions>"#,
                r#"<saml2p:NameIDPolicy AllowCreate="true" Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"/>"#,
                r#"<saml2p:RequestedAuthnContext Comparison="minimum"><saml2:AuthnContextClassRef>{loa}</saml2:AuthnContextClassRef></saml2p:RequestedAuthnContext>"#,
                r#"</saml2p:AuthnRequest>"#
            ),
            samlp = SAMLP,
            saml = SAML,
            acs = escape(&s.acs_url),
            dest = escape(&s.sso_url),
            id = id,
            now = instant(now),
            provider = escape(&s.provider_name),
            issuer = escape(&s.entity_id),
            slot = SIGNATURE_SLOT,
            sp_type = escape(&s.sp_type),
            a1 = attribute("FamilyName", "CurrentFamilyName"),
            a2 = attribute("FirstName", "CurrentGivenName"),
            a3 = attribute("DateOfBirth", "DateOfBirth"),
            a4 = attribute("PersonIdentifier", "PersonIdentifier"),
            loa = s.loa.uri(),
        );
        let xml = self.signer.sign(&xml, &id)?;
        Ok(AuthnRequest { id, xml })
    }

    /// The page that carries the AuthnRequest to the identity provider (HTTP-POST binding):
    /// a form submitted on load, with a button for browsers without JavaScript.
    pub fn post_form(&self, request: &AuthnRequest, relay_state: &str) -> String {
        let saml_request = base64::engine::general_purpose::STANDARD.encode(&request.xml);
        format!(
            concat!(
                "<!DOCTYPE html>\n<html lang=\"pl\"><head><meta charset=\"utf-8\"><title>login.gov.pl</title></head>",
                "<body>",
                "<form method=\"post\" action=\"{action}\">",
                "<input type=\"hidden\" name=\"SAMLRequest\" value=\"{req}\">",
                "<input type=\"hidden\" name=\"RelayState\" value=\"{relay}\">",
                "<noscript><button type=\"submit\">Przejdź do login.gov.pl</button></noscript>",
                "</form><script>{script}</script></body></html>\n"
            ),
            action = escape(&self.settings.sso_url),
            req = saml_request,
            relay = escape(relay_state),
            script = AUTO_SUBMIT,
        )
    }

    /// The Content-Security-Policy for [`Self::post_form`]'s page: nothing but its one script.
    pub fn post_form_csp() -> String {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(AUTO_SUBMIT.as_bytes());
        format!(
            "default-src 'none'; script-src 'sha256-{}'; frame-ancestors 'none'",
            base64::engine::general_purpose::STANDARD.encode(hash)
        )
    }

    /// The signed ArtifactResolve for `artifact`, in its SOAP envelope; and its ID.
    pub fn artifact_resolve(
        &self,
        artifact: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, String), LoginError> {
        let id = new_id();
        let xml = format!(
            concat!(
                r#"<saml2p:ArtifactResolve xmlns:saml2p="{samlp}" xmlns:saml2="{saml}" ID="{id}" IssueInstant="{now}" Version="2.0">"#,
                r#"<saml2:Issuer>{issuer}</saml2:Issuer>{slot}<saml2p:Artifact>{artifact}</saml2p:Artifact></saml2p:ArtifactResolve>"#
            ),
            samlp = SAMLP,
            saml = SAML,
            id = id,
            now = instant(now),
            issuer = escape(&self.settings.entity_id),
            slot = SIGNATURE_SLOT,
            artifact = escape(artifact),
        );
        let signed = self.signer.sign(&xml, &id)?;
        Ok((id, soap(&signed)))
    }

    /// Resolves `artifact` at the identity provider and validates the answer against the
    /// AuthnRequest `request_id`. The artifact's one-time use is the caller's (it has the store).
    pub async fn resolve(
        &self,
        artifact: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LoginError> {
        check_artifact(artifact, &self.settings.idp_entity_id)?;
        let (resolve_id, envelope) = self.artifact_resolve(artifact, now)?;
        let answer = self
            .post_soap(&self.settings.artifact_resolution_url, envelope)
            .await?;
        self.validate_artifact_response(&answer, &resolve_id, request_id, now)
    }

    async fn post_soap(&self, url: &str, envelope: String) -> Result<String, LoginError> {
        let response = self
            .http
            .post(url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "")
            .body(envelope)
            .send()
            .await
            .map_err(|e| LoginError::Transport(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| LoginError::Transport(format!("{url}: {e}")))?;
        if !status.is_success() {
            return Err(LoginError::Transport(format!(
                "{url} answered HTTP {status}"
            )));
        }
        if body.len() > 1024 * 1024 {
            return Err(LoginError::Malformed("the answer exceeds 1 MiB".into()));
        }
        Ok(body)
    }

    /// Checks the SOAP answer to an ArtifactResolve: the ArtifactResponse and the Response are
    /// signed by the identity provider and answer our two requests, the assertion decrypts,
    /// verifies and is valid now for this SP.
    pub fn validate_artifact_response(
        &self,
        soap_xml: &str,
        resolve_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LoginError> {
        let s = &self.settings;
        let doc = xmldsig::parse(soap_xml)?;
        let envelope = doc
            .document_element()
            .filter(|&e| is(&doc, e, SOAP11, "Envelope"))
            .ok_or_else(|| LoginError::Malformed("not a SOAP 1.1 envelope".into()))?;
        let body = child(&doc, envelope, SOAP11, "Body")?;
        let artifact_response = child(&doc, body, SAMLP, "ArtifactResponse")?;
        let outer = xmldsig::verify_element(
            &doc,
            soap_xml,
            artifact_response,
            &self.idp_certificates,
            "ArtifactResponse",
        )?;
        {
            let outer = roxml(&outer)?;
            let root = outer.root_element();
            check_issuer(root, &s.idp_entity_id, "ArtifactResponse")?;
            if root.attribute("InResponseTo") != Some(resolve_id) {
                return Err(LoginError::InResponseTo("ArtifactResponse"));
            }
            check_status(root, "ArtifactResponse")?;
        }
        let response = child_elements(&doc, artifact_response)
            .into_iter()
            .find(|&c| is(&doc, c, SAMLP, "Response"))
            .ok_or(LoginError::Status(
                "the identity provider returned no Response (unknown or used artifact)".into(),
            ))?;
        let inner =
            xmldsig::verify_element(&doc, soap_xml, response, &self.idp_certificates, "Response")?;
        let inner_doc = roxml(&inner)?;
        let response = inner_doc.root_element();
        check_issuer(response, &s.idp_entity_id, "Response")?;
        if response.attribute("InResponseTo") != Some(request_id) {
            return Err(LoginError::InResponseTo("Response"));
        }
        if let Some(dest) = response.attribute("Destination") {
            if dest != s.acs_url {
                return Err(LoginError::Recipient);
            }
        }
        check_status(response, "Response")?;
        let encrypted = elements(response, SAML, "EncryptedAssertion");
        let [encrypted] = encrypted.as_slice() else {
            return Err(LoginError::Malformed(
                "the Response must carry exactly one EncryptedAssertion".into(),
            ));
        };
        if !elements(response, SAML, "Assertion").is_empty() {
            return Err(LoginError::Malformed(
                "the Response carries an unencrypted Assertion".into(),
            ));
        }
        let assertion_xml = decrypt_assertion(*encrypted, &self.decryption)?;
        self.validate_assertion(&assertion_xml, request_id, now)
    }

    /// Validates a decrypted assertion (its signature, issuer, subject confirmation, time
    /// window, audience, level of assurance) and reads the resident's identity.
    pub fn validate_assertion(
        &self,
        assertion_xml: &str,
        request_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Identity, LoginError> {
        let s = &self.settings;
        let doc = xmldsig::parse(assertion_xml)?;
        let root = doc
            .document_element()
            .filter(|&e| is(&doc, e, SAML, "Assertion"))
            .ok_or_else(|| {
                LoginError::Malformed("the decrypted content is not an Assertion".into())
            })?;
        let signed = child_elements(&doc, root)
            .into_iter()
            .any(|c| is(&doc, c, xmldsig::DSIG_NS, "Signature"));
        let text = if signed {
            xmldsig::verify_element(
                &doc,
                assertion_xml,
                root,
                &self.idp_certificates,
                "Assertion",
            )?
        } else if s.require_signed_assertion {
            return Err(LoginError::Unsigned("Assertion"));
        } else {
            assertion_xml.to_owned()
        };
        let tree = roxml(&text)?;
        let a = tree.root_element();
        check_issuer(a, &s.idp_entity_id, "Assertion")?;
        let assertion_id = a
            .attribute("ID")
            .ok_or_else(|| LoginError::Malformed("the Assertion has no ID".into()))?
            .to_owned();
        let skew = s.clock_skew;

        let subject = one(a, SAML, "Subject")?;
        let name_id = one(subject, SAML, "NameID")?
            .text()
            .unwrap_or("")
            .trim()
            .to_owned();
        let confirmation = elements(subject, SAML, "SubjectConfirmation")
            .into_iter()
            .find(|c| c.attribute("Method") == Some(BEARER))
            .ok_or_else(|| LoginError::Malformed("no bearer SubjectConfirmation".into()))?;
        let data = one(confirmation, SAML, "SubjectConfirmationData")?;
        if data.attribute("InResponseTo") != Some(request_id) {
            return Err(LoginError::InResponseTo("Assertion"));
        }
        if data.attribute("Recipient") != Some(s.acs_url.as_str()) {
            return Err(LoginError::Recipient);
        }
        let confirm_until = time_attr(data, "NotOnOrAfter")?.ok_or_else(|| {
            LoginError::Malformed("SubjectConfirmationData has no NotOnOrAfter".into())
        })?;
        if now - skew >= confirm_until {
            return Err(LoginError::Expired);
        }

        let conditions = one(a, SAML, "Conditions")?;
        if let Some(nb) = time_attr(conditions, "NotBefore")? {
            if now + skew < nb {
                return Err(LoginError::NotYetValid);
            }
        }
        let until = time_attr(conditions, "NotOnOrAfter")?.unwrap_or(confirm_until);
        if now - skew >= until {
            return Err(LoginError::Expired);
        }
        let audiences: Vec<String> = elements(conditions, SAML, "AudienceRestriction")
            .into_iter()
            .flat_map(|r| elements(r, SAML, "Audience"))
            .map(|n| n.text().unwrap_or("").trim().to_owned())
            .collect();
        if !audiences.contains(&s.entity_id) {
            return Err(LoginError::Audience);
        }

        let authn = one(a, SAML, "AuthnStatement")?;
        let session_index = authn.attribute("SessionIndex").map(str::to_owned);
        let class = one(
            one(authn, SAML, "AuthnContext")?,
            SAML,
            "AuthnContextClassRef",
        )?
        .text()
        .unwrap_or("")
        .trim()
        .to_owned();
        let loa = Loa::from_uri(&class).ok_or(LoginError::Loa)?;
        if loa < s.loa {
            return Err(LoginError::Loa);
        }

        let mut attributes = std::collections::BTreeMap::new();
        for statement in elements(a, SAML, "AttributeStatement") {
            for attr in elements(statement, SAML, "Attribute") {
                let Some(name) = attr.attribute("Name") else {
                    continue;
                };
                let value = elements(attr, SAML, "AttributeValue")
                    .first()
                    .and_then(|v| v.text())
                    .unwrap_or("")
                    .trim()
                    .to_owned();
                attributes.insert(name.to_owned(), value);
            }
        }
        let attr = |name: &str| attributes.get(&format!("{NATURAL_PERSON}{name}")).cloned();
        let person = attr("PersonIdentifier").ok_or(LoginError::PersonIdentifier)?;
        // An eIDAS identifier may carry "PL/PL/"; Węzeł Krajowy sends the bare PESEL.
        let pesel_text = person.rsplit('/').next().unwrap_or("");
        let pesel = Pesel::from_str(pesel_text).map_err(|_| LoginError::PersonIdentifier)?;
        Ok(Identity {
            pesel,
            given_name: attr("CurrentGivenName").unwrap_or_default(),
            family_name: attr("CurrentFamilyName").unwrap_or_default(),
            date_of_birth: attr("DateOfBirth").unwrap_or_default(),
            loa,
            name_id,
            session_index,
            assertion_id,
            valid_until: until.min(confirm_until),
        })
    }

    /// Logs the resident out at the identity provider (SOAP LogoutRequest, signed); the
    /// answer must be a Success LogoutResponse signed by the identity provider.
    pub async fn logout(
        &self,
        name_id: &str,
        session_index: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), LoginError> {
        let id = new_id();
        let index = session_index
            .map(|i| format!("<saml2p:SessionIndex>{}</saml2p:SessionIndex>", escape(i)))
            .unwrap_or_default();
        let xml = format!(
            concat!(
                r#"<saml2p:LogoutRequest xmlns:saml2p="{samlp}" xmlns:saml2="{saml}" Destination="{dest}" ID="{id}" IssueInstant="{now}" Version="2.0">"#,
                r#"<saml2:Issuer>{issuer}</saml2:Issuer>{slot}"#,
                r#"<saml2:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">{name_id}</saml2:NameID>{index}"#,
                r#"</saml2p:LogoutRequest>"#
            ),
            samlp = SAMLP,
            saml = SAML,
            dest = escape(&self.settings.logout_url),
            id = id,
            now = instant(now),
            issuer = escape(&self.settings.entity_id),
            slot = SIGNATURE_SLOT,
            name_id = escape(name_id),
            index = index,
        );
        let signed = self.signer.sign(&xml, &id)?;
        let answer = self
            .post_soap(&self.settings.logout_url, soap(&signed))
            .await?;
        let doc = xmldsig::parse(&answer)?;
        let envelope = doc
            .document_element()
            .filter(|&e| is(&doc, e, SOAP11, "Envelope"))
            .ok_or_else(|| LoginError::Malformed("not a SOAP 1.1 envelope".into()))?;
        let body = child(&doc, envelope, SOAP11, "Body")?;
        let response = child(&doc, body, SAMLP, "LogoutResponse")?;
        let text = xmldsig::verify_element(
            &doc,
            &answer,
            response,
            &self.idp_certificates,
            "LogoutResponse",
        )?;
        let tree = roxml(&text)?;
        let root = tree.root_element();
        if root.attribute("InResponseTo") != Some(id.as_str()) {
            return Err(LoginError::InResponseTo("LogoutResponse"));
        }
        check_status(root, "LogoutResponse")
    }
}

fn soap(body: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{SOAP11}"><soap:Header/><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

/// A SAML 2.0 type 0x0004 artifact from this identity provider: 44 bytes, its SourceID the
/// SHA-1 of the provider's entity id. Anything else is refused before a request is made.
pub fn check_artifact(artifact: &str, idp_entity_id: &str) -> Result<(), LoginError> {
    use sha1::Digest;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(artifact.trim())
        .map_err(|_| LoginError::Artifact("not base64".into()))?;
    if raw.len() != 44 || raw[..2] != [0, 4] {
        return Err(LoginError::Artifact(
            "not a SAML 2.0 type 0x0004 artifact".into(),
        ));
    }
    if raw[4..24] != sha1::Sha1::digest(idp_entity_id.as_bytes())[..] {
        return Err(LoginError::Artifact(
            "issued by another identity provider".into(),
        ));
    }
    Ok(())
}

fn roxml(text: &str) -> Result<roxmltree::Document<'_>, LoginError> {
    roxmltree::Document::parse(text).map_err(|e| LoginError::Malformed(format!("XML: {e}")))
}

fn elements<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Vec<roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(|c| {
            c.is_element() && c.tag_name().name() == local && c.tag_name().namespace() == Some(ns)
        })
        .collect()
}

fn one<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<roxmltree::Node<'a, 'i>, LoginError> {
    match elements(node, ns, local).as_slice() {
        [n] => Ok(*n),
        [] => Err(LoginError::Malformed(format!(
            "{} has no {local}",
            node.tag_name().name()
        ))),
        _ => Err(LoginError::Malformed(format!(
            "{} has more than one {local}",
            node.tag_name().name()
        ))),
    }
}

fn check_issuer(
    node: roxmltree::Node<'_, '_>,
    idp: &str,
    what: &'static str,
) -> Result<(), LoginError> {
    let issuer = one(node, SAML, "Issuer")?
        .text()
        .unwrap_or("")
        .trim()
        .to_owned();
    if issuer != idp {
        return Err(LoginError::Issuer(what));
    }
    Ok(())
}

fn check_status(node: roxmltree::Node<'_, '_>, what: &str) -> Result<(), LoginError> {
    let code = one(one(node, SAMLP, "Status")?, SAMLP, "StatusCode")?
        .attribute("Value")
        .unwrap_or("");
    if code != SUCCESS {
        return Err(LoginError::Status(format!("{what} status {code}")));
    }
    Ok(())
}

fn time_attr(
    node: roxmltree::Node<'_, '_>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, LoginError> {
    node.attribute(name)
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| LoginError::Malformed(format!("{name} {v:?} is not an instant")))
        })
        .transpose()
}
