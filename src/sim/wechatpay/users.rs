//! The mock's side of SPEC B7 and the other offline-face endpoints of API-NOTES §2: the
//! user query (`contract_state`, `face_image_ok`, `contract_id`), terminate contract, the
//! contract query, the repayment URL, the organisations query and the face collections,
//! over a small user table; and the `FACEPAY.USER_STATE_CHANGE` notifications it sends to
//! a configured URL, signed with its platform key and encrypted with the APIv3 key, as
//! WeChat Pay does — including the fault "notification sent twice".

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::{guard, parse, MockState};
use crate::merchant::contracts::{RepaymentUrlRequest, STATE_TERMINATED};
use crate::merchant::notify;
use crate::merchant::sign;

/// One user known to the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockUser {
    pub user_id: String,
    pub contract_id: String,
    /// `SIGNED` / `TERMINATED` / `UNSIGNED`.
    pub contract_state: String,
    pub face_image_ok: bool,
}

#[derive(Default)]
pub(crate) struct Users {
    by_key: Mutex<HashMap<(String, String), MockUser>>,
    notify_url: Mutex<Option<String>>,
    /// Answers of the notifications sent: `(notification id, HTTP status or 0)`.
    deliveries: Mutex<Vec<(String, u16)>>,
    /// The last notification sent, for redelivery under its own id.
    last: Mutex<Option<Notification>>,
}

/// One notification as sent: `(id, headers, body)`.
type Notification = (String, notify::Headers, String);

type S = State<Arc<MockState>>;
type Q = Query<HashMap<String, String>>;

impl MockState {
    /// Enrols a user (as the merchant's face collection would) with a contract state;
    /// returns WeChat Pay's `user_id`.
    pub fn enroll_user(&self, organization_id: &str, out_user_id: &str, contract_state: &str) -> String {
        let h = super::hash(&format!("{organization_id}/{out_user_id}"));
        let u = MockUser {
            user_id: format!("wxu{h}"),
            contract_id: format!("ct{h}"),
            contract_state: contract_state.into(),
            face_image_ok: true,
        };
        let id = u.user_id.clone();
        self.users.by_key.lock().insert((organization_id.into(), out_user_id.into()), u);
        id
    }

    pub fn user(&self, organization_id: &str, out_user_id: &str) -> Option<MockUser> {
        self.users.by_key.lock().get(&(organization_id.to_string(), out_user_id.to_string())).cloned()
    }

    /// Where notifications go (the merchant's `notify_url`).
    pub fn set_notify_url(&self, url: &str) {
        *self.users.notify_url.lock() = Some(url.into());
    }

    /// `(notification id, status)` of every delivery so far (0: no answer).
    pub fn deliveries(&self) -> Vec<(String, u16)> {
        self.users.deliveries.lock().clone()
    }

    /// Changes a user's contract state and tells the merchant: one notification, sent
    /// `copies` times under one id (2 = the fault "notification sent twice"). Returns the
    /// status of each delivery.
    pub async fn change_contract(
        &self,
        organization_id: &str,
        out_user_id: &str,
        contract_state: &str,
        copies: usize,
    ) -> Vec<u16> {
        let key = (organization_id.to_string(), out_user_id.to_string());
        if let Some(u) = self.users.by_key.lock().get_mut(&key) {
            u.contract_state = contract_state.into();
        }
        self.notify_user_state(organization_id, out_user_id, copies).await
    }

