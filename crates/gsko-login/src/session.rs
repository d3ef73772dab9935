//! Session tokens: `gs1.<key id>.<session id>.<expiry>.<HMAC-SHA256>`.
//!
//! The token proves which session row it names and until when, so a forged or altered token
//! is refused without a database lookup; whether the session is still live (not revoked, not
//! renewed away) is the store's. Keys rotate: the first configured key signs, every configured
//! key verifies, so a new key is put first and the old one removed once its tokens expired.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const PREFIX: &str = "gs1";

/// The least key length accepted (bytes).
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Clone)]
pub struct SessionKeys {
    /// (key id, secret); the first signs.
    keys: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("SessionKeys").field("ids", &ids).finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a GSKO session token")]
    Malformed,
    #[error("the session token was signed with a key this service no longer has")]
    UnknownKey,
    #[error("the session token's signature does not verify (forged or altered)")]
    BadSignature,
    #[error("the session token has expired")]
    Expired,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub sid: String,
    pub expires_at: DateTime<Utc>,
}

fn key_id(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..4])
}

impl SessionKeys {
    /// From the secrets, newest (signing) first; each at least [`MIN_KEY_BYTES`] long.
    pub fn new(secrets: Vec<Vec<u8>>) -> Result<Self, String> {
        if secrets.is_empty() {
            return Err("no session key configured".into());
        }
        let mut keys = Vec::new();
        for (i, s) in secrets.into_iter().enumerate() {
            if s.len() < MIN_KEY_BYTES {
                return Err(format!(
                    "session key {} has {} bytes; at least {MIN_KEY_BYTES} are needed",
                    i + 1,
                    s.len()
                ));
            }
            keys.push((key_id(&s), s));
        }
        Ok(SessionKeys { keys })
    }

    /// Whether a bearer credential looks like a session token (rather than a portal key).
    pub fn is_token(credential: &str) -> bool {
        credential.starts_with("gs1.")
    }

    fn mac(secret: &[u8], signed: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(signed.as_bytes());
        mac
    }

    pub fn sign(&self, sid: &str, expires_at: DateTime<Utc>) -> String {
        let (kid, secret) = &self.keys[0];
        let signed = format!("{PREFIX}.{kid}.{sid}.{}", expires_at.timestamp());
        let tag = Self::mac(secret, &signed).finalize().into_bytes();
        format!(
            "{signed}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        )
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TokenClaims, TokenError> {
        if token.len() > 256 {
            return Err(TokenError::Malformed);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [prefix, kid, sid, exp, tag] = parts.as_slice() else {
            return Err(TokenError::Malformed);
        };
        if *prefix != PREFIX || sid.is_empty() {
            return Err(TokenError::Malformed);
        }
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        let (_, secret) = self
            .keys
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or(TokenError::UnknownKey)?;
        let signed = format!("{prefix}.{kid}.{sid}.{exp}");
        Self::mac(secret, &signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let expires_at = exp
            .parse::<i64>()
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or(TokenError::Malformed)?;
        if now >= expires_at {
            return Err(TokenError::Expired);
        }
        Ok(TokenClaims {
            sid: (*sid).to_owned(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seeds: &[u8]) -> SessionKeys {
        SessionKeys::new(seeds.iter().map(|s| vec![*s; 32]).collect()).unwrap()
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let k = keys(&[1]);
        let now = Utc::now();
        let t = k.sign("s-1", now + chrono::Duration::minutes(15));
        assert_eq!(k.verify(&t, now).unwrap().sid, "s-1");
        assert_eq!(
            k.verify(&t, now + chrono::Duration::minutes(16)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn an_altered_token_is_refused() {
        let k = keys(&[1]);
        let now = Utc::now();
        let t = k.sign("s-1", now + chrono::Duration::minutes(15));
        let other_sid = t.replace(".s-1.", ".s-2.");
        assert_eq!(k.verify(&other_sid, now), Err(TokenError::BadSignature));
        let later = k.sign("s-1", now + chrono::Duration::minutes(15));
        let exp = later.split('.').nth(3).unwrap();
        let longer = t.replace(exp, &(exp.parse::<i64>().unwrap() + 3600).to_string());
        assert_eq!(k.verify(&longer, now), Err(TokenError::BadSignature));
        assert_eq!(k.verify("gs1.x", now), Err(TokenError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_tokens_until_the_old_key_is_removed() {
        let now = Utc::now();
        let old = keys(&[1]).sign("s-1", now + chrono::Duration::minutes(15));
        let rotated = keys(&[2, 1]);
        assert!(rotated.verify(&old, now).is_ok());
        let fresh = rotated.sign("s-2", now + chrono::Duration::minutes(15));
        assert!(keys(&[2]).verify(&fresh, now).is_ok());
        assert_eq!(keys(&[2]).verify(&old, now), Err(TokenError::UnknownKey));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SessionKeys::new(vec![vec![0; 16]]).is_err());
    }
}
