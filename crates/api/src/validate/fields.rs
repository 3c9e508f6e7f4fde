//! The field-checking toolkit every command validator uses.
//!
//! An [`Obj`] wraps one JSON object of the request. Each typed getter checks one key, records a
//! [`FieldError`] (with the dotted attribute path) when it is wrong, and copies the accepted value
//! into the normalised output object. Validators therefore read like the parameter tables of
//! calling-api.md, collect every error in one pass, and produce the normalised params for free.
//! `null` counts as absent everywhere (hand-written clients send it for "not set").

use serde_json::{Map, Value};

use super::codes::{
    INVALID_HTTP_METHOD, INVALID_PARAMETER, MISSING_REQUIRED_PARAMETER, MUST_BE_OBJECT,
    NOT_AN_HTTP_URL, URL_IS_UNSAFE,
};
use super::formats;
use super::{FieldError, ValidationOptions};

/// One end of a numeric range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Open,
    Inclusive(f64),
    Exclusive(f64),
}

/// The range a number must lie in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    lo: Bound,
    hi: Bound,
}

impl Limits {
    pub const ANY: Limits = Limits {
        lo: Bound::Open,
        hi: Bound::Open,
    };

    /// `lo ≤ x ≤ hi`
    pub const fn between(lo: f64, hi: f64) -> Limits {
        Limits {
            lo: Bound::Inclusive(lo),
            hi: Bound::Inclusive(hi),
        }
    }

    /// `x ≥ lo`
    pub const fn at_least(lo: f64) -> Limits {
        Limits {
            lo: Bound::Inclusive(lo),
            hi: Bound::Open,
        }
    }

    /// `x > 0`
    pub const POSITIVE: Limits = Limits {
        lo: Bound::Exclusive(0.0),
        hi: Bound::Open,
    };

    /// `x ≥ 0`
    pub const NON_NEGATIVE: Limits = Limits::at_least(0.0);

    fn admits(&self, x: f64) -> bool {
        let lo_ok = match self.lo {
            Bound::Open => true,
            Bound::Inclusive(lo) => x >= lo,
            Bound::Exclusive(lo) => x > lo,
        };
        let hi_ok = match self.hi {
            Bound::Open => true,
            Bound::Inclusive(hi) => x <= hi,
            Bound::Exclusive(hi) => x < hi,
        };
        lo_ok && hi_ok
    }

    fn describe(&self) -> String {
        match (self.lo, self.hi) {
            (Bound::Inclusive(lo), Bound::Inclusive(hi)) => format!("between {lo} and {hi}"),
            (Bound::Inclusive(lo), Bound::Open) => format!("at least {lo}"),
            (Bound::Exclusive(lo), Bound::Open) => format!("greater than {lo}"),
            (Bound::Open, Bound::Inclusive(hi)) => format!("at most {hi}"),
            _ => "in range".to_owned(),
        }
    }
}

/// What a value check says when the value is wrong: a catalogue code and the message tail
/// ("must be a string"); the attribute name is prepended by [`Obj`].
pub type Problem = (&'static str, String);

fn problem(code: &'static str, tail: impl Into<String>) -> Problem {
    (code, tail.into())
}

/// One JSON object under validation and its normalised copy.
pub struct Obj<'a> {
    src: &'a Map<String, Value>,
    path: String,
    out: Map<String, Value>,
    consulted: Vec<String>,
    errors: Vec<FieldError>,
    bad_request: bool,
    options: ValidationOptions,
}

impl<'a> Obj<'a> {
    /// The top-level `params` object: attributes are bare names.
    pub fn root(src: &'a Map<String, Value>, options: ValidationOptions) -> Self {
        Self::at(src, String::new(), options)
    }

    fn at(src: &'a Map<String, Value>, path: String, options: ValidationOptions) -> Self {
        Obj {
            src,
            path,
            out: Map::new(),
            consulted: Vec::new(),
            errors: Vec::new(),
            bad_request: false,
            options,
        }
    }

