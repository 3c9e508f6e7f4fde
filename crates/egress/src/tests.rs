use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn policy(mode: &str, allow: &[&str], deny: &[&str]) -> EgressPolicy {
    EgressPolicy::parse(mode, allow, deny).unwrap()
}

fn rule_of(r: Result<(), EgressError>) -> Option<&'static str> {
    r.err().and_then(|e| e.rule().map(Rule::key))
}

#[test]
fn every_range_has_its_class() {
    let cases = [
        ("0.0.0.0", Class::Unspecified),
        ("0.1.2.3", Class::Unspecified),
        ("::", Class::Unspecified),
        ("127.0.0.1", Class::Loopback),
        ("127.255.255.254", Class::Loopback),
        ("::1", Class::Loopback),
        ("169.254.0.1", Class::LinkLocal),
        ("169.254.169.254", Class::Metadata),
        ("169.254.170.2", Class::Metadata),
        ("100.100.100.200", Class::Metadata),
        ("168.63.129.16", Class::Metadata),
        ("fd00:ec2::254", Class::Metadata),
        ("fe80::1", Class::LinkLocal),
        ("febf::1", Class::LinkLocal),
        ("224.0.0.1", Class::Multicast),
        ("239.255.255.250", Class::Multicast),
        ("ff02::1", Class::Multicast),
        ("240.0.0.1", Class::Reserved),
        ("255.255.255.255", Class::Reserved),
        ("::10.0.0.1", Class::Reserved),
        ("10.1.2.3", Class::Private),
        ("172.16.0.1", Class::Private),
        ("172.31.255.255", Class::Private),
        ("192.168.1.1", Class::Private),
        ("fd12:3456::1", Class::Private),
        ("fc00::1", Class::Private),
        ("fec0::1", Class::Private),
        ("100.64.0.1", Class::Shared),
        ("100.127.255.255", Class::Shared),
        ("192.0.2.1", Class::NonGlobal),
        ("198.18.0.1", Class::NonGlobal),
        ("198.51.100.7", Class::NonGlobal),
        ("203.0.113.9", Class::NonGlobal),
        ("2001:db8::1", Class::NonGlobal),
        ("100::1", Class::NonGlobal),
        ("8.8.8.8", Class::Public),
        ("172.32.0.1", Class::Public),
        ("100.128.0.1", Class::Public),
        ("169.255.0.1", Class::Public),
        ("2606:4700::1111", Class::Public),
    ];
    for (addr, class) in cases {
        assert_eq!(classify(ip(addr)), class, "{addr}");
    }
}

#[test]
fn ipv6_forms_that_carry_ipv4_take_its_class() {
    assert_eq!(classify(ip("::ffff:169.254.169.254")), Class::Metadata);
    assert_eq!(classify(ip("::ffff:127.0.0.1")), Class::Loopback);
    assert_eq!(classify(ip("::ffff:10.0.0.1")), Class::Private);
    assert_eq!(classify(ip("::ffff:8.8.8.8")), Class::Public);
    assert_eq!(classify(ip("64:ff9b::a9fe:a9fe")), Class::Metadata);
    assert_eq!(classify(ip("64:ff9b::808:808")), Class::Public);
    assert_eq!(classify(ip("2002:7f00:1::")), Class::Loopback);
    assert_eq!(classify(ip("2002:a9fe:a9fe::1")), Class::Metadata);
}

#[test]
fn default_mode_allows_loopback_and_private_but_never_metadata() {
    let p = EgressPolicy::default();
    for ok in [
        "127.0.0.1",
        "::1",
        "10.0.0.1",
        "192.168.0.10",
        "100.64.1.1",
        "8.8.8.8",
    ] {
        assert!(p.check_addr(ip(ok)).is_ok(), "{ok}");
    }
    for bad in [
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "fd00:ec2::254",
        "0.0.0.0",
        "::",
        "224.0.0.1",
        "ff02::1",
        "fe80::1",
        "255.255.255.255",
    ] {
        assert_eq!(
            rule_of(p.check_addr(ip(bad))),
            Some("always-refused"),
            "{bad}"
        );
    }
}

