//! Configuration of one PayU point of sale (POS).

use std::time::Duration;

use crate::signature::SignatureAlgorithm;

/// Credentials are `gsko_model::Secret`: `Debug` prints `***`, the value only through
/// [`Secret::expose`].
pub use gsko_model::Secret;

/// Bounded retry with exponential backoff for calls that are safe to repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first one; `1` disables retrying.
    pub max_attempts: u32,
    /// Pause before the second attempt; doubled for every further one.
    pub initial_backoff: Duration,
    /// Upper bound for a single pause, so a long ladder never stalls a command handler.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// No retries: one attempt and the error goes to the caller.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
    };

    /// Pause before attempt number `attempt` (2 = first retry).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(2).min(16);
        self.initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Everything the connector needs to talk to one PayU POS.
///
/// `client_id` is usually equal to `pos_id` (spec §2.2); they are kept apart because PayU
/// issues them separately and a partner setup may differ. Not `Deserialize`: the daemon's
/// configuration crate owns the file format (durations, secret sources) and builds this.
#[derive(Debug, Clone)]
pub struct PayuConfig {
    /// `https://secure.payu.com` (production) or `https://secure.snd.payu.com` (sandbox), or a
    /// simulator's loopback address.
    pub base_url: String,
    /// `merchantPosId` sent with every order.
    pub pos_id: String,
    /// OAuth `client_id`.
    pub client_id: String,
    /// OAuth `client_secret`.
    pub client_secret: Secret,
    /// The POS "second key" (MD5 key) that signs notifications.
    pub second_key: Secret,
    /// Deadline for one HTTP exchange (connect + request + whole response body).
    pub timeout: Duration,
    /// Retry policy for calls that are safe to repeat (see [`crate::PayuClient`]).
    pub retry: RetryPolicy,
    /// Weakest notification signature algorithm accepted. A notification signed with a weaker
    /// one is refused as a downgrade. PayU signs with MD5 unless the POS is configured
    /// otherwise, hence the default; raise it once the POS uses SHA-256.
    pub minimum_signature_algorithm: SignatureAlgorithm,
}

impl PayuConfig {
    /// A configuration with default timeout (10 s), retry policy and minimum algorithm (MD5).
    pub fn new(
        base_url: impl Into<String>,
        pos_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        second_key: impl Into<Secret>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            pos_id: pos_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            second_key: second_key.into(),
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            minimum_signature_algorithm: SignatureAlgorithm::Md5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let cfg = PayuConfig::new("http://x", "1", "1", "topsecret-a", "topsecret-b");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("topsecret"), "{dbg}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        assert_eq!(p.backoff(2), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(300));
    }
}
