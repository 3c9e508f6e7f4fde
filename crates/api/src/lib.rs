//! Calling API: authentication, validation of all 42 commands into `control` types,
//! SignalWire-shaped error bodies, and the axum router.

mod auth;
pub mod error;
mod routes;
mod state;
pub mod validate;

pub use auth::Project;
pub use error::{ApiError, ErrorItem, ERROR_DOCS_URL};
pub use routes::router;
pub use state::{ApiState, Credential};
pub use validate::{validate_request, FieldError, Rejection, ValidatedRequest, ValidationOptions};
