//! The client reads every answer shape public clients have seen, over real HTTP.

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use stepcall::client::{Client, Dial};
use stepcall::secrets::ApiKey;
use stepcall::wire::InitiateRequest;

async fn serve(answer: Value) -> String {
    let app = Router::new().route(
        stepcall::wire::INITIATE_PATH,
        post(move || async move { axum::Json(answer) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn call_ids_call_id_and_provider_call_id_at_top_level_and_under_data() {
    let request = InitiateRequest {
        phones: "13800138000".into(),
        user_requirement: Some("hi".into()),
        options: Default::default(),
    };
    for answer in [
        json!({"success": true, "call_ids": ["id-1"]}),
        json!({"success": true, "call_id": "id-1"}),
        json!({"success": true, "provider_call_id": "id-1"}),
        json!({"success": true, "data": {"call_ids": ["id-1"]}}),
        json!({"success": true, "data": {"call_id": "id-1"}}),
        json!({"success": true, "data": {"provider_call_id": "id-1"}}),
    ] {
        let url = serve(answer.clone()).await;
        let client = Client::new(&url, ApiKey::new("k"), std::time::Duration::from_secs(5));
        match client.initiate(&request, "idem").await {
            Dial::Accepted { call_id, .. } => assert_eq!(call_id, "id-1", "{answer}"),
            other => panic!("{answer} was read as {other:?}"),
        }
    }
}

#[tokio::test]
async fn success_without_a_call_id_is_uncertain_not_retried() {
    let request = InitiateRequest {
        phones: "13800138000".into(),
        user_requirement: Some("hi".into()),
        options: Default::default(),
    };
    let url = serve(json!({"success": true, "message": "ok"})).await;
    let client = Client::new(&url, ApiKey::new("k"), std::time::Duration::from_secs(5));
    assert!(matches!(
        client.initiate(&request, "idem").await,
        Dial::Uncertain { .. }
    ));
}
