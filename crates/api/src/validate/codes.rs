//! Error codes from SignalWire's platform catalogue (calling-api.md §5), one constant each so a
//! typo is a compile error.

pub const MISSING_REQUIRED_PARAMETER: &str = "missing_required_parameter";
pub const INVALID_PARAMETER: &str = "invalid_parameter";
pub const INVALID_COMMAND_ATTEMPTED: &str = "invalid_command_attempted";
pub const MUST_BE_OBJECT: &str = "must_be_object";
pub const NOT_AN_HTTP_URL: &str = "not_an_http_url";
pub const URL_IS_UNSAFE: &str = "url_is_unsafe";
pub const INLINE_SWML_OR_SWML_WEBHOOK_REQUIRED: &str = "inline_swml_or_swml_webhook_required";
pub const INCOMPATIBLE_PARAMETERS: &str = "incompatible_parameters";
pub const NOT_E164: &str = "not_e164";
pub const INVALID_SIP_DESTINATION: &str = "invalid_sip_destination";
pub const TO_DESTINATION_UNRESOLVABLE: &str = "to_destination_unresolvable";
pub const URI_DOES_NOT_RESOLVE_TO_ADDRESS: &str = "uri_does_not_resolve_to_address";
pub const NOT_VALID_FOR_CALLER_ID: &str = "not_valid_for_caller_id";
pub const INVALID_CODECS_FORMAT: &str = "invalid_codecs_format";
pub const INVALID_HTTP_METHOD: &str = "invalid_http_method";
pub const TOO_MANY_CUSTOM_VARIABLES: &str = "too_many_custom_variables";
pub const CUSTOM_VARIABLE_VALUE_TOO_LONG: &str = "custom_variable_value_too_long";
pub const INVALID_CUSTOM_VARIABLE_NAME: &str = "invalid_custom_variable_name";
pub const INVALID_CUSTOM_VARIABLE_VALUE: &str = "invalid_custom_variable_value";
pub const RESERVED_CUSTOM_VARIABLE_NAME: &str = "reserved_custom_variable_name";
