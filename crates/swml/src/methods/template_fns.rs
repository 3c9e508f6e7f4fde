//! The AI template language's functions (swml.md §5.7): `@{strftime_tz <tz> <format>}`,
//! `@{fmt_ph <format>[:sep:<char>] <number>}` (and the `${fmt_ph:path}` prefix), `@{expr …}`,
//! `@{echo …}`, `@{separate …}` and `@{sleep <seconds>}`. Pure: the time comes from the
//! caller, and a sleep is only counted (the agent waits it out after the function's answer).

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Longest sleep one function's templates may ask for, in all.
pub(crate) const MAX_SLEEP_MS: u64 = 60_000;
/// Deepest parenthesis nesting `@{expr}` reads (the parser recurses per level).
const MAX_EXPR_DEPTH: usize = 32;
const MAX_EXPR_LEN: usize = 1024;

/// What the functions need from outside: the time, and where the sleeps are counted (an
/// atomic only so that an agent holding it stays `Sync`; it is never shared).
#[derive(Debug, Default)]
pub(crate) struct TemplateEnv {
    /// Unix milliseconds.
    pub(crate) now_ms: u64,
    slept_ms: AtomicU64,
}

impl Clone for TemplateEnv {
    fn clone(&self) -> TemplateEnv {
        TemplateEnv {
            now_ms: self.now_ms,
            slept_ms: AtomicU64::new(self.slept_ms()),
        }
    }
}

impl TemplateEnv {
    pub(crate) fn at(now_ms: u64) -> TemplateEnv {
        TemplateEnv {
            now_ms,
            slept_ms: AtomicU64::new(0),
        }
    }

    /// The sleeps asked for so far (at most [`MAX_SLEEP_MS`]).
    pub(crate) fn slept_ms(&self) -> u64 {
        self.slept_ms.load(Ordering::Relaxed)
    }
}

/// `@{name args}`: the function's text, or `None` for an unknown function or unusable
/// arguments (the template then stays as written).
pub(crate) fn call(name: &str, args: &str, env: &TemplateEnv) -> Option<String> {
    match name {
        "echo" => Some(args.to_string()),
        "separate" => Some(
            args.chars()
                .filter(|c| !c.is_whitespace())
                .map(String::from)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "strftime_tz" => {
            let (tz, format) = args.trim_start().split_once(' ')?;
            strftime_tz(env.now_ms, tz, format)
        }
        "fmt_ph" => {
            let (style, number) = args.trim().split_once(' ')?;
            let (style, sep) = match style.split_once(":sep:") {
                Some((s, sep)) => (s, Some(sep)),
                None => (style, None),
            };
            format_phone(number.trim(), PhoneStyle::named(style)?, sep)
        }
        "expr" => arithmetic(args),
        "sleep" => {
            let seconds: f64 = args.trim().parse().ok().filter(|s: &f64| s.is_finite())?;
            let ms = (seconds.max(0.0) * 1000.0).round() as u64;
            let total = env.slept_ms().saturating_add(ms).min(MAX_SLEEP_MS);
            env.slept_ms.store(total, Ordering::Relaxed);
            Some(String::new())
        }
        _ => None,
    }
}

/// `now_ms` in the IANA zone `tz` (or `UTC`), formatted by the strftime `format`; `None` for
/// an unknown zone or a format chrono cannot read (which would otherwise fail when printed).
pub(crate) fn strftime_tz(now_ms: u64, tz: &str, format: &str) -> Option<String> {
    let zone: Tz = tz.trim().parse().ok()?;
    let items: Vec<Item> = StrftimeItems::new(format).parse().ok()?;
    let when = utc(now_ms).with_timezone(&zone);
    Some(when.format_with_items(items.iter()).to_string())
}

pub(crate) fn utc(now_ms: u64) -> DateTime<Utc> {
    i64::try_from(now_ms)
        .ok()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_default()
}

/// How `fmt_ph` writes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhoneStyle {
    /// `(555) 123-4567` in North America; elsewhere the national number, grouped.
    National,
    /// `+1 555-123-4567`, `+44 2079460000`.
    International,
    /// `tel:+1-555-123-4567`.
    Rfc3966,
    /// `+15551234567`.
    E164,
}

