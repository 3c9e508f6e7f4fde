use store::{CallRecord, NewWebhook, Store, StoreError, SCHEMA_VERSION};
use uuid::Uuid;

fn record(project: Uuid, created_at_ms: i64, status: &str) -> CallRecord {
    CallRecord {
        id: Uuid::new_v4(),
        project_id: project,
        node_id: Uuid::new_v4(),
        segment_id: Uuid::new_v4(),
        event_channel: "swml:chan".into(),
        from: "sip:alice@example.com".into(),
        to: "+15551234567".into(),
        direction: "outbound".into(),
        leg_type: "outbound-api".into(),
        url: None,
        status: status.into(),
        parent_id: None,
        created_at_ms,
        answered_at_ms: None,
        ended_at_ms: None,
        end_reason: None,
        duration_ms: None,
        billing_ms: None,
        status_url: None,
        status_events: r#"["ended"]"#.into(),
        dial_request: r#"{"from":"a","to":"b"}"#.into(),
        sip_call_id: None,
        media_stats: None,
        held: false,
    }
}

fn full_record(project: Uuid) -> CallRecord {
    CallRecord {
        url: Some("https://example.com/swml".into()),
        parent_id: Some(Uuid::new_v4()),
        answered_at_ms: Some(1_500),
        ended_at_ms: Some(4_000),
        end_reason: Some("hangup".into()),
        duration_ms: Some(2_500),
        billing_ms: Some(3_000),
        status_url: Some("https://example.com/status?x=1".into()),
        status_events: r#"["ringing","ended"]"#.into(),
        sip_call_id: Some("abc@10.0.0.1".into()),
        ..record(project, 1_000, "ended")
    }
}

fn hook(call_id: Option<Uuid>, body: &str, at: i64) -> NewWebhook {
    NewWebhook {
        call_id,
        url: "http://127.0.0.1:9/hook".into(),
        body: body.as_bytes().to_vec(),
        created_at_ms: at,
    }
}

async fn due_bodies(store: &Store, now: i64) -> Vec<String> {
    store
        .due_webhooks(now, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| String::from_utf8(j.body).unwrap())
        .collect()
}

#[tokio::test]
async fn round_trip_with_and_without_options() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let bare = record(project, 10, "queued");
    let full = full_record(project);
    store.insert_call(bare.clone()).await.unwrap();
    store.insert_call(full.clone()).await.unwrap();
    assert_eq!(store.get_call(project, bare.id).await.unwrap(), Some(bare));
    assert_eq!(store.get_call(project, full.id).await.unwrap(), Some(full));
    assert_eq!(store.get_call(project, Uuid::new_v4()).await.unwrap(), None);
}

#[tokio::test]
async fn duplicate_insert_fails() {
    let store = Store::open_in_memory().await.unwrap();
    let r = record(Uuid::new_v4(), 1, "queued");
    store.insert_call(r.clone()).await.unwrap();
    let err = store.insert_call(r).await.unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
}

#[tokio::test]
async fn update_replaces_the_row() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let mut r = record(project, 10, "queued");
    store.insert_call(r.clone()).await.unwrap();
    r.status = "answered".into();
    r.answered_at_ms = Some(20);
    r.sip_call_id = Some("x@y".into());
    r.url = Some("https://u".into());
    store.update_call(r.clone()).await.unwrap();
    assert_eq!(
        store.get_call(project, r.id).await.unwrap(),
        Some(r.clone())
    );
    // And back to None.
    r.sip_call_id = None;
    r.url = None;
    store.update_call(r.clone()).await.unwrap();
    assert_eq!(store.get_call(project, r.id).await.unwrap(), Some(r));

    let missing = record(project, 1, "queued");
    let err = store.update_call(missing.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::CallNotFound(id) if id == missing.id));
    assert!(err.to_string().contains(&missing.id.to_string()));
}

