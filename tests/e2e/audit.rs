//! `GET /v1/audit`: account administrators read their own account's events and nobody
//! else's; filters by account, actor, action and time; paging by event id.

use crate::harness::*;

use serde_json::{json, Value};

async fn audit(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    server.admin_get(&format!("/v1/audit{query}"), token).await
}

fn events(body: &Value) -> &Vec<Value> {
    body["events"].as_array().unwrap()
}

#[tokio::test]
async fn account_administrators_read_their_accounts_events_only() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let caller = server.client().with_token(admin.clone());
    let a = account_named(&caller, "a").await.id;
    let b = account_named(&caller, "b").await.id;
    let (admin_a, admin_a_token) = member_token(&server, &admin, &a, "admin").await;
    let (_, viewer_a_token) = member_token(&server, &admin, &a, "viewer").await;
    let (_, admin_b_token) = member_token(&server, &admin, &b, "admin").await;
    // Written by the account's administrator: a service account, a cut-off of its tokens, a
    // binding made and removed.
    let sa = server
        .create(
            &admin_a_token,
            "service_accounts",
            json!({"name": "made-by-a"}),
        )
        .await;
    let (status, body) = server
        .admin_post(
            "/v1/token_cutoffs",
            &admin_a_token,
            json!({"iam_id": sa["iam_id"]}),
        )
        .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    let binding = server
        .create(
            &admin_a_token,
            "access_bindings",
            json!({"subject_iam_id": sa["iam_id"], "role": "viewer", "resource": format!("account/{a}")}),
        )
        .await;
    let (status, _) = server
        .admin_delete(
            &format!("/v1/access_bindings/{}", binding["id"].as_str().unwrap()),
            &admin_a_token,
        )
        .await;
    assert_eq!(status, 204);

    let (status, body) = audit(&server, &admin_a_token, &format!("?account_id={a}")).await;
    assert_eq!(status, 200, "{body}");
    let mine = events(&body);
    assert!(mine.iter().all(|e| e["account_id"] == a.as_str()), "{body}");
    let actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in [
        "service_account.create",
        "tokens.revoke_all",
        "access_binding.create",
        "access_binding.delete",
        "api_key.create",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing: {actions:?}"
        );
    }
    assert!(
        !body.to_string().contains(&b),
        "another account's event: {body}"
    );

    // Another account's events, every event, and a viewer: refused, with the reason.
    for (token, query) in [
        (&admin_a_token, format!("?account_id={b}")),
        (&admin_a_token, String::new()),
        (&viewer_a_token, format!("?account_id={a}")),
        (&admin_b_token, format!("?account_id={a}")),
    ] {
        let (status, body) = audit(&server, token, &query).await;
        assert_eq!(status, 403, "{query}: {body}");
        assert!(body.to_string().contains("admin"), "{body}");
    }
    // The global administrator reads every account's events.
    let (status, body) = audit(&server, &admin, &format!("?account_id={b}")).await;
    assert_eq!(status, 200);
    assert!(events(&body).iter().all(|e| e["account_id"] == b.as_str()));
    assert!(!events(&body).is_empty());
    let (_, all) = audit(&server, &admin, "?limit=1000").await;
    assert!(events(&all)
        .iter()
        .any(|e| e["account_id"].is_null() && e["action"] == "installation.create"));

    // Filters: actor, action prefix, time window.
    let (_, body) = audit(
        &server,
        &admin,
        &format!("?actor={admin_a}&action=access_binding."),
    )
    .await;
    let actions: Vec<&str> = events(&body)
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["access_binding.delete", "access_binding.create"],
        "{body}"
    );
    let (_, body) = audit(&server, &admin, "?since=2999-01-01T00:00:00Z").await;
    assert!(events(&body).is_empty());
    let (_, body) = audit(&server, &admin, "?until=2000-01-01T00:00:00Z").await;
    assert!(events(&body).is_empty());

    // Paging by the last id of the previous page covers everything once, newest first.
    let mut seen: Vec<i64> = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let (status, body) = audit(&server, &admin, &query).await;
        assert_eq!(status, 200);
        let page = events(&body);
        if page.is_empty() {
            break;
        }
        seen.extend(page.iter().map(|e| e["id"].as_i64().unwrap()));
        query = format!("?limit=3&before={}", seen.last().unwrap());
    }
    let every: Vec<i64> = events(&all)
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, every);
}

#[tokio::test]
async fn bad_audit_filters_name_the_problem() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    for (query, expected) in [
        ("?since=yesterday", "since must be an RFC 3339 time"),
        ("?until=2026-12-01", "until must be an RFC 3339 time"),
        ("?action=API.delete", "is not an action"),
        ("?account_id=nope", "account_id"),
        ("?before=0", "before"),
        ("?limit=0", "limit"),
        ("?colour=red", "colour"),
    ] {
        let (status, body) = audit(&server, &admin, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(expected), "{query}: {body}");
    }
    // Without a token: 401, not the log.
    let (status, _) = audit(&server, "not-a-token", "").await;
    assert_eq!(status, 401);
}