impl PhoneStyle {
    fn named(name: &str) -> Option<PhoneStyle> {
        match name.to_ascii_lowercase().as_str() {
            "national" => Some(PhoneStyle::National),
            "international" => Some(PhoneStyle::International),
            "rfc3966" => Some(PhoneStyle::Rfc3966),
            "e164" => Some(PhoneStyle::E164),
            _ => None,
        }
    }
}

/// `number` (E.164, or ten North American digits) written in `style`; `sep` replaces the
/// separators (spaces and hyphens) of the written form. `None` when it is not a number.
pub(crate) fn format_phone(number: &str, style: PhoneStyle, sep: Option<&str>) -> Option<String> {
    let plus = number.trim_start().starts_with('+');
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let allowed = |c: char| c.is_ascii_digit() || " +-().".contains(c);
    if digits.len() < 4 || digits.len() > 15 || !number.chars().all(allowed) {
        return None;
    }
    // Ten digits without a `+` are a North American number, as the platform's own numbers are.
    let full = if !plus && digits.len() == 10 {
        format!("1{digits}")
    } else {
        digits
    };
    let cc_len = country_code_len(&full);
    let (cc, national) = full.split_at(cc_len.min(full.len()));
    let nanp = cc == "1" && national.len() == 10;
    let written = match style {
        PhoneStyle::E164 => return Some(format!("+{full}")),
        PhoneStyle::National if nanp => {
            format!(
                "({}) {}-{}",
                &national[..3],
                &national[3..6],
                &national[6..]
            )
        }
        PhoneStyle::National => national.to_string(),
        PhoneStyle::International if nanp => {
            format!(
                "+1 {}-{}-{}",
                &national[..3],
                &national[3..6],
                &national[6..]
            )
        }
        PhoneStyle::International => format!("+{cc} {national}"),
        PhoneStyle::Rfc3966 if nanp => {
            format!(
                "tel:+1-{}-{}-{}",
                &national[..3],
                &national[3..6],
                &national[6..]
            )
        }
        PhoneStyle::Rfc3966 => format!("tel:+{cc}-{national}"),
    };
    Some(match sep {
        Some(sep) => written.replace([' ', '-'], sep),
        None => written,
    })
}

/// The length of the E.164 country calling code `digits` starts with (ITU-T E.164 zones:
/// 1 and 7 are one digit, the listed pairs two, every other code three).
fn country_code_len(digits: &str) -> usize {
    const TWO: [&str; 44] = [
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46",
        "47", "48", "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63",
        "64", "65", "66", "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
    ];
    if digits.starts_with('1') || digits.starts_with('7') {
        1
    } else if TWO.iter().any(|p| digits.starts_with(p)) {
        2
    } else {
        3
    }
}