    /// A nested object whose attributes are reported under `path` (e.g. `play.0.params`).
    pub fn nested(&self, src: &'a Map<String, Value>, path: String) -> Obj<'a> {
        Self::at(src, path, self.options.clone())
    }

    pub fn options(&self) -> ValidationOptions {
        self.options.clone()
    }

    /// This object's own attribute path (empty at the top).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The attribute path of `key` in this object.
    pub fn attr(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Records an error against `key` with message "`<attribute> <tail>`".
    pub fn fail(&mut self, key: &str, code: &'static str, tail: impl AsRef<str>) {
        let attribute = self.attr(key);
        let message = format!("{attribute} {}", tail.as_ref());
        self.errors.push(FieldError {
            code,
            message,
            attribute: Some(attribute),
        });
    }

    /// The whole request is a 400 (calling-api.md §6.11: collect without digits or speech).
    pub fn mark_bad_request(&mut self) {
        self.bad_request = true;
    }

    /// The raw value of `key`; `null` reads as absent. Marks the key as known.
    pub fn get(&mut self, key: &str) -> Option<&'a Value> {
        if !self.consulted.iter().any(|k| k == key) {
            self.consulted.push(key.to_owned());
        }
        self.src.get(key).filter(|v| !v.is_null())
    }

    /// Marks every key as known (the object is read through another [`Obj`]).
    pub fn consult_all(&mut self) {
        self.consulted = self.src.keys().cloned().collect();
    }

    pub fn present(&mut self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets a normalised value (overwrites).
    pub fn put(&mut self, key: &str, value: impl Into<Value>) {
        self.out.insert(key.to_owned(), value.into());
    }

    /// Drops a normalised value (when an alias was resolved into another place).
    pub fn remove(&mut self, key: &str) {
        self.out.remove(key);
    }

    /// The generic getter: absent → `None` (and `missing_required_parameter` when `required`);
    /// present → `check` decides, and on success its normalised value is stored.
    pub fn field<T>(
        &mut self,
        key: &str,
        required: bool,
        check: impl FnOnce(&'a Value) -> Result<(T, Value), Problem>,
    ) -> Option<T> {
        match self.get(key) {
            None => {
                if required {
                    self.fail(key, MISSING_REQUIRED_PARAMETER, "is required");
                }
                None
            }
            Some(value) => match check(value) {
                Ok((typed, normalised)) => {
                    self.put(key, normalised);
                    Some(typed)
                }
                Err((code, tail)) => {
                    self.fail(key, code, tail);
                    None
                }
            },
        }
    }

    // ----- strings -------------------------------------------------------------------------

    /// Any string, empty included.
    pub fn opt_str(&mut self, key: &str) -> Option<&'a str> {
        self.field(key, false, check_string)
    }

    /// A non-empty string; `""` counts as missing.
    pub fn req_str(&mut self, key: &str) -> Option<&'a str> {
        if matches!(self.get(key), Some(Value::String(s)) if s.is_empty()) {
            self.fail(key, MISSING_REQUIRED_PARAMETER, "must not be blank");
            return None;
        }
        self.field(key, true, check_string)
    }

    /// An optional string that, when given, must not be empty.
    pub fn opt_nonempty_str(&mut self, key: &str) -> Option<&'a str> {
        self.field(key, false, |v| {
            let (s, norm) = check_string(v)?;
            if s.is_empty() {
                return Err(problem(INVALID_PARAMETER, "must not be empty"));
            }
            Ok((s, norm))
        })
    }