    /// A signed, encrypted `FACEPAY.USER_STATE_CHANGE` for a user: `(id, headers, body)`.
    pub fn user_state_notification(&self, organization_id: &str, out_user_id: &str) -> Option<Notification> {
        let u = self.user(organization_id, out_user_id)?;
        let resource = serde_json::json!({
            "user_id": u.user_id, "out_user_id": out_user_id, "organization_id": organization_id,
            "mch_id": self.cfg.mchid, "notify_create_time": "2026-01-01T12:00:00+08:00",
            "appid": "wx8888888888888888", "openid": format!("o{}", &u.user_id[3..]), "contract_id": u.contract_id,
        });
        // Notifications are signed with the certificate when the merchant has one, else
        // with the public key: a receiver must hold the key it does not name (B0).
        let key = self.key_for(None).expect("a key");
        let id = format!("EV-{}", &sign::nonce()[..20]);
        let (h, body) = notify::seal(
            &key.signer,
            &key.signer.serial_no,
            self.cfg.apiv3_key.as_bytes(),
            &id,
            notify::USER_STATE_CHANGE,
            &resource,
            sign::unix_now(),
        )
        .expect("32-byte APIv3 key");
        Some((id, h, body))
    }

    async fn notify_user_state(&self, organization_id: &str, out_user_id: &str, copies: usize) -> Vec<u16> {
        let Some(n) = self.user_state_notification(organization_id, out_user_id) else {
            return Vec::new();
        };
        *self.users.last.lock() = Some(n.clone());
        self.deliver(n, copies).await
    }

    /// Sends the last notification again under its id, as WeChat Pay does until it is
    /// answered 2xx.
    pub async fn redeliver_last(&self) -> Vec<u16> {
        let Some(n) = self.users.last.lock().clone() else { return Vec::new() };
        self.deliver(n, 1).await
    }

    async fn deliver(&self, (id, headers, body): Notification, copies: usize) -> Vec<u16> {
        let Some(url) = self.users.notify_url.lock().clone() else { return Vec::new() };
        let http = reqwest::Client::new();
        let mut out = Vec::new();
        for _ in 0..copies {
            let mut rb = http.post(&url).body(body.clone()).timeout(std::time::Duration::from_secs(5));
            for (k, v) in &headers {
                rb = rb.header(*k, v);
            }
            let status = rb.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            self.users.deliveries.lock().push((id.clone(), status));
            out.push(status);
        }
        out
    }

    fn find_by_user_id(&self, organization_id: &str, user_id: &str) -> Option<(String, MockUser)> {
        self.users
            .by_key
            .lock()
            .iter()
            .find(|((o, _), u)| o == organization_id && u.user_id == user_id)
            .map(|((_, out), u)| (out.clone(), u.clone()))
    }
}

fn user_json(org: &str, out: &str, u: &MockUser) -> serde_json::Value {
    serde_json::json!({
        "user_id": u.user_id, "out_user_id": out, "organization_id": org, "user_type": "STUDENT",
        "status": "NORMAL", "contract_state": u.contract_state, "face_image_ok": u.face_image_ok,
        "contract_id": u.contract_id,
    })
}

pub(crate) async fn h_query_user(
    State(s): S,
    Path((org, out)): Path<(String, String)>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    if !s.cfg.organizations.contains(&org) {
        return s.error(400, "INVALID_REQUEST", "organization does not belong to this merchant");
    }
    match s.user(&org, &out) {
        Some(user) => s.ok(&user_json(&org, &out, &user)),
        None => s.error(404, "NOT_FOUND", "用户不存在"),
    }
}

pub(crate) async fn h_terminate(
    State(s): S,
    Path((org, uid)): Path<(String, String)>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    if !b.is_empty() && &b[..] != b"{}" {
        return s.error(400, "PARAM_ERROR", "terminate-contract takes no body");
    }
    let Some((out, user)) = s.find_by_user_id(&org, &uid) else {
        return s.error(404, "NOT_FOUND", "用户不存在");
    };
    if user.contract_state == STATE_TERMINATED {
        return s.error(400, "INVALID_REQUEST", "contract already terminated");
    }
    if let Some(x) = s.users.by_key.lock().get_mut(&(org.clone(), out.clone())) {
        x.contract_state = STATE_TERMINATED.into();
    }
    // WeChat Pay tells the merchant afterwards, not within the answer.
    let me = s.clone();
    tokio::spawn(async move {
        me.notify_user_state(&org, &out, 1).await;
    });
    (StatusCode::NO_CONTENT, String::new()).into_response()
}