/// Media stats and the hold flag are written apart from the row: a whole-row update (the
/// actor's status changes) leaves them as they are.
#[tokio::test]
async fn media_stats_and_hold_survive_row_updates() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let mut r = record(project, 10, "answered");
    store.insert_call(r.clone()).await.unwrap();
    let got = store.get_call(project, r.id).await.unwrap().unwrap();
    assert_eq!((got.media_stats, got.held), (None, false));
    store
        .set_media_stats(r.id, r#"{"packets_sent":1}"#.into())
        .await
        .unwrap();
    store.set_held(r.id, true).await.unwrap();
    r.status = "ending".into();
    store.update_call(r.clone()).await.unwrap();
    let got = store.get_call(project, r.id).await.unwrap().unwrap();
    assert_eq!(got.media_stats.as_deref(), Some(r#"{"packets_sent":1}"#));
    assert!(got.held);
    assert_eq!(got.status, "ending");
    store.set_held(r.id, false).await.unwrap();
    assert!(!store.get_call(project, r.id).await.unwrap().unwrap().held);
    let missing = Uuid::new_v4();
    assert!(matches!(
        store.set_media_stats(missing, "{}".into()).await,
        Err(StoreError::CallNotFound(id)) if id == missing
    ));
    assert!(matches!(
        store.set_held(missing, true).await,
        Err(StoreError::CallNotFound(_))
    ));
}

#[tokio::test]
async fn projects_are_isolated() {
    let store = Store::open_in_memory().await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let ra = record(a, 1, "queued");
    store.insert_call(ra.clone()).await.unwrap();
    store.insert_call(record(b, 2, "queued")).await.unwrap();
    assert_eq!(store.get_call(b, ra.id).await.unwrap(), None);
    assert!(store.get_call(a, ra.id).await.unwrap().is_some());
    let (page, next) = store.list_calls(a, None, 10, None).await.unwrap();
    assert_eq!(page, vec![ra]);
    assert_eq!(next, None);
}

#[tokio::test]
async fn list_pages_newest_first_with_cursor_and_status() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let mut all = Vec::new();
    // 11 calls, some sharing a created_at_ms so the id tiebreak matters.
    for i in 0..11i64 {
        let status = if i % 3 == 0 { "ended" } else { "answered" };
        let r = record(project, 100 + i / 2, status);
        store.insert_call(r.clone()).await.unwrap();
        all.push(r);
    }
    store
        .insert_call(record(Uuid::new_v4(), 500, "ended"))
        .await
        .unwrap();
    all.sort_by(|x, y| {
        y.created_at_ms
            .cmp(&x.created_at_ms)
            .then_with(|| y.id.cmp(&x.id))
    });

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = store.list_calls(project, None, 3, cursor).await.unwrap();
        assert!(page.len() <= 3);
        pages += 1;
        seen.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, all);

    // An exact multiple of the page size ends without a dangling cursor.
    let (page, next) = store.list_calls(project, None, 11, None).await.unwrap();
    assert_eq!(page.len(), 11);
    assert_eq!(next, None);

    let ended: Vec<_> = all
        .iter()
        .filter(|r| r.status == "ended")
        .cloned()
        .collect();
    assert_eq!(ended.len(), 4);
    let (p1, c1) = store
        .list_calls(project, Some("ended"), 2, None)
        .await
        .unwrap();
    let (p2, c2) = store
        .list_calls(project, Some("ended"), 2, c1)
        .await
        .unwrap();
    assert_eq!(c2, None);
    assert_eq!([p1, p2].concat(), ended);
    let (none, _) = store
        .list_calls(project, Some("ringing"), 5, None)
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn bad_cursor_is_reported() {
    let store = Store::open_in_memory().await.unwrap();
    for bad in [
        "garbage",
        "1:2",
        "x:00000000-0000-0000-0000-000000000000",
        "",
    ] {
        let err = store
            .list_calls(Uuid::new_v4(), None, 5, Some(bad.into()))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadCursor(_)), "{bad}: {err}");
        assert!(err.to_string().starts_with("bad cursor"));
    }
}

