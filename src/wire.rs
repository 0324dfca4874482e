//! The Stepone HTTP API as JSON: paths, headers, request bodies and how answers are read.
//!
//! The client and the simulator both use this module, so they cannot drift apart on a path or a
//! field name. Reading answers is deliberately lenient (the API has no reference, and public
//! clients disagree): a call id may come as `call_ids[0]`, `call_id` or `provider_call_id`, at
//! the top level or under `data`; a record may be at the top level or under `data`. What is
//! strict is everything that decides whether a person may be rung again; that lives in `client`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::call_state::CallState;
use crate::campaign::CallOptions;

pub const INITIATE_PATH: &str = "/api/v1/callinfo/initiate_call";
pub const SEARCH_PATH: &str = "/api/v1/callinfo/search_callinfo";
pub const BALANCE_PATH: &str = "/balance";
pub const SKILL_VERSION_PATH: &str = "/skill_version";

pub const API_KEY_HEADER: &str = "X-API-Key";
pub const SKILL_VERSION_HEADER: &str = "X-Skill-Version";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The protocol version this client speaks; a server that dislikes it answers 426.
pub const SKILL_VERSION: &str = "1.0.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitiateRequest {
    pub phones: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_requirement: Option<String>,
    #[serde(flatten)]
    pub options: CallOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub call_id: String,
}

/// `success` must be literally `true`; anything else is a failure.
pub fn is_success(answer: &Value) -> bool {
    answer.get("success") == Some(&Value::Bool(true))
}

/// The provider's error text: `message`, else `error` (a string or an object with a message).
pub fn error_message(answer: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    answer
        .get("message")
        .and_then(text)
        .or_else(|| answer.get("error").and_then(text))
}

/// The first call id in an `initiate_call` answer, wherever the provider put it.
pub fn call_id(answer: &Value) -> Option<String> {
    fn in_object(o: &Value) -> Option<String> {
        let first = match o.get("call_ids") {
            Some(Value::Array(ids)) => ids.first().and_then(id_text),
            Some(Value::String(ids)) => ids
                .split(',')
                .next()
                .and_then(|s| id_text(&Value::String(s.to_string()))),
            _ => None,
        };
        first
            .or_else(|| o.get("call_id").and_then(id_text))
            .or_else(|| o.get("provider_call_id").and_then(id_text))
    }
    in_object(answer).or_else(|| answer.get("data").and_then(in_object))
}

fn id_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let plausible = !text.is_empty() && text.len() <= 256 && !text.chars().any(char::is_control);
    plausible.then_some(text)
}

/// What a `search_callinfo` answer says about a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// No result fields yet.
    NotReady,
    /// The call is still going on (`status_raw` says so).
    InProgress {
        status_raw: String,
    },
    Final(CallResult),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub state: CallState,
    pub status_raw: String,
    pub duration_seconds: Option<i64>,
    pub cost: Option<f64>,
    /// `assistant: …` / `user: …` lines; system turns are left out.
    pub transcript: String,
}

pub fn record(answer: &Value) -> Record {
    let holder = [
        Some(answer),
        answer.get("data"),
        answer.get("data").and_then(|d| d.get(0)),
    ]
    .into_iter()
    .flatten()
    .find(|o| has_result_fields(o));
    let Some(o) = holder else {
        return Record::NotReady;
    };
    let status_raw = o.get("call_status").map(scalar_text).unwrap_or_default();
    let duration_seconds = o
        .get("duration_seconds")
        .or_else(|| o.get("duration"))
        .and_then(number)
        .map(|d| d.round() as i64);
    let state = match map_status(&status_raw) {
        Some(Mapped::Final(state)) => state,
        Some(Mapped::InProgress) => return Record::InProgress { status_raw },
        // A status nobody documented: a duration says the call is over, its absence that it may
        // still be going on.
        None if duration_seconds.is_none() => return Record::InProgress { status_raw },
        None => CallState::Unknown,
    };
    Record::Final(CallResult {
        state,
        status_raw,
        duration_seconds,
        cost: o.get("cost").and_then(number),
        transcript: o.get("call_content").map(transcript).unwrap_or_default(),
    })
}

fn has_result_fields(o: &Value) -> bool {
    let present = |k: &str| {
        o.get(k)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    };
    present("call_status")
        || present("duration_seconds")
        || present("duration")
        || present("call_content")
}

