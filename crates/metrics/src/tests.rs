use super::*;

#[test]
fn histogram_buckets_are_cumulative_with_sum_and_count() {
    let h = Histogram::new(&[0.01, 0.1, 1.0]);
    h.observe_secs(0.005);
    h.observe_secs(0.05);
    h.observe_secs(0.05);
    h.observe_secs(3.0);
    h.observe_secs(f64::NAN);
    let mut t = Text::default();
    t.histogram("x_seconds", "help", &[("a", "b")], &h);
    let text = t.finish();
    assert!(text.contains("# TYPE x_seconds histogram\n"), "{text}");
    assert!(
        text.contains("x_seconds_bucket{a=\"b\",le=\"0.01\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("x_seconds_bucket{a=\"b\",le=\"0.1\"} 4\n"),
        "{text}"
    );
    assert!(
        text.contains("x_seconds_bucket{a=\"b\",le=\"1\"} 4\n"),
        "{text}"
    );
    assert!(
        text.contains("x_seconds_bucket{a=\"b\",le=\"+Inf\"} 5\n"),
        "{text}"
    );
    assert!(text.contains("x_seconds_count{a=\"b\"} 5\n"), "{text}");
    assert!(text.contains("x_seconds_sum{a=\"b\"} 3.105\n"), "{text}");
}

#[test]
fn families_render_each_member_and_escape_labels() {
    let m = Metrics::default();
    m.call_setups.with(&["outbound"]).inc();
    m.call_setups.with(&["outbound"]).add(2);
    m.errors.with(&["we\"ird\nkind"]).inc();
    let text = m.render(&Snapshot {
        calls_by_state: vec![("answered".into(), 2)],
        webhook_queue_depth: Some(7),
        ..Snapshot::default()
    });
    assert!(
        text.contains("dialtone_call_setups_total{direction=\"outbound\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("dialtone_errors_total{kind=\"we\\\"ird\\nkind\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("dialtone_calls{state=\"answered\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("dialtone_webhook_queue_depth 7\n"), "{text}");
    // Every family has its HELP and TYPE lines, and every line is a comment or a sample.
    for line in text.lines() {
        assert!(
            line.starts_with("# HELP ")
                || line.starts_with("# TYPE ")
                || line.starts_with("dialtone_"),
            "{line}"
        );
    }
}

#[test]
fn gauge_goes_both_ways() {
    let g = Gauge::default();
    g.inc();
    g.inc();
    g.dec();
    assert_eq!(g.get(), 1);
    g.set(-3);
    assert_eq!(g.get(), -3);
}
