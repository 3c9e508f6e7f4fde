//! Calling API: authentication, validation of all 42 commands into `control` types,
//! SignalWire-shaped error bodies, and the axum router ([`router`], [`ApiState`], [`Credential`]).
//!
//! # Choices made where the spec (`calling-api.md`, ambiguity register A1–A31) is silent
//!
//! **Transport**
//! - Error bodies: always `{"errors":[{type, code, message, attribute, url}]}` (issue 16), except
//!   the 401, which is the documented `{"error":"Unauthorized"}` (A11) — see [`error`].
//! - Order: auth (401) → body size (413 `payload_too_large`) → JSON (400 `bad_request`) →
//!   `command` (422 `invalid_command_attempted`) → envelope and params (one 422 listing every
//!   problem) → the node (404/409/422/501/503/500). So a 422 always wins over a 404.
//! - `Content-Type` is not enforced (the body must still be JSON). Every response (errors, 404
//!   fallback `not_found`, 405 `method_not_allowed`) carries a fresh UUID v4 in `X-Request-Id`; the tracing
//!   span `api_request` holds it with method, path and the command name.
//! - 503 answers `service_unavailable` with `Retry-After: 1`. No 429 is produced:
//!   there is no rate limiter in this crate.
//! - Auth: the Basic username is parsed as a UUID (any case); every credential is compared with
//!   `subtle` without early exit (only token *length* can leak). The scheme name is
//!   case-insensitive.
//! - Command responses are the closed Call Leg ([`control::CALL_LEG_KEYS`]): the operator
//!   extensions (`end_reason`, `answered_at`, `ended_at`) appear only on the operator GETs.
//!   `CommandOk.control_id` wins over the request's; `CommandOk.extra` keys are merged last.
//!
//! **Envelope**
//! - `params` is required for every command (`missing_required_parameter`, or `must_be_object`).
//! - Call ids must be hyphenated UUIDs (either case); a bad `id` is 422 `invalid_parameter`,
//!   not 404. `update` takes `params.id`, then `params.call_id`, then the top-level `id`; the
//!   first present one is used and reported by its own name. A top-level `id` on `dial` is ignored.
//!
//! **Fields (all commands)**
//! - `null` means absent. A blank required string is `missing_required_parameter`.
//! - Codes: wrong type, out of range or not in an enum → `invalid_parameter`; object expected →
//!   `must_be_object`; URL params → `not_an_http_url`. Messages read `"<attribute> <problem>"`.
//! - Integers accept integral floats (`45.0`); numeric strings are refused everywhere except
//!   `ai_hold.timeout` (A8). Enums are case-sensitive except HTTP methods (normalised upper case),
//!   codecs and fax tones.
//! - Unknown keys are dropped from the normalised params and logged at `info` (A31).
//! - Start commands (play, record, collect, detect, tap, stream, transcribe) get a UUID v4
//!   `control_id` when none is sent (A2); the response echoes the `control_id` of every command
//!   whose params carry one, stop/pause ones included (A1).
//! - The private/reserved-address check (A14) applies to `tap` RTP `addr` only (not webhook
//!   URLs, which self-hosted installs often point at loopback); it is on by default
//!   ([`ApiState::with_reject_private_tap_addresses`]) and fails with `url_is_unsafe`.
//!
//! **dial**
//! - `to`: `+…` or all digits → must be E.164 (`not_e164`); `sip:`/`sips:` malformed →
//!   `invalid_sip_destination`; `verto:`/`client:` need an address; `/…` →
//!   `uri_does_not_resolve_to_address` (A27); anything else → `to_destination_unresolvable`.
//! - `from`: E.164 (`not_e164`) when `to` is a phone number; otherwise E.164, SIP URI or a
//!   caller-id token (1–64 of `A-Za-z0-9_.-`). `caller_id` follows the same rules with
//!   `not_valid_for_caller_id`.
//! - Neither `url` nor `swml` is reported on `url`; both on `swml`. SWML text is tried as JSON,
//!   then YAML, and must be a mapping; the SWML validation is the node's
//!   (docs/swml-validation.md). A `to_script` http(s) URL stays a string.
//! - `codecs`: trimmed, case-insensitive; `""`/`[]` mean the server default; an empty list
//!   entry is `invalid_codecs_format`; an unknown name is `invalid_parameter` on `codecs.N`
//!   (array) or `codecs` (string).
//! - `status_events`: deduplicated; absent or `[]` → `["ended"]`. `send_digits: ""` → none.
//!   `region` is a string or a list of non-empty strings (no region catalogue here).
//! - `custom_variables`: over 20 keys is one error on `custom_variables`; otherwise each key is
//!   checked for syntax, then reserved prefix, then value, reported on `custom_variables.<key>`.
//!
//! **Other commands**
//! - `update`: `status` may accompany `url`/`swml` (state rules are the node's).
//! - `calling.end`: `HangupReason` plus the `no_answer`/`declined` spellings; the RELAY-only
//!   reasons (`abandoned`, `max_duration`, `not_found`) are refused as input.
//! - `calling.transfer`: string `dest` must be a SIP URI, E.164 number or http(s) URL; device
//!   objects become that address string (A24).
//! - `calling.play`: an empty list is `missing_required_parameter`; flattened items are reported
//!   at `play.N.<field>` and normalised into `params`; request-level defaults are filled, item
//!   level ones are not (they resolve item → request). Voices allow only `A-Za-z0-9.-`.
//! - `calling.record`: neither `record` nor the `audio` alias → missing `record`; `record`
//!   without `audio` → missing `record.audio`. All `RecordAudioParams` defaults are filled.
//! - `calling.collect`: the 400 for neither `digits` nor `speech` wins over other problems.
//!   Boolean defaults are filled; timers without a documented default are not.
//! - `calling.detect`: machine defaults are filled (`machine_ready_timeout` =
//!   `end_silence_timeout`); thresholds ≥ 0; fax tone normalised to upper case.
//! - `calling.tap`: `tap.type` defaults to `audio`; `addr` must be an IPv4 literal; the WS device
//!   also takes RELAY's `rate` (positive integer).
//! - `calling.ai_hold`: whole seconds 1–300 (the RPC cap), default 300, sent on as a number.
//! - `calling.ai_message`: `role` defaults to `system` when `message_text` is given.
//! - `calling.ai_sidecar`: `direction` must name both legs (default both); `permissions` and the
//!   tuning `params` are always filled with their defaults; SWAIG `mcp_servers` pass through.
//! - `calling.live_transcribe`/`live_translate`: `action` is `"stop"` or an object with exactly
//!   one known key; only live_transcribe's `start.direction` defaults to both legs (A24 names
//!   only that one); `vad_silence_ms` defaults to 500 for google, 300 for deepgram.
//! - `calling.refer`: `to`/`from` accept `sip:` and `sips:`; `type` defaults to `sip`; the `uri`
//!   alias and the flat form become `device.params.to`.
//!
//! **Operator GETs** (not SignalWire's): `GET /api/calling/calls/{id}` (a non-UUID id is 404)
//! and `GET /api/calling/calls` (shape on [`router`]): empty query values count as absent, `limit`
//! 1–1000 (default 50), bad values 422, `links.next` is a path-absolute URL or `null`.

mod auth;
pub mod error;
pub mod openapi;
mod routes;
mod state;
pub mod validate;

pub use auth::{authenticate, Project};
pub use error::{ApiError, ErrorItem, ERROR_DOCS_URL};
pub use routes::router;
pub use state::{ApiState, Credential};
pub use validate::{validate_request, FieldError, Rejection, ValidatedRequest, ValidationOptions};
