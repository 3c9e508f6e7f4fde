//! The runtime SWML validator (swml.md §1.6–1.7, docs/swml-validation.md): what every document
//! dialtone runs passes at load — the initial document, every fetched one and every inline one.
//!
//! It checks the *shape*: `version`, `sections`, `main`, that each step has exactly one known
//! method name, each method's value type, its known parameters' types, required parameters,
//! mutually exclusive ones, a few enums, the nested blocks (`cond`, `switch`, `execute`,
//! `result`, inline `confirm`) and the nesting depth. Failures carry the `relay_script_*` code of
//! the SWML error catalogue (swml.md §2.11). Unknown top-level keys and unknown parameter names
//! are warnings, not errors (S1, S7). Placeholder expansion, section and label resolution and
//! JavaScript are run-time matters and are not looked at here.
//!
//! The accepted language is the superset of both published JSON Schemas plus the lenient forms
//! of swml.md §1.4; the checked-in corpus (`tests/corpus/`) is the proof. The checker also
//! normalises the lenient forms the interpreter does not read itself: `null` method values
//! become `{}`, a section given as one step becomes a list, `play: "<url>"` becomes
//! `{url: …}`, `execute`/`transfer: "<dest>"` become `{dest: …}`, `goto: "<label>"` becomes
//! `{label: …}`, and the legacy list form of `transfer` is merged into one object.

mod methods;

use serde_json::{Map, Value};

/// A string parameter.
pub(crate) const S: u8 = 1;
/// An integer parameter.
pub(crate) const I: u8 = 1 << 1;
/// A number parameter.
pub(crate) const N: u8 = 1 << 2;
/// A boolean parameter.
pub(crate) const B: u8 = 1 << 3;
/// An object parameter.
pub(crate) const O: u8 = 1 << 4;
/// An array parameter.
pub(crate) const A: u8 = 1 << 5;
/// Any JSON value.
pub(crate) const ANY: u8 = u8::MAX;

/// Deepest nesting of blocks inside blocks (swml.md §2.12).
pub const MAX_BLOCK_DEPTH: usize = 64;
/// Most problems reported for one document.
const MAX_PROBLEMS: usize = 20;

/// One row of the method-parameter table ([`methods::METHODS`]).
pub(crate) struct MethodSpec {
    pub name: &'static str,
    /// The JSON shapes the method's value may take (object methods also take `null`).
    pub value: u8,
    pub params: &'static [(&'static str, u8)],
    /// Alternatives: the step is valid when every parameter of one of them is present.
    pub required: &'static [&'static [&'static str]],
    /// At most one of these may be present.
    pub exclusive: &'static [&'static str],
    /// Parameters whose literal string values must be one of these (case-insensitively).
    pub enums: &'static [(&'static str, &'static [&'static str])],
}

/// One error or warning, with its SWML error code and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A `relay_script_*` code (swml.md §2.11).
    pub code: &'static str,
    /// JSON-pointer-like location, e.g. `/sections/main/2/play/volume`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} ({})", self.message, self.code)
        } else {
            write!(f, "{}: {} ({})", self.path, self.message, self.code)
        }
    }
}

/// A document that passed: the normalised value and what was ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub value: Value,
    pub warnings: Vec<Problem>,
}

/// The names of every SWML method the checker knows.
pub fn method_names() -> impl Iterator<Item = &'static str> {
    methods::METHODS.iter().map(|m| m.name)
}

/// The known parameter names of `method`, if it is a SWML method.
pub fn known_params(method: &str) -> Option<Vec<&'static str>> {
    spec(method).map(|m| m.params.iter().map(|(p, _)| *p).collect())
}

fn spec(method: &str) -> Option<&'static MethodSpec> {
    methods::METHODS.iter().find(|m| m.name == method)
}

