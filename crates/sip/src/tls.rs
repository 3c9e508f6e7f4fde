//! The TLS listener's pieces: the server configuration built (and checked) from PEM at
//! start-up, and the Via fix for requests we send over TLS.
//!
//! The accept loop itself is the TCP listener's (endpoint.rs), with the same limits; the
//! handshake happens there and the stack gets the finished stream as a `TlsConnection`.

use crate::SipError;
use rsipstack::sip::prelude::ToTypedHeader;
use rsipstack::sip::{Header, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// A TLS acceptor presenting `cert_pem` (chain, leaf first) with `key_pem`. Every failure
/// is a [`SipError::Config`] naming what is wrong: no certificate, no key, a key that is
/// not the certificate's.
pub(crate) fn acceptor(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, SipError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| SipError::Config(format!("TLS certificate: not PEM ({e})")))?;
    if certs.is_empty() {
        return Err(SipError::Config(
            "TLS certificate: no CERTIFICATE block in the PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        SipError::Config(format!("TLS key: no usable private key in the PEM ({e})"))
    })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SipError::Config(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| SipError::Config(format!("TLS certificate and key: {e}")))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The stack names the port of its first listener (UDP) in the Via of a request it sends
/// over TLS, as it has no TLS listener of its own: put our TLS listener's address there.
/// Only a Via that says `TLS` and names exactly `udp` is changed.
pub(crate) fn fix_tls_via(headers: &mut [Header], udp: SocketAddr, tls: SocketAddr) {
    let Some(h) = headers.iter_mut().find(|h| matches!(h, Header::Via(_))) else {
        return;
    };
    let Header::Via(via) = h else {
        return;
    };
    let Ok(mut typed) = via.typed() else {
        return;
    };
    if typed.transport != Transport::Tls {
        return;
    }
    let sent_by: Result<SocketAddr, _> = typed.uri.host_with_port.clone().try_into();
    if sent_by.ok() != Some(udp) {
        return;
    }
    typed.uri.host_with_port = tls.into();
    *h = Header::Via(typed.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_via_gets_the_tls_port() {
        let udp: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let tls: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        let mut h = vec![
            Header::Via("SIP/2.0/TLS 192.0.2.1:5060;branch=z9hG4bKx;rport;alias".into()),
            Header::Via("SIP/2.0/TLS 192.0.2.1:5060;branch=z9hG4bKy".into()),
        ];
        fix_tls_via(&mut h, udp, tls);
        let first = h[0].to_string();
        assert!(
            first.contains("SIP/2.0/TLS 192.0.2.1:5061;branch=z9hG4bKx"),
            "{first}"
        );
        assert!(
            first.contains("rport") && first.contains("alias"),
            "{first}"
        );
        // Only the top Via is ours.
        assert!(h[1].to_string().contains(":5060"));

        for other in [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx",
            "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKx",
            "SIP/2.0/TLS 192.0.2.9:5060;branch=z9hG4bKx",
        ] {
            let mut h = vec![Header::Via(other.into())];
            fix_tls_via(&mut h, udp, tls);
            assert!(h[0].to_string().contains(":5060"), "{other}");
        }
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        for (cert, key, want) in [
            (&b""[..], &b""[..], "no CERTIFICATE"),
            (&b"garbage"[..], &b""[..], "no CERTIFICATE"),
        ] {
            match acceptor(cert, key) {
                Err(SipError::Config(m)) => assert!(m.contains(want), "{m}"),
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("accepted"),
            }
        }
    }
}
