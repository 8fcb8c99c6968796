//! `/v1/sessions/{session}/groups`: a WORKING session's groups, their subject and description,
//! members and admins.

use super::access::{await_session_in, await_working_item};
use super::reply::{created, done, ok};
use crate::sim::body::{json_body, missing, optional, present, required};
use crate::sim::chat::{chat_id, ChatServer};
use crate::sim::error::{SimError, SimResult};
use crate::sim::state::{Group, Participant, Session, SimState, Status};
use crate::sim::webhooks::emit;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde_json::{json, Value};

type Sim = web::Data<SimState>;
type GroupPath = web::Path<(String, String)>;

/// The four calls that change who is in a group, or who runs it.
#[derive(Debug, Clone, Copy)]
pub enum Membership {
    Add,
    Remove,
    Promote,
    Demote,
}

impl Membership {
    pub const ALL: [Membership; 4] = [
        Membership::Add,
        Membership::Remove,
        Membership::Promote,
        Membership::Demote,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Membership::Add => "/sessions/{session}/groups/{groupId}/participants/add",
            Membership::Remove => "/sessions/{session}/groups/{groupId}/participants/remove",
            Membership::Promote => "/sessions/{session}/groups/{groupId}/admin/promote",
            Membership::Demote => "/sessions/{session}/groups/{groupId}/admin/demote",
        }
    }

    /// As `group.v2.participants` names it.
    fn as_str(self) -> &'static str {
        match self {
            Membership::Add => "add",
            Membership::Remove => "remove",
            Membership::Promote => "promote",
            Membership::Demote => "demote",
        }
    }

    /// Applies the change for one member; a member already in (add) or not in the group (the
    /// others) is left as it is.
    fn apply(self, participants: &mut Vec<Participant>, member: &str) {
        let at = participants.iter().position(|p| p.id == member);
        match (self, at) {
            (Membership::Add, None) => participants.push(Participant::member(member)),
            (Membership::Remove, Some(i)) => {
                participants.remove(i);
            }
            (Membership::Promote, Some(i)) => participants[i].is_admin = true,
            (Membership::Demote, Some(i)) => participants[i].is_admin = false,
            _ => {}
        }
    }
}

impl Participant {
    fn member(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            is_admin: false,
            is_super_admin: false,
        }
    }
}

fn group_missing(id: &str) -> SimError {
    SimError::not_found(format!("Group \"{id}\" not found"))
}

fn find_group<'a>(session: &'a mut Session, id: &str) -> SimResult<&'a mut Group> {
    session.groups.get_mut(id).ok_or_else(|| group_missing(id))
}

fn participant_ids(body: &Value) -> SimResult<Vec<String>> {
    let bad = || SimError::bad_request("participants must be a non-empty array of {id}");
    let items = match present(body, "participants")? {
        Value::Array(items) if !items.is_empty() => items,
        _ => return Err(bad()),
    };
    items
        .iter()
        .map(|p| {
            p.get("id")
                .and_then(Value::as_str)
                .ok_or_else(bad)
                .and_then(chat_id)
        })
        .collect()
}

pub async fn list(state: Sim, path: web::Path<String>) -> SimResult {
    await_session_in(&state, &path, Status::Working, |s| {
        ok(s.groups.values().collect::<Vec<_>>())
    })
    .await
}

pub async fn create(state: Sim, path: web::Path<String>, body: Bytes) -> SimResult {
    let body = json_body(&body)?;
    let subject = required(&body, "name")?;
    let members = participant_ids(&body)?;
    await_session_in(&state, &path, Status::Working, |s| {
        let me = s.me_id();
        let owner = Participant {
            id: me.clone(),
            is_admin: true,
            is_super_admin: true,
        };
        let others = members.iter().filter(|m| **m != me);
        let group = Group {
            id: ChatServer::Group.new_id(),
            subject,
            description: String::new(),
            owner: me.clone(),
            creation: chrono::Utc::now().timestamp(),
            participants: std::iter::once(owner)
                .chain(others.map(|m| Participant::member(m)))
                .collect(),
        };
        s.groups.insert(group.id.clone(), group.clone());
        emit(&state, s, "group.v2.join", json!({"group": group}));
        created(group)
    })
    .await
}

pub async fn get(state: Sim, path: GroupPath) -> SimResult {
    await_working_item(&state, path, |s, id| ok(find_group(s, id)?)).await
}

pub async fn delete(state: Sim, path: GroupPath) -> SimResult {
    await_working_item(&state, path, |s, id| {
        s.groups.remove(id).ok_or_else(|| group_missing(id))?;
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

pub async fn leave(state: Sim, path: GroupPath) -> SimResult {
    await_working_item(&state, path, |s, id| {
        s.groups.remove(id).ok_or_else(|| group_missing(id))?;
        emit(&state, s, "group.v2.leave", json!({"group": {"id": id}}));
        // OAS 2026 declares 200 for leave (ENGINE.md §5 row 28; B8).
        ok(done())
    })
    .await
}

pub async fn set_subject(state: Sim, path: GroupPath, body: Bytes) -> SimResult {
    let subject = required(&json_body(&body)?, "subject")?;
    update(state, path, |group| group.subject = subject).await
}

/// An empty description is a description (it clears the old one).
pub async fn set_description(state: Sim, path: GroupPath, body: Bytes) -> SimResult {
    let description = optional(&json_body(&body)?, "description")?;
    let description = description.ok_or_else(|| missing("description"))?;
    update(state, path, |group| group.description = description).await
}

async fn update(state: Sim, path: GroupPath, change: impl FnOnce(&mut Group)) -> SimResult {
    await_working_item(&state, path, |s, id| {
        let group = find_group(s, id)?;
        change(group);
        let group = group.clone();
        emit(&state, s, "group.v2.update", json!({"group": group}));
        ok(done())
    })
    .await
}

pub async fn change_members(
    state: Sim,
    path: GroupPath,
    body: Bytes,
    change: Membership,
) -> SimResult {
    let members = participant_ids(&json_body(&body)?)?;
    await_working_item(&state, path, |s, id| {
        let group = find_group(s, id)?;
        for member in &members {
            change.apply(&mut group.participants, member);
        }
        let listed: Vec<_> = members.iter().map(|m| json!({"id": m})).collect();
        let payload = json!({"group": {"id": id}, "type": change.as_str(), "participants": listed});
        emit(&state, s, "group.v2.participants", payload);
        // OAS 2026 declares 200 for the member and admin actions (ENGINE.md §5 rows 31-34; B8).
        ok(done())
    })
    .await
}