    /// A string that must satisfy `is_valid`, failing with `code` and `tail`.
    pub fn opt_str_where(
        &mut self,
        key: &str,
        is_valid: impl FnOnce(&str) -> bool,
        code: &'static str,
        tail: &str,
    ) -> Option<&'a str> {
        self.field(key, false, |v| {
            let (s, norm) = check_string(v)?;
            if is_valid(s) {
                Ok((s, norm))
            } else {
                Err(problem(code, tail))
            }
        })
    }

    /// One of `allowed` (exact spelling).
    pub fn opt_enum(&mut self, key: &str, allowed: &[&str]) -> Option<&'a str> {
        self.field(key, false, |v| check_enum(v, allowed))
    }

    pub fn req_enum(&mut self, key: &str, allowed: &[&str]) -> Option<&'a str> {
        self.field(key, true, |v| check_enum(v, allowed))
    }

    /// An absolute http(s) URL (`not_an_http_url`).
    /// The node's egress policy refusing it from the text alone is `url_is_unsafe`.
    pub fn opt_http_url(&mut self, key: &str) -> Option<&'a str> {
        let egress = self.options.egress.clone();
        self.field(key, false, |v| check_egress_url(&egress, v))
    }

    pub fn req_http_url(&mut self, key: &str) -> Option<&'a str> {
        let egress = self.options.egress.clone();
        self.field(key, true, |v| check_egress_url(&egress, v))
    }

    /// `GET` or `POST`, any case, normalised to upper case (`invalid_http_method`).
    pub fn opt_http_method(&mut self, key: &str) {
        self.field(key, false, |v| {
            let method = v
                .as_str()
                .map(str::to_ascii_uppercase)
                .filter(|m| m == "GET" || m == "POST")
                .ok_or_else(|| problem(INVALID_HTTP_METHOD, "must be GET or POST"))?;
            Ok(((), Value::String(method)))
        });
    }

    /// An array of strings; `min_items` is enforced when given.
    pub fn opt_str_list(&mut self, key: &str, min_items: usize) -> Option<Vec<&'a str>> {
        self.field(key, false, |v| {
            let items = v
                .as_array()
                .ok_or_else(|| problem(INVALID_PARAMETER, "must be an array of strings"))?;
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let strings =
                strings.ok_or_else(|| problem(INVALID_PARAMETER, "must be an array of strings"))?;
            if strings.len() < min_items {
                return Err(problem(
                    INVALID_PARAMETER,
                    format!("must have at least {min_items} item(s)"),
                ));
            }
            Ok((strings, v.clone()))
        })
    }

    // ----- booleans and numbers ------------------------------------------------------------

    pub fn opt_bool(&mut self, key: &str) -> Option<bool> {
        self.field(key, false, |v| {
            v.as_bool()
                .map(|b| (b, Value::Bool(b)))
                .ok_or_else(|| problem(INVALID_PARAMETER, "must be a boolean"))
        })
    }

    /// A JSON number within `limits`.
    pub fn opt_num(&mut self, key: &str, limits: Limits) -> Option<f64> {
        self.field(key, false, |v| check_number(v, limits))
    }

    pub fn req_num(&mut self, key: &str, limits: Limits) -> Option<f64> {
        self.field(key, true, |v| check_number(v, limits))
    }

    /// A JSON integer (an integral float such as `5.0` is accepted) within `limits`.
    pub fn opt_int(&mut self, key: &str, limits: Limits) -> Option<i64> {
        self.field(key, false, |v| check_integer(v, limits))
    }

    pub fn req_int(&mut self, key: &str, limits: Limits) -> Option<i64> {
        self.field(key, true, |v| check_integer(v, limits))
    }

    // ----- objects and arrays --------------------------------------------------------------

    /// Any JSON object, copied as is (`must_be_object`).
    pub fn opt_any_object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        self.field(key, false, check_object)
    }

    pub fn req_any_object(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        self.field(key, true, check_object)
    }

    /// A nested object validated field by field by `validate`; its normalised copy replaces the
    /// input. Returns what `validate` returns.
    pub fn opt_object<R>(
        &mut self,
        key: &str,
        validate: impl FnOnce(&mut Obj<'a>) -> R,
    ) -> Option<R> {
        self.object(key, false, validate)
    }

    pub fn req_object<R>(
        &mut self,
        key: &str,
        validate: impl FnOnce(&mut Obj<'a>) -> R,
    ) -> Option<R> {
        self.object(key, true, validate)
    }

    fn object<R>(
        &mut self,
        key: &str,
        required: bool,
        validate: impl FnOnce(&mut Obj<'a>) -> R,
    ) -> Option<R> {
        let map = self.field(key, required, check_object)?;
        let mut child = self.nested(map, self.attr(key));
        let result = validate(&mut child);
        let normalised = self.absorb(child);
        self.put(key, normalised);
        Some(result)
    }

    /// An array (`invalid_parameter` otherwise); items are left to the caller.
    pub fn opt_array(&mut self, key: &str) -> Option<&'a Vec<Value>> {
        self.field(key, false, |v| {
            v.as_array()
                .map(|a| (a, v.clone()))
                .ok_or_else(|| problem(INVALID_PARAMETER, "must be an array"))
        })
    }

    /// Takes over a nested object's errors and returns its normalised copy.
    pub fn absorb(&mut self, child: Obj<'a>) -> Map<String, Value> {
        let (out, errors, bad_request) = child.finish();
        self.errors.extend(errors);
        self.bad_request |= bad_request;
        out
    }

    /// The normalised object, the errors, and whether the request is a 400. Unknown keys are
    /// logged and dropped (ambiguity register A31).
    pub fn finish(self) -> (Map<String, Value>, Vec<FieldError>, bool) {
        for key in self.src.keys() {
            if !self.consulted.iter().any(|k| k == key) {
                let attribute = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                tracing::info!(%attribute, "ignoring unknown parameter");
            }
        }
        (self.out, self.errors, self.bad_request)
    }
}

/// An empty object to validate when an optional object is absent but its defaults are wanted.
pub fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

// ----- value checks, usable on their own ----------------------------------------------------

pub fn check_string(v: &Value) -> Result<(&str, Value), Problem> {
    v.as_str()
        .map(|s| (s, v.clone()))
        .ok_or_else(|| problem(INVALID_PARAMETER, "must be a string"))
}

pub fn check_enum<'v>(v: &'v Value, allowed: &[&str]) -> Result<(&'v str, Value), Problem> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok((s, v.clone())),
        _ => Err(problem(
            INVALID_PARAMETER,
            format!("must be one of: {}", allowed.join(", ")),
        )),
    }
}

