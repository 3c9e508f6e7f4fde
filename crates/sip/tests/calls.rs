//! Outbound calls against a real sipp UAS on 127.0.0.1: one scenario per
//! test (tests/sipp/*.xml), asserting our events, sipp's verdict (exit code
//! 0 = the scenario passed) and the SIP ladder sipp logged.

mod common;

use common::*;
use sip::{Credentials, LegEvent};
use std::time::Duration;

fn sdp_of(ev: Option<&LegEvent>) -> String {
    match ev {
        Some(LegEvent::Answered { sdp: Some(sdp) }) => sdp.clone(),
        other => panic!("expected Answered with SDP, got {other:?}"),
    }
}

#[tokio::test]
async fn answer_then_we_bye() {
    let sipp = Sipp::uas("answer_then_we_bye", "uas_answer.xml", Tp::Udp).await;
    let sipp_port = sipp.port;
    let ep = endpoint().await;
    let mut leg = ep
        .invite(invite(sipp.target("+15550002222")))
        .await
        .unwrap();

    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    assert!(sdp_of(evs.last()).contains("m=audio"));
    // What a crash repair needs: the far end's Contact, both tags, our CSeq.
    let saved = leg
        .handle
        .saved_dialog()
        .expect("an answered leg has a dialog to save");
    assert!(saved.uac);
    assert!(
        saved
            .remote_target
            .contains(&format!("127.0.0.1:{sipp_port}")),
        "{saved:?}"
    );
    assert!(saved.remote_tag.contains("SIPpTag01"), "{saved:?}");
    assert!(saved.from.contains(&saved.local_tag), "{saved:?}");
    assert_eq!(saved.local_cseq, 1);

    leg.handle.hangup().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Terminated"]);
    assert_eq!(
        leg.handle.saved_dialog(),
        None,
        "nothing to save once ended"
    );
    // Nothing after Terminated; the stream closes.
    assert!(leg.events.recv().await.is_none());

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0, "sipp scenario failed");
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"]
    );
    let inv = ladder.sent_by_us("INVITE")[0];
    let port = ep.local_addr().port();
    assert!(
        inv.header("Via")
            .unwrap()
            .starts_with(&format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK")),
        "{inv:?}"
    );
    assert_eq!(
        inv.header("Contact").unwrap(),
        format!("<sip:+15550001111@127.0.0.1:{port}>")
    );
    assert_eq!(
        inv.start_line,
        format!("INVITE sip:+15550002222@127.0.0.1:{sipp_port} SIP/2.0")
    );
    assert_eq!(inv.header("To").unwrap(), "<sip:+15550002222@far.test>");
    let from = inv.header("From").unwrap();
    assert!(
        from.starts_with("\"Dial Tone\" <sip:+15550001111@dialtone.test>;tag="),
        "{from}"
    );
    assert_eq!(inv.header("X-Call-Ref").unwrap(), "test");
    assert_eq!(inv.header("User-Agent").unwrap(), "dialtone-test");
    assert_eq!(inv.header("Content-Type").unwrap(), "application/sdp");
    assert!(inv.header("Allow").unwrap().contains("UPDATE"));
    assert!(inv.text.contains("m=audio 40000 RTP/AVP 0 101"));

    // The BYE belongs to the same dialog: same Call-ID and From, To tagged.
    let bye = ladder.sent_by_us("BYE")[0];
    assert_eq!(bye.header("From").unwrap(), from);
    assert_eq!(bye.header("Call-ID"), inv.header("Call-ID"));
    assert!(bye.header("To").unwrap().contains(";tag="));
    assert!(bye.start_line.starts_with("BYE sip:127.0.0.1:"));
    ep.shutdown().await;
}

