//! Connection settings of one office mailbox. The private key signs the client assertion that
//! gets access tokens for the office's address, so `Debug` never prints it.

use std::fmt;
use std::time::Duration;

use gsko_model::AdeAddress;

/// One office mailbox (ADE) and the system registered for it at e-Doręczenia.
#[derive(Clone)]
pub struct Config {
    /// Keycloak token endpoint of realm `EDOR`, e.g.
    /// `https://int-ow.edoreczenia.gov.pl/auth/realms/EDOR/protocol/openid-connect/token`
    /// (spec §4.2; the host has moved before, hence configurable).
    pub token_url: String,
    /// UA API base, e.g. `https://uaapi-int-ow.poczta-polska.pl/api/v1`; the client appends
    /// `/{ade}/messages...`.
    pub api_url: String,
    /// The office's own address: the mailbox the messages are sent from.
    pub ade: AdeAddress,
    /// Name of the system registered for the ADE; the assertion's issuer is
    /// `<ADE>.SYSTEM.<system_name>`.
    pub system_name: String,
    /// PEM of the system certificate registered for the ADE. Sent as `x5c` in the assertion
    /// header and presented as the TLS client certificate (the spec cites RFC 8705 mTLS).
    pub certificate_pem: String,
    /// PEM (PKCS#1 or PKCS#8) of the certificate's RSA key.
    pub private_key_pem: String,
    /// `aud` of the client assertion; `None` means `token_url`, which Keycloak accepts.
    pub audience: Option<String>,
    /// Per-request timeout (connect + answer).
    pub timeout: Duration,
}

impl Config {
    /// A configuration with the token URL as audience and a 30 s timeout.
    pub fn new(
        token_url: impl Into<String>,
        api_url: impl Into<String>,
        ade: AdeAddress,
        system_name: impl Into<String>,
        certificate_pem: impl Into<String>,
        private_key_pem: impl Into<String>,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            api_url: api_url.into(),
            ade,
            system_name: system_name.into(),
            certificate_pem: certificate_pem.into(),
            private_key_pem: private_key_pem.into(),
            audience: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// `<ADE>.SYSTEM.<system_name>`: the client id, issuer and subject of the assertion.
    pub fn client_id(&self) -> String {
        format!("{}.SYSTEM.{}", self.ade.as_str(), self.system_name)
    }

    /// The assertion's audience: [`Config::audience`] or else the token URL.
    pub fn audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.token_url)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .field("ade", &self.ade.as_str())
            .field("system_name", &self.system_name)
            .field("private_key_pem", &"***")
            .field("audience", &self.audience)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Bounded retry for calls that are safe to repeat (GETs, the token request). Delays double
/// from `base_delay` up to `max_delay`, each scaled by a random factor in [0.5, 1) so that many
/// workers hitting one outage do not retry in lockstep; `max_attempts` counts the first try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (attempt counts from 1), jittered.
    pub(crate) fn delay_after(&self, attempt: u32) -> Duration {
        use rand::Rng;
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        full.mul_f64(rand::thread_rng().gen_range(0.5..1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let p = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };
        for _ in 0..50 {
            let d1 = p.delay_after(1);
            assert!(d1 >= Duration::from_millis(50) && d1 < Duration::from_millis(100));
            let d2 = p.delay_after(2);
            assert!(d2 >= Duration::from_millis(100) && d2 < Duration::from_millis(200));
            assert!(p.delay_after(4) < Duration::from_millis(300));
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let c = Config::new(
            "https://t",
            "https://a",
            AdeAddress::parse("AE:PL-97075-47631-STVJH-19").expect("sample address"),
            "GSKO",
            "CERT",
            "-----BEGIN PRIVATE KEY-----SECRETKEY",
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRETKEY"), "{shown}");
        assert_eq!(c.client_id(), "AE:PL-97075-47631-STVJH-19.SYSTEM.GSKO");
        assert_eq!(c.audience(), "https://t");
    }
}