/// Checks (and normalises) a document already parsed to a JSON object.
pub fn check(doc: Value) -> Result<Checked, Vec<Problem>> {
    let mut c = Checker::default();
    let value = c.document(doc);
    if c.errors.is_empty() {
        Ok(Checked {
            value,
            warnings: c.warnings,
        })
    } else {
        Err(c.errors)
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Checker {
    fn error(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        if self.errors.len() < MAX_PROBLEMS {
            self.errors.push(Problem {
                code,
                path: path.to_string(),
                message: message.into(),
            });
        }
    }

    fn warn(&mut self, code: &'static str, path: &str, message: impl Into<String>) {
        if self.warnings.len() < MAX_PROBLEMS {
            self.warnings.push(Problem {
                code,
                path: path.to_string(),
                message: message.into(),
            });
        }
    }

    fn document(&mut self, doc: Value) -> Value {
        let Value::Object(mut top) = doc else {
            self.error(
                "relay_script_element_wrong_type",
                "",
                "a SWML document must be an object with `sections`",
            );
            return doc;
        };
        for key in top.keys() {
            if key != "version" && key != "sections" {
                self.warn(
                    "relay_script_element_undefined",
                    &format!("/{key}"),
                    format!("unknown top-level element `{key}` is ignored"),
                );
            }
        }
        match top.get("version") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v.trim() == "1.0.0" => {}
            Some(other) => self.error(
                "relay_script_version_invalid",
                "/version",
                format!("version must be \"1.0.0\", not {other}"),
            ),
        }
        match top.get_mut("sections") {
            None | Some(Value::Null) => self.error(
                "relay_script_sections_missing",
                "/sections",
                "the document has no `sections`",
            ),
            Some(Value::Object(sections)) => {
                if !sections.contains_key("main") {
                    self.error(
                        "relay_script_main_section_missing",
                        "/sections/main",
                        "the document has no `main` section",
                    );
                }
                for (name, section) in sections.iter_mut() {
                    let path = format!("/sections/{name}");
                    if name.trim().is_empty() {
                        self.error(
                            "relay_script_element_invalid_value",
                            &path,
                            "a section name must not be empty",
                        );
                    }
                    if section.is_object() {
                        self.warn(
                            "relay_script_element_wrong_type",
                            &path,
                            "a section should be a list of steps; the single step is used as one",
                        );
                        *section = Value::Array(vec![section.take()]);
                    }
                    self.steps(section, &path, 0, "a section");
                }
            }
            Some(_) => self.error(
                "relay_script_element_wrong_type",
                "/sections",
                "`sections` must be an object of named step lists",
            ),
        }
        Value::Object(top)
    }

    /// A list of steps (a section or a block).
    fn steps(&mut self, steps: &mut Value, path: &str, depth: usize, what: &str) {
        if depth > MAX_BLOCK_DEPTH {
            self.error(
                "relay_script_nested_too_deep",
                path,
                format!("blocks are nested more than {MAX_BLOCK_DEPTH} deep"),
            );
            return;
        }
        let Value::Array(list) = steps else {
            self.error(
                "relay_script_element_wrong_type",
                path,
                format!("{what} must be a list of steps"),
            );
            return;
        };
        for (i, step) in list.iter_mut().enumerate() {
            self.step(step, &format!("{path}/{i}"), depth);
        }
    }

    fn step(&mut self, step: &mut Value, path: &str, depth: usize) {
        let Value::Object(obj) = step else {
            self.error(
                "relay_script_element_wrong_type",
                path,
                format!(
                    "a step must be an object with one method name, not {}",
                    kind_name(step)
                ),
            );
            return;
        };
        if obj.len() != 1 {
            if obj.is_empty() {
                self.error(
                    "relay_script_method_missing_name",
                    path,
                    "a step has no method name",
                );
            } else {
                let names: Vec<&str> = obj.keys().map(String::as_str).collect();
                self.error(
                    "relay_script_element_wrong_type",
                    path,
                    format!(
                        "a step has exactly one method name; this one has {}",
                        names.join(", ")
                    ),
                );
            }
            return;
        }
        let Some((name, value)) = obj.iter_mut().next() else {
            return;
        };
        let path = format!("{path}/{name}");
        let Some(spec) = spec(name) else {
            self.error(
                "relay_script_method_undefined",
                &path,
                format!("unknown SWML method `{name}`"),
            );
            return;
        };
        normalise(spec, value);
        if !shape_ok(spec.value, value) {
            self.error(
                "relay_script_element_wrong_type",
                &path,
                format!(
                    "`{}` takes {}, not {}",
                    spec.name,
                    describe(spec.value),
                    kind_name(value)
                ),
            );
            return;
        }
        if let Value::Object(params) = value {
            if !methods::FREE_FORM.contains(&spec.name) {
                self.params(spec, params, &path);
            }
        }
        self.blocks(spec.name, value, &path, depth);
    }

    fn params(&mut self, spec: &MethodSpec, params: &Map<String, Value>, path: &str) {
        for (key, v) in params {
            let here = format!("{path}/{key}");
            let Some((_, kind)) = spec.params.iter().find(|(p, _)| p == key) else {
                self.warn(
                    "relay_script_method_parameter_undefined",
                    &here,
                    format!("unknown parameter `{key}` of `{}` is ignored", spec.name),
                );
                continue;
            };
            if !kind_ok(*kind, v) {
                self.error(
                    "relay_script_method_parameter_invalid_value",
                    &here,
                    format!("`{key}` must be {}, not {}", describe(*kind), kind_name(v)),
                );
                continue;
            }
            if let Some((_, allowed)) = spec.enums.iter().find(|(p, _)| p == key) {
                if let Some(s) = literal_text(v) {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(s.trim())) {
                        self.error(
                            "relay_script_method_parameter_invalid_value",
                            &here,
                            format!("`{key}` must be one of {}, not `{s}`", allowed.join(", ")),
                        );
                    }
                }
            }
        }
        let present = |k: &str| params.get(k).is_some_and(|v| !v.is_null());
        if !spec.required.is_empty()
            && !spec
                .required
                .iter()
                .any(|alt| alt.iter().all(|k| present(k)))
        {
            let alts: Vec<String> = spec
                .required
                .iter()
                .map(|alt| {
                    alt.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                })
                .collect();
            self.error(
                "relay_script_method_parameter_missing",
                path,
                format!("`{}` needs {}", spec.name, alts.join(", or ")),
            );
        }
        let given: Vec<&str> = spec
            .exclusive
            .iter()
            .copied()
            .filter(|k| present(k))
            .collect();
        if given.len() > 1 {
            self.error(
                "relay_script_method_parameter_conflict",
                path,
                format!(
                    "`{}` takes only one of {}; got {}",
                    spec.name,
                    spec.exclusive.join(", "),
                    given.join(" and ")
                ),
            );
        }
    }

    /// Nested step lists (swml.md §1.2, §2.4).
    fn blocks(&mut self, method: &str, value: &mut Value, path: &str, depth: usize) {
        let depth = depth + 1;
        match method {
            "cond" => self.cond_entries(value, path, depth),
            "switch" => self.switch_like(value, path, depth),
            "execute" => {
                if let Some(b) = value.get_mut("on_return").filter(|b| !b.is_null()) {
                    self.steps(b, &format!("{path}/on_return"), depth, "`on_return`");
                }
                self.result(value, path, depth);
            }
            "connect" | "join_conference" | "enter_queue" => {
                if let Some(b) = value.get_mut("confirm").filter(|b| b.is_array()) {
                    self.steps(b, &format!("{path}/confirm"), depth, "`confirm`");
                }
                self.result(value, path, depth);
            }
            _ => {}
        }
    }

    /// `result`: a `switch`-like object or a `cond`-like list.
    fn result(&mut self, value: &mut Value, path: &str, depth: usize) {
        let here = format!("{path}/result");
        match value.get_mut("result") {
            Some(r @ Value::Array(_)) => self.cond_entries(r, &here, depth),
            Some(r @ Value::Object(_)) => self.switch_like(r, &here, depth),
            _ => {}
        }
    }

    fn cond_entries(&mut self, entries: &mut Value, path: &str, depth: usize) {
        let Value::Array(entries) = entries else {
            return;
        };
        for (j, entry) in entries.iter_mut().enumerate() {
            let here = format!("{path}/{j}");
            let Value::Object(e) = entry else {
                self.error(
                    "relay_script_element_wrong_type",
                    &here,
                    "a condition must be an object with `when` and `then`, or `else`",
                );
                continue;
            };
            if let Some(w) = e.get("when").filter(|w| !w.is_null() && !w.is_string()) {
                self.error(
                    "relay_script_method_parameter_invalid_value",
                    &format!("{here}/when"),
                    format!("`when` must be a JavaScript string, not {}", kind_name(w)),
                );
            }
            for key in ["then", "else"] {
                if let Some(b) = e.get_mut(key).filter(|b| !b.is_null()) {
                    self.steps(b, &format!("{here}/{key}"), depth, &format!("`{key}`"));
                }
            }
        }
    }

    fn switch_like(&mut self, value: &mut Value, path: &str, depth: usize) {
        match value.get_mut("case") {
            Some(Value::Object(cases)) => {
                for (k, b) in cases.iter_mut() {
                    self.steps(b, &format!("{path}/case/{k}"), depth, "a `case` branch");
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => {
                let got = kind_name(other);
                self.error(
                    "relay_script_method_parameter_invalid_value",
                    &format!("{path}/case"),
                    format!("`case` must be an object of step lists, not {got}"),
                );
            }
        }
        if let Some(b) = value.get_mut("default").filter(|b| !b.is_null()) {
            self.steps(b, &format!("{path}/default"), depth, "`default`");
        }
    }
}

/// The lenient forms of swml.md §1.4 that the interpreter does not read itself.
fn normalise(spec: &MethodSpec, value: &mut Value) {
    match (spec.name, &*value) {
        (_, Value::Null) if spec.value & O != 0 => *value = Value::Object(Map::new()),
        ("play", Value::String(s)) => *value = single("url", s),
        ("goto", Value::String(s)) => *value = single("label", s),
        ("execute" | "transfer", Value::String(s)) => *value = single("dest", s),
        ("transfer", Value::Array(items)) => {
            if let Some(merged) = merge_one_key_objects(items) {
                let mut merged = merged;
                if let Some(Value::Array(p)) = merged.get("params") {
                    if let Some(p) = merge_one_key_objects(p) {
                        merged.insert("params".into(), Value::Object(p));
                    }
                }
                *value = Value::Object(merged);
            }
        }
        _ => {}
    }
}

fn single(key: &str, s: &str) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), Value::String(s.to_string()));
    Value::Object(m)
}

