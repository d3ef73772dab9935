//! XML Encryption of the assertion as Węzeł Krajowy does it (spec §3.5): an ephemeral ECDH-ES
//! key agreement on P-256 with the SP's encryption key, ConcatKDF (SHA-256) to a key-encryption
//! key, AES-256 key wrap (RFC 3394) of a random content key, and AES-256-GCM over the assertion.
//!
//! ConcatKDF is written here (NIST SP 800-56A, single-step, one SHA-256 round gives the 32
//! bytes kw-aes256 needs); the primitives come from RustCrypto.

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_kw::KwAes256;
use p256::elliptic_curve::sec1::ToSec1Point as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use x509_cert::der::Decode as _;

/// `AlgorithmID` of the KDF: the key-wrap algorithm whose key it derives.
pub(crate) const KW_AES256: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes256";

/// What the `xenc:EncryptedData` needs, all as raw bytes (the caller base64s and hexes them).
pub(crate) struct Encrypted {
    /// `0x04 ‖ X ‖ Y` of the ephemeral public key (`dsig11:PublicKey`).
    pub ephemeral_public: Vec<u8>,
    /// The wrapped 32-byte content key, 40 bytes (`EncryptedKey/CipherValue`).
    pub wrapped_key: Vec<u8>,
    /// `IV(12) ‖ ciphertext ‖ tag(16)` (`EncryptedData/CipherValue`).
    pub cipher_value: Vec<u8>,
    /// The three ConcatKDF parameters as written in the XML: 4-byte length + bytes each.
    pub algorithm_id: Vec<u8>,
    pub party_u_info: Vec<u8>,
    pub party_v_info: Vec<u8>,
}

/// A 4-byte big-endian length followed by the bytes (the ConcatKDF "Datalen ‖ Data" form).
pub(crate) fn length_prefixed(data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// Single-step KDF with SHA-256: `H(counter ‖ Z ‖ OtherInfo)` for counter = 1, 2, …, truncated
/// to `len` bytes.
pub(crate) fn concat_kdf_sha256(z: &[u8], other_info: &[u8], len: usize) -> Vec<u8> {
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

/// The P-256 public key of a PEM certificate.
pub(crate) fn certificate_public_key(cert_pem: &str) -> Result<p256::PublicKey, String> {
    let der = pem_der(cert_pem).ok_or("the certificate is not PEM")?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| format!("the certificate is not X.509: {e}"))?;
    let point = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    p256::PublicKey::from_sec1_bytes(point)
        .map_err(|_| "the certificate's key is not an EC P-256 key".to_string())
}

/// The DER inside the first PEM block.
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect::<String>()
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn random_secret() -> p256::SecretKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        // Fails only for zero or a value ≥ the group order, vanishingly rare: draw again.
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            return secret;
        }
    }
}

/// Encrypts `plaintext` to `recipient` with the parties' entity ids in the KDF.
pub(crate) fn encrypt(
    plaintext: &[u8],
    recipient: &p256::PublicKey,
    idp_entity_id: &str,
    sp_entity_id: &str,
) -> Result<Encrypted, String> {
    let ephemeral = random_secret();
    let shared = ephemeral.diffie_hellman(recipient);
    // Z is the x-coordinate as a fixed 32-byte string (leading zeros kept).
    let z: &[u8] = shared.raw_secret_bytes();
    let algorithm_id = length_prefixed(KW_AES256.as_bytes());
    let party_u_info = length_prefixed(idp_entity_id.as_bytes());
    let party_v_info = length_prefixed(sp_entity_id.as_bytes());
    let other_info = [
        algorithm_id.as_slice(),
        party_u_info.as_slice(),
        party_v_info.as_slice(),
    ]
    .concat();
    let kek = concat_kdf_sha256(z, &other_info, 32);

    let mut cek = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut cek);
    let kw = KwAes256::new_from_slice(&kek).map_err(|e| format!("key wrap key: {e}"))?;
    let mut wrapped = [0u8; 40];
    let wrapped_key = kw
        .wrap_key(&cek, &mut wrapped)
        .map_err(|e| format!("key wrap: {e}"))?
        .to_vec();

    let mut iv = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut iv);
    let gcm = aes_gcm::Aes256Gcm::new_from_slice(&cek).map_err(|e| format!("GCM key: {e}"))?;
    let sealed = gcm
        .encrypt(&iv.into(), plaintext)
        .map_err(|e| format!("GCM: {e}"))?;
    let mut cipher_value = iv.to_vec();
    cipher_value.extend_from_slice(&sealed);

    // Uncompressed: 0x04 ‖ X ‖ Y.
    let ephemeral_public = ephemeral
        .public_key()
        .to_sec1_point(false)
        .as_bytes()
        .to_vec();
    Ok(Encrypted {
        ephemeral_public,
        wrapped_key,
        cipher_value,
        algorithm_id,
        party_u_info,
        party_v_info,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_matches_the_captured_algorithm_id() {
        // The AlgorithmID attribute of the COI test vector (spec §3.5).
        assert_eq!(
            hex::encode_upper(length_prefixed(KW_AES256.as_bytes())),
            "0000002A687474703A2F2F7777772E77332E6F72672F323030312F30342F786D6C656E63236B772D616573323536"
        );
        assert_eq!(
            hex::encode_upper(length_prefixed(b"e-talar.com")),
            "0000000B652D74616C61722E636F6D"
        );
    }

    #[test]
    fn concat_kdf_is_one_sha256_round_per_32_bytes() {
        let z = [7u8; 32];
        let first = Sha256::digest([&1u32.to_be_bytes()[..], &z, b"info"].concat());
        let second = Sha256::digest([&2u32.to_be_bytes()[..], &z, b"info"].concat());
        assert_eq!(concat_kdf_sha256(&z, b"info", 32), first.to_vec());
        assert_eq!(
            concat_kdf_sha256(&z, b"info", 40),
            [&first[..], &second[..8]].concat()
        );
    }
}
