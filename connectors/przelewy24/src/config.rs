//! Connection settings. Secrets are wrapped so that printing a config (a common debugging
//! reflex) cannot leak the keys that let anyone register or verify payments in the
//! municipality's name.

use std::time::Duration;

/// Credentials are `gsko_model::Secret`: `Debug` prints `***`, the value only through
/// [`Secret::expose`].
pub use gsko_model::Secret;

/// Bounded retry for the operations that are safe to repeat. Delays double from `base_delay`
/// up to `max_delay`; `max_attempts` counts the first try.
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
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1` (attempt counts from 1).
    pub(crate) fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// One P24 shop (merchant + point of sale).
#[derive(Debug, Clone)]
pub struct P24Config {
    /// Host base without the API path: `https://secure.przelewy24.pl` (production) or
    /// `https://sandbox.przelewy24.pl`. The client appends `/api/v1/...` and builds the payer's
    /// redirect as `{base_url}/trnRequest/{token}` (spec §1.1, §1.4).
    pub base_url: String,
    pub merchant_id: i64,
    /// Usually equal to `merchant_id` (spec §1.2); also the Basic-auth user.
    pub pos_id: i64,
    /// "Klucz do raportów": the Basic-auth password.
    pub api_key: Secret,
    /// CRC key: used only to compute and check `sign`.
    pub crc: Secret,
    /// Per-request timeout (connect + response).
    pub timeout: Duration,
    /// Retry schedule for safe operations.
    pub retry: RetryPolicy,
}

impl P24Config {
    /// The usual configuration: `pos_id = merchant_id`, 15 s timeout, default retry policy.
    pub fn new(
        base_url: impl Into<String>,
        merchant_id: i64,
        api_key: impl Into<Secret>,
        crc: impl Into<Secret>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            merchant_id,
            pos_id: merchant_id,
            api_key: api_key.into(),
            crc: crc.into(),
            timeout: Duration::from_secs(15),
            retry: RetryPolicy::default(),
        }
    }
}
