//! The encrypted assertion of Węzeł Krajowy (spec §3.5): ECDH-ES on P-256 with the SP's
//! encryption key and the sender's ephemeral key, ConcatKDF (SHA-256) to a key-encryption key,
//! AES key unwrap (RFC 3394) of the content key, AES-GCM over `IV(12) ‖ ciphertext ‖ tag(16)`.
//!
//! Why not bergshamra's XML-Enc: it reads the ConcatKDF parameters as XML-Enc 1.1 bit strings
//! (a leading padding-count byte, stripped), while Węzeł Krajowy writes each as a 4-byte
//! big-endian length and the bytes; the two derive different keys.

use crate::LoginError;
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use sha2::{Digest, Sha256};

const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
const DSIG: &str = crate::xmldsig::DSIG_NS;
const DSIG11: &str = "http://www.w3.org/2009/xmldsig11#";
const P256_OID: &str = "urn:oid:1.2.840.10045.3.1.7";

/// The SP's encryption key.
#[derive(Clone)]
pub struct DecryptionKey(p256::SecretKey);

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DecryptionKey(P-256)")
    }
}

impl DecryptionKey {
    /// From an unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) P-256 key in PEM.
    pub fn from_pem(pem: &str) -> Result<Self, LoginError> {
        use p256::pkcs8::DecodePrivateKey;
        p256::SecretKey::from_pkcs8_pem(pem)
            .or_else(|_| p256::SecretKey::from_sec1_pem(pem))
            .map(DecryptionKey)
            .map_err(|_| {
                LoginError::Config(
                    "the encryption key is not an unencrypted EC P-256 private key in PEM".into(),
                )
            })
    }
}

fn refuse(m: impl Into<String>) -> LoginError {
    LoginError::Decrypt(m.into())
}

fn child<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<roxmltree::Node<'a, 'i>, LoginError> {
    let mut found = node.children().filter(|c| {
        c.is_element() && c.tag_name().name() == local && c.tag_name().namespace() == Some(ns)
    });
    let first = found
        .next()
        .ok_or_else(|| refuse(format!("missing {local}")))?;
    if found.next().is_some() {
        return Err(refuse(format!("more than one {local}")));
    }
    Ok(first)
}

fn algorithm<'a>(node: roxmltree::Node<'a, '_>) -> &'a str {
    node.attribute("Algorithm").unwrap_or("")
}

fn base64_text(node: roxmltree::Node<'_, '_>, what: &str) -> Result<Vec<u8>, LoginError> {
    let text: String = node
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| refuse(format!("{what} is not base64")))
}

fn hex_attr(node: roxmltree::Node<'_, '_>, name: &str) -> Result<Vec<u8>, LoginError> {
    let v = node
        .attribute(name)
        .ok_or_else(|| refuse(format!("ConcatKDFParams has no {name}")))?;
    hex::decode(v).map_err(|_| refuse(format!("ConcatKDFParams/@{name} is not hex")))
}