#[tokio::test]
async fn ring_three_seconds_then_answer() {
    let sipp = Sipp::uas("ring_then_answer", "uas_ring_answer.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let started = tokio::time::Instant::now();
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();

    let evs = events_until(&mut leg.events, 8, is_answered).await;
    assert_eq!(
        names(&evs),
        ["Trying", "Ringing(180)", "Ringing(183+sdp)", "Answered"]
    );
    assert!(started.elapsed() >= Duration::from_millis(2900));
    match &evs[2] {
        LegEvent::Ringing {
            code: 183,
            sdp: Some(sdp),
        } => assert!(sdp.contains("a=sendonly")),
        other => panic!("{other:?}"),
    }

    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 100", "< 180", "< 183", "< 200", "> ACK", "> BYE", "< 200"]
    );
    ep.shutdown().await;
}

async fn refused(test: &str, scenario_file: &str, want: u16, reason: &str) {
    let sipp = Sipp::uas(test, scenario_file, Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(
        names(&evs),
        ["Ringing(180)", &format!("Failed({want})"), "Terminated"]
    );
    match &evs[1] {
        LegEvent::Failed { reason: r, .. } => assert_eq!(r, reason),
        other => panic!("{other:?}"),
    }
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", &format!("< {want}"), "> ACK"]
    );
    // The ACK of a non-2xx is part of the INVITE transaction: same branch.
    assert_eq!(
        ladder.sent_by_us("ACK")[0].header("Via"),
        ladder.sent_by_us("INVITE")[0].header("Via")
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn busy_486() {
    refused("busy_486", "uas_busy.xml", 486, "Busy Here").await;
}

#[tokio::test]
async fn decline_603() {
    refused("decline_603", "uas_decline.xml", 603, "Decline").await;
}

#[tokio::test]
async fn never_answered_we_cancel() {
    let sipp = Sipp::uas("we_cancel", "uas_cancel.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, |e| {
        matches!(e, LegEvent::Ringing { .. })
    })
    .await;
    assert_eq!(names(&evs), ["Ringing(180)"]);

    leg.handle.cancel().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(487)", "Terminated"]);

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "> CANCEL", "< 200", "< 487", "> ACK"]
    );
    let inv = ladder.sent_by_us("INVITE")[0];
    let cancel = ladder.sent_by_us("CANCEL")[0];
    assert_eq!(
        cancel.header("Via"),
        inv.header("Via"),
        "CANCEL on the INVITE's branch"
    );
    assert_eq!(
        cancel.start_line.replace("CANCEL", "INVITE"),
        inv.start_line
    );
    assert!(cancel.cseq().ends_with("CANCEL"));
    assert_eq!(
        cancel.cseq().split_whitespace().next(),
        inv.cseq().split_whitespace().next()
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn hangup_before_answer_is_cancel() {
    let sipp = Sipp::uas("hangup_early", "uas_cancel.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, |e| {
        matches!(e, LegEvent::Ringing { .. })
    })
    .await;
    leg.handle.hangup().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(487)", "Terminated"]);
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    ep.shutdown().await;
}

#[tokio::test]
async fn far_end_hangs_up() {
    let sipp = Sipp::uas("remote_bye", "uas_remote_bye.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(
        names(&evs),
        ["Ringing(180)", "Answered", "RemoteBye", "Terminated"]
    );
    // Hanging up a finished leg is a no-op.
    leg.handle.hangup().await.unwrap();
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "< BYE", "> 200"]
    );
    ep.shutdown().await;
}