/// `@{expr …}`: `+ - * / %` and parentheses on literal numbers; a whole result prints as an
/// integer, another with six decimals (as numbers inserted into templates do).
pub(crate) fn arithmetic(text: &str) -> Option<String> {
    if text.len() > MAX_EXPR_LEN {
        return None;
    }
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    let value = p.sum()?;
    p.skip_space();
    if p.at != p.s.len() || !value.is_finite() {
        return None;
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        Some(format!("{}", value as i64))
    } else {
        Some(format!("{value:.6}"))
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.s.get(self.at).copied()
    }

    fn sum(&mut self) -> Option<f64> {
        let mut v = self.product()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let rhs = self.product()?;
            v = if op == b'+' { v + rhs } else { v - rhs };
        }
        Some(v)
    }

    fn product(&mut self) -> Option<f64> {
        let mut v = self.unary()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.at += 1;
            let rhs = self.unary()?;
            v = match op {
                b'*' => v * rhs,
                _ if rhs == 0.0 => return None,
                b'/' => v / rhs,
                _ => v % rhs,
            };
        }
        Some(v)
    }

    fn unary(&mut self) -> Option<f64> {
        match self.peek()? {
            b'-' | b'+' => {
                let minus = self.s[self.at] == b'-';
                self.at += 1;
                self.nested(|p| p.unary())
                    .map(|v| if minus { -v } else { v })
            }
            b'(' => {
                self.at += 1;
                let v = self.nested(Parser::sum)?;
                (self.peek()? == b')').then(|| self.at += 1)?;
                Some(v)
            }
            _ => self.number(),
        }
    }

    fn nested(&mut self, f: impl FnOnce(&mut Self) -> Option<f64>) -> Option<f64> {
        if self.depth >= MAX_EXPR_DEPTH {
            return None;
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn number(&mut self) -> Option<f64> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
        {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-06 19:00:00 UTC
    const NOW: u64 = 1_796_583_600_000;

    #[test]
    fn strftime_tz_formats_in_the_zone_and_refuses_what_it_cannot_read() {
        assert_eq!(
            strftime_tz(NOW, "America/Chicago", "%Y-%m-%d %H:%M %Z").as_deref(),
            Some("2026-12-06 13:00 CST")
        );
        assert_eq!(strftime_tz(NOW, "US/Central", "%H").as_deref(), Some("13"));
        assert_eq!(strftime_tz(NOW, "UTC", "%A").as_deref(), Some("Sunday"));
        assert_eq!(strftime_tz(NOW, "Mars/Olympus", "%H"), None);
        // A format chrono cannot print is refused rather than failing when formatted.
        assert_eq!(strftime_tz(NOW, "UTC", "%Q %"), None);
        let env = TemplateEnv::at(NOW);
        assert_eq!(
            call("strftime_tz", "Europe/Paris %H:%M", &env).as_deref(),
            Some("20:00")
        );
    }

    #[test]
    fn phone_numbers_in_each_style() {
        let f = |n: &str, s: PhoneStyle| format_phone(n, s, None);
        assert_eq!(
            f("+15551234567", PhoneStyle::National).as_deref(),
            Some("(555) 123-4567")
        );
        assert_eq!(
            f("5551234567", PhoneStyle::International).as_deref(),
            Some("+1 555-123-4567")
        );
        assert_eq!(
            f("+1 (555) 123-4567", PhoneStyle::Rfc3966).as_deref(),
            Some("tel:+1-555-123-4567")
        );
        assert_eq!(
            f("+1-555-123-4567", PhoneStyle::E164).as_deref(),
            Some("+15551234567")
        );
        assert_eq!(
            f("+442079460000", PhoneStyle::International).as_deref(),
            Some("+44 2079460000")
        );
        assert_eq!(
            f("+353123456", PhoneStyle::Rfc3966).as_deref(),
            Some("tel:+353-123456")
        );
        assert_eq!(
            f("+79161234567", PhoneStyle::National).as_deref(),
            Some("9161234567")
        );
        assert_eq!(f("sales", PhoneStyle::E164), None);
        assert_eq!(f("12", PhoneStyle::E164), None);
        let env = TemplateEnv::default();
        assert_eq!(
            call("fmt_ph", "international:sep:. +15551234567", &env).as_deref(),
            Some("+1.555.123.4567")
        );
        assert_eq!(call("fmt_ph", "sideways +15551234567", &env), None);
    }

    #[test]
    fn arithmetic_on_literal_numbers() {
        assert_eq!(arithmetic("1 + 2 * 3").as_deref(), Some("7"));
        assert_eq!(arithmetic("(1 + 2) * 3").as_deref(), Some("9"));
        assert_eq!(arithmetic("7 / 2").as_deref(), Some("3.500000"));
        assert_eq!(arithmetic("-(4 - 10) % 4").as_deref(), Some("2"));
        assert_eq!(arithmetic("1 / 0"), None);
        assert_eq!(arithmetic("2 + x"), None);
        assert_eq!(arithmetic("(1"), None);
        assert_eq!(arithmetic(""), None);
        // Deep nesting is refused, not a deep recursion.
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(arithmetic(&deep), None);
        let minus = format!("{}1", "-".repeat(1000));
        assert_eq!(arithmetic(&minus), None);
    }

    #[test]
    fn sleeps_are_counted_and_capped() {
        let env = TemplateEnv::at(NOW);
        assert_eq!(call("sleep", "1.5", &env).as_deref(), Some(""));
        assert_eq!(env.slept_ms(), 1500);
        assert_eq!(call("sleep", "forever", &env), None);
        call("sleep", "1e9", &env);
        assert_eq!(env.slept_ms(), MAX_SLEEP_MS);
        assert_eq!(call("nope", "x", &env), None);
    }
}
