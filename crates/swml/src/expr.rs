//! Placeholders and expressions (swml.md §5): `${…}` / `%{…}` in string values, plain-path lookup
//! first, JavaScript otherwise, and the typing rules for whole-string versus embedded results.
//!
//! JavaScript runs in an embedded QuickJS with a memory cap and an interrupt budget counted in
//! engine callbacks, not wall time, so evaluation stays deterministic and told-the-time pure.

use serde_json::{Map, Value};

/// Longest expression accepted (swml.md §2.12: < 1024 characters).
pub const MAX_EXPRESSION_CHARS: usize = 1023;
const JS_MEMORY_LIMIT: usize = 8 * 1024 * 1024;
/// QuickJS calls the interrupt handler every few thousand bytecodes; this bounds runaway loops.
const JS_INTERRUPT_BUDGET: u32 = 20_000;
/// Interrupt ticks one script may spend over all its expressions (ten runaway expressions'
/// worth): a loop of heavy expressions fails fast once it is spent, instead of each one
/// burning its own budget.
pub const JS_SCRIPT_BUDGET: u32 = 10 * JS_INTERRUPT_BUDGET;
/// Interrupt ticks a script may spend in one go before it yields (`swml::Run` waits on a
/// timeout due at once): between slices its runtime handles the call's other events and other
/// scripts run.
pub const JS_SLICE: u32 = JS_INTERRUPT_BUDGET / 4;
/// Longest text one string expansion may produce: placeholders splice variables, and a string
/// of many could otherwise build a huge value from small ones.
pub const MAX_EXPANDED_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("expression longer than {MAX_EXPRESSION_CHARS} characters")]
    TooLong,
    #[error("JavaScript error: {0}")]
    Js(String),
    #[error("expression result is a function")]
    Function,
    #[error("the script has spent its JavaScript budget")]
    ScriptBudget,
    #[error("JavaScript evaluation cancelled: the call is ending")]
    Cancelled,
    #[error("the expanded text is longer than {MAX_EXPANDED_BYTES} bytes")]
    TooLarge,
}

/// The four scopes an expression can read (swml.md §4.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub call: Map<String, Value>,
    pub vars: Map<String, Value>,
    pub envs: Map<String, Value>,
    pub params: Map<String, Value>,
    /// The call's JavaScript budget (by default [`JS_SCRIPT_BUDGET`] ticks).
    pub js: JsBudget,
}

/// A call's JavaScript budget: interrupt ticks spent so far out of a limit, and a cancel flag.
/// Shared (cheap to clone) between the script's [`Scope`], the thread that evaluates it and
/// whoever may end the call: the engine's interrupt handler reads both on every tick, so
/// [`JsBudget::cancel`] stops an expression that is running on another thread.
#[derive(Debug, Clone)]
pub struct JsBudget(std::sync::Arc<BudgetState>);

#[derive(Debug)]
struct BudgetState {
    spent: std::sync::atomic::AtomicU32,
    limit: u32,
    cancelled: std::sync::atomic::AtomicBool,
}