pub fn check_http_url(v: &Value) -> Result<(&str, Value), Problem> {
    match v.as_str() {
        Some(s) if formats::is_http_url(s) => Ok((s, v.clone())),
        _ => Err(problem(NOT_AN_HTTP_URL, "must be an http or https URL")),
    }
}

/// [`check_http_url`], then the egress policy's verdict on the URL text.
pub fn check_egress_url<'v>(
    egress: &egress::EgressPolicy,
    v: &'v Value,
) -> Result<(&'v str, Value), Problem> {
    let (s, norm) = check_http_url(v)?;
    check_egress(egress, s)?;
    Ok((s, norm))
}

/// `url_is_unsafe` when the egress policy refuses `url` before any request.
pub fn check_egress(egress: &egress::EgressPolicy, url: &str) -> Result<(), Problem> {
    match egress.check_url_text(url) {
        Ok(()) => Ok(()),
        Err(e) => Err(problem(
            URL_IS_UNSAFE,
            match e.rule() {
                Some(rule) => format!("is refused by the egress policy: {rule}"),
                None => format!("is refused by the egress policy: {e}"),
            },
        )),
    }
}

pub fn check_object(v: &Value) -> Result<(&Map<String, Value>, Value), Problem> {
    v.as_object()
        .map(|m| (m, v.clone()))
        .ok_or_else(|| problem(MUST_BE_OBJECT, "must be an object"))
}

pub fn check_number(v: &Value, limits: Limits) -> Result<(f64, Value), Problem> {
    let x = v
        .as_f64()
        .ok_or_else(|| problem(INVALID_PARAMETER, "must be a number"))?;
    if limits.admits(x) {
        Ok((x, v.clone()))
    } else {
        Err(problem(
            INVALID_PARAMETER,
            format!("must be {}", limits.describe()),
        ))
    }
}

pub fn check_integer(v: &Value, limits: Limits) -> Result<(i64, Value), Problem> {
    let as_int = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    let n = as_int.ok_or_else(|| problem(INVALID_PARAMETER, "must be an integer"))?;
    // Integers this large only matter to reject; f64 keeps their order.
    if limits.admits(n as f64) {
        Ok((n, Value::from(n)))
    } else {
        Err(problem(
            INVALID_PARAMETER,
            format!("must be {}", limits.describe()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn options() -> ValidationOptions {
        ValidationOptions::default()
    }

    #[test]
    fn getters_normalise_and_collect_every_error() {
        let src = json!({
            "name": "x", "n": 5.0, "flag": "yes", "vol": 50, "extra": 1,
            "nested": {"max": 0}, "nil": null
        });
        let map = src.as_object().unwrap();
        let mut o = Obj::root(map, options());
        assert_eq!(o.req_str("name"), Some("x"));
        assert_eq!(o.opt_int("n", Limits::ANY), Some(5));
        assert_eq!(o.opt_bool("flag"), None);
        assert_eq!(o.opt_num("vol", Limits::between(-40.0, 40.0)), None);
        o.opt_object("nested", |d| d.req_int("max", Limits::POSITIVE));
        assert_eq!(o.req_str("nil"), None);
        let (out, errors, bad) = o.finish();
        assert!(!bad);
        let attributes: Vec<_> = errors
            .iter()
            .map(|e| e.attribute.clone().unwrap())
            .collect();
        assert_eq!(attributes, ["flag", "vol", "nested.max", "nil"]);
        assert_eq!(errors[1].message, "vol must be between -40 and 40");
        assert_eq!(errors[3].code, MISSING_REQUIRED_PARAMETER);
        assert_eq!(out["n"], json!(5));
        assert!(!out.contains_key("extra"));
    }

    #[test]
    fn integers_reject_fractions_and_strings() {
        assert!(check_integer(&json!(1.5), Limits::ANY).is_err());
        assert!(check_integer(&json!("1"), Limits::ANY).is_err());
        assert!(check_integer(&json!(1e300), Limits::ANY).is_err());
        assert_eq!(check_integer(&json!(7), Limits::ANY).unwrap().0, 7);
        assert!(check_integer(&json!(0), Limits::POSITIVE).is_err());
    }
}
