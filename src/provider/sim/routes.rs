//! The simulator's routes: how it answers `initiate_call`, `search` and the skill version,
//! with the faults and odd answers its configuration asks for, each journaled.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(super) enum Mishap {
    /// The connection breaks before the answer is complete.
    Reset,
    Slow,
    Garbled,
    Huge,
    /// The call is placed, then the gateway answers 502.
    LostBehindGateway,
    /// The call is placed and answered 429 with its id.
    TooManyButPlaced,
    /// The call is placed and answered `success: false` with its id.
    FalseButPlaced,
    /// The call is placed and answered `success: false` without an id.
    NoId,
}

/// The per-number throttle of the API notes: HTTP 400, nothing placed.
pub(super) const THROTTLED: &str = "该号码呼叫过于频繁";

/// The rate-limit words some providers put behind a 200.
pub(super) const TOO_FREQUENT: &str = "请求过于频繁";

pub(super) fn garbled() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"success": true, "call_ids": ["#,
    )
        .into_response()
}

pub(super) async fn initiate(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // When the request arrived, as a provider's rate limit counts it; the latency comes after.
    let received_at = crate::clock::now().to_string();
    tokio::time::sleep(sim.config.latency).await;
    if let Err(refused) = sim.check(&headers) {
        return refused;
    }
    if let Some(fault) = sim.fault(wire::INITIATE_PATH) {
        return fault;
    }
    let request: InitiateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("invalid request body: {e}"),
            );
        }
    };
    let phones: Vec<String> = request
        .phones
        .split(',')
        .map(|p| p.trim().to_string())
        .collect();
    if let Some(bad) = phones.iter().find(|p| !valid_number(p)) {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("invalid phone number: {bad}"),
        );
    }
    let throttled = {
        let mut st = sim.state.lock().expect("simulator state");
        st.draws += 1;
        unit(sim.config.seed ^ 0x7407, st.draws) < sim.config.rate_throttle
    };
    if throttled || phones.iter().any(|p| sim.config.throttle.contains(p)) {
        return refuse(StatusCode::BAD_REQUEST, THROTTLED);
    }
    let requirement = request.user_requirement.clone().unwrap_or_default();
    if requirement.trim().is_empty() && request.options.agent_id.is_none() {
        return refuse(StatusCode::BAD_REQUEST, "user_requirement is required");
    }
    let idempotency_key = headers
        .get(wire::IDEMPOTENCY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (call_ids, mishap) = {
        let mut st = sim.state.lock().expect("simulator state");
        let mut ids = Vec::new();
        st.draws += 1;
        let twice = unit(sim.config.seed ^ 0xd0b1, st.draws) < sim.config.rate_double;
        let placed: Vec<&String> = phones
            .iter()
            .flat_map(|p| std::iter::repeat_n(p, if twice { 2 } else { 1 }))
            .collect();
        for phone in placed {
            st.accepted += 1;
            let n = st.accepted;
            let call_id = call_id(sim.instance, n);
            let entry = json!({
                "seq": n,
                "received_at": received_at,
                "call_id": call_id,
                "phone": phone,
                "user_requirement": request.user_requirement,
                "options": serde_json::to_value(&request.options).unwrap_or(Value::Null),
                "idempotency_key": idempotency_key,
            });
            if let Some(journal) = st.journal.as_mut() {
                // Written and flushed before the answer: a call the client may learn of is
                // always in the journal.
                let line = format!("{entry}\n");
                if journal
                    .write_all(line.as_bytes())
                    .and_then(|()| journal.flush())
                    .is_err()
                {
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "simulator journal write failed",
                    );
                }
            }
            let draw = unit(sim.config.seed ^ 0x5eed, n);
            let delay = match sim.config.record_delay_max {
                Some(max) => {
                    sim.config.record_delay
                        + max.saturating_sub(sim.config.record_delay).mul_f64(draw)
                }
                None => sim.config.record_delay.mul_f64(0.5 + draw),
            };
            let attempt = st.attempt(phone);
            st.calls.insert(
                call_id.clone(),
                SimCall {
                    phone: phone.clone(),
                    requirement: requirement.clone(),
                    ready_at: Instant::now() + delay,
                    attempt,
                },
            );
            ids.push(call_id);
        }
        st.draws += 1;
        (ids, sim.mishap(unit(sim.config.seed ^ 0xd409, st.draws)))
    };
    tokio::time::sleep(sim.config.answer_delay).await;
    match mishap {
        Some(Mishap::Reset) => {
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("reset"))
            });
            return Response::builder()
                .status(StatusCode::OK)
                .body(Body::from_stream(broken))
                .expect("a valid response");
        }
        Some(Mishap::Slow) => tokio::time::sleep(sim.config.slow_delay).await,
        Some(Mishap::Garbled) => return garbled(),
        Some(Mishap::LostBehindGateway) => return refuse(StatusCode::BAD_GATEWAY, "bad gateway"),
        Some(Mishap::TooManyButPlaced) => {
            return answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"success": false, "message": "too many requests", "call_ids": call_ids}),
            );
        }
        Some(Mishap::FalseButPlaced) => {
            return answer(
                StatusCode::OK,
                json!({"success": false, "message": TOO_FREQUENT, "data": {"call_ids": call_ids}}),
            );
        }
        Some(Mishap::NoId) => {
            return answer(
                StatusCode::OK,
                json!({"success": false, "message": TOO_FREQUENT}),
            );
        }
        Some(Mishap::Huge) => {
            let padding = "x".repeat(4 << 20);
            return answer(
                StatusCode::OK,
                json!({"success": true, "call_ids": call_ids, "padding": padding}),
            );
        }
        None => {}
    }
    answer(
        StatusCode::OK,
        json!({"success": true, "message": "ok", "call_ids": call_ids}),
    )
}