enum Mapped {
    Final(CallState),
    InProgress,
}

fn map_status(raw: &str) -> Option<Mapped> {
    let key = raw.trim().to_lowercase().replace([' ', '-'], "_");
    let state = match key.as_str() {
        "completed" | "complete" | "answered" | "connected" | "success" | "succeeded"
        | "finished" | "ended" | "已接通" | "接通" | "已完成" | "通话完成" | "已接听" => {
            CallState::Answered
        }
        "no_answer" | "noanswer" | "not_answered" | "unanswered" | "missed" | "timeout"
        | "未接听" | "无人接听" | "未接通" | "无应答" => CallState::NoAnswer,
        "busy" | "user_busy" | "占线" | "忙线" | "用户忙" => CallState::Busy,
        "failed" | "failure" | "error" | "invalid_number" | "失败" | "呼叫失败" | "空号"
        | "停机" => CallState::Failed,
        "rejected" | "refused" | "declined" | "拒接" | "拒绝" | "被拒" => CallState::Rejected,
        "calling" | "ringing" | "in_progress" | "inprogress" | "pending" | "queued"
        | "initiated" | "dialing" | "呼叫中" | "通话中" | "振铃中" | "排队中" => {
            return Some(Mapped::InProgress);
        }
        _ => return None,
    };
    Some(Mapped::Final(state))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn transcript(content: &Value) -> String {
    let parsed;
    let turns = match content {
        Value::Array(turns) => turns,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(turns)) => {
                parsed = turns;
                &parsed
            }
            _ => return s.trim().to_string(),
        },
        _ => return String::new(),
    };
    turns
        .iter()
        .filter_map(|turn| {
            let role = turn
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let text = turn.get("content").map(scalar_text).unwrap_or_default();
            (role != "system" && !text.is_empty()).then(|| format!("{role}: {text}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes what must never be shown or exported (the provider's copy of its system prompt).
pub fn strip_internal(answer: &mut Value) {
    if let Value::Object(o) = answer {
        o.remove("LLM_SYSTEM_INSTRUCTION");
        o.values_mut().for_each(strip_internal);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn call_id_in_every_known_place() {
        for answer in [
            json!({"success": true, "call_ids": ["a1"]}),
            json!({"success": true, "call_id": "a1"}),
            json!({"success": true, "provider_call_id": "a1"}),
            json!({"success": true, "data": {"call_ids": ["a1", "b2"]}}),
            json!({"success": true, "data": {"call_id": "a1"}}),
            json!({"success": true, "data": {"provider_call_id": "a1"}}),
        ] {
            assert_eq!(call_id(&answer).as_deref(), Some("a1"), "{answer}");
        }
        assert_eq!(call_id(&json!({"success": true, "call_ids": []})), None);
        assert_eq!(
            call_id(&json!({"success": true, "call_id": "x", "data": {"call_id": "y"}})).as_deref(),
            Some("x")
        );
    }

    #[test]
    fn records_are_read_leniently() {
        assert_eq!(record(&json!({"success": true})), Record::NotReady);
        assert_eq!(
            record(&json!({"success": true, "duration_seconds": null})),
            Record::NotReady
        );
        assert!(matches!(
            record(&json!({"call_status": "ringing"})),
            Record::InProgress { .. }
        ));
        let Record::Final(r) = record(&json!({"data": {
            "call_status": "未接听", "duration": "0", "cost": 0.1,
            "call_content": [{"role": "system", "content": "secret"}, {"role": "assistant", "content": "您好"}],
        }})) else {
            panic!()
        };
        assert_eq!(
            (r.state, r.duration_seconds, r.cost),
            (CallState::NoAnswer, Some(0), Some(0.1))
        );
        assert_eq!(r.transcript, "assistant: 您好");
        let Record::Final(r) = record(&json!({"call_status": "teleported", "duration_seconds": 3}))
        else {
            panic!()
        };
        assert_eq!(
            (r.state, r.status_raw.as_str()),
            (CallState::Unknown, "teleported")
        );
    }

    #[test]
    fn internal_fields_are_stripped() {
        let mut v = json!({"data": {"LLM_SYSTEM_INSTRUCTION": {"x": 1}, "call_status": "busy"}});
        strip_internal(&mut v);
        assert_eq!(v, json!({"data": {"call_status": "busy"}}));
    }
}