#[test]
fn public_only_refuses_every_internal_class() {
    let p = policy("public-only", &[], &[]);
    for bad in [
        "127.0.0.1",
        "::1",
        "::ffff:127.0.0.1",
        "10.0.0.1",
        "172.20.0.1",
        "192.168.0.1",
        "100.64.0.1",
        "fd00::1",
        "192.0.2.1",
    ] {
        assert_eq!(rule_of(p.check_addr(ip(bad))), Some("public-only"), "{bad}");
    }
    assert_eq!(
        rule_of(p.check_addr(ip("169.254.169.254"))),
        Some("always-refused")
    );
    assert!(p.check_addr(ip("93.184.216.34")).is_ok());
    assert!(p.check_addr(ip("2606:4700::1111")).is_ok());
}

#[test]
fn only_an_allow_cidr_lifts_an_always_refused_class() {
    let p = policy("default", &["169.254.169.254/32", "metadata.internal"], &[]);
    assert!(p.check_addr(ip("169.254.169.254")).is_ok());
    assert!(p.check_addr(ip("::ffff:169.254.169.254")).is_ok());
    assert_eq!(
        rule_of(p.check_addr(ip("169.254.169.253"))),
        Some("always-refused")
    );
    // An allowed name does not lift it: a name's DNS answers are not the operator's word.
    let p = policy("default", &["metadata.internal"], &[]);
    assert_eq!(
        rule_of(p.check_resolved(Some("metadata.internal"), ip("169.254.169.254"))),
        Some("always-refused")
    );
}

#[test]
fn allow_lifts_public_only() {
    let p = policy(
        "public-only",
        &["10.1.0.0/16", "*.corp.example", "hooks.lan"],
        &[],
    );
    assert!(p.check_addr(ip("10.1.2.3")).is_ok());
    assert_eq!(rule_of(p.check_addr(ip("10.2.0.1"))), Some("public-only"));
    assert!(p
        .check_resolved(Some("api.corp.example"), ip("10.9.9.9"))
        .is_ok());
    assert!(p
        .check_resolved(Some("HOOKS.LAN."), ip("192.168.1.5"))
        .is_ok());
    // `*.corp.example` is below the domain, not the domain itself.
    assert_eq!(
        rule_of(p.check_resolved(Some("corp.example"), ip("10.9.9.9"))),
        Some("public-only")
    );
    assert_eq!(
        rule_of(p.check_resolved(Some("evilcorp.example"), ip("10.9.9.9"))),
        Some("public-only")
    );
}

#[test]
fn deny_beats_default_allow_and_allow() {
    let p = policy(
        "default",
        &["127.0.0.0/8", "internal.example"],
        &[
            "127.0.0.1/32",
            "internal.example",
            "*.blocked.test",
            "fd00::/8",
        ],
    );
    assert_eq!(rule_of(p.check_addr(ip("127.0.0.1"))), Some("deny"));
    assert_eq!(rule_of(p.check_addr(ip("::ffff:127.0.0.1"))), Some("deny"));
    assert!(p.check_addr(ip("127.0.0.2")).is_ok());
    assert_eq!(rule_of(p.check_name("internal.example")), Some("deny"));
    assert_eq!(rule_of(p.check_name("a.b.blocked.test")), Some("deny"));
    assert!(p.check_name("blocked.test").is_ok());
    assert_eq!(rule_of(p.check_addr(ip("fd12::1"))), Some("deny"));
    let e = p.check_addr(ip("127.0.0.1")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "egress policy refused 127.0.0.1: matches egress.deny entry 127.0.0.1/32"
    );
}