#[tokio::test]
async fn events_keep_insertion_order() {
    let store = Store::open_in_memory().await.unwrap();
    let (c1, c2) = (Uuid::new_v4(), Uuid::new_v4());
    // Same timestamps and out-of-order times: insertion order wins.
    store
        .append_call_event(c1, 50, "created", "{}".into())
        .await
        .unwrap();
    store
        .append_call_event(c2, 10, "other", "{}".into())
        .await
        .unwrap();
    store
        .append_call_event(c1, 50, "ringing", r#"{"a":1}"#.into())
        .await
        .unwrap();
    store
        .append_call_event(c1, 40, "answered", "{}".into())
        .await
        .unwrap();
    let ev = store.call_events(c1).await.unwrap();
    let kinds: Vec<_> = ev.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["created", "ringing", "answered"]);
    assert_eq!(ev[1].detail, r#"{"a":1}"#);
    assert_eq!(ev[2].at_ms, 40);
    assert!(ev.iter().all(|e| e.call_id == c1));
    assert_eq!(store.call_events(Uuid::new_v4()).await.unwrap().len(), 0);
}

#[tokio::test]
async fn live_calls_are_ended_with_durations() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let ringing = record(project, 1_000, "ringing");
    let answered = CallRecord {
        answered_at_ms: Some(2_000),
        ..record(project, 1_500, "answered")
    };
    let done = full_record(project);
    for r in [&ringing, &answered, &done] {
        store.insert_call(r.clone()).await.unwrap();
    }
    assert_eq!(
        store.live_calls_by_status().await.unwrap(),
        [("answered".to_string(), 1), ("ringing".to_string(), 1)]
    );
    let ended = store.mark_live_calls_ended("error", 9_000).await.unwrap();
    assert_eq!(ended.len(), 2);
    assert!(store.live_calls_by_status().await.unwrap().is_empty());
    let by_id = |id| ended.iter().find(|r| r.id == id).unwrap().clone();

    let a = by_id(answered.id);
    assert_eq!(a.status, "ended");
    assert_eq!(a.end_reason.as_deref(), Some("error"));
    assert_eq!(a.ended_at_ms, Some(9_000));
    assert_eq!(a.duration_ms, Some(7_000));
    assert_eq!(a.billing_ms, Some(7_000));
    let r = by_id(ringing.id);
    assert_eq!(r.ended_at_ms, Some(9_000));
    assert_eq!(r.duration_ms, None);
    assert_eq!(r.billing_ms, None);

    // Persisted, and the finished call untouched.
    assert_eq!(store.get_call(project, a.id).await.unwrap(), Some(a));
    assert_eq!(store.get_call(project, done.id).await.unwrap(), Some(done));
    assert!(store
        .mark_live_calls_ended("error", 10_000)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn outbox_hands_out_one_job_per_call_in_order() {
    let store = Store::open_in_memory().await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let a1 = store
        .enqueue_webhook(hook(Some(a), "a1", 10))
        .await
        .unwrap();
    let b1 = store
        .enqueue_webhook(hook(Some(b), "b1", 11))
        .await
        .unwrap();
    let a2 = store
        .enqueue_webhook(hook(Some(a), "a2", 12))
        .await
        .unwrap();
    let n1 = store.enqueue_webhook(hook(None, "n1", 13)).await.unwrap();
    let n2 = store.enqueue_webhook(hook(None, "n2", 14)).await.unwrap();
    let a3 = store
        .enqueue_webhook(hook(Some(a), "a3", 15))
        .await
        .unwrap();
    assert!(a1 < b1 && b1 < a2 && a2 < n1 && n1 < n2 && n2 < a3);
    assert_eq!(store.pending_webhooks().await.unwrap(), 6);
    assert_eq!(store.next_webhook_due_at().await.unwrap(), Some(10));

    // Not due before their creation time.
    assert!(store.due_webhooks(9, 10).await.unwrap().is_empty());
    assert_eq!(due_bodies(&store, 11).await, ["a1", "b1"]);
    assert_eq!(due_bodies(&store, 100).await, ["a1", "b1", "n1", "n2"]);
    // `limit` keeps the oldest.
    let limited = store.due_webhooks(100, 2).await.unwrap();
    assert_eq!(
        limited.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![a1, b1]
    );
    let job = &limited[0];
    assert_eq!(job.call_id, Some(a));
    assert_eq!(job.url, "http://127.0.0.1:9/hook");
    assert_eq!(job.attempts, 0);
    assert_eq!(job.created_at_ms, 10);

    // b's progress does not affect a.
    store.mark_webhook_delivered(b1, 101, 200).await.unwrap();
    assert_eq!(due_bodies(&store, 100).await, ["a1", "n1", "n2"]);
    // a2 only after a1 is delivered.
    store.mark_webhook_delivered(a1, 102, 204).await.unwrap();
    assert_eq!(due_bodies(&store, 100).await, ["a2", "n1", "n2"]);
    // ... or given up.
    store.give_up_webhook(a2, 1, "HTTP 404").await.unwrap();
    assert_eq!(due_bodies(&store, 100).await, ["n1", "n2", "a3"]);
    store.mark_webhook_delivered(n1, 103, 200).await.unwrap();
    store.mark_webhook_delivered(n2, 103, 200).await.unwrap();
    store.mark_webhook_delivered(a3, 103, 200).await.unwrap();
    assert_eq!(store.pending_webhooks().await.unwrap(), 0);
    assert_eq!(store.next_webhook_due_at().await.unwrap(), None);
    assert!(store.due_webhooks(i64::MAX, 10).await.unwrap().is_empty());

    assert!(matches!(
        store.mark_webhook_delivered(9_999, 1, 200).await,
        Err(StoreError::WebhookNotFound(9_999))
    ));
    assert!(store.reschedule_webhook(9_999, 1, 1, "x").await.is_err());
    assert!(store.give_up_webhook(9_999, 1, "x").await.is_err());
}

#[tokio::test]
async fn reschedule_hides_a_job_until_its_time() {
    let store = Store::open_in_memory().await.unwrap();
    let a = Uuid::new_v4();
    let a1 = store
        .enqueue_webhook(hook(Some(a), "a1", 10))
        .await
        .unwrap();
    store
        .enqueue_webhook(hook(Some(a), "a2", 10))
        .await
        .unwrap();
    store.enqueue_webhook(hook(None, "n1", 20)).await.unwrap();
    store
        .reschedule_webhook(a1, 1, 1_000, "HTTP 503")
        .await
        .unwrap();
    // a1 waits, and a2 waits behind it.
    assert_eq!(due_bodies(&store, 999).await, ["n1"]);
    // The head of a waiting call counts, not the job queued behind it.
    assert_eq!(store.next_webhook_due_at().await.unwrap(), Some(20));
    store
        .mark_webhook_delivered(store.due_webhooks(999, 1).await.unwrap()[0].id, 30, 200)
        .await
        .unwrap();
    assert_eq!(store.next_webhook_due_at().await.unwrap(), Some(1_000));
    let due = store.due_webhooks(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, a1);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(store.pending_webhooks().await.unwrap(), 2);
}

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialtone.db");
    let project = Uuid::new_v4();
    let call = full_record(project);
    let live = record(project, 5_000, "answered");
    let job;
    {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        store.insert_call(call.clone()).await.unwrap();
        store.insert_call(live.clone()).await.unwrap();
        store
            .append_call_event(call.id, 1, "created", "{}".into())
            .await
            .unwrap();
        job = store
            .enqueue_webhook(hook(Some(call.id), "payload", 7))
            .await
            .unwrap();
        store
            .reschedule_webhook(job, 2, 70, "timeout")
            .await
            .unwrap();
    }
    // Reopen twice: migrations must not run again or fail.
    for _ in 0..2 {
        let store = Store::open(&path).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(
            store.get_call(project, call.id).await.unwrap(),
            Some(call.clone())
        );
        assert_eq!(
            store.get_call(project, live.id).await.unwrap(),
            Some(live.clone())
        );
        assert_eq!(store.call_events(call.id).await.unwrap().len(), 1);
        assert_eq!(store.pending_webhooks().await.unwrap(), 1);
        let due = store.due_webhooks(70, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, job);
        assert_eq!(due[0].attempts, 2);
        assert_eq!(due[0].body, b"payload");
        let (page, _) = store.list_calls(project, None, 10, None).await.unwrap();
        assert_eq!(page.len(), 2);
    }
}

#[tokio::test]
async fn clones_share_the_database() {
    let store = Store::open_in_memory().await.unwrap();
    let other = store.clone();
    let r = record(Uuid::new_v4(), 1, "queued");
    store.insert_call(r.clone()).await.unwrap();
    assert_eq!(other.get_call(r.project_id, r.id).await.unwrap(), Some(r));
}

#[tokio::test]
async fn open_reports_the_path_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("x.db");
    let err = Store::open(&path).await.unwrap_err();
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[tokio::test]
async fn file_databases_use_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = Store::open(&path).await.unwrap();
    store
        .insert_call(record(Uuid::new_v4(), 1, "queued"))
        .await
        .unwrap();
    assert!(dir.path().join("wal.db-wal").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dialtone.db");
    // An existing world-readable file is tightened too.
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&path).await.unwrap();
    store
        .insert_call(record(Uuid::new_v4(), 1_000, "ended"))
        .await
        .unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{:?}", entry.file_name());
    }
}

