//! How much a document may cost before it is parsed.
//!
//! A parsed JSON value costs far more than its text: an object of one short key is ~0.7 KB in
//! memory (an ordered map), so 1 MiB of tiny steps becomes ~45 MB per copy. The text is
//! therefore scanned first, without allocating, and refused when it holds more objects and
//! arrays (or nests deeper) than any real call flow does. YAML, whose aliases can multiply
//! nodes and strings, is built under a budget instead: parsing stops at the first excess.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Objects and arrays a document may hold: a call flow of a few thousand steps.
pub const MAX_CONTAINERS: usize = 20_000;
/// Nesting a document may have (the interpreter's own limits are far below).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooComplex {
    #[error("it holds more than {MAX_CONTAINERS} objects and arrays")]
    Containers,
    #[error("it nests more than {MAX_DEPTH} levels deep")]
    Depth,
    #[error("its text expands to more than {MAX_EXPANDED_TEXT} bytes")]
    Text,
}

/// Bytes of strings a YAML document may expand to (aliases repeat them).
pub const MAX_EXPANDED_TEXT: usize = 4 * crate::MAX_DOCUMENT_BYTES;

/// Counts the objects and arrays of JSON text (strings and escapes skipped), refusing past
/// the limits. Invalid JSON is not reported here: the parser does that.
pub fn scan_json(text: &[u8]) -> Result<(), TooComplex> {
    let mut containers = 0usize;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                containers += 1;
                depth += 1;
                if containers > MAX_CONTAINERS {
                    return Err(TooComplex::Containers);
                }
                if depth > MAX_DEPTH {
                    return Err(TooComplex::Depth);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// YAML text to a JSON value, built under the limits (aliases included): a YAML "bomb" stops
/// at the first excess instead of being expanded. `Ok(Err(_))` is a syntax error.
pub fn parse_yaml(text: &str) -> Result<Result<Value, serde_yaml::Error>, TooComplex> {
    let budget = Budget {
        nodes: Cell::new(0),
        text: Cell::new(0),
        exceeded: Cell::new(None),
    };
    let parsed = Seed {
        budget: &budget,
        depth: 0,
    }
    .deserialize(serde_yaml::Deserializer::from_str(text));
    match budget.exceeded.get() {
        Some(why) => Err(why),
        None => Ok(parsed),
    }
}

struct Budget {
    /// Every node counts (scalars too: an alias may repeat a scalar).
    nodes: Cell<usize>,
    text: Cell<usize>,
    exceeded: Cell<Option<TooComplex>>,
}

impl Budget {
    fn take<E: serde::de::Error>(&self, text: usize, depth: usize) -> Result<(), E> {
        let nodes = self.nodes.get() + 1;
        let bytes = self.text.get().saturating_add(text);
        self.nodes.set(nodes);
        self.text.set(bytes);
        let why = if nodes > MAX_CONTAINERS * 4 {
            Some(TooComplex::Containers)
        } else if depth > MAX_DEPTH {
            Some(TooComplex::Depth)
        } else if bytes > MAX_EXPANDED_TEXT {
            Some(TooComplex::Text)
        } else {
            None
        };
        match why {
            Some(why) => {
                self.exceeded.set(Some(why));
                Err(E::custom(why))
            }
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy)]
struct Seed<'a> {
    budget: &'a Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.take(0, self.depth)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.take(0, self.depth)?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.take(0, self.depth)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.take(0, self.depth)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take(v.len(), self.depth)?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.budget.take(0, self.depth)?;
        Ok(Value::Null)
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.take(0, self.depth)?;
        let inner = Seed {
            budget: self.budget,
            depth: self.depth + 1,
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.take(0, self.depth)?;
        let inner = Seed {
            budget: self.budget,
            depth: self.depth + 1,
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.budget.take::<A::Error>(key.len(), self.depth)?;
            let value = map.next_value_seed(inner)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: usize) -> String {
        let step = r#"{"play":{"url":"say:x"}}"#;
        format!(r#"{{"sections":{{"main":[{}]}}}}"#, vec![step; n].join(","))
    }

    #[test]
    fn counts_objects_and_arrays_outside_strings() {
        // 1 document + sections + main array + 2 per step.
        let ok = steps((MAX_CONTAINERS - 3) / 2);
        assert_eq!(scan_json(ok.as_bytes()), Ok(()));
        let over = steps((MAX_CONTAINERS - 3) / 2 + 1);
        assert_eq!(scan_json(over.as_bytes()), Err(TooComplex::Containers));
        // Brackets inside strings (and escaped quotes) are text, not containers.
        let quoted = format!(r#"{{"a":"{}\"{}"}}"#, "[{".repeat(50_000), "}]".repeat(10));
        assert_eq!(scan_json(quoted.as_bytes()), Ok(()));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(scan_json(deep.as_bytes()), Err(TooComplex::Depth));
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(scan_json(fine.as_bytes()), Ok(()));
    }

    #[test]
    fn yaml_is_built_under_the_same_limits() {
        let flow = "sections:\n  main:\n    - play: {url: 'say:hi'}\n";
        let ok = parse_yaml(flow).unwrap().unwrap();
        assert_eq!(ok["sections"]["main"][0]["play"]["url"], "say:hi");
        assert!(parse_yaml("a: [").unwrap().is_err());
        // A "billion laughs": each level repeats the one before ten times.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            bomb += &format!("a{i}: &a{i} [{refs}]\n");
        }
        assert_eq!(parse_yaml(&bomb).err(), Some(TooComplex::Containers));
        // An alias repeating one long string.
        let long = "y".repeat(100_000);
        let mut text = format!("s: &s {long}\nl: [");
        text += &vec!["*s"; 50].join(", ");
        text += "]\n";
        assert_eq!(parse_yaml(&text).err(), Some(TooComplex::Text));
        let deep = format!(
            "a: {}1{}",
            "[".repeat(MAX_DEPTH + 2),
            "]".repeat(MAX_DEPTH + 2)
        );
        assert_eq!(parse_yaml(&deep).err(), Some(TooComplex::Depth));
    }
}
