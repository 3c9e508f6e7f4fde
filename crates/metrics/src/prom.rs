//! Prometheus text exposition format 0.0.4: `# HELP`, `# TYPE`, samples with escaped labels.

use std::fmt::Write;

use crate::{Counter, Family, Histogram};

/// A text exposition being written.
#[derive(Debug, Default)]
pub struct Text(String);

impl Text {
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, "gauge", help);
        self.sample(name, &[], value);
    }

    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, "counter", help);
        self.sample(name, &[], value as f64);
    }

    pub fn counter_family(&mut self, name: &str, help: &str, family: &Family<Counter>) {
        self.header(name, "counter", help);
        for (labels, c) in family.each() {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.sample(name, &labels, c.get() as f64);
        }
    }

    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: &Histogram) {
        self.header(name, "histogram", help);
        self.histogram_samples(name, labels, h);
    }

    pub fn histogram_family(&mut self, name: &str, help: &str, family: &Family<Histogram>) {
        self.header(name, "histogram", help);
        for (labels, h) in family.each() {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.histogram_samples(name, &labels, &h);
        }
    }

    fn histogram_samples(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let (buckets, sum, count) = h.snapshot();
        let bucket = format!("{name}_bucket");
        for (le, n) in buckets {
            let le = if le.is_infinite() {
                "+Inf".to_owned()
            } else {
                number(le)
            };
            let mut with_le = labels.to_vec();
            with_le.push(("le", le.as_str()));
            self.sample(&bucket, &with_le, n as f64);
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.0
    }
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}