impl JsBudget {
    /// A budget of `limit` interrupt ticks over all the expressions that share it.
    pub fn new(limit: u32) -> JsBudget {
        JsBudget(std::sync::Arc::new(BudgetState {
            spent: std::sync::atomic::AtomicU32::new(0),
            limit,
            cancelled: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn get(&self) -> u32 {
        self.0.spent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn limit(&self) -> u32 {
        self.0.limit
    }

    fn left(&self) -> u32 {
        self.0.limit.saturating_sub(self.get())
    }

    fn add(&self, ticks: u32) {
        self.0.spent.store(
            self.get().saturating_add(ticks),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Stops any running expression at its next interrupt tick and every later one at once
    /// ([`ExprError::Cancelled`]): the call is going away.
    pub fn cancel(&self) {
        self.0
            .cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for JsBudget {
    fn default() -> Self {
        JsBudget::new(JS_SCRIPT_BUDGET)
    }
}

impl PartialEq for JsBudget {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get() && self.limit() == other.limit()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a string into literal text and placeholder bodies. An unterminated placeholder stays
/// literal text.
fn scan(s: &str) -> Vec<Piece<'_>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if (bytes[i] == b'$' || bytes[i] == b'%') && bytes[i + 1] == b'{' {
            if let Some(end) = matching_brace(bytes, i + 2) {
                if text_start < i {
                    out.push(Piece::Text(&s[text_start..i]));
                }
                out.push(Piece::Placeholder(&s[i + 2..end]));
                i = end + 1;
                text_start = i;
                continue;
            }
        }
        i += 1;
    }
    if text_start < s.len() {
        out.push(Piece::Text(&s[text_start..]));
    }
    out
}

/// Index of the `}` closing a placeholder whose body starts at `from`, skipping nested braces
/// and JS string literals.
fn matching_brace(bytes: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
        } else {
            match b {
                b'\'' | b'"' | b'`' => quote = Some(b),
                b'{' => depth += 1,
                b'}' if depth == 0 => return Some(i),
                b'}' => depth -= 1,
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// The bodies of every placeholder in `s`.
pub fn placeholder_bodies(s: &str) -> Vec<&str> {
    scan(s)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(b) => Some(b),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Whether a placeholder body is a plain path (looked up, never run as JavaScript).
pub fn is_plain_path(body: &str) -> bool {
    parse_path(body).is_some()
}

/// Replaces each placeholder by a neutral literal, for syntax checks of `when` expressions.
pub fn blank_placeholders(s: &str) -> String {
    scan(s)
        .into_iter()
        .map(|p| match p {
            Piece::Text(t) => t,
            Piece::Placeholder(_) => "0",
        })
        .collect()
}

/// Parses an expression without running it.
pub fn check_syntax(body: &str) -> Result<(), ExprError> {
    if body.chars().count() > MAX_EXPRESSION_CHARS {
        return Err(ExprError::TooLong);
    }
    js::check_syntax(body)
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// `segment ( '.' segment | '[' digits ']' )*`; segments may contain `-` (swml.md §5.2).
fn parse_path(body: &str) -> Option<Vec<PathStep>> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let is_seg_char = |c: char| !c.is_whitespace() && !".[]{}()'\"+*/%!=<>&|?:,;`".contains(c);
    let mut steps = Vec::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    let mut expect_segment = true;
    while i < chars.len() {
        if expect_segment {
            let start = i;
            while i < chars.len() && is_seg_char(chars[i]) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let seg: String = chars[start..i].iter().collect();
            // A leading digit/minus makes it a literal, not a name (`${5}`, `${-1}`).
            if steps.is_empty() && seg.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                return None;
            }
            steps.push(PathStep::Key(seg));
            expect_segment = false;
        } else if chars[i] == '.' {
            i += 1;
            expect_segment = true;
        } else if chars[i] == '[' {
            let start = i + 1;
            let mut j = start;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            if j == start || j >= chars.len() || chars[j] != ']' {
                return None;
            }
            let idx: String = chars[start..j].iter().collect();
            steps.push(PathStep::Index(idx.parse().ok()?));
            i = j + 1;
        } else {
            return None;
        }
    }
    if expect_segment {
        return None;
    }
    Some(steps)
}

fn walk<'v>(mut v: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    for s in steps {
        v = match (s, v) {
            (PathStep::Key(k), Value::Object(m)) => m.get(k)?,
            (PathStep::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

impl Scope {
    /// Resolves a path per swml.md §4.3: explicit scope, else vars, then envs, then call.
    pub fn lookup(&self, body: &str) -> Option<Value> {
        let steps = parse_path(body)?;
        self.lookup_steps(&steps)
    }

    fn lookup_steps(&self, steps: &[PathStep]) -> Option<Value> {
        let PathStep::Key(first) = steps.first()? else {
            return None;
        };
        let rest = &steps[1..];
        let scoped = match first.as_str() {
            "call" => Some(&self.call),
            "vars" => Some(&self.vars),
            "envs" => Some(&self.envs),
            "params" => Some(&self.params),
            _ => None,
        };
        if let Some(map) = scoped {
            return match rest.split_first() {
                None => Some(Value::Object(map.clone())),
                Some((PathStep::Key(k), tail)) => walk(map.get(k)?, tail).cloned(),
                Some((PathStep::Index(_), _)) => None,
            };
        }
        for map in [&self.vars, &self.envs, &self.call] {
            if let Some(v) = map.get(first) {
                return walk(v, rest).cloned();
            }
        }
        None
    }

    /// Expands every placeholder inside `v` (strings in objects and arrays too). A string that is
    /// exactly one placeholder keeps the value's JSON type. Errors evaluate to empty text and are
    /// reported to `on_error`.
    pub fn expand(&self, v: &Value, on_error: &mut dyn FnMut(ExprError)) -> Value {
        match v {
            Value::String(s) => self.expand_str(s, on_error),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.expand(x, on_error)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.expand(x, on_error)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    pub fn expand_str(&self, s: &str, on_error: &mut dyn FnMut(ExprError)) -> Value {
        let pieces = scan(s);
        if let [Piece::Placeholder(body)] = pieces.as_slice() {
            return match self.evaluate(body) {
                Ok(v) => v.unwrap_or(Value::Null),
                Err(e) => {
                    on_error(e);
                    Value::String(String::new())
                }
            };
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Placeholder(_))) {
            return Value::String(s.to_string());
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Placeholder(body) => match self.evaluate(body) {
                    Ok(v) => out.push_str(&stringify(v.as_ref().unwrap_or(&Value::Null))),
                    Err(e) => on_error(e),
                },
            }
            if out.len() > MAX_EXPANDED_BYTES {
                on_error(ExprError::TooLarge);
                return Value::String(String::new());
            }
        }
        Value::String(out)
    }

    /// A placeholder body: a plain path is a lookup (missing ⇒ `None`); anything else is JS.
    pub fn evaluate(&self, body: &str) -> Result<Option<Value>, ExprError> {
        if let Some(steps) = parse_path(body) {
            return Ok(self.lookup_steps(&steps));
        }
        self.eval_js(body)
    }

    /// A `when` condition (swml.md §5.5): placeholders pre-expanded as text, then JS truthiness.
    pub fn condition(&self, when: &Value) -> Result<bool, ExprError> {
        match when {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => {
                let mut first_err = None;
                let mut text = String::new();
                for p in scan(s) {
                    match p {
                        Piece::Text(t) => text.push_str(t),
                        Piece::Placeholder(body) => match self.evaluate(body) {
                            Ok(v) => text.push_str(&stringify(v.as_ref().unwrap_or(&Value::Null))),
                            Err(e) => {
                                first_err.get_or_insert(e);
                            }
                        },
                    }
                }
                if let Some(e) = first_err {
                    return Err(e);
                }
                Ok(truthy(&self.eval_js(&text)?.unwrap_or(Value::Null)))
            }
            other => Ok(truthy(other)),
        }
    }

    fn eval_js(&self, body: &str) -> Result<Option<Value>, ExprError> {
        if body.chars().count() > MAX_EXPRESSION_CHARS {
            return Err(ExprError::TooLong);
        }
        js::eval(self, body)
    }
}

/// JS truthiness of a JSON value.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Text of a value spliced into a string (swml.md §5.4).
pub fn stringify(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_text(n),
        other => other.to_string(),
    }
}

fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

mod js {
    use std::cell::Cell;
    use std::rc::Rc;

    use rquickjs::{Context, Ctx, Object, Runtime, Value as JsValue};
    use serde_json::Value;

    use super::{ExprError, Scope, JS_INTERRUPT_BUDGET, JS_MEMORY_LIMIT};

    pub(super) fn eval(scope: &Scope, body: &str) -> Result<Option<Value>, ExprError> {
        let budget = scope.js.clone();
        if budget.is_cancelled() {
            return Err(ExprError::Cancelled);
        }
        let left = budget.left();
        if left == 0 {
            return Err(ExprError::ScriptBudget);
        }
        let limit = left.min(JS_INTERRUPT_BUDGET);
        let rt = Runtime::new().map_err(|e| ExprError::Js(e.to_string()))?;
        rt.set_memory_limit(JS_MEMORY_LIMIT);
        rt.set_max_stack_size(256 * 1024);
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let cancel = budget.clone();
        rt.set_interrupt_handler(Some(Box::new(move || {
            t.set(t.get() + 1);
            t.get() > limit || cancel.is_cancelled()
        })));
        let ctx = Context::full(&rt).map_err(|e| ExprError::Js(e.to_string()))?;
        let result = ctx.with(|ctx| {
            install_globals(&ctx, scope)?;
            let source = format!("(\n{body}\n)");
            let result: JsValue = ctx.eval(source).map_err(|e| js_error(&ctx, e))?;
            to_json(&ctx, result)
        });
        // Every expression costs at least one tick, so even cheap ones are finite in number.
        let used = ticks.get().clamp(1, limit);
        budget.add(used);
        if budget.is_cancelled() {
            return Err(ExprError::Cancelled);
        }
        result
    }

    /// Wrapping the body in a function that is never called parses it without evaluating it.
    /// A body can close the wrapper and run code of its own (`1); })(); while (true) {} (…`),
    /// so the same interrupt budget and stack cap as [`eval`] apply.
    pub(super) fn check_syntax(body: &str) -> Result<(), ExprError> {
        let rt = Runtime::new().map_err(|e| ExprError::Js(e.to_string()))?;
        rt.set_memory_limit(JS_MEMORY_LIMIT);
        rt.set_max_stack_size(256 * 1024);
        let ticks = Rc::new(Cell::new(0u32));
        rt.set_interrupt_handler(Some(Box::new(move || {
            ticks.set(ticks.get() + 1);
            ticks.get() > JS_INTERRUPT_BUDGET
        })));
        let ctx = Context::full(&rt).map_err(|e| ExprError::Js(e.to_string()))?;
        ctx.with(|ctx| {
            let source = format!("(function(){{ return (\n{body}\n); }})");
            let _: JsValue = ctx.eval(source).map_err(|e| js_error(&ctx, e))?;
            Ok(())
        })
    }

    fn js_error(ctx: &Ctx<'_>, e: rquickjs::Error) -> ExprError {
        if matches!(e, rquickjs::Error::Exception) {
            let exc = ctx.catch();
            let text = exc
                .as_exception()
                .and_then(|x| x.message())
                .unwrap_or_else(|| "exception".to_string());
            ExprError::Js(text)
        } else {
            ExprError::Js(e.to_string())
        }
    }

    fn to_js<'js>(ctx: &Ctx<'js>, v: &Value) -> Result<JsValue<'js>, ExprError> {
        let text = serde_json::to_string(v).map_err(|e| ExprError::Js(e.to_string()))?;
        ctx.json_parse(text).map_err(|e| js_error(ctx, e))
    }

    fn install_globals(ctx: &Ctx<'_>, scope: &Scope) -> Result<(), ExprError> {
        let g: Object = ctx.globals();
        let set = |name: &str, v: &Value| -> Result<(), ExprError> {
            let jv = to_js(ctx, v)?;
            g.set(name, jv).map_err(|e| js_error(ctx, e))
        };
        // Lowest priority first: call fields, then envs keys, then vars keys (vars shadow envs).
        for (k, v) in &scope.call {
            set(k, v)?;
        }
        for (k, v) in &scope.envs {
            set(k, v)?;
        }
        for (k, v) in &scope.vars {
            set(k, v)?;
        }
        set("call", &Value::Object(scope.call.clone()))?;
        set("vars", &Value::Object(scope.vars.clone()))?;
        set("envs", &Value::Object(scope.envs.clone()))?;
        set("params", &Value::Object(scope.params.clone()))?;
        Ok(())
    }

    fn to_json<'js>(ctx: &Ctx<'js>, v: JsValue<'js>) -> Result<Option<Value>, ExprError> {
        if v.is_undefined() {
            return Ok(None);
        }
        if v.is_function() || v.as_object().is_some_and(|o| o.as_function().is_some()) {
            return Err(ExprError::Function);
        }
        if let Some(f) = v.as_float() {
            if !f.is_finite() {
                // NaN and Infinity have no JSON form; keep their JS text.
                return Ok(Some(Value::String(if f.is_nan() {
                    "NaN".into()
                } else if f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                })));
            }
        }
        let text: Option<rquickjs::String> = ctx.json_stringify(v).map_err(|e| js_error(ctx, e))?;
        let Some(text) = text else { return Ok(None) };
        let s = text.to_string().map_err(|e| ExprError::Js(e.to_string()))?;
        serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| ExprError::Js(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope::default();
        s.call.insert("type".into(), json!("sip"));
        s.call.insert("from".into(), json!("+14155550123"));
        s.vars.insert("prompt_value".into(), json!("1"));
        s.vars.insert("items".into(), json!([1, 2, 3]));
        s.vars.insert(
            "request_response_headers".into(),
            json!({"content-type": "application/json"}),
        );
        s.vars.insert("unit_price".into(), json!(2.5));
        s.vars.insert("quantity".into(), json!("4"));
        s.envs.insert("ticket".into(), json!("T-1"));
        s.params.insert("a".into(), json!("1"));
        s.params.insert("b".into(), json!("2"));
        s
    }

    fn ex(s: &Scope, text: &str) -> Value {
        s.expand_str(text, &mut |e| panic!("unexpected error {e}"))
    }

    #[test]
    fn paths_resolve_in_scope_order() {
        let s = scope();
        assert_eq!(ex(&s, "${prompt_value}"), json!("1"));
        assert_eq!(ex(&s, "%{vars.prompt_value}"), json!("1"));
        assert_eq!(ex(&s, "${ticket}"), json!("T-1"));
        assert_eq!(ex(&s, "${envs.ticket}"), json!("T-1"));
        assert_eq!(ex(&s, "${type}"), json!("sip"), "call fields last");
        assert_eq!(ex(&s, "${items[1]}"), json!(2));
        assert_eq!(
            ex(&s, "${request_response_headers.content-type}"),
            json!("application/json")
        );
        assert_eq!(ex(&s, "x${nothing.here}y"), json!("xy"));
        assert_eq!(
            ex(&s, "${a}"),
            Value::Null,
            "params never searched implicitly"
        );
        assert_eq!(ex(&s, "${items.length}"), Value::Null, "a path, not JS");
    }

    #[test]
    fn javascript_and_typing() {
        let s = scope();
        assert_eq!(ex(&s, "${(items.length)}"), json!(3));
        assert_eq!(
            ex(&s, "${vars.unit_price * parseInt(vars.quantity)}"),
            json!(10)
        );
        assert_eq!(ex(&s, "${params.a+params.b}"), json!("12"));
        assert_eq!(ex(&s, "${call.type.toUpperCase()}"), json!("SIP"));
        assert_eq!(ex(&s, "n=${1/4}"), json!("n=0.25"));
        assert_eq!(ex(&s, "${[1,2,3].reduce((a,b)=>a+b, 0)}"), json!(6));
        assert_eq!(ex(&s, "list ${items} end"), json!("list [1,2,3] end"));
        assert_eq!(ex(&s, "${prompt_value == 1}"), json!(true));
        assert_eq!(ex(&s, "${prompt_value === 1}"), json!(false));
        assert_eq!(ex(&s, "${ {a: 1}.a }"), json!(1));
    }

    #[test]
    fn errors_are_reported_and_yield_empty() {
        let s = scope();
        let mut errs = Vec::new();
        let v = s.expand_str("a${no_such_fn()}b", &mut |e| errs.push(e));
        assert_eq!(v, json!("ab"));
        assert_eq!(errs.len(), 1);
        let mut errs = Vec::new();
        let v = s.expand_str("${(function(){ while(true){} })()}", &mut |e| errs.push(e));
        assert_eq!(v, json!(""));
        assert_eq!(errs.len(), 1, "runaway loops are interrupted");
        assert!(s.js.get() >= 20_000, "its ticks count against the script");
        let long = format!("${{{}}}", "1+".repeat(600) + "1");
        let mut errs = Vec::new();
        s.expand_str(&long, &mut |e| errs.push(e));
        assert_eq!(errs, vec![ExprError::TooLong]);
        let mut errs = Vec::new();
        s.expand_str("${(x => x)}", &mut |e| errs.push(e));
        assert_eq!(errs, vec![ExprError::Function]);
    }

    #[test]
    fn conditions() {
        let s = scope();
        assert!(s
            .condition(&json!("call.type.toLowerCase() == 'sip'"))
            .unwrap());
        assert!(s.condition(&json!("${prompt_value} == 1")).unwrap());
        assert!(
            s.condition(&json!("${call.type} == 'sip'")).is_err(),
            "documented inconsistency"
        );
        assert!(!s.condition(&json!("vars.prompt_value === 2")).unwrap());
        assert!(s.condition(&json!(true)).unwrap());
    }

    #[test]
    fn scanning_edge_cases() {
        let s = scope();
        assert_eq!(
            ex(&s, "cost ${ '}' } and %{prompt_value}"),
            json!("cost } and 1")
        );
        assert_eq!(
            ex(&s, "unterminated ${prompt_value"),
            json!("unterminated ${prompt_value")
        );
        assert_eq!(ex(&s, "no placeholders"), json!("no placeholders"));
        assert_eq!(ex(&s, "$"), json!("$"));
        let nested = s.expand(
            &json!({"a": ["${prompt_value}", 5, {"b": "x${ticket}"}]}),
            &mut |_| {},
        );
        assert_eq!(nested, json!({"a": ["1", 5, {"b": "xT-1"}]}));
        assert_eq!(stringify(&json!(5.0)), "5");
        assert_eq!(stringify(&json!(null)), "");
    }

    #[test]
    fn the_javascript_budget_is_the_scripts_not_each_expressions() {
        let s = scope();
        let runaway = "${(function(){ while(true){} })()}";
        let mut errs = Vec::new();
        for _ in 0..10 {
            s.expand_str(runaway, &mut |e| errs.push(e));
        }
        assert!(
            errs.iter().all(|e| matches!(e, ExprError::Js(_))),
            "{errs:?}"
        );
        assert_eq!(s.js.get(), JS_SCRIPT_BUDGET);
        // Spent: further expressions fail at once, cheap or not.
        let mut errs = Vec::new();
        assert_eq!(s.expand_str(runaway, &mut |e| errs.push(e)), json!(""));
        assert_eq!(s.expand_str("${1 + 1}", &mut |e| errs.push(e)), json!(""));
        assert_eq!(errs, vec![ExprError::ScriptBudget, ExprError::ScriptBudget]);
        // Plain variable paths are not JavaScript and keep working.
        assert_eq!(s.expand_str("${vars.quantity}", &mut |_| {}), json!("4"));
    }

    #[test]
    fn an_expansion_cannot_build_a_huge_string_from_small_variables() {
        let mut s = scope();
        s.vars.insert("chunk".into(), json!("x".repeat(64 * 1024)));
        let doubled = "${vars.chunk}${vars.chunk}";
        assert_eq!(
            s.expand_str(doubled, &mut |_| {}).as_str().map(str::len),
            Some(128 * 1024)
        );
        let many = "${vars.chunk}".repeat(5);
        let mut errs = Vec::new();
        assert_eq!(s.expand_str(&many, &mut |e| errs.push(e)), json!(""));
        assert_eq!(errs, vec![ExprError::TooLarge]);
    }

    #[test]
    fn a_syntax_check_that_breaks_out_of_its_wrapper_is_bounded() {
        // Seen while writing the swml_expr fuzz target: the body closes the never-called wrapper
        // function and loops at the top level; the check ran forever.
        let started = std::time::Instant::now();
        let body = "1); })(); while (true) {} (function(){ return (1";
        assert!(matches!(check_syntax(body), Err(ExprError::Js(_))));
        let recurse = "1); })(); (function f(){ f(); })(); (function(){ return (1";
        assert!(check_syntax(recurse).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        assert_eq!(check_syntax("vars.a + 1"), Ok(()));
    }
}