pub(super) async fn search(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::time::sleep(sim.config.latency).await;
    if let Err(refused) = sim.check(&headers) {
        return refused;
    }
    if let Some(fault) = sim.fault(wire::SEARCH_PATH) {
        return fault;
    }
    let garble = {
        let mut st = sim.state.lock().expect("simulator state");
        st.draws += 1;
        unit(sim.config.seed ^ 0x9a7b, st.draws) < sim.config.rate_garbled
    };
    if garble {
        return garbled();
    }
    let request: SearchRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!("invalid request body: {e}"),
            );
        }
    };
    let mut st = sim.state.lock().expect("simulator state");
    st.draws += 1;
    let foreign = unit(sim.config.seed ^ 0xf0e1, st.draws) < sim.config.rate_foreign;
    let Some(call) = st.calls.get(&request.call_id) else {
        return refuse(StatusCode::NOT_FOUND, "call not found");
    };
    if foreign {
        // A provider mixing up its records: another call's, ready or not.
        let other = st
            .calls
            .iter()
            .filter(|(id, c)| **id != request.call_id && c.phone != call.phone)
            .min_by_key(|(id, _)| id.as_str());
        if let Some((other_id, other)) = other {
            return answer(StatusCode::OK, record(&sim, other_id, other));
        }
    }
    if Instant::now() < call.ready_at {
        return answer(
            StatusCode::OK,
            json!({"success": true, "message": "call record not ready yet", "call_id": request.call_id}),
        );
    }
    answer(StatusCode::OK, record(&sim, &request.call_id, call))
}

pub(super) async fn skill_version(State(sim): State<Arc<Sim>>) -> Response {
    // An outage takes this endpoint down with the rest.
    let down = {
        let mut st = sim.state.lock().expect("simulator state");
        st.draws += 1;
        unit(sim.config.seed ^ 0x5c1e, st.draws) < sim.config.rate_500
    };
    if down {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
    }
    answer(
        StatusCode::OK,
        json!({"skill_version": wire::SKILL_VERSION}),
    )
}

