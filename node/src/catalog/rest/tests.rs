//! The routes against a real `MemoryCatalog` with a warehouse on local disk.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use iceberg::io::LocalFsStorageFactory;
use iceberg::memory::{MEMORY_CATALOG_WAREHOUSE, MemoryCatalogBuilder};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use iceberg::{Catalog, CatalogBuilder, NamespaceIdent, TableCreation};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::{RestCatalogState, router};

const TOKEN: &str = "catalog-token-0123456789";

struct Fixture {
    router: Router,
    _warehouse: tempfile::TempDir,
}

/// Namespace `zombi` holding `tables`, served with `token` as the catalog token.
async fn fixture(tables: &[&str], token: Option<&str>) -> Fixture {
    let warehouse = tempfile::tempdir().expect("tempdir");
    let location = format!("file://{}", warehouse.path().display());
    let catalog = MemoryCatalogBuilder::default()
        .with_storage_factory(Arc::new(LocalFsStorageFactory))
        .load("test", HashMap::from([(MEMORY_CATALOG_WAREHOUSE.to_owned(), location.clone())]))
        .await
        .expect("memory catalog");
    let namespace = NamespaceIdent::new("zombi".to_owned());
    catalog.create_namespace(&namespace, HashMap::new()).await.expect("namespace");
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "sequence", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "payload", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    for name in tables {
        let creation =
            TableCreation::builder().name((*name).to_owned()).schema(schema.clone()).build();
        catalog.create_table(&namespace, creation).await.expect("table");
    }
    let router = router(RestCatalogState {
        catalog: Arc::new(catalog),
        updates: None,
        catalog_token: token.map(str::to_owned),
        warehouse_location: location,
    });
    Fixture { router, _warehouse: warehouse }
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        authorization: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if method == Method::POST {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        // What PyIceberg always sends; it must change nothing.
        request = request.header("X-Iceberg-Access-Delegation", "vended-credentials");
        let body = if method == Method::POST { Body::from("{}") } else { Body::empty() };
        let response =
            self.router.clone().oneshot(request.body(body).expect("request")).await.expect("call");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        (status, json)
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None).await
    }
}

fn assert_error(body: &Value, status: StatusCode, error_type: &str) {
    assert_eq!(body["error"]["type"], error_type, "{body}");
    assert_eq!(body["error"]["code"], status.as_u16(), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"].get("stack").is_none(), "{body}");
}

#[tokio::test]
async fn config_has_defaults_and_overrides() {
    let f = fixture(&[], None).await;
    let (status, body) = f.get("/v1/config?warehouse=anything").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["defaults"].is_object(), "{body}");
    assert_eq!(body["overrides"], json!({}));
    assert!(body["defaults"]["warehouse"].as_str().is_some_and(|w| w.starts_with("file://")));
    assert_eq!(body["defaults"]["zombi.warehouse"], body["defaults"]["warehouse"]);
}

#[tokio::test]
async fn namespaces_list_get_and_head() {
    let f = fixture(&[], None).await;
    let (status, body) = f.get("/v1/namespaces").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"namespaces": [["zombi"]]}));

    let (status, body) = f.get("/v1/namespaces?pageToken=&pageSize=10").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"namespaces": [["zombi"]]}));

    let (status, body) = f.get("/v1/namespaces/zombi").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"namespace": ["zombi"], "properties": {}}));

    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/zombi", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = f.get("/v1/namespaces/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NoSuchNamespaceException");

    // Multi-level namespaces are joined with %1F; a missing parent is a 404 too.
    let (status, body) = f.get("/v1/namespaces?parent=zombi%1Fnested").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NoSuchNamespaceException");
    let (status, body) = f.get("/v1/namespaces/zombi%1F").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, status, "BadRequestException");
}

#[tokio::test]
async fn list_tables_pages_in_name_order() {
    let f = fixture(&["gamma", "alpha", "beta"], None).await;
    let all = json!([
        {"namespace": ["zombi"], "name": "alpha"},
        {"namespace": ["zombi"], "name": "beta"},
        {"namespace": ["zombi"], "name": "gamma"},
    ]);
    for uri in ["/v1/namespaces/zombi/tables", "/v1/namespaces/zombi/tables?pageToken="] {
        let (status, body) = f.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(body, json!({"identifiers": all}), "{uri}");
    }

    let mut seen = Vec::new();
    let mut token = String::new();
    for page in 0.. {
        assert!(page < 3, "too many pages");
        let (status, body) =
            f.get(&format!("/v1/namespaces/zombi/tables?pageToken={token}&pageSize=1")).await;
        assert_eq!(status, StatusCode::OK);
        let identifiers = body["identifiers"].as_array().expect("identifiers");
        assert_eq!(identifiers.len(), 1, "{body}");
        seen.push(identifiers[0].clone());
        match body.get("next-page-token") {
            Some(next) => token = next.as_str().expect("string token").to_owned(),
            None => break,
        }
    }
    assert_eq!(Value::Array(seen), all);

    let (status, body) = f.get("/v1/namespaces/zombi/tables?pageToken=%21%21").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, status, "BadRequestException");
    let (status, body) = f.get("/v1/namespaces/zombi/tables?pageToken=&pageSize=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, status, "BadRequestException");

    let (status, body) = f.get("/v1/namespaces/missing/tables").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NoSuchNamespaceException");
}