#[test]
fn urls_are_checked_for_scheme_and_literal_hosts() {
    let p = EgressPolicy::default();
    assert!(p.check_url(&url("http://example.com/x")).is_ok());
    assert!(p.check_url(&url("https://127.0.0.1:8443/")).is_ok());
    for bad in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://x/",
        "data:text/plain,hi",
    ] {
        let r = p.check_url(&url(bad));
        assert!(
            matches!(rule_of(r), Some("scheme") | Some("no-host")),
            "{bad}"
        );
    }
    for meta in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fd00:ec2::254]/",
        // The URL parser normalises other spellings of an IPv4 address.
        "http://2852039166/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://169.254.43518/",
        "http://0/",
        "http://[::]/",
        "http://169.254.169.254./",
        "HTTP://0251.0376.0251.0376/",
    ] {
        assert_eq!(
            rule_of(p.check_url(&url(meta))),
            Some("always-refused"),
            "{meta}"
        );
    }
    let p = policy("public-only", &[], &[]);
    assert_eq!(
        rule_of(p.check_url(&url("http://127.1:8080/"))),
        Some("public-only")
    );
    assert_eq!(
        rule_of(p.check_url(&url("http://[::1]/"))),
        Some("public-only")
    );
    // A name is decided when it resolves.
    assert!(p.check_url(&url("http://localhost/")).is_ok());
}

#[test]
fn refusals_do_not_log_credentials_or_queries() {
    let p = EgressPolicy::default();
    let e = p
        .check_url(&url("ftp://user:secret@example.com/a?token=t#f"))
        .unwrap_err();
    let text = e.to_string();
    assert!(
        !text.contains("secret") && !text.contains("token"),
        "{text}"
    );
}

#[test]
fn configuration_is_parsed_strictly() {
    assert_eq!("Public-Only".parse::<Mode>(), Ok(Mode::PublicOnly));
    assert!("open".parse::<Mode>().is_err());
    assert!(EgressPolicy::parse("default", ["10.0.0.0/33"], [] as [&str; 0]).is_err());
    assert!(EgressPolicy::parse("default", ["exa mple.com"], [] as [&str; 0]).is_err());
    assert!(EgressPolicy::parse("default", ["*."], [] as [&str; 0]).is_err());
    let p =
        EgressPolicy::parse("default", ["10.1.2.3/8", " ", "[::1]"], ["Host.Example."]).unwrap();
    assert_eq!(p.allow.len(), 2);
    assert_eq!(p.allow[0].to_string(), "10.0.0.0/8");
    assert_eq!(p.allow[1].to_string(), "::1/128");
    assert_eq!(p.deny[0].to_string(), "host.example");
}

#[test]
fn one_refused_address_refuses_the_name() {
    let p = EgressPolicy::default();
    let addrs: Vec<SocketAddr> = vec![
        "93.184.216.34:0".parse().unwrap(),
        "169.254.169.254:0".parse().unwrap(),
    ];
    let e = filter_addrs(&p, "rebind.example", addrs).unwrap_err();
    assert_eq!(e.rule().map(Rule::key), Some("always-refused"));
    assert!(e.to_string().contains("rebind.example (169.254.169.254)"));
    let ok: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    assert_eq!(filter_addrs(&p, "localhost", ok.clone()).unwrap(), ok);
    assert!(matches!(
        filter_addrs(&p, "empty.example", vec![]),
        Err(EgressError::Resolve { .. })
    ));
}

#[tokio::test]
async fn the_resolver_checks_what_it_resolved() {
    let deny_loopback = Arc::new(policy("default", &[], &["127.0.0.0/8", "::1/128"]));
    let r = PolicyResolver::new(deny_loopback, "test");
    let e = r.lookup("localhost").await.unwrap_err();
    assert_eq!(e.rule().map(Rule::key), Some("deny"));
    let r = PolicyResolver::new(Arc::new(EgressPolicy::default()), "test");
    let addrs = r.lookup("localhost").await.unwrap();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    let r = PolicyResolver::new(Arc::new(policy("default", &[], &["localhost"])), "test");
    assert_eq!(
        r.lookup("localhost")
            .await
            .unwrap_err()
            .rule()
            .map(Rule::key),
        Some("deny")
    );
}

