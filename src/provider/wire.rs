//! The Stepone HTTP API as JSON: paths, headers, request bodies and how answers are read.
//!
//! The client and the simulator both use this module, so they cannot drift apart on a path or a
//! field name. Reading answers is deliberately lenient (the API has no reference, and public
//! clients disagree): a call id may come as `call_ids[0]`, `call_id` or `provider_call_id`, at
//! the top level or under `data`; a record may be at the top level or under `data`. What is
//! strict is everything that decides whether a person may be rung again; that lives in `client`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::campaign::CallOptions;
use crate::state::machine::CallState;

pub const INITIATE_PATH: &str = "/api/v1/callinfo/initiate_call";
pub const SEARCH_PATH: &str = "/api/v1/callinfo/search_callinfo";
pub const BALANCE_PATH: &str = "/balance";
pub const SKILL_VERSION_PATH: &str = "/skill_version";

pub const API_KEY_HEADER: &str = "X-API-Key";
pub const SKILL_VERSION_HEADER: &str = "X-Skill-Version";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Sent by stepcall's simulator on every answer, faults included, so a run pointed at one
/// with `--base-url` knows it is a rehearsal. The real API is not known to send it.
pub const SIMULATOR_HEADER: &str = "X-Stepcall-Simulator";
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

/// Every call id in an `initiate_call` answer, each once, wherever the provider put it.
///
/// `call_ids` holds one id per call placed, so every id in it counts (at the top level and
/// under `data`): two ids for one number are two calls, and both are kept. Without it, `call_id`
/// and then `provider_call_id` name the one call (top level first, then `data`); they are two
/// names a provider may use for the same id, not two calls.
pub fn call_ids(answer: &Value) -> Vec<String> {
    let data = answer.get("data");
    let scopes: Vec<&Value> = std::iter::once(answer)
        .chain(data)
        .chain(data.and_then(Value::as_array).into_iter().flatten())
        .collect();
    let mut ids: Vec<String> = Vec::new();
    for &o in &scopes {
        let listed: Vec<String> = match o.get("call_ids") {
            Some(Value::Array(list)) => list.iter().filter_map(id_text).collect(),
            Some(Value::String(list)) => list
                .split(',')
                .filter_map(|s| id_text(&Value::String(s.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        for id in listed {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.is_empty() {
        let single = scopes.iter().find_map(|o| {
            o.get("call_id")
                .and_then(id_text)
                .or_else(|| o.get("provider_call_id").and_then(id_text))
        });
        ids.extend(single);
    }
    ids
}

/// Whether an answer has a call id key with something in it, at any depth: an answer that
/// names a call in a way `call_ids` cannot read (an id too long, an object) may have placed
/// one, and must never be taken for "not sent".
pub fn names_a_call(answer: &Value) -> bool {
    match answer {
        Value::Object(o) => o.iter().any(|(k, v)| {
            let filled = match v {
                Value::Null => false,
                Value::String(s) => !s.trim().is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            };
            (filled && matches!(k.as_str(), "call_id" | "call_ids" | "provider_call_id"))
                || names_a_call(v)
        }),
        Value::Array(items) => items.iter().any(names_a_call),
        _ => false,
    }
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

/// How a `call_status` value reads: a result, or a call still going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Final(CallState),
    InProgress,
}

/// The campaign's own words for statuses (`status_map:`), consulted before the built-in table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusMap(HashMap<String, Mapped>);

impl StatusMap {
    pub fn new(entries: impl IntoIterator<Item = (String, Mapped)>) -> StatusMap {
        StatusMap(
            entries
                .into_iter()
                .map(|(raw, mapped)| (status_key(&raw), mapped))
                .collect(),
        )
    }
}

/// A status as both tables key it: trimmed, lower case, spaces and dashes as `_`.
pub fn status_key(raw: &str) -> String {
    raw.trim().to_lowercase().replace([' ', '-'], "_")
}

/// Reads a `search_callinfo` answer, mapping its status through `map` and then the built-in
/// table (see the README's "Call statuses").
pub fn record(answer: &Value, map: &StatusMap) -> Record {
    let Some(o) = result_holder(answer) else {
        return Record::NotReady;
    };
    let status_raw = o.get("call_status").map(scalar_text).unwrap_or_default();
    let duration_seconds = o
        .get("duration_seconds")
        .or_else(|| o.get("duration"))
        .and_then(number)
        .map(|d| d.round() as i64);
    let key = status_key(&status_raw);
    let state = match map.0.get(&key).copied().or_else(|| map_status(&key)) {
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

/// The object of an answer that holds the result fields: the answer itself, its `data`, or
/// the first element of a `data` list.
fn result_holder(answer: &Value) -> Option<&Value> {
    [
        Some(answer),
        answer.get("data"),
        answer.get("data").and_then(|d| d.get(0)),
    ]
    .into_iter()
    .flatten()
    .find(|o| has_result_fields(o))
}

/// Whether a `search_callinfo` answer is about another call than `call_id` (to the number
/// `phone`), and if so which: a `call_id` naming another call, or `phones` naming only other
/// numbers, means its result must not be applied to this call. An answer that does not say, or
/// writes the number in a way that cannot be read (masked digits), is taken as it comes.
pub fn about_other_call(answer: &Value, call_id: &str, phone: Option<&str>) -> Option<String> {
    let holder = result_holder(answer);
    let scopes = [holder, Some(answer), answer.get("data")];
    for o in scopes.into_iter().flatten() {
        // A record may name its call by several ids; it is this call's if any is this id.
        let named: Vec<String> = ["call_id", "provider_call_id"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(id_text))
            .collect();
        if !named.is_empty() && !named.iter().any(|id| id == call_id) {
            return Some(format!(
                "the provider answered about call {}, not {call_id}",
                named[0]
            ));
        }
    }
    let phone = phone?;
    let phones = [holder, Some(answer)]
        .into_iter()
        .flatten()
        .find_map(|o| o.get("phones").or_else(|| o.get("phone")))
        .map(scalar_text)?;
    let readable: Vec<String> = phones
        .split(',')
        .filter_map(|p| crate::input::phone::normalize(p).ok())
        .collect();
    (!readable.is_empty() && !readable.iter().any(|p| p == phone)).then(|| {
        format!(
            "the provider answered about the number {}, not {}",
            crate::input::phone::mask(&readable[0]),
            crate::input::phone::mask(phone)
        )
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

/// The built-in status table, over keys made by `status_key`. Carriers' final words (switched
/// off, suspended, no such number, unreachable, declined, hung up, ended, busy) come without a
/// duration and are results all the same; the README lists the table.
fn map_status(key: &str) -> Option<Mapped> {
    let state = match key {
        "completed" | "complete" | "answered" | "connected" | "success" | "succeeded"
        | "finished" | "ended" | "已接通" | "接通" | "已完成" | "通话完成" | "已接听" | "接听"
        | "通话结束" | "已结束" | "结束" | "正常结束" | "已挂断" | "挂断" | "已挂机" | "挂机"
        | "用户挂断" | "对方挂断" => CallState::Answered,
        "no_answer" | "noanswer" | "not_answered" | "unanswered" | "missed" | "timeout"
        | "未接听" | "无人接听" | "未接通" | "无应答" | "无人应答" | "未接" | "振铃未接"
        | "响铃未接" => CallState::NoAnswer,
        "busy" | "user_busy" | "占线" | "忙线" | "用户忙" | "用户正忙" | "正在通话中" => {
            CallState::Busy
        }
        "failed" | "failure" | "error" | "invalid_number" | "unreachable" | "powered_off"
        | "switched_off" | "out_of_service" | "suspended" | "失败" | "呼叫失败" | "外呼失败"
        | "拨打失败" | "空号" | "号码不存在" | "号码错误" | "停机" | "已停机" | "欠费停机"
        | "关机" | "已关机" | "无法接通" | "暂时无法接通" | "不在服务区" => {
            CallState::Failed
        }
        "rejected" | "refused" | "declined" | "拒接" | "拒绝" | "被拒" | "用户拒接" | "拒听" => {
            CallState::Rejected
        }
        "calling" | "ringing" | "in_progress" | "inprogress" | "pending" | "queued"
        | "initiated" | "dialing" | "呼叫中" | "通话中" | "振铃中" | "排队中" | "拨号中"
        | "外呼中" | "等待中" => {
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
            json!({"success": true, "data": {"call_ids": ["a1"]}}),
            json!({"success": true, "data": {"call_id": "a1"}}),
            json!({"success": true, "data": {"provider_call_id": "a1"}}),
            json!({"success": true, "call_id": "a1", "provider_call_id": "p9"}),
            json!({"success": false, "message": "请求过于频繁", "call_ids": "a1"}),
        ] {
            assert_eq!(call_ids(&answer), ["a1"], "{answer}");
        }
        assert!(call_ids(&json!({"success": true, "call_ids": []})).is_empty());
        assert_eq!(
            call_ids(&json!({"success": true, "call_id": "x", "data": {"call_id": "y"}})),
            ["x"]
        );
        assert_eq!(
            call_ids(&json!({"success": true, "data": [{"call_id": "d1"}]})),
            ["d1"]
        );
        // Named, but unreadable as an id: not one id, yet a call may have been placed.
        let odd = json!({"success": false, "result": {"call_id": "x".repeat(300)}});
        assert!(call_ids(&odd).is_empty() && names_a_call(&odd));
        assert!(!names_a_call(
            &json!({"success": false, "call_ids": [], "call_id": null})
        ));
        // One id per call placed: every one of them counts.
        assert_eq!(
            call_ids(&json!({"call_ids": ["a", "b"], "data": {"call_ids": ["b", "c"]}})),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn a_record_about_another_call_is_recognised() {
        let mine =
            json!({"call_id": "c1", "phones": "+86 138-0013-8000", "call_status": "completed"});
        assert_eq!(about_other_call(&mine, "c1", Some("13800138000")), None);
        let other = json!({"data": {"call_id": "c2", "call_status": "completed"}});
        assert!(about_other_call(&other, "c1", Some("13800138000")).is_some());
        let number = json!({"call_status": "completed", "phones": "13900139000"});
        assert!(about_other_call(&number, "c1", Some("13800138000")).is_some());
        let both =
            json!({"call_id": "internal-9", "provider_call_id": "c1", "call_status": "busy"});
        assert_eq!(about_other_call(&both, "c1", None), None);
        // A masked number says nothing either way.
        let masked = json!({"call_status": "completed", "phones": "139****9000"});
        assert_eq!(about_other_call(&masked, "c1", Some("13800138000")), None);
    }

    #[test]
    fn carrier_words_are_results_and_the_campaign_has_the_last_word() {
        let none = StatusMap::default();
        for (word, state) in [
            ("关机", CallState::Failed),
            ("停机", CallState::Failed),
            ("空号", CallState::Failed),
            ("无法接通", CallState::Failed),
            ("呼叫失败", CallState::Failed),
            ("拒接", CallState::Rejected),
            ("已挂断", CallState::Answered),
            ("通话结束", CallState::Answered),
            ("用户忙", CallState::Busy),
        ] {
            match record(&json!({"call_status": word}), &none) {
                Record::Final(r) => assert_eq!(r.state, state, "{word}"),
                other => panic!("{word}: {other:?}"),
            }
        }
        let map = StatusMap::new([
            ("通话结束".to_string(), Mapped::Final(CallState::NoAnswer)),
            ("Sent To Carrier".to_string(), Mapped::InProgress),
            ("转人工".to_string(), Mapped::Final(CallState::Answered)),
        ]);
        let state = |word: &str| match record(&json!({"call_status": word}), &map) {
            Record::Final(r) => Some(r.state),
            _ => None,
        };
        assert_eq!(state("通话结束"), Some(CallState::NoAnswer));
        assert_eq!(state("转人工"), Some(CallState::Answered));
        assert_eq!(state("sent-to-carrier"), None);
        // Unmapped: a duration makes it a result, its absence means keep asking.
        assert_eq!(state("外星"), None);
        assert!(matches!(
            record(
                &json!({"call_status": "外星", "duration_seconds": 3}),
                &none
            ),
            Record::Final(CallResult {
                state: CallState::Unknown,
                ..
            })
        ));
    }

    #[test]
    fn records_are_read_leniently() {
        let none = StatusMap::default();
        let record = |answer: &Value| record(answer, &none);
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
