//! Groups, channels, contacts and presence, each kept per session.

use super::{assert_error, assert_refusals, Sim};
use serde_json::{json, Value};

/// A WORKING session `g` with a group "My Team" of one participant; answers the group's id.
async fn with_group(sim: &Sim) -> String {
    sim.working("g").await;
    let team = json!({"name": "My Team", "participants": [{"id": "1234567890@c.us"}]});
    let (s, group) = sim.post("/v1/sessions/g/groups", team).await;
    assert_eq!(s, 201, "{group}");
    assert_eq!(group["subject"], "My Team");
    let id = group["id"].as_str().unwrap().to_owned();
    assert!(id.ends_with("@g.us"), "{id}");
    id
}

#[tokio::test]
async fn sim_groups_are_kept_per_session() {
    let sim = Sim::start().await;
    with_group(&sim).await;
    sim.working("other").await;
    let nameless = json!({"participants": [{"id": "1@c.us"}]});
    let refusal = (
        "POST",
        "/v1/sessions/g/groups",
        Some(nameless),
        400,
        "name is required",
    );
    assert_refusals(&sim, &[refusal]).await;
    let (_, list) = sim.get("/v1/sessions/g/groups").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(sim.get("/v1/sessions/other/groups").await.1, json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn sim_group_changes_show_in_the_group_until_it_is_left() {
    let sim = Sim::start().await;
    let id = with_group(&sim).await;
    let base = format!("/v1/sessions/g/groups/{id}");
    let newcomer = json!({"participants": [{"id": "9876543210@c.us"}]});
    let founder = json!({"participants": [{"id": "1234567890@c.us"}]});
    // The participant calls answer 200 as in the OAS of 2026 (ENGINE.md §5 rows 31-34).
    for (method, path, body) in [
        ("PUT", "subject", json!({"subject": "Renamed"})),
        ("PUT", "description", json!({"description": "Weekly"})),
        ("POST", "participants/add", newcomer.clone()),
        ("POST", "admin/promote", newcomer.clone()),
        ("POST", "participants/remove", founder),
        ("POST", "admin/demote", newcomer),
    ] {
        let (s, answer) = sim
            .call(method, &format!("{base}/{path}"), Some(body))
            .await;
        assert_eq!(s, 200, "{method} {path}: {answer}");
    }
    let (s, got) = sim.get(&base).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&got["subject"], &got["description"]),
        (&json!("Renamed"), &json!("Weekly"))
    );
    let members: Vec<(String, bool)> = got["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["isAdmin"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        members.contains(&("9876543210@c.us".into(), false)),
        "{members:?}"
    );
    assert!(
        !members.iter().any(|(id, _)| id == "1234567890@c.us"),
        "{members:?}"
    );

    assert_eq!(
        sim.call("POST", &format!("{base}/leave"), None).await.0,
        200
    );
    assert_refusals(&sim, &[("GET", &base, None, 404, &id)]).await;
    sim.stop().await;
}

/// A WORKING session `g` with a channel "News"; answers the channel as created.
async fn with_channel(sim: &Sim) -> Value {
    sim.working("g").await;
    let news = json!({"name": "News", "description": "d"});
    let (s, channel) = sim.post("/v1/sessions/g/channels", news).await;
    assert_eq!(s, 201, "{channel}");
    assert!(
        channel["id"].as_str().unwrap().ends_with("@newsletter"),
        "{channel}"
    );
    channel
}