pub(crate) async fn h_contract(
    State(s): S,
    Path(id): Path<String>,
    Query(q): Q,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    if q.get("appid").is_none_or(|a| a.is_empty()) {
        return s.error(400, "PARAM_ERROR", "appid is required");
    }
    let found = s.users.by_key.lock().iter().find(|(_, u)| u.contract_id == id).map(|(k, u)| (k.clone(), u.clone()));
    match found {
        Some(((org, _), user)) => s.ok(&serde_json::json!({
            "contract_id": id, "organization_id": org, "user_id": user.user_id,
            "contract_state": user.contract_state, "contract_signed_time": "2026-01-01T08:00:00+08:00",
            "contract_mode": "LIMIT_NONE",
        })),
        None => s.error(404, "NOT_FOUND", "contract does not exist"),
    }
}

pub(crate) async fn h_repayment_url(State(s): S, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    match parse::<RepaymentUrlRequest>(&s, &b) {
        Ok(r) if s.user(&r.organization_id, &r.out_user_id).is_none() => s.error(404, "NOT_FOUND", "用户不存在"),
        Ok(_) => s.ok(&serde_json::json!({
            "repayment_url": format!("https://pay.weixin.qq.com/mock/repay/{}", &sign::nonce()[..16]),
            "expire_at": "2026-01-01T13:00:00+08:00",
        })),
        Err(r) => r,
    }
}

pub(crate) async fn h_organizations(State(s): S, Query(q): Q, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    match q.get("organization_id") {
        Some(id) if s.cfg.organizations.contains(id) => {
            s.ok(&serde_json::json!({"organization_id": id, "organization_name": "mock canteen"}))
        }
        Some(_) => s.error(404, "NOT_FOUND", "organization does not exist under this merchant"),
        None if q.contains_key("organization_name") => s.error(404, "NOT_FOUND", "no organization of that name"),
        None => s.error(400, "PARAM_ERROR", "organization_id or organization_name is required"),
    }
}

fn collection_json(org: &str, u: &MockUser) -> serde_json::Value {
    serde_json::json!({"collection_id": format!("fc{}", &u.user_id[3..]), "user_id": u.user_id,
        "organization_id": org, "collection_state": "COLLECTED"})
}

pub(crate) async fn h_collections(State(s): S, Query(q): Q, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    let Some(org) = q.get("organization_id").filter(|o| s.cfg.organizations.contains(*o)) else {
        return s.error(400, "PARAM_ERROR", "organization_id of this merchant is required");
    };
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(10).clamp(1, 50);
    let mut all: Vec<serde_json::Value> =
        s.users.by_key.lock().iter().filter(|((o, _), _)| o == org).map(|(_, u)| collection_json(org, u)).collect();
    all.sort_by(|a, b| a["collection_id"].as_str().cmp(&b["collection_id"].as_str()));
    let page: Vec<_> = all.iter().skip(offset).take(limit).cloned().collect();
    s.ok(&serde_json::json!({"data": page, "total_count": all.len(), "offset": offset, "limit": limit}))
}

pub(crate) async fn h_collection(
    State(s): S,
    Path(id): Path<String>,
    Query(q): Q,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Err(r) = guard(&s, m, u, h, &b).await {
        return r;
    }
    let Some(org) = q.get("organization_id").filter(|o| s.cfg.organizations.contains(*o)) else {
        return s.error(400, "PARAM_ERROR", "organization_id of this merchant is required");
    };
    let found = s
        .users
        .by_key
        .lock()
        .iter()
        .filter(|((o, _), _)| o == org)
        .map(|(_, u)| collection_json(org, u))
        .find(|c| c["collection_id"] == id);
    match found {
        Some(c) => s.ok(&c),
        None => s.error(404, "NOT_FOUND", "face collection does not exist"),
    }
}