// --- the client against loopback servers ---

/// A server on `ip` that counts requests; `/redirect?to=U` answers 302 to U.
async fn server(ip: &str) -> (SocketAddr, Arc<AtomicUsize>) {
    use axum::extract::Query;
    use axum::response::{IntoResponse, Redirect};
    use std::collections::HashMap;
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, Query(q): Query<HashMap<String, String>>| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if uri.path() == "/loop" {
                    return Redirect::temporary("/loop").into_response();
                }
                match q.get("to") {
                    Some(to) => Redirect::temporary(to).into_response(),
                    None => "ok".into_response(),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

fn client(p: EgressPolicy, max_redirects: usize) -> EgressClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    EgressClient::new(
        Arc::new(p),
        ClientOptions {
            purpose: "test",
            timeout: Some(Duration::from_secs(5)),
            max_redirects,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn a_literal_address_is_refused_before_anything_is_sent() {
    let (addr, hits) = server("127.0.0.1").await;
    let c = client(policy("public-only", &[], &[]), 3);
    let e = c.get(url(&format!("http://{addr}/"))).unwrap_err();
    assert_eq!(e.rule().map(Rule::key), Some("public-only"));
    let c = client(EgressPolicy::default(), 3);
    let r = c
        .get(url(&format!("http://{addr}/")))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_is_not_connected() {
    let (addr, hits) = server("127.0.0.1").await;
    let c = client(policy("public-only", &[], &[]), 3);
    let req = c
        .get(url(&format!("http://localhost:{}/", addr.port())))
        .unwrap();
    let e = req.send().await.unwrap_err();
    let refused = refusal(&e).expect("the refusal is in the error chain");
    assert_eq!(refused.rule().map(Rule::key), Some("public-only"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // Allowed by name: the same request goes through.
    let c = client(policy("public-only", &["localhost"], &[]), 3);
    let r = c
        .get(url(&format!("http://localhost:{}/", addr.port())))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_redirect_to_a_denied_literal_address_is_not_followed() {
    let (front, front_hits) = server("127.0.0.1").await;
    let (secret, secret_hits) = server("127.0.0.2").await;
    let c = client(policy("default", &[], &["127.0.0.2/32"]), 3);
    let to = format!("http://{secret}/secret");
    let e = c
        .get(url(&format!("http://{front}/redirect?to={to}")))
        .unwrap()
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    assert_eq!(
        refusal(&e).and_then(|r| r.rule()).map(Rule::key),
        Some("deny")
    );
    assert_eq!(front_hits.load(Ordering::SeqCst), 1);
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirect_to_a_name_is_checked_when_it_resolves() {
    // The first server is allowed (127.0.0.2); the hop names localhost, which resolves to
    // denied loopback addresses.
    let (front, front_hits) = server("127.0.0.2").await;
    let (secret, secret_hits) = server("127.0.0.1").await;
    let c = client(policy("default", &[], &["127.0.0.1/32", "::1/128"]), 3);
    let to = format!("http://localhost:{}/secret", secret.port());
    let e = c
        .get(url(&format!("http://{front}/redirect?to={to}")))
        .unwrap()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refusal(&e).and_then(|r| r.rule()).map(Rule::key),
        Some("deny"),
        "{e:?}"
    );
    assert_eq!(front_hits.load(Ordering::SeqCst), 1);
    assert_eq!(secret_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn redirects_are_capped_and_zero_returns_the_3xx() {
    let (front, hits) = server("127.0.0.1").await;
    let hop = format!("http://{front}/redirect?to=http://{front}/end");
    let c = client(EgressPolicy::default(), 0);
    let r = c.get(url(&hop)).unwrap().send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let c = client(EgressPolicy::default(), 3);
    let r = c.get(url(&hop)).unwrap().send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // A loop: the first request and two hops, then an error.
    let c = client(EgressPolicy::default(), 2);
    let e = c
        .get(url(&format!("http://{front}/loop")))
        .unwrap()
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 6);
}
