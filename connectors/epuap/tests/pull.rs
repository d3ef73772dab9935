//! WS-Pull messages: requests in the element form ePUAP expects, answers read with faults and
//! statuses told apart.

use gsko_epuap::pull::*;

fn env(body: &str) -> String {
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

#[test]
fn requests_qualify_only_the_global_element() {
    let b = BoxAddress::new("ugboleslawiec", "skrytka");
    let r = request_body(PullOperation::Confirm, &b, Some("q1w2e3=="));
    assert_eq!(
        r,
        r#"<ZapytaniePullPotwierdz xmlns="http://wsdl.epuap.gov.pl/obiekty/"><podmiot xmlns="">ugboleslawiec</podmiot><nazwaSkrytki xmlns="">skrytka</nazwaSkrytki><adresSkrytki xmlns="">/ugboleslawiec/skrytka</adresSkrytki><skrot xmlns="">q1w2e3==</skrot></ZapytaniePullPotwierdz>"#
    );
    let r = request_body(PullOperation::Next, &BoxAddress::new("a&b", "x<y"), None);
    assert!(
        r.contains("<podmiot xmlns=\"\">a&amp;b</podmiot>") && r.contains("/a&amp;b/x&lt;y"),
        "{r}"
    );
}

#[test]
fn the_confirmation_digest_is_base64_of_sha1_of_the_content() {
    // SHA-1("abc") = a9993e36…9cd0d89d
    assert_eq!(confirmation_digest(b"abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
}

#[test]
fn answers_are_read_and_faults_and_statuses_told_apart() {
    let pending = env(
        r#"<p:OdpowiedzPullOczekujace xmlns:p="http://wsdl.epuap.gov.pl/obiekty/"><status><kod>1</kod><komunikat>OK</komunikat></status><oczekujace>3</oczekujace></p:OdpowiedzPullOczekujace>"#,
    );
    assert_eq!(parse_pending(&pending), Ok(3));
    let extra = "PGRhbmU+PElkZW50eWZpa2F0b3JEb2t1bWVudHU+MTwvSWRlbnR5ZmlrYXRvckRva3VtZW50dT48SWRlbnR5ZmlrYXRvckRva3VtZW50dT40MjwvSWRlbnR5ZmlrYXRvckRva3VtZW50dT48L2RhbmU+";
    let next = env(&format!(
        r#"<p140:OdpowiedzPullPobierz xmlns:p140="http://wsdl.epuap.gov.pl/obiekty/"><status><kod>1</kod><komunikat>OK</komunikat></status><danePodmiotu><identyfikator>jkowalski</identyfikator><typOsoby>F</typOsoby><imieSkrot>Jan</imieSkrot><nazwiskoNazwa>Kowalski</nazwiskoNazwa><pesel>78031501236</pesel><zgoda>true</zgoda></danePodmiotu><daneNadawcy><uzytkownik>jkowalski</uzytkownik></daneNadawcy><dataNadania>2026-11-20T10:11:12.000+01:00</dataNadania><nazwaSkrytki>skrytka</nazwaSkrytki><adresSkrytki>/ugb/skrytka</adresSkrytki><adresOdpowiedzi>/jkowalski/domyslna</adresOdpowiedzi><czyTestowe>false</czyTestowe><daneDodatkowe>{extra}</daneDodatkowe><dokument><nazwaPliku>Pismo_ogolne.xml</nazwaPliku><typPliku>application/xml</typPliku><zawartosc>PGE+
PC9hPg==</zawartosc></dokument></p140:OdpowiedzPullPobierz>"#
    ));
    let d = parse_next(&next).unwrap().unwrap();
    assert_eq!(d.content, b"<a></a>");
    assert_eq!(d.file_name, "Pismo_ogolne.xml");
    assert_eq!(d.subject_pesel.as_deref(), Some("78031501236"));
    assert_eq!(d.reply_address.as_deref(), Some("/jkowalski/domyslna"));
    assert_eq!(d.epuap_document_id.as_deref(), Some("42"));
    assert!(!d.test);
    assert_eq!(d.digest(), confirmation_digest(b"<a></a>"));
    let empty = env(
        r#"<p:OdpowiedzPullPobierz xmlns:p="http://wsdl.epuap.gov.pl/obiekty/"><status><kod>0</kod><komunikat>Brak dokumentów</komunikat></status></p:OdpowiedzPullPobierz>"#,
    );
    assert_eq!(parse_next(&empty), Ok(None));
    let fault = env(
        r#"<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>Błąd</faultstring><detail><ob:Wyjatek xmlns:ob="http://wsdl.epuap.gov.pl/obiekty/"><kod>17</kod><komunikat>Niepoprawny skrót</komunikat></ob:Wyjatek></detail></soapenv:Fault>"#,
    );
    assert_eq!(
        parse_confirm(&fault),
        Err(PullError::Fault {
            faultcode: "soapenv:Server".into(),
            faultstring: "Błąd".into(),
            kod: Some(17),
            komunikat: Some("Niepoprawny skrót".into())
        })
    );
    let refused = env(
        r#"<p:OdpowiedzPullPotwierdz xmlns:p="http://wsdl.epuap.gov.pl/obiekty/"><status><kod>5</kod><komunikat>nie</komunikat></status></p:OdpowiedzPullPotwierdz>"#,
    );
    assert_eq!(
        parse_confirm(&refused),
        Err(PullError::Status {
            kod: 5,
            komunikat: "nie".into()
        })
    );
    assert!(matches!(
        parse_confirm(&pending),
        Err(PullError::Malformed(_))
    ));
    assert!(matches!(
        parse_pending("<!DOCTYPE x><x/>"),
        Err(PullError::Malformed(_))
    ));
}