/// NIST SP 800-56A single-step KDF with SHA-256: `K(i) = H(counter_i ‖ Z ‖ OtherInfo)`.
pub fn concat_kdf_sha256(z: &[u8], other_info: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        h.update(other_info);
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// Decrypts `saml2:EncryptedAssertion` (`encrypted`) to the assertion's XML text.
pub fn decrypt_assertion(
    encrypted: roxmltree::Node<'_, '_>,
    key: &DecryptionKey,
) -> Result<String, LoginError> {
    let data = child(encrypted, XENC, "EncryptedData")?;
    let content_alg = algorithm(child(data, XENC, "EncryptionMethod")?);
    match content_alg {
        "http://www.w3.org/2009/xmlenc11#aes256-gcm"
        | "http://www.w3.org/2009/xmlenc11#aes128-gcm" => {}
        other => {
            return Err(LoginError::Algorithm(format!(
                "the assertion is encrypted with {other:?}; accepted: AES-GCM"
            )))
        }
    }
    let encrypted_key = child(child(data, DSIG, "KeyInfo")?, XENC, "EncryptedKey")?;
    let kek_len = match algorithm(child(encrypted_key, XENC, "EncryptionMethod")?) {
        "http://www.w3.org/2001/04/xmlenc#kw-aes256" => 32,
        "http://www.w3.org/2001/04/xmlenc#kw-aes128" => 16,
        other => {
            return Err(LoginError::Algorithm(format!(
                "the content key is wrapped with {other:?}; accepted: AES key wrap"
            )))
        }
    };
    let agreement = child(
        child(encrypted_key, DSIG, "KeyInfo")?,
        XENC,
        "AgreementMethod",
    )?;
    if algorithm(agreement) != "http://www.w3.org/2009/xmlenc11#ECDH-ES" {
        return Err(LoginError::Algorithm(format!(
            "the key agreement is {:?}; accepted: ECDH-ES",
            algorithm(agreement)
        )));
    }
    let kdm = child(agreement, XENC11, "KeyDerivationMethod")?;
    if algorithm(kdm) != "http://www.w3.org/2009/xmlenc11#ConcatKDF" {
        return Err(LoginError::Algorithm(format!(
            "the key derivation is {:?}; accepted: ConcatKDF",
            algorithm(kdm)
        )));
    }
    let params = child(kdm, XENC11, "ConcatKDFParams")?;
    if algorithm(child(params, DSIG, "DigestMethod")?) != "http://www.w3.org/2001/04/xmlenc#sha256"
    {
        return Err(LoginError::Algorithm(
            "ConcatKDF must digest with SHA-256".into(),
        ));
    }
    let mut other_info = hex_attr(params, "AlgorithmID")?;
    other_info.extend(hex_attr(params, "PartyUInfo")?);
    other_info.extend(hex_attr(params, "PartyVInfo")?);

    let ec_key_value = child(
        child(
            child(agreement, XENC, "OriginatorKeyInfo")?,
            DSIG,
            "KeyValue",
        )?,
        DSIG11,
        "ECKeyValue",
    )?;
    if child(ec_key_value, DSIG11, "NamedCurve")?.attribute("URI") != Some(P256_OID) {
        return Err(LoginError::Algorithm(
            "the ephemeral key is not on P-256".into(),
        ));
    }
    let point = base64_text(child(ec_key_value, DSIG11, "PublicKey")?, "PublicKey")?;
    let ephemeral = p256::PublicKey::from_sec1_bytes(&point)
        .map_err(|_| refuse("the ephemeral public key is not a P-256 point"))?;

    // Z is the x-coordinate as a fixed 32-byte string (leading zeros kept).
    let shared = p256::ecdh::diffie_hellman(key.0.to_nonzero_scalar(), ephemeral.as_affine());
    let kek = concat_kdf_sha256(shared.raw_secret_bytes().as_slice(), &other_info, kek_len);

    let wrapped = base64_text(
        child(
            child(encrypted_key, XENC, "CipherData")?,
            XENC,
            "CipherValue",
        )?,
        "the wrapped key",
    )?;
    let mut cek_buf = [0u8; 64];
    let cek = unwrap_key(&kek, &wrapped, &mut cek_buf)?;

    let payload = base64_text(
        child(child(data, XENC, "CipherData")?, XENC, "CipherValue")?,
        "the encrypted assertion",
    )?;
    if payload.len() < 12 + 16 {
        return Err(refuse("the encrypted assertion is shorter than IV and tag"));
    }
    let (iv, sealed) = payload.split_at(12);
    // Production has sent a 128-bit key under aes256-gcm (spec §3.5): the cipher is sized
    // by the unwrapped key, not by the declared algorithm.
    let plain = match cek.len() {
        32 => aes_gcm::Aes256Gcm::new_from_slice(cek)
            .map_err(|_| refuse("content key"))?
            .decrypt(iv.try_into().map_err(|_| refuse("IV"))?, sealed),
        16 => aes_gcm::Aes128Gcm::new_from_slice(cek)
            .map_err(|_| refuse("content key"))?
            .decrypt(iv.try_into().map_err(|_| refuse("IV"))?, sealed),
        n => return Err(refuse(format!("the content key has {n} bytes"))),
    }
    .map_err(|_| refuse("AES-GCM authentication failed (tampered or not for this key)"))?;
    String::from_utf8(plain).map_err(|_| refuse("the decrypted assertion is not UTF-8"))
}

fn unwrap_key<'b>(
    kek: &[u8],
    wrapped: &[u8],
    buf: &'b mut [u8; 64],
) -> Result<&'b [u8], LoginError> {
    if wrapped.len() < 24 || wrapped.len() > 64 + 8 || !wrapped.len().is_multiple_of(8) {
        return Err(refuse("the wrapped key has a wrong length"));
    }
    let out = &mut buf[..wrapped.len() - 8];
    let bad = |_| refuse("the content key does not unwrap (not encrypted to this SP's key)");
    match kek.len() {
        32 => aes_kw::KwAes256::new_from_slice(kek)
            .map_err(|_| refuse("key-encryption key"))?
            .unwrap_key(wrapped, out)
            .map_err(bad),
        _ => aes_kw::KwAes128::new_from_slice(kek)
            .map_err(|_| refuse("key-encryption key"))?
            .unwrap_key(wrapped, out)
            .map_err(bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ConcatKDFParams of the COI test vector and of the 2025 capture (spec §3.5) are
    /// length-prefixed strings: the parameters decode to the names they stand for.
    #[test]
    fn kdf_parameters_are_length_prefixed_names() {
        let alg = hex::decode("0000002A687474703A2F2F7777772E77332E6F72672F323030312F30342F786D6C656E63236B772D616573323536").unwrap();
        assert_eq!(&alg[..4], &[0, 0, 0, 42]);
        assert_eq!(&alg[4..], b"http://www.w3.org/2001/04/xmlenc#kw-aes256");
        let u = hex::decode(
            "00000023696E742D706F646D696F74797A65776E6574727A6E652E6C6F67696E2E676F762E706C",
        )
        .unwrap();
        assert_eq!(&u[4..], b"int-podmiotyzewnetrzne.login.gov.pl");
        assert_eq!(u[3] as usize, u.len() - 4);
        let v = hex::decode("0000000B652D74616C61722E636F6D").unwrap();
        assert_eq!(&v[4..], b"e-talar.com");
    }

    /// NIST SP 800-56A KDF: one block is SHA-256(00000001 ‖ Z ‖ OtherInfo), longer output
    /// continues with counter 2.
    #[test]
    fn concat_kdf_counts_blocks_from_one() {
        let z = [7u8; 32];
        let info = b"info";
        let one = concat_kdf_sha256(&z, info, 32);
        let mut h = Sha256::new();
        h.update([0, 0, 0, 1]);
        h.update(z);
        h.update(info);
        assert_eq!(one, h.finalize().to_vec());
        let two = concat_kdf_sha256(&z, info, 48);
        assert_eq!(&two[..32], &one[..]);
        let mut h = Sha256::new();
        h.update([0, 0, 0, 2]);
        h.update(z);
        h.update(info);
        assert_eq!(&two[32..], &h.finalize()[..16]);
    }
}