async fn challenged(
    test: &str,
    scenario_file: &str,
    challenge: u16,
    password: &str,
) -> Vec<LegEvent> {
    let sipp = Sipp::uas(test, scenario_file, Tp::Udp).await;
    let ep = endpoint().await;
    let mut req = invite(sipp.target("bob"));
    req.credentials = Some(Credentials {
        username: "alice".into(),
        password: password.into(),
    });
    let mut leg = ep.invite(req).await.unwrap();
    let evs = events_until(&mut leg.events, 5, |e| {
        matches!(e, LegEvent::Answered { .. } | LegEvent::Failed { .. })
    })
    .await;
    if matches!(evs.last(), Some(LegEvent::Answered { .. })) {
        leg.handle.hangup().await.unwrap();
    }
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    let arrows = ladder.arrows();
    assert_eq!(
        arrows[..5],
        [
            "> INVITE",
            &format!("< {challenge}"),
            "> ACK",
            "> INVITE",
            if password == "secret" {
                "< 180"
            } else {
                "< 403"
            }
        ]
    );
    let invites = ladder.sent_by_us("INVITE");
    let header = if challenge == 401 {
        "Authorization"
    } else {
        "Proxy-Authorization"
    };
    assert!(invites[0].header(header).is_none());
    let auth = invites[1]
        .header(header)
        .expect("credentials on the second INVITE");
    assert!(
        auth.starts_with("Digest ") && auth.contains("username=\"alice\""),
        "{auth}"
    );
    assert!(auth.contains(", qop=auth,"), "qop is a token: {auth}");
    // Via first, as RFC 3261 §7.3.1 recommends, also on the re-sent INVITE.
    assert!(
        invites[1].text.lines().nth(1).unwrap().starts_with("Via: "),
        "{}",
        invites[1].text
    );
    // Recompute the digest (sipp cannot check Proxy-Authorization).
    assert_eq!(
        digest_matches(&auth, "INVITE", "secret"),
        password == "secret",
        "{auth}"
    );
    // Same Call-ID and From tag, next CSeq, new branch.
    assert_eq!(invites[0].header("Call-ID"), invites[1].header("Call-ID"));
    assert_eq!(invites[0].header("From"), invites[1].header("From"));
    assert_eq!(invites[0].cseq(), "1 INVITE");
    assert_eq!(invites[1].cseq(), "2 INVITE");
    assert_ne!(invites[0].header("Via"), invites[1].header("Via"));
    ep.shutdown().await;
    evs
}

#[tokio::test]
async fn digest_401_then_answer() {
    let evs = challenged("auth_401", "uas_auth_401.xml", 401, "secret").await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
}

#[tokio::test]
async fn digest_407_then_answer() {
    let evs = challenged("auth_407", "uas_auth_407.xml", 407, "secret").await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
}

#[tokio::test]
async fn digest_bad_password_403() {
    let evs = challenged("auth_bad", "uas_auth_401.xml", 401, "wrong").await;
    assert_eq!(names(&evs), ["Failed(403)"]);
}

#[tokio::test]
async fn challenge_without_credentials_fails() {
    let sipp = Sipp::uas("auth_nocred", "uas_auth_407.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Failed(407)", "Terminated"]);
    drop(sipp); // it waits for a second INVITE that never comes
    ep.shutdown().await;
}