/// Writes not waited for are in order with everything after them: a read right after them
/// sees the row, its new status and its event.
#[tokio::test]
async fn writes_behind_are_seen_by_the_next_read() {
    let store = Store::open_in_memory().await.unwrap();
    let project = Uuid::new_v4();
    let r = record(project, 1_000, "queued");
    store.insert_call_behind(r.clone());
    store.update_call_behind(CallRecord {
        status: "initiated".into(),
        ..r.clone()
    });
    store.append_call_event_behind(r.id, 1_001, "initiated", r#"{"status":"initiated"}"#.into());
    let got = store.get_call(project, r.id).await.unwrap().unwrap();
    assert_eq!(got.status, "initiated");
    let events = store.call_events(r.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "initiated");
    // A write that fails (no such call) is logged, and does not undo the others.
    store.update_call_behind(record(project, 2_000, "initiated"));
    assert!(store.get_call(project, r.id).await.unwrap().is_some());
    // A webhook queued behind is in the outbox once a later write was waited for: the `ended`
    // webhook before the `ended` status.
    store.enqueue_webhook_behind(NewWebhook {
        call_id: Some(r.id),
        url: "http://hooks.test/ended".into(),
        body: b"{}".to_vec(),
        created_at_ms: 1_002,
    });
    store
        .update_call(CallRecord {
            status: "ended".into(),
            ..r.clone()
        })
        .await
        .unwrap();
    let due = store.due_webhooks(10_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].url, "http://hooks.test/ended");
}