#[tokio::test]
async fn load_and_head_table() {
    let f = fixture(&["events"], None).await;
    for uri in [
        "/v1/namespaces/zombi/tables/events",
        "/v1/namespaces/zombi/tables/events?snapshots=all",
        "/v1/namespaces/zombi/tables/events?snapshots=refs",
    ] {
        let (status, body) = f.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let location = body["metadata-location"].as_str().expect("metadata-location");
        assert!(location.ends_with(".metadata.json"), "{location}");
        assert_eq!(body["metadata"]["format-version"], 2);
        assert_eq!(body["metadata"]["schemas"][0]["fields"][0]["name"], "sequence");
    }
    let (status, body) = f.get("/v1/namespaces/zombi/tables/events?snapshots=some").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, status, "BadRequestException");

    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/zombi/tables/events", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/zombi/tables/missing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/missing/tables/events", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = f.get("/v1/namespaces/zombi/tables/missing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NoSuchTableException");
    // Not NoSuchNamespaceException: Spark resolves `zombi.events.snapshots` by loading
    // table `snapshots` of namespace `zombi.events` and expects NoSuchTableException.
    let (status, body) = f.get("/v1/namespaces/zombi%1Fevents/tables/snapshots").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NoSuchTableException");
}

#[tokio::test]
async fn metrics_reports_are_accepted() {
    let f = fixture(&["events"], None).await;
    let (status, body) =
        f.send(Method::POST, "/v1/namespaces/zombi/tables/events/metrics", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
}

#[tokio::test]
async fn writes_are_forbidden() {
    let f = fixture(&["events"], None).await;
    let writes = [
        (Method::POST, "/v1/namespaces"),
        (Method::DELETE, "/v1/namespaces/zombi"),
        (Method::POST, "/v1/namespaces/zombi/properties"),
        // Without a `TableUpdates` (an in-memory catalog), no update is accepted.
        (Method::POST, "/v1/namespaces/zombi/tables/events"),
        (Method::DELETE, "/v1/namespaces/zombi/tables/events"),
        (Method::POST, "/v1/tables/rename"),
        (Method::POST, "/v1/namespaces/zombi/register"),
        (Method::POST, "/v1/transactions/commit"),
    ];
    for (method, uri) in writes {
        let (status, body) = f.send(method.clone(), uri, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert_error(&body, status, "ForbiddenException");
        assert!(body["error"]["message"].as_str().unwrap_or("").contains("read-only"), "{body}");
    }
    // A table creation that is no `CreateTableRequest` is a bad request.
    let (status, body) = f.send(Method::POST, "/v1/namespaces/zombi/tables", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, status, "BadRequestException");
    // Nothing was written.
    let (status, _) = f.send(Method::HEAD, "/v1/namespaces/zombi/tables/events", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn unknown_endpoints_answer_with_an_error_model() {
    let f = fixture(&[], None).await;
    let (status, body) = f.get("/v1/namespaces/zombi/views").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, status, "NotFoundException");
}

#[tokio::test]
async fn auth_on_requires_the_catalog_token() {
    let f = fixture(&["events"], Some(TOKEN)).await;
    for uri in ["/v1/config", "/v1/namespaces/zombi/tables/events", "/v1/no/such/route"] {
        let (status, body) = f.send(Method::GET, uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_error(&body, status, "NotAuthorizedException");
        let (status, body) = f.send(Method::GET, uri, Some("Bearer wrong-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_error(&body, status, "NotAuthorizedException");
    }
    let right = format!("Bearer {TOKEN}");
    let (status, _) = f.send(Method::GET, "/v1/config", Some(&right)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = f.send(Method::GET, "/v1/namespaces/zombi/tables/events", Some(&right)).await;
    assert_eq!(status, StatusCode::OK);
    // Auth comes before the read-only refusal.
    let (status, _) = f.send(Method::POST, "/v1/namespaces", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn auth_off_ignores_pyiceberg_bearer_none() {
    let f = fixture(&["events"], None).await;
    let (status, _) = f.send(Method::GET, "/v1/config", Some("Bearer None")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        f.send(Method::GET, "/v1/namespaces/zombi/tables/events", Some("Bearer None")).await;
    assert_eq!(status, StatusCode::OK);
}
