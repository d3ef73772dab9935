//! GSKO's service provider against the simulated login.gov.pl (an independent implementation:
//! xmlsec1 signs, its own ECDH-ES code encrypts), over real HTTP on loopback.

mod support;

use gsko_login::{LoginError, Return, SessionError, TokenError};
use gsko_sim::login::LoginFault;
use support::*;

async fn log_in(
    w: &World,
    pesel: &str,
    return_to: &str,
) -> Result<(gsko_store::SessionRecord, Return), LoginError> {
    let form = w.login.begin(return_to, now()).await.unwrap();
    let (artifact, relay) = at_idp(&w.http, &w.sim, &form, pesel).await;
    w.login.complete(&artifact, &relay, now()).await
}

#[tokio::test]
async fn a_resident_logs_in_renews_and_logs_out() {
    let w = world().await;
    let (session, back) = log_in(&w, ANNA, "/v1/tenants/1465011/resident/summary")
        .await
        .expect("login");
    assert_eq!(session.pesel, ANNA, "PersonIdentifier gives the PESEL");
    assert_eq!(session.given_name, "Anna");
    assert_eq!(session.loa, "http://eidas.europa.eu/LoA/substantial");
    assert_eq!(
        back,
        Return::Local("/v1/tenants/1465011/resident/summary".into())
    );

    let token = w.login.token(&session);
    let live = w.login.authenticate(&token, now()).await.unwrap();
    assert_eq!(live.sid, session.sid);

    // Renewal: a new session and token; the old token no longer works.
    let renewed = w.login.renew(&live, now()).await.unwrap();
    assert_ne!(renewed.sid, session.sid);
    let new_token = w.login.token(&renewed);
    assert!(matches!(
        w.login.authenticate(&token, now()).await,
        Err(SessionError::Ended)
    ));
    let live = w.login.authenticate(&new_token, now()).await.unwrap();

    // Logout ends the session here and at the identity provider.
    w.login.logout(&live, now()).await.unwrap();
    assert!(matches!(
        w.login.authenticate(&new_token, now()).await,
        Err(SessionError::Ended)
    ));
    assert_eq!(
        w.sim.logged_out(),
        vec![session.session_index.clone().unwrap()],
        "the SessionIndex was logged out at login.gov.pl"
    );
}

#[tokio::test]
async fn each_bad_answer_is_refused_and_the_next_login_works() {
    let w = world().await;
    let cases = [
        (LoginFault::TamperedAssertion, "bad_signature"),
        (LoginFault::ExpiredAssertion, "expired"),
        (LoginFault::FutureAssertion, "not_yet_valid"),
        (LoginFault::WrongAudience, "audience"),
        (LoginFault::UnsignedResponse, "unsigned"),
        (LoginFault::Sha1Signatures, "refused_algorithm"),
        (LoginFault::WrongInResponseTo, "in_response_to"),
        (LoginFault::LowLoa, "loa"),
        (LoginFault::WrongRecipient, "recipient"),
    ];
    for (fault, code) in cases {
        w.sim.set_fault(fault);
        let err = log_in(&w, JAN, "").await.expect_err("refused");
        assert_eq!(err.code(), code, "{fault:?}: {err}");
        w.sim.set_fault(LoginFault::None);
        let (s, _) = log_in(&w, JAN, "").await.expect("the next login works");
        assert_eq!(s.pesel, JAN);
    }
}

#[tokio::test]
async fn an_artifact_is_used_once_even_when_the_provider_would_resolve_it_again() {
    let w = world().await;
    w.sim.set_fault(LoginFault::ReplayableArtifacts);
    let form = w.login.begin("", now()).await.unwrap();
    let (artifact, relay) = at_idp(&w.http, &w.sim, &form, ANNA).await;
    w.login.complete(&artifact, &relay, now()).await.unwrap();
    let replay = w.login.complete(&artifact, &relay, now()).await;
    assert!(matches!(replay, Err(LoginError::Replayed)), "{replay:?}");
    // The same RelayState with another artifact: the login was answered already.
    let form = w.login.begin("", now()).await.unwrap();
    let (second, _) = at_idp(&w.http, &w.sim, &form, ANNA).await;
    let stale = w.login.complete(&second, &relay, now()).await;
    assert!(matches!(stale, Err(LoginError::UnknownLogin)), "{stale:?}");
}

#[tokio::test]
async fn an_artifact_of_another_provider_is_refused_before_any_request() {
    let w = world().await;
    let form = w.login.begin("", now()).await.unwrap();
    let relay = hidden(&form, "RelayState").unwrap();
    use base64::Engine;
    let mut raw = vec![0u8, 4, 0, 0];
    raw.extend([9u8; 40]);
    let foreign = base64::engine::general_purpose::STANDARD.encode(raw);
    let err = w.login.complete(&foreign, &relay, now()).await.unwrap_err();
    assert_eq!(err.code(), "artifact");
    assert_eq!(w.sim.resolved_count(), 0);
}

#[tokio::test]
async fn a_forged_or_foreign_token_is_refused() {
    let w = world().await;
    let (session, _) = log_in(&w, ANNA, "").await.unwrap();
    let token = w.login.token(&session);
    let forged = format!("{}A", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{}B", &token[..token.len() - 1])
    } else {
        forged
    };
    assert!(matches!(
        w.login.authenticate(&forged, now()).await,
        Err(SessionError::Token(TokenError::BadSignature))
            | Err(SessionError::Token(TokenError::Malformed))
    ));
    let other_keys = gsko_login::SessionKeys::new(vec![vec![8; 32]]).unwrap();
    let foreign = other_keys.sign(&session.sid, session.expires_at);
    assert!(matches!(
        w.login.authenticate(&foreign, now()).await,
        Err(SessionError::Token(TokenError::UnknownKey))
    ));
    assert!(w.login.authenticate(&token, now()).await.is_ok());
}

#[tokio::test]
async fn a_portal_gets_a_one_time_code_and_foreign_origins_are_refused() {
    let w = world().await;
    assert!(w
        .login
        .begin("https://evil.example/steal", now())
        .await
        .is_err());
    assert!(w.login.begin("//evil.example/", now()).await.is_err());
    let (session, back) = log_in(&w, ANNA, "https://portal.gmina.example/po-zalogowaniu")
        .await
        .unwrap();
    assert_eq!(
        back,
        Return::Portal("https://portal.gmina.example/po-zalogowaniu".into())
    );
    let code = w.login.issue_code(&session, now()).await.unwrap();
    let got = w
        .login
        .exchange(&code, now())
        .await
        .unwrap()
        .expect("exchanged");
    assert_eq!(got.sid, session.sid);
    assert!(
        w.login.exchange(&code, now()).await.unwrap().is_none(),
        "a code works once"
    );
}