#[tokio::test]
async fn invite_retransmitted_when_first_is_ignored() {
    let sipp = Sipp::uas("invite_retrans", "uas_invite_retrans.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    let arrows = ladder.arrows();
    assert_eq!(arrows[..3], ["> INVITE", "> INVITE", "< 180"], "{arrows:?}");
    let invites = ladder.sent_by_us("INVITE");
    assert_eq!(
        invites[0].text, invites[1].text,
        "a retransmission is identical"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn bye_retransmitted_when_first_is_ignored() {
    let sipp = Sipp::uas("bye_retrans", "uas_bye_retrans.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    leg.handle.hangup().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "> BYE", "< 200"]
    );
    let byes = ladder.sent_by_us("BYE");
    assert_eq!(byes[0].text, byes[1].text);
    ep.shutdown().await;
}

#[tokio::test]
async fn cancel_racing_a_200_is_acked_and_byed() {
    let sipp = Sipp::uas("cancel_race", "uas_cancel_race.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, |e| {
        matches!(e, LegEvent::Ringing { .. })
    })
    .await;
    leg.handle.cancel().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Answered", "Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "> CANCEL", "< 200", "< 200", "> ACK", "> BYE", "< 200"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn far_end_reinvite_and_update_answered() {
    let sipp = Sipp::uas("reinvite", "uas_reinvite.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;

    // re-INVITE: new port and sendonly; we answer recvonly.
    match next_event(&mut leg, 5).await {
        LegEvent::RemoteOffer {
            sdp: Some(sdp),
            respond,
        } => {
            assert!(
                sdp.contains("m=audio 25102") && sdp.contains("a=sendonly"),
                "{sdp}"
            );
            let answer = OFFER
                .replace("1 1 IN", "1 2 IN")
                .replace("a=sendrecv", "a=recvonly");
            respond.send(Ok(answer)).unwrap();
        }
        other => panic!("expected the re-INVITE offer, got {other:?}"),
    }
    // UPDATE: we never answer; after 2 s the adapter answers 200 with the
    // last local SDP (our recvonly answer).
    let started = tokio::time::Instant::now();
    match next_event(&mut leg, 5).await {
        LegEvent::RemoteOffer {
            sdp: Some(sdp),
            respond,
        } => {
            assert!(sdp.contains("m=audio 25104"), "{sdp}");
            let evs = events_until(&mut leg.events, 5, is_terminated).await;
            assert!(started.elapsed() >= Duration::from_secs(2));
            assert_eq!(names(&evs), ["RemoteBye", "Terminated"]);
            drop(respond);
        }
        other => panic!("expected the UPDATE offer, got {other:?}"),
    }

    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    // (sipp retransmits its UPDATE while we wait: dedup.)
    assert_eq!(
        ladder.arrows_dedup(),
        [
            "> INVITE", "< 180", "< 200", "> ACK", "< INVITE", "> 200", "< ACK", "< UPDATE",
            "> 200", "< BYE", "> 200"
        ]
    );
    let answers: Vec<_> = ladder
        .0
        .iter()
        .filter(|m| m.from_us && m.kind() == "200")
        .collect();
    assert!(answers[0].text.contains("a=recvonly"));
    assert_eq!(
        answers[0].header("Content-Type").unwrap(),
        "application/sdp"
    );
    assert!(
        answers[1].text.contains("a=recvonly"),
        "UPDATE answered with the last local SDP"
    );
    ep.shutdown().await;
}

/// Our own re-INVITE (the switch to T.38 fax): a 200 with the far end's answer, ACKed; a 488
/// leaves the call as it was; the call goes on and ends with our BYE.
#[tokio::test]
async fn our_reinvite_accepted_then_refused() {
    let sipp = Sipp::uas("takes_reinvites", "uas_takes_reinvites.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    let t38 = "v=0\r\no=dialtone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=image 40000 udptl t38\r\na=T38FaxVersion:0\r\n"
        .to_string();
    match leg.handle.reoffer(t38).await.unwrap() {
        sip::Reoffer::Accepted { answer } => {
            assert!(answer.contains("m=image 25110 udptl t38"), "{answer}")
        }
        other => panic!("expected the answer, got {other:?}"),
    }
    let again = OFFER.replace("1 1 IN", "1 3 IN");
    assert_eq!(
        leg.handle.reoffer(again).await.unwrap(),
        sip::Reoffer::Refused { code: 488 }
    );
    leg.handle.hangup().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs).last().map(String::as_str), Some("Terminated"));
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows_dedup(),
        [
            "> INVITE", "< 200", "> ACK", "> INVITE", "< 200", "> ACK", "> INVITE", "< 488",
            "> ACK", "> BYE", "< 200"
        ]
    );
    let reinvite = ladder
        .0
        .iter()
        .filter(|m| m.from_us && m.kind() == "INVITE")
        .nth(1)
        .unwrap();
    assert_eq!(reinvite.header("Content-Type").unwrap(), "application/sdp");
    assert!(reinvite.text.contains("m=image 40000 udptl t38"));
    ep.shutdown().await;
}

#[tokio::test]
async fn remote_offer_rejected_with_488() {
    let sipp = Sipp::uas("reinvite_488", "uas_reinvite_488.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    match next_event(&mut leg, 5).await {
        LegEvent::RemoteOffer { respond, .. } => respond.send(Err(488)).unwrap(),
        other => panic!("{other:?}"),
    }
    // The call survives the refused offer; the far end hangs up later.
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["RemoteBye", "Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows_dedup(),
        ["> INVITE", "< 180", "< 200", "> ACK", "< INVITE", "> 488", "< ACK", "< BYE", "> 200"]
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn info_dtmf() {
    let sipp = Sipp::uas("info_dtmf", "uas_info.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    events_until(&mut leg.events, 5, is_answered).await;
    leg.handle.send_info_dtmf('5').await.unwrap();
    assert!(leg.handle.send_info_dtmf('x').await.is_err());
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    let info = ladder.sent_by_us("INFO")[0];
    assert_eq!(
        info.header("Content-Type").unwrap(),
        "application/dtmf-relay"
    );
    ep.shutdown().await;
}

#[tokio::test]
async fn basic_call_over_tcp() {
    let sipp = Sipp::uas("tcp_call", "uas_answer.xml", Tp::Tcp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"]
    );
    let port = ep.local_addr().port();
    let inv = ladder.sent_by_us("INVITE")[0];
    assert!(inv
        .start_line
        .to_ascii_lowercase()
        .contains(";transport=tcp"));
    assert!(inv
        .header("Via")
        .unwrap()
        .starts_with(&format!("SIP/2.0/TCP 127.0.0.1:{port};")));
    assert_eq!(
        inv.header("Contact").unwrap(),
        format!("<sip:+15550001111@127.0.0.1:{port};transport=TCP>"),
    );
    for m in ladder
        .sent_by_us("ACK")
        .into_iter()
        .chain(ladder.sent_by_us("BYE"))
    {
        assert!(
            m.header("Via").unwrap().starts_with("SIP/2.0/TCP "),
            "{m:?}"
        );
    }
    ep.shutdown().await;
}

#[tokio::test]
async fn far_end_hangs_up_over_tcp() {
    let sipp = Sipp::uas("tcp_remote_bye", "uas_remote_bye.xml", Tp::Tcp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(
        names(&evs),
        ["Ringing(180)", "Answered", "RemoteBye", "Terminated"]
    );
    let (code, _) = sipp.finish().await;
    assert_eq!(code, 0);
    ep.shutdown().await;
}

#[tokio::test]
async fn forked_second_answer_is_acked_and_byed() {
    let sipp = Sipp::uas("fork", "uas_fork.xml", Tp::Udp).await;
    let ep = endpoint().await;
    let mut leg = ep.invite(invite(sipp.target("bob"))).await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    assert!(
        sdp_of(evs.last()).contains("o=one"),
        "the first answer wins"
    );
    // The second branch is ended by the adapter, silently.
    tokio::time::sleep(Duration::from_millis(500)).await;
    leg.handle.hangup().await.unwrap();
    let evs = events_until(&mut leg.events, 5, is_terminated).await;
    assert_eq!(names(&evs), ["Terminated"]);
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        [
            "> INVITE", "< 180", "< 200", "> ACK", "< 200", "> ACK", "> BYE", "< 200", "> BYE",
            "< 200"
        ]
    );
    let byes = ladder.sent_by_us("BYE");
    assert!(byes[0].start_line.starts_with("BYE sip:two@"));
    assert!(byes[1].start_line.starts_with("BYE sip:one@"));
    ep.shutdown().await;
}

/// Terminate TLS on a fresh port and relay the plaintext to `backend`
/// (sipp over TCP): sipp stands in for a TLS far end.
async fn tls_front(cert_pem: &[u8], key_pem: &[u8], backend: u16) -> u16 {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem).unwrap();
    let config = ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn basic_call_over_tls() {
    let dir = scratch_dir("tls_certs");
    let (ca, leaf, key) = make_certs(&dir);
    let sipp = Sipp::uas("tls_call", "uas_answer.xml", Tp::Tcp).await;
    let front = tls_front(&leaf, &key, sipp.port).await;
    let ep = endpoint_with(sip::SipOptions {
        tls_ca_pem: Some(ca),
        ..Default::default()
    })
    .await;
    let mut leg = ep
        .invite(invite(format!("sips:bob@127.0.0.1:{front}")))
        .await
        .unwrap();
    let evs = events_until(&mut leg.events, 5, is_answered).await;
    assert_eq!(names(&evs), ["Ringing(180)", "Answered"]);
    leg.handle.hangup().await.unwrap();
    events_until(&mut leg.events, 5, is_terminated).await;
    let (code, ladder) = sipp.finish().await;
    assert_eq!(code, 0);
    assert_eq!(
        ladder.arrows(),
        ["> INVITE", "< 180", "< 200", "> ACK", "> BYE", "< 200"]
    );
    let port = ep.local_addr().port();
    let inv = ladder.sent_by_us("INVITE")[0];
    assert_eq!(
        inv.start_line,
        format!("INVITE sips:bob@127.0.0.1:{front} SIP/2.0")
    );
    assert!(inv
        .header("Via")
        .unwrap()
        .starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{port};")));
    assert!(
        inv.header("Contact").unwrap().starts_with("<sips:"),
        "{inv:?}"
    );
    for m in ladder
        .sent_by_us("ACK")
        .into_iter()
        .chain(ladder.sent_by_us("BYE"))
    {
        assert!(
            m.header("Via").unwrap().starts_with("SIP/2.0/TLS "),
            "{m:?}"
        );
    }
    ep.shutdown().await;
}

/// Crash repair: a dialog saved as text (what a node persisted before it died) is ended by
/// a BYE from an endpoint that never saw the call: to the first route (loose routing), the
/// Request-URI the remote target, our tags and the next CSeq; the far end's 200 (sent to
/// the Via, as RFC 3261 §18.2.2 says) completes it.
#[tokio::test]
async fn a_saved_dialog_is_ended_by_a_restarted_endpoint() {
    let far = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let far_addr = far.local_addr().unwrap();
    let saved = sip::SavedDialog {
        uac: true,
        call_id: "crash-1@127.0.0.1".into(),
        local_tag: "ours1".into(),
        remote_tag: "theirs1".into(),
        from: "<sip:+15550001111@127.0.0.1>;tag=ours1".into(),
        to: "<sip:+15550002222@far.test>;tag=theirs1".into(),
        local_cseq: 1,
        remote_cseq: 0,
        local_contact: Some("sip:+15550001111@127.0.0.1:5060".into()),
        remote_target: "sip:bob@far.test:5099".into(),
        route_set: vec![format!("<sip:{far_addr};lr>")],
    };
    let text = saved.encode().unwrap();
    let restored = sip::SavedDialog::decode(&text).unwrap();
    assert_eq!(restored, saved);

    let ep = endpoint().await;
    let bye = tokio::spawn({
        let ep = ep.clone();
        async move { ep.bye_saved(&restored).await }
    });
    let mut buf = vec![0u8; 4096];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), far.recv_from(&mut buf))
        .await
        .expect("a BYE within 5 s")
        .unwrap();
    let req = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        req.starts_with("BYE sip:bob@far.test:5099 SIP/2.0\r\n"),
        "{req}"
    );
    let header = |name: &str| {
        req.lines()
            .find(|l| {
                l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("Call-ID"), "crash-1@127.0.0.1");
    assert_eq!(header("CSeq"), "2 BYE");
    assert!(header("From").contains("tag=ours1"), "{req}");
    assert!(header("To").contains("tag=theirs1"), "{req}");
    assert!(header("Route").contains(&far_addr.to_string()), "{req}");
    // The 200, built from the request's own headers.
    let mut resp = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        resp += &format!("{name}: {}\r\n", header(name));
    }
    resp += "Content-Length: 0\r\n\r\n";
    far.send_to(resp.as_bytes(), from).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), bye)
        .await
        .expect("the BYE completes on the 200")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    ep.shutdown().await;
}
