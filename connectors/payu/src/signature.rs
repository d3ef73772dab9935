//! The `OpenPayu-Signature` header and the hash it carries (spec §2.5).
//!
//! PayU signs a notification as `hex(HASH(raw_body || second_key))`; the official SDK's
//! `verifySignature` is literally `hash($algo, $message . $key)`. The body is hashed exactly as
//! received: re-serializing parsed JSON would change bytes (key order, escaping, number
//! formatting) and break every signature.

use std::fmt;
use std::str::FromStr;

use md5::Md5;
use serde::{Deserialize, Deserializer};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use crate::error::NotificationError;

/// Hash algorithms PayU may name in `algorithm=`, ordered from weakest to strongest so that
/// `a < b` means "a is a downgrade from b".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignatureAlgorithm {
    /// `MD5`: PayU's default for notifications.
    Md5,
    /// `SHA-1` (the SDK accepts it; collision-broken like MD5, ranked just above it).
    Sha1,
    /// `SHA-256`, also spelled `SHA` by the SDK.
    Sha256,
    /// `SHA-384`.
    Sha384,
    /// `SHA-512`.
    Sha512,
}

impl SignatureAlgorithm {
    /// Parses the header's `algorithm=` value. Case-insensitive; the hyphen is optional
    /// because the SDK normalizes it away, and `SHA` means SHA-256 as in the SDK.
    pub fn from_header_value(value: &str) -> Option<Self> {
        let norm: String = value
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        match norm.as_str() {
            "MD5" => Some(Self::Md5),
            "SHA1" => Some(Self::Sha1),
            "SHA" | "SHA256" => Some(Self::Sha256),
            "SHA384" => Some(Self::Sha384),
            "SHA512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The canonical spelling PayU uses in headers.
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// `HASH(message || key)` as raw bytes.
    fn digest(self, message: &[u8], key: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(message: &[u8], key: &[u8]) -> Vec<u8> {
            let mut h = D::new();
            h.update(message);
            h.update(key);
            h.finalize().to_vec()
        }
        match self {
            Self::Md5 => run::<Md5>(message, key),
            Self::Sha1 => run::<Sha1>(message, key),
            Self::Sha256 => run::<Sha256>(message, key),
            Self::Sha384 => run::<Sha384>(message, key),
            Self::Sha512 => run::<Sha512>(message, key),
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_value())
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_header_value(s).ok_or_else(|| format!("unknown signature algorithm {s:?}"))
    }
}

impl<'de> Deserialize<'de> for SignatureAlgorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Lower-case hex of `HASH(body || second_key)`: the value PayU puts in `signature=`.
///
/// Public so tests can cross-check it against independent implementations (Python hashlib,
/// the spec's vectors).
pub fn compute_signature(algorithm: SignatureAlgorithm, body: &[u8], second_key: &str) -> String {
    hex::encode(algorithm.digest(body, second_key.as_bytes()))
}

/// The parsed `OpenPayu-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    /// `sender=`: `checkout` in real traffic, the POS id in the SDK test. Not checked.
    pub sender: Option<String>,
    /// `signature=`: hex digest as sent.
    pub signature: String,
    /// `algorithm=`: as sent (not yet validated).
    pub algorithm: String,
    /// `content=`: `DOCUMENT` when present.
    pub content: Option<String>,
}

impl SignatureHeader {
    /// Splits `key=value;key=value`. Keys are case-insensitive and surrounding whitespace is
    /// ignored, but a repeated key is refused: two `signature=` parts would let a forger
    /// choose which one a lenient parser picks.
    pub fn parse(header: &str) -> Result<Self, NotificationError> {
        let malformed = |why: &str| NotificationError::MalformedHeader(why.to_owned());
        let (mut sender, mut signature, mut algorithm, mut content) = (None, None, None, None);
        for part in header.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| malformed("a part without '='"))?;
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "sender" => &mut sender,
                "signature" => &mut signature,
                "algorithm" => &mut algorithm,
                "content" => &mut content,
                // Unknown parameters are tolerated: PayU may add some, and they are not signed.
                _ => continue,
            };
            if slot.is_some() {
                return Err(malformed("a repeated parameter"));
            }
            *slot = Some(value.trim().to_owned());
        }
        Ok(Self {
            sender,
            signature: signature.ok_or_else(|| malformed("no signature="))?,
            algorithm: algorithm.ok_or_else(|| malformed("no algorithm="))?,
            content,
        })
    }
}

/// Checks `header` against `body`: algorithm known and not below `minimum`, content is the
/// document, digest equal in constant time. Returns the algorithm used.
pub(crate) fn verify_signature(
    header: &str,
    body: &[u8],
    second_key: &str,
    minimum: SignatureAlgorithm,
) -> Result<SignatureAlgorithm, NotificationError> {
    let parsed = SignatureHeader::parse(header)?;
    let algorithm = SignatureAlgorithm::from_header_value(&parsed.algorithm)
        .ok_or_else(|| NotificationError::UnknownAlgorithm(parsed.algorithm.clone()))?;
    if algorithm < minimum {
        return Err(NotificationError::DowngradedAlgorithm {
            received: algorithm,
            minimum,
        });
    }
    if let Some(content) = &parsed.content {
        if !content.eq_ignore_ascii_case("DOCUMENT") {
            return Err(NotificationError::UnsupportedContent(content.clone()));
        }
    }
    // Decoding the hex first makes the comparison independent of letter case and lets a
    // digest of the wrong length fail before any comparison.
    let received = hex::decode(&parsed.signature).map_err(|_| NotificationError::BadSignature)?;
    let expected = algorithm.digest(body, second_key.as_bytes());
    if received.len() != expected.len() || !bool::from(received.ct_eq(&expected)) {
        return Err(NotificationError::BadSignature);
    }
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_with_spaces_and_case() {
        let h = SignatureHeader::parse(
            " Sender=checkout; signature=abc ;ALGORITHM=MD5;content=DOCUMENT;",
        )
        .expect("parses");
        assert_eq!(h.signature, "abc");
        assert_eq!(h.algorithm, "MD5");
        assert_eq!(h.sender.as_deref(), Some("checkout"));
    }

    #[test]
    fn refuses_repeated_signature() {
        let err = SignatureHeader::parse("signature=a;signature=b;algorithm=MD5").unwrap_err();
        assert!(matches!(err, NotificationError::MalformedHeader(_)));
    }

    #[test]
    fn algorithm_order_is_strength() {
        assert!(SignatureAlgorithm::Md5 < SignatureAlgorithm::Sha256);
        assert_eq!(
            SignatureAlgorithm::from_header_value("sha"),
            Some(SignatureAlgorithm::Sha256)
        );
        assert_eq!(SignatureAlgorithm::from_header_value("CRC32"), None);
    }
}