/// `[ {a: 1}, {b: 2} ]` → `{a: 1, b: 2}`; `None` unless every item is a one-key object.
fn merge_one_key_objects(items: &[Value]) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let obj = item.as_object().filter(|o| o.len() == 1)?;
        out.extend(obj.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Some(out)
}

/// A method value: objects (`null` is already normalised), or the other shapes the method
/// allows. Stricter than [`kind_ok`]: `play: 3` is not a shorthand for anything.
fn shape_ok(allowed: u8, v: &Value) -> bool {
    match v {
        Value::Object(_) => allowed & O != 0,
        Value::Array(_) => allowed & A != 0,
        Value::String(_) => {
            allowed & S != 0 || (allowed & (I | N | B) != 0 && kind_ok(allowed & (I | N | B), v))
        }
        Value::Number(_) => allowed & (I | N) != 0 && kind_ok(allowed, v),
        Value::Bool(_) => allowed & B != 0,
        Value::Null => allowed == ANY,
    }
}

/// Whether a parameter value fits its declared kinds, with the leniencies of swml.md §1.3–1.4.
pub(crate) fn kind_ok(kind: u8, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => {
            kind & S != 0
                || has_placeholder(s)
                || (kind & I != 0 && s.trim().parse::<i64>().is_ok())
                || (kind & N != 0 && s.trim().parse::<f64>().is_ok_and(f64::is_finite))
                || (kind & B != 0 && matches!(s.trim(), "true" | "false"))
        }
        Value::Number(n) => {
            kind & (N | S) != 0
                || (kind & I != 0
                    && (n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)))
        }
        Value::Bool(_) => kind & (B | S) != 0,
        Value::Object(_) => kind & O != 0,
        Value::Array(_) => kind & A != 0,
    }
}

fn has_placeholder(s: &str) -> bool {
    s.contains("${") || s.contains("%{")
}

/// A literal (placeholder-free) scalar as text, for enum checks.
fn literal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !has_placeholder(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn describe(kind: u8) -> String {
    if kind == ANY {
        return "any value".into();
    }
    let names: Vec<&str> = [
        (S, "a string"),
        (I, "an integer"),
        (N, "a number"),
        (B, "a boolean"),
        (O, "an object"),
        (A, "a list"),
    ]
    .iter()
    .filter(|(k, _)| kind & k != 0)
    .map(|(_, n)| *n)
    .collect();
    names.join(" or ")
}

#[cfg(test)]
mod tests;
