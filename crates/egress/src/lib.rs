//! The egress policy: one place that decides where a URL a user or a document supplied may
//! lead (SWML fetches, audio for play, SWML `request`, webhooks, and later tap/stream
//! targets), and an HTTP client that enforces it when it connects.
//!
//! [`EgressPolicy`] is pure: `http`/`https` only; link-local and cloud-metadata, multicast,
//! unspecified and reserved addresses refused unless an `allow` CIDR names them; loopback and
//! private ranges allowed unless the mode is `public-only`; `allow`/`deny` lists of CIDRs and
//! host names. [`EgressClient`] resolves names itself, checks every address and connects only
//! to those (no DNS rebinding between check and connect), checks address literals before
//! sending, and checks every redirect hop. The threat model is in docs/security.md.

mod client;
mod policy;

pub use client::{
    filter_addrs, redirect_policy, refusal, ClientOptions, EgressClient, PolicyResolver,
};
pub use policy::{
    classify, classify_v4, redact, Class, ConfigError, EgressError, EgressPolicy, Entry, Mode, Rule,
};

#[cfg(test)]
mod tests;
