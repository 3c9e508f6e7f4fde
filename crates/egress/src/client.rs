//! An HTTP client that only connects where the policy allows.
//!
//! Three places enforce the policy, so that what is connected to is what was checked:
//! - [`EgressClient::request`] checks the URL before anything is sent (scheme, denied names,
//!   and address literals, which reqwest connects to without resolving);
//! - the client's DNS resolver ([`PolicyResolver`]) resolves every host name, checks every
//!   address it got, and hands reqwest exactly those addresses: there is no second lookup a
//!   rebinding DNS server could answer differently;
//! - the redirect policy checks every hop's URL the same way (and its host name goes through
//!   the resolver again when reqwest connects to it), and caps the hops.
//!
//! Proxies from the environment are disabled: through a proxy, the resolver would see the
//! proxy's name and not the target's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, RequestBuilder, Url};

use crate::policy::{redact, EgressError, EgressPolicy};

/// How a client behaves besides the policy.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// What the client is for (`webhook`, `swml fetch`, `audio`, `swml request`), in logs.
    pub purpose: &'static str,
    /// Whole-request limit.
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub user_agent: Option<String>,
    /// Redirects followed; 0 returns a 3xx response as it is.
    pub max_redirects: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            purpose: "http",
            timeout: None,
            connect_timeout: None,
            user_agent: None,
            max_redirects: 0,
        }
    }
}

/// A reqwest client bound to an [`EgressPolicy`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EgressClient {
    http: reqwest::Client,
    policy: Arc<EgressPolicy>,
    purpose: &'static str,
}

impl EgressClient {
    /// Builds the client. Fails only when reqwest cannot build one (no TLS provider).
    pub fn new(
        policy: Arc<EgressPolicy>,
        opts: ClientOptions,
    ) -> Result<EgressClient, reqwest::Error> {
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver {
                policy: policy.clone(),
                purpose: opts.purpose,
            }))
            .redirect(redirect_policy(
                policy.clone(),
                opts.max_redirects,
                opts.purpose,
            ));
        if let Some(t) = opts.timeout {
            b = b.timeout(t);
        }
        if let Some(t) = opts.connect_timeout {
            b = b.connect_timeout(t);
        }
        if let Some(ua) = &opts.user_agent {
            b = b.user_agent(ua.clone());
        }
        Ok(EgressClient {
            http: b.build()?,
            policy,
            purpose: opts.purpose,
        })
    }

    /// The policy this client enforces.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// A request to `url`, or the refusal (logged at WARN with the rule).
    pub fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, EgressError> {
        if let Err(e) = self.policy.check_url(&url) {
            log_refusal(self.purpose, &redact(&url), &e);
            return Err(e);
        }
        Ok(self.http.request(method, url))
    }

    pub fn get(&self, url: Url) -> Result<RequestBuilder, EgressError> {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: Url) -> Result<RequestBuilder, EgressError> {
        self.request(Method::POST, url)
    }
}

fn log_refusal(purpose: &str, what: &str, e: &EgressError) {
    let rule = e.rule().map_or("resolve", |r| r.key());
    tracing::warn!(
        purpose,
        target = what,
        rule,
        "outbound request refused: {e}"
    );
}

/// The egress refusal somewhere in an error's chain (a reqwest error from a resolver or a
/// redirect refusal carries it as a source).
pub fn refusal<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<EgressError>() {
            if found.rule().is_some() {
                return Some(found);
            }
        }
        cur = err.source();
    }
    None
}

/// The resolver of every [`EgressClient`]: system resolution, then every address checked.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: Arc<EgressPolicy>,
    purpose: &'static str,
}

impl PolicyResolver {
    pub fn new(policy: Arc<EgressPolicy>, purpose: &'static str) -> Self {
        PolicyResolver { policy, purpose }
    }

    /// Resolves `host` and returns its addresses, all of them allowed, or the refusal.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, EgressError> {
        let result = async {
            self.policy.check_name(host)?;
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await
                .map_err(|e| EgressError::Resolve {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?
                .collect();
            filter_addrs(&self.policy, host, addrs)
        }
        .await;
        if let Err(e) = &result {
            if e.rule().is_some() {
                log_refusal(self.purpose, host, e);
            }
        }
        result
    }
}

/// The addresses a name resolved to, if every one passes the policy.
pub fn filter_addrs(
    policy: &EgressPolicy,
    host: &str,
    addrs: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, EgressError> {
    policy.check_all(host, addrs.iter().map(SocketAddr::ip))?;
    Ok(addrs)
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = PolicyResolver {
            policy: self.policy.clone(),
            purpose: self.purpose,
        };
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Follows at most `max` redirects, each hop's URL checked; with `max == 0` a 3xx is returned
/// as it is.
pub fn redirect_policy(
    policy: Arc<EgressPolicy>,
    max: usize,
    purpose: &'static str,
) -> reqwest::redirect::Policy {
    if max == 0 {
        return reqwest::redirect::Policy::none();
    }
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > max {
            return attempt.error(EgressError::TooManyRedirects(max));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(e) => {
                log_refusal(purpose, &redact(attempt.url()), &e);
                attempt.error(e)
            }
        }
    })
}
