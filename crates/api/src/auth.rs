//! HTTP Basic authentication: username = project id, password = API token (calling-api.md §1.2).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::{Choice, ConstantTimeEq};
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::{ApiState, Credential};

/// The authenticated project of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Project(pub Uuid);

impl FromRequestParts<ApiState> for Project {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        authenticate(&state.credentials, &parts.headers)
            .map(Project)
            .ok_or(ApiError::Unauthorized)
    }
}

/// The project whose credentials the `Authorization` header carries, if any.
pub fn authenticate(credentials: &[Credential], headers: &HeaderMap) -> Option<Uuid> {
    let (username, password) = basic_credentials(headers)?;
    let claimed = Uuid::try_parse(&username).ok();
    // Compare against every credential without stopping early, so timing does not tell which
    // project ids exist or how much of a token matched.
    let mut matched = None;
    for credential in credentials {
        let id_matches = match claimed {
            Some(id) => credential.project_id.as_bytes().ct_eq(id.as_bytes()),
            None => Choice::from(0),
        };
        let token_matches = credential.token.as_bytes().ct_eq(password.as_bytes());
        if bool::from(id_matches & token_matches) {
            matched = Some(credential.project_id);
        }
    }
    matched
}

/// `Authorization: Basic base64(user:password)`; the scheme name is case-insensitive.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn matches_only_the_right_pair() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        let creds = vec![
            Credential {
                project_id: a,
                token: "PTa".into(),
            },
            Credential {
                project_id: b,
                token: "PTb".into(),
            },
        ];
        assert_eq!(
            authenticate(&creds, &headers(&basic(&a.to_string(), "PTa"))),
            Some(a)
        );
        assert_eq!(
            authenticate(&creds, &headers(&basic(&b.to_string(), "PTb"))),
            Some(b)
        );
        assert_eq!(
            authenticate(&creds, &headers(&basic(&a.to_string(), "PTb"))),
            None
        );
        assert_eq!(
            authenticate(&creds, &headers(&basic("not-a-uuid", "PTa"))),
            None
        );
        assert_eq!(
            authenticate(&creds, &headers(&basic(&a.to_string(), ""))),
            None
        );
        let upper = a.to_string().to_uppercase();
        assert_eq!(
            authenticate(&creds, &headers(&basic(&upper, "PTa"))),
            Some(a)
        );
        let lower_scheme = basic(&a.to_string(), "PTa").replacen("Basic", "basic", 1);
        assert_eq!(authenticate(&creds, &headers(&lower_scheme)), Some(a));
    }

    /// No early exit on the first project-id match: a rotated token (two credentials for one
    /// project) works with either token, whichever comes first.
    #[test]
    fn every_credential_is_compared() {
        let id = Uuid::new_v4();
        let creds = vec![
            Credential {
                project_id: id,
                token: "old".into(),
            },
            Credential {
                project_id: id,
                token: "new".into(),
            },
        ];
        for token in ["old", "new"] {
            assert_eq!(
                authenticate(&creds, &headers(&basic(&id.to_string(), token))),
                Some(id)
            );
        }
        assert_eq!(
            authenticate(&creds, &headers(&basic(&id.to_string(), "neither"))),
            None
        );
        assert_eq!(
            authenticate(&[], &headers(&basic(&id.to_string(), "old"))),
            None
        );
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let cred = Credential {
            project_id: Uuid::nil(),
            token: "PTsecret".into(),
        };
        assert!(!format!("{cred:?}").contains("PTsecret"));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let creds = vec![Credential {
            project_id: Uuid::nil(),
            token: "t".into(),
        }];
        for value in ["Bearer abc", "Basic", "Basic !!!", "Basic dXNlcg==", ""] {
            assert_eq!(authenticate(&creds, &headers(value)), None, "{value}");
        }
        assert_eq!(authenticate(&creds, &HeaderMap::new()), None);
    }
}