pub(super) fn record(sim: &Sim, call_id: &str, call: &SimCall) -> Value {
    let person = Person::of(sim.config.seed, &call.phone, call.attempt);
    let roll = person.roll;
    if sim.config.carrier_statuses {
        const WORDS: [&str; 9] = [
            "关机",
            "停机",
            "空号",
            "无法接通",
            "拒接",
            "已挂断",
            "通话结束",
            "呼叫失败",
            "用户忙",
        ];
        return json!({
            "success": true,
            "call_id": call_id,
            "phones": call.phone,
            "call_status": WORDS[roll as usize % WORDS.len()],
            "cost": 0.0,
            "call_content": [],
        });
    }
    let (status, duration) = match (sim.config.outcome.as_deref(), roll) {
        (Some("completed"), _) => ("completed", 42),
        (Some("no_answer"), _) => ("no_answer", 0),
        (Some("busy"), _) => ("busy", 0),
        (Some(_), _) => ("failed", 0),
        (None, 0..60) => ("completed", 20 + (roll as i64 * 7) % 90),
        (None, 60..80) => ("no_answer", 0),
        (None, 80..90) => ("busy", 0),
        (None, _) => ("failed", 0),
    };
    // A forced outcome is a test's plain call: the person always confirms.
    let reply = match sim.config.outcome {
        Some(_) => Reply::Confirms,
        None => person.reply,
    };
    let quoted: String = call.requirement.chars().take(80).collect();
    let content = if status == "completed" {
        let mut turns = vec![
            json!({"role": "system", "content": "internal prompt (never exported)"}),
            json!({"role": "assistant", "content": format!("您好，我是AI助理。Hello, this is an AI assistant: {quoted}")}),
        ];
        turns.extend(
            reply
                .turns()
                .iter()
                .map(|(role, content)| json!({"role": role, "content": content})),
        );
        Value::Array(turns)
    } else {
        json!([])
    };
    let minutes = (duration + 59) / 60;
    json!({
        "success": true,
        "call_id": call_id,
        "phones": call.phone,
        "user_requirement": call.requirement,
        "call_status": status,
        "duration_seconds": duration,
        "cost": minutes as f64 * 0.1,
        "billed": duration > 0,
        "call_content": content,
        "LLM_SYSTEM_INSTRUCTION": {"prompt": "simulated system instruction"},
        "provider_response": json!({"simulated": true, "elapsed_ms": sim.started.elapsed().as_millis() as u64}).to_string(),
    })
}

/// How the simulated person at a number takes a call: decided by the seed, the number and
/// which call to that number this is, so a rehearsal plays out the same way twice, and a
/// redial may reach someone the first call missed.
pub(super) struct Person {
    /// 0..100: the outcome (see `record`) and the carrier's word.
    roll: u64,
    reply: Reply,
}

impl Person {
    pub(super) fn of(seed: u64, phone: &str, attempt: u32) -> Person {
        let bytes = seed.to_le_bytes().into_iter().chain(phone.bytes());
        // The first call keeps the number's own roll, as it was before redials differed.
        let h = if attempt <= 1 {
            fnv1a(bytes)
        } else {
            fnv1a(bytes.chain(attempt.to_le_bytes()))
        };
        Person {
            roll: h % 100,
            reply: Reply::ALL[((h / 100) % Reply::ALL.len() as u64) as usize],
        }
    }
}

/// What the person says once they answer: the answers a reminder campaign meets, so tags,
/// opt-outs and redials can be rehearsed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Reply {
    Confirms,
    AnotherTime,
    TomorrowAfternoon,
    DoNotCall,
    Silent,
}

impl Reply {
    /// Half of the people confirm; the rest share the other answers.
    const ALL: [Reply; 8] = [
        Reply::Confirms,
        Reply::Confirms,
        Reply::Confirms,
        Reply::Confirms,
        Reply::AnotherTime,
        Reply::TomorrowAfternoon,
        Reply::DoNotCall,
        Reply::Silent,
    ];

    fn turns(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Reply::Confirms => &[
                ("user", "好的，我知道了，谢谢。OK, got it, thanks."),
                ("assistant", "不客气，再见！You're welcome, goodbye!"),
            ],
            Reply::AnotherTime => &[
                (
                    "user",
                    "那个时间不行，能改时间吗？That time doesn't work, can we change it?",
                ),
                (
                    "assistant",
                    "好的，诊所会再联系您。The clinic will call you back.",
                ),
            ],
            Reply::TomorrowAfternoon => &[
                (
                    "user",
                    "我现在在忙，明天下午再打给我吧。I'm busy, call me tomorrow afternoon.",
                ),
                (
                    "assistant",
                    "好的，明天下午再联系您。Sure, tomorrow afternoon.",
                ),
            ],
            Reply::DoNotCall => &[
                ("user", "别再打了，不要再给我打电话。Don't call me again."),
                (
                    "assistant",
                    "抱歉打扰，不会再打扰您。Sorry, we won't call again.",
                ),
            ],
            Reply::Silent => &[
                ("assistant", "喂？您好，能听到吗？Hello, can you hear me?"),
                ("assistant", "那我先挂了，再见。I'll hang up now, goodbye."),
            ],
        }
    }
}

pub(super) async fn balance(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(refused) = sim.check(&headers) {
        return refused;
    }
    answer(
        StatusCode::OK,
        json!({"success": true, "balance": 88.0, "currency": "CNY"}),
    )
}
