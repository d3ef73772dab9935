//! Errors of calls to e-Doręczenia, classified by what the caller should do next.

/// A failed call to the token endpoint or the UA API. Messages name the operation and the HTTP
/// status, never message contents or recipients.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused the request (4xx other than 401/429): a bad request, an unknown message
    /// or a configuration problem. Retrying the same call cannot help. `detail` joins the
    /// `error_description`s of the ErrorResponse array.
    #[error("e-Doręczenia refused the request (HTTP {status}): {detail}")]
    Refused { status: u16, detail: String },
    /// Access was refused: the token endpoint rejected the client assertion (its
    /// `error_description` is included), or the API rejected a freshly issued token. A
    /// configuration error (key, certificate, system name, ADE).
    #[error("e-Doręczenia authentication failed: {0}")]
    Unauthorized(String),
    /// The service is failing or throttling (5xx, 429), or could not be reached (timeout,
    /// connection): try again later.
    #[error("e-Doręczenia unavailable: {0}")]
    Unavailable(String),
    /// A message was POSTed and its answer was lost (timeout or broken connection after the
    /// request left, or a gateway error): it may have been sent. Call
    /// [`crate::UaClient::find_sent`] before sending again.
    #[error("e-Doręczenia send outcome unknown: {0}")]
    Uncertain(String),
    /// A 2xx answer that does not have the documented shape.
    #[error("e-Doręczenia answer not understood: {0}")]
    Malformed(String),
    /// The local configuration cannot be used (unreadable key or certificate, bad URL).
    #[error("e-Doręczenia connector misconfigured: {0}")]
    Config(String),
}

impl Error {
    /// Whether the same call may succeed later without changing anything. `Uncertain` is not
    /// transient: resending blindly could deliver a decision twice.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_is_transient() {
        assert!(Error::Unavailable("x".into()).is_transient());
        assert!(!Error::Uncertain("x".into()).is_transient());
        assert!(!Error::Unauthorized("x".into()).is_transient());
        assert!(!Error::Refused {
            status: 400,
            detail: "x".into()
        }
        .is_transient());
        assert!(!Error::Malformed("x".into()).is_transient());
    }
}