/// A post shows in the channel's preview as a `ChannelMessage` (ENGINE.md §6 row 39), found
/// by the channel's id and by its invite code alike.
#[tokio::test]
async fn sim_channel_posts_show_in_the_preview_by_id_and_by_invite_code() {
    let sim = Sim::start().await;
    let channel = with_channel(&sim).await;
    let cid = channel["id"].as_str().unwrap();
    let post = json!({"session": "g", "chatId": cid, "text": "first post"});
    assert_eq!(sim.post("/v1/sendText", post).await.0, 201);
    let preview = format!("/v1/sessions/g/channels/{cid}/messages/preview");
    let (s, preview) = sim.get(&preview).await;
    assert_eq!(s, 200);
    assert_eq!(preview[0]["message"]["body"], "first post", "{preview}");
    assert_eq!(preview[0]["viewCount"], 0);

    let invite = channel["invite"].as_str().unwrap();
    assert!(
        invite.starts_with("https://www.whatsapp.com/channel/"),
        "{invite}"
    );
    let code = invite.rsplit('/').next().unwrap();
    let by_code = format!("/v1/sessions/g/channels/{code}/messages/preview");
    assert_eq!(sim.get(&by_code).await, (200, preview));
    let (s, found) = sim.get(&format!("/v1/sessions/g/channels/{code}")).await;
    assert_eq!((s, &found["id"]), (200, &json!(cid)));
    sim.stop().await;
}

#[tokio::test]
async fn sim_channels_are_listed_found_and_deleted() {
    let sim = Sim::start().await;
    let channel = with_channel(&sim).await;
    let (_, list) = sim.get("/v1/sessions/g/channels").await;
    assert_eq!(list[0]["name"], "News");
    let path = format!(
        "/v1/sessions/g/channels/{}",
        channel["id"].as_str().unwrap()
    );
    assert_eq!(sim.get(&path).await.0, 200);
    assert_eq!(sim.call("DELETE", &path, None).await.0, 200);
    assert_eq!(sim.get(&path).await.0, 404);
    sim.stop().await;
}

#[tokio::test]
async fn sim_contacts_check_exists_answers_for_the_session_named() {
    let sim = Sim::start().await;
    sim.working("g").await;
    let check = "/v1/contacts/check-exists";
    let (s, body) = sim
        .get(&format!("{check}?phone=1234567890&session=g"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"numberExists": true, "chatId": "1234567890@c.us"})
    );
    let (s, body) = sim
        .get(&format!("{check}?phone=1234567000&session=g"))
        .await;
    assert_eq!((s, &body["numberExists"]), (200, &json!(false)), "{body}");
    let no_phone = format!("{check}?session=g");
    assert_refusals(&sim, &[("GET", &no_phone, None, 400, "phone is required")]).await;
    let (s, _) = sim.get(&format!("{check}?phone=1234567890")).await;
    assert_eq!(s, 404, "the default session does not exist");
    sim.stop().await;
}

#[tokio::test]
async fn sim_presence_is_set_per_session() {
    let sim = Sim::start().await;
    sim.working("g").await;
    sim.working("other").await;
    let typing = json!({"presence": "typing", "chatId": "1234567890"});
    assert_eq!(sim.post("/v1/sessions/g/presence", typing).await.0, 201);
    let (_, presence) = sim.get("/v1/sessions/g/presence").await;
    assert_eq!(presence[0]["presences"][0]["lastKnownPresence"], "typing");
    assert_eq!(sim.get("/v1/sessions/other/presence").await.1, json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn sim_presence_refuses_an_unknown_presence_or_a_misplaced_chat() {
    let sim = Sim::start().await;
    sim.working("g").await;
    let path = "/v1/sessions/g/presence";
    let (s, err) = sim.post(path, json!({"presence": "dancing"})).await;
    assert_eq!(s, 400);
    assert_error(&err, 400, "presence");
    // The engine's own 400 bodies are `{detail}` (ENGINE.md §8 row 41).
    for (body, detail) in [
        (
            json!({"presence": "online", "chatId": "1234567890"}),
            "'online' presence works on the global scope and doesn't require 'chatId' field.",
        ),
        (
            json!({"presence": "typing"}),
            "'typing' presence requires 'chatId' field.",
        ),
    ] {
        assert_eq!(
            sim.post(path, body).await,
            (400, json!({ "detail": detail }))
        );
    }
    sim.stop().await;
}
