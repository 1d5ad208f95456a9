//! The repository's API document (`docs/API.md`) and the OpenAPI document the server serves list
//! the same operations, and the server answers every one of them.
//!
//! An endpoint is a table row of API.md whose first cell is `METHOD /path` (path parameters in
//! braces, as in OpenAPI). The check goes both ways: each one is served and documented in
//! `/api/openapi.json`, and each operation of `/api/openapi.json` is in API.md. What the operations
//! answer is checked against the OpenAPI document by `cargo xtask contract` (schemathesis).

mod common;

use std::collections::BTreeSet;

use common::{assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `(METHOD, /path)` of every table row of API.md that names an endpoint.
fn api_md_endpoints() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let endpoints = endpoints_in(&text);
    assert!(
        endpoints.len() >= 40,
        "API.md names only {} endpoints: is its table format still `| METHOD /path |`?",
        endpoints.len()
    );
    endpoints
}

fn endpoints_in(markdown: &str) -> BTreeSet<(String, String)> {
    markdown
        .lines()
        .filter_map(|line| {
            let cell = line.strip_prefix('|')?.split('|').next()?.trim();
            let (method, path) = cell.split_once(' ')?;
            (METHODS.contains(&method) && path.starts_with('/')).then(|| (method.to_owned(), path.trim().to_owned()))
        })
        .collect()
}

/// `(METHOD, /path)` of every operation of an OpenAPI document.
fn openapi_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("a path item").keys();
            methods
                .filter(|m| METHODS.contains(&m.to_uppercase().as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

#[tokio::test]
async fn every_endpoint_of_api_md_is_served_and_documented_and_every_documented_operation_is_in_api_md() {
    let app = spawn_app().await;
    let anonymous = app.anonymous();
    let (status, doc) = anonymous.get("/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(anonymous.get("/healthz").await, (StatusCode::OK, Value::from("ok")));
    assert_eq!(anonymous.get("/readyz").await, (StatusCode::OK, Value::from("ready")));

    let written = api_md_endpoints();
    let documented = openapi_operations(&doc);
    let undocumented: Vec<_> = written.difference(&documented).collect();
    assert!(undocumented.is_empty(), "in docs/API.md but not in /api/openapi.json: {undocumented:?}");
    let unwritten: Vec<_> = documented.difference(&written).collect();
    assert!(unwritten.is_empty(), "in /api/openapi.json but not in docs/API.md: {unwritten:?}");

    // Served: without credentials or a body, every endpoint answers for itself (200, 400, 401)
    // before any path parameter is looked up; a route that does not exist is a 404 or 405.
    for (method, path) in &written {
        let concrete = path.replace("{id}", "0123456789abcdef").replace("{uid}", "04A1B2C3");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = anonymous.request(method.clone(), &concrete, None).await;
        assert!(
            ![StatusCode::NOT_FOUND, StatusCode::METHOD_NOT_ALLOWED].contains(&status),
            "{method} {path} of docs/API.md is not served: {status} {body}"
        );
    }
}

#[tokio::test]
async fn every_operation_names_declared_security_schemes_and_the_error_body() {
    let app = spawn_app().await;
    let (_, doc) = app.anonymous().get("/api/openapi.json").await;
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    for name in ["bearer", "sessionCookie", "deviceKey"] {
        assert!(schemes.contains_key(name), "no security scheme {name}");
    }
    for (method, path) in openapi_operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let security = operation["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
        for requirement in security {
            for name in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(name), "{method} {path}: unknown security scheme {name}");
            }
        }
        // An operation that needs credentials says what happens without them.
        let responses = operation["responses"].as_object().unwrap();
        if !security.is_empty() {
            assert!(responses.contains_key("401"), "{method} {path}: needs credentials but declares no 401");
        }
        for (status, response) in responses.iter().filter(|(status, _)| status.starts_with(['4', '5'])) {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}: not the error body");
        }
    }
}

#[test]
fn endpoints_are_read_from_table_rows_only() {
    let markdown = "Text about GET /nothing.\n| endpoint | who |\n|---|---|\n| GET /api/queue | member |\n\
                    | POST /api/motor/start | farmer |\n| status | code |\n| 400 | `VALIDATION` |\n";
    let found: Vec<_> = endpoints_in(markdown).into_iter().collect();
    assert_eq!(
        found,
        [("GET".to_owned(), "/api/queue".to_owned()), ("POST".to_owned(), "/api/motor/start".to_owned())]
    );
}

/// Parameters the server cannot read get the API's JSON error too, not the web framework's text.
#[tokio::test]
async fn an_unreadable_query_or_path_is_the_json_error() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    for path in ["/api/admin/minute-requests?status=PENDING&status=APPROVED", "/api/admin/usage?from=a&from=b"] {
        assert_error(&t.admin.get(path).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    assert_error(&t.admin.get("/api/admin/users/%FF/wallet").await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let answer = t.admin.request(Method::DELETE, "/api/admin/cards/%FF%FE", None).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND");
    let answer = app.master().await.request(Method::POST, "/api/master/admins/%C3%28/suspend", None).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND");
}
