//! What the router needs: the call-control backend, the accepted credentials, and limits.

use std::fmt;
use std::sync::Arc;

use control::CallControl;
use uuid::Uuid;

use crate::validate::ValidationOptions;

/// One project's API credentials: HTTP Basic username = `project_id`, password = `token`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub project_id: Uuid,
    pub token: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("project_id", &self.project_id)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Shared state of the API router. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub(crate) control: Arc<dyn CallControl>,
    pub(crate) credentials: Arc<[Credential]>,
    pub(crate) max_body_bytes: usize,
    pub(crate) validation: ValidationOptions,
}

impl ApiState {
    /// Largest request body accepted by default (1 MiB); larger ones get 413.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

    pub fn new(control: Arc<dyn CallControl>, credentials: Vec<Credential>) -> Self {
        ApiState {
            control,
            credentials: credentials.into(),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            validation: ValidationOptions::default(),
        }
    }

    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// Whether `calling.tap` refuses private/reserved IPv4 RTP targets (default `true`; turn it
    /// off for deployments on RFC 1918 networks, ambiguity register A14).
    pub fn with_reject_private_tap_addresses(mut self, reject: bool) -> Self {
        self.validation.reject_private_tap_addresses = reject;
        self
    }

    /// The node's egress policy, so that a URL it would refuse from its text alone is a 422
    /// `url_is_unsafe` at the API (docs/security.md, "Egress").
    pub fn with_egress(mut self, policy: Arc<egress::EgressPolicy>) -> Self {
        self.validation.egress = policy;
        self
    }

    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub fn validation_options(&self) -> ValidationOptions {
        self.validation.clone()
    }
}

impl fmt::Debug for ApiState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiState")
            .field("credentials", &self.credentials)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("validation", &self.validation)
            .finish_non_exhaustive()
    }
}
