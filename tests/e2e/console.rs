//! The admin web console (`/console/`) over a real socket, as a browser without JavaScript
//! uses it: plain GETs and form POSTs with the session cookie. Sign-in, sessions, CSRF,
//! security headers, write controls by role, tenancy, secrets shown once, and that every
//! console action is refused whenever the admin API refuses it.

use crate::harness::*;
use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use reqwest::Method;
use serde_json::{json, Value};

/// A cookie-keeping client that does not follow redirects, like a browser seen from the wire.
struct Browser {
    http: reqwest::Client,
    base: String,
    /// The session cookie's value.
    cookie: Option<String>,
    /// The sign-in form's cookie (its CSRF challenge).
    sign_in_cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The CSRF token of the page's forms.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field on the page: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(server: &TestServer) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.url.clone(),
            cookie: None,
            sign_in_cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut cookies = Vec::new();
        if let Some(value) = &self.cookie {
            cookies.push(format!("tessera_console={value}"));
        }
        if let Some(value) = &self.sign_in_cookie {
            cookies.push(format!("tessera_console_sign_in={value}"));
        }
        let request = if cookies.is_empty() {
            request
        } else {
            request.header("cookie", cookies.join("; "))
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            if let Some(rest) = set.strip_prefix("tessera_console=") {
                let value = rest.split(';').next().unwrap();
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
            if let Some(rest) = set.strip_prefix("tessera_console_sign_in=") {
                let value = rest.split(';').next().unwrap();
                self.sign_in_cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        let body = response.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// `get`, failing the test (with the page) unless it answers `status`.
    async fn get_expecting(&mut self, path: &str, status: u16) -> Page {
        let page = self.get(path).await;
        assert_eq!(page.status, status, "GET {path}: {}", page.body);
        page
    }

    /// `post`, failing the test (with the page) unless it answers `status`.
    async fn post_expecting(&mut self, path: &str, form: &[(&str, &str)], status: u16) -> Page {
        let page = self.post(path, form).await;
        assert_eq!(page.status, status, "POST {path}: {}", page.body);
        page
    }

    async fn post_pairs(&mut self, path: &str, form: &[(String, String)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Posts the sign-in form as a browser does: first served the form (its cookie and CSRF
    /// token), then posting it with `fields`.
    async fn sign_in(&mut self, fields: &[(&str, &str)]) -> Page {
        let form = self.get_expecting("/console/sign-in", 200).await;
        let csrf = form.csrf();
        let mut posted = vec![("csrf", csrf.as_str())];
        posted.extend_from_slice(fields);
        self.post("/console/sign-in", &posted).await
    }

    /// Signs in with an API key, asserting success.
    async fn signed_in(server: &TestServer, apikey: &str) -> Browser {
        let mut browser = Browser::new(server);
        let page = browser
            .sign_in(&[("method", "apikey"), ("apikey", apikey)])
            .await;
        assert_eq!(page.status, 303, "sign-in: {}", page.body);
        assert_eq!(page.location(), "/console/");
        assert!(browser.cookie.is_some());
        browser
    }

    /// The CSRF token of this session (from its home page).
    async fn csrf(&mut self) -> String {
        let page = self.get_expecting("/console/", 200).await;
        page.csrf()
    }
}

/// A page without the values of its CSRF fields (fresh on every sign-in page).
fn without_csrf(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("name=\"csrf\" value=\"") {
        let value_at = at + "name=\"csrf\" value=\"".len();
        out.push_str(&rest[..value_at]);
        rest = &rest[value_at..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

fn assert_security_headers(page: &Page) {
    let csp = page.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers[CACHE_CONTROL], "no-store");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
}

async fn new_account(server: &TestServer, admin: &str, name: &str) -> String {
    account_named(&server.client().with_token(admin), name)
        .await
        .id
}

/// An in-process server, its administrator's token and a new account `name` of it.
async fn server_with_account(name: &str) -> (TestServer, String, String) {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let account = new_account(&server, &admin, name).await;
    (server, admin, account)
}

/// A new service account `name` in `account`, created by `admin` through the admin API: the
/// create answer.
async fn service_account_json(
    server: &TestServer,
    admin: &str,
    account: &str,
    name: &str,
) -> Value {
    let body = json!({"name": name, "account_id": account});
    server.create(admin, "service_accounts", body).await
}

#[tokio::test]
async fn the_root_redirects_and_every_console_response_has_the_security_headers() {
    let server = TestServer::in_process().await;
    let mut browser = Browser::new(&server);
    let root = browser.get("/").await;
    assert_eq!(root.status, 303);
    assert_eq!(root.location(), "/console/");

    let home = browser.get("/console/").await;
    assert_eq!(home.status, 303, "not signed in");
    assert_eq!(home.location(), "/console/sign-in");
    assert_security_headers(&home);

    let sign_in = browser.get("/console/sign-in").await;
    assert_eq!(sign_in.status, 200);
    assert_security_headers(&sign_in);
    assert!(
        sign_in.body.contains("<label for=\"apikey\">"),
        "labelled controls"
    );
    assert!(!sign_in.body.contains("<script>"), "no inline script");
    assert!(!sign_in.body.contains("style="), "no inline style");

    let css = browser.get("/console/static/console.css").await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_security_headers(&css);
    let js = browser.get("/console/static/console.js").await;
    assert_eq!(js.status, 200);

    let missing = browser.get("/console/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert_security_headers(&missing);
}

#[tokio::test]
async fn api_key_sign_in_refuses_a_wrong_key_alike_and_sign_out_ends_the_session() {
    let server = TestServer::in_process().await;
    let mut stranger = Browser::new(&server);
    let unknown = stranger
        .sign_in(&[
            ("method", "apikey"),
            ("apikey", "no-such-key-0123456789abcdefghij"),
        ])
        .await;
    let empty = stranger
        .sign_in(&[("method", "apikey"), ("apikey", "")])
        .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(empty.status, 401);
    assert!(unknown
        .body
        .contains("The sign-in failed: the API key is not valid."));
    assert!(stranger.cookie.is_none());

    let mut browser = Browser::new(&server);
    let page = browser
        .sign_in(&[("method", "apikey"), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(page.status, 303);
    let set = page.headers[SET_COOKIE].to_str().unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=900",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure");
    let home = browser.get("/console/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Global administrator"));
    assert_security_headers(&home);

    let kept = browser.cookie.clone();
    let csrf = home.csrf();
    let out = browser.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/console/sign-in");
    assert!(browser.cookie.is_none(), "the cookie is cleared");
    // A kept copy of the cookie is worthless: its token was revoked.
    browser.cookie = kept;
    let after = browser.get("/console/").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/console/sign-in");
}

#[tokio::test]
async fn password_sign_in_says_nothing_of_whether_the_user_exists() {
    let server = TestServer::in_process().await;
    let admin = server.admin_token().await;
    let user = server
        .create(
            &admin,
            "users",
            json!({"name": "Ann", "email": "ann@example.com", "password": "ann-password-0123"}),
        )
        .await;
    let mut browser = Browser::new(&server);
    let attempt = |username: &'static str, password: &'static str| {
        [
            ("method", "password"),
            ("username", username),
            ("password", password),
        ]
    };
    let wrong = browser
        .sign_in(&attempt("ann@example.com", "wrong-password-1"))
        .await;
    let nobody = browser
        .sign_in(&attempt("nobody@example.com", "wrong-password-1"))
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(nobody.status, wrong.status);
    assert_eq!(
        without_csrf(&nobody.body),
        without_csrf(&wrong.body),
        "the same page for both (but for the fresh form token)"
    );
    assert!(browser.cookie.is_none());

    let good = browser
        .sign_in(&attempt("ann@example.com", "ann-password-0123"))
        .await;
    assert_eq!(good.status, 303, "{}", good.body);
    let home = browser.get("/console/").await;
    assert!(
        home.body.contains(user["id"].as_str().unwrap()),
        "{}",
        home.body
    );
}

#[tokio::test]
async fn every_form_needs_the_sessions_csrf_token_and_a_same_site_origin() {
    let server = TestServer::in_process().await;
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;
    let mut other = Browser::signed_in(&server, ADMIN_KEY).await;
    let mine = browser.csrf().await;
    let theirs = other.csrf().await;
    assert_ne!(mine, theirs, "bound to the session");

    let create = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("name".to_owned(), "from-the-console".to_owned()),
        ]
    };
    for csrf in ["", "0000", theirs.as_str()] {
        let form = create(csrf);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let page = browser.post("/console/r/service_accounts", &form).await;
        assert_eq!(page.status, 403, "csrf {csrf:?}: {}", page.body);
        assert!(page.body.contains("CSRF"));
    }
    let no_field = browser
        .post("/console/r/service_accounts", &[("name", "x")])
        .await;
    assert_eq!(no_field.status, 403);
    let cross_site = browser
        .http
        .post(format!("{}/console/r/service_accounts", browser.base))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", mine.as_str()), ("name", "x")]);
    let cross_site = browser.send(cross_site).await;
    assert_eq!(cross_site.status, 403);
    let admin = server.admin_client().await;
    let listed = admin
        .list::<tessera_client::resource::ServiceAccounts>(&Default::default())
        .await
        .unwrap();
    assert!(listed
        .iter()
        .all(|sa| sa.name != "x" && sa.name != "from-the-console"));

    browser
        .post_expecting(
            "/console/r/service_accounts",
            &[("csrf", &mine), ("name", "from-the-console")],
            201,
        )
        .await;
    // A sign-out without the token is refused too.
    let out = browser.post("/console/sign-out", &[]).await;
    assert_eq!(out.status, 403);
}

/// A renewed session revokes the token it replaces: a stolen copy of an earlier cookie (or its
/// token, used as a bearer of the admin API) stops working at the renewal.
#[tokio::test]
async fn a_renewal_kills_the_earlier_cookie() {
    let server = TestServer::in_process().await;
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;
    let stolen = browser.cookie.clone().unwrap();
    let stolen_token = stolen.splitn(4, '.').nth(3).unwrap().to_owned();
    let (status, _) = server.admin_get("/v1/whoami", &stolen_token).await;
    assert_eq!(status, 200, "the session's token is a bearer token");

    server.advance(std::time::Duration::from_secs(6 * 60)).await;
    let home = browser.get("/console/").await;
    assert_eq!(home.status, 200);
    let renewed = browser.cookie.clone().unwrap();
    assert_ne!(renewed, stolen, "renewed");

    let mut thief = Browser::new(&server);
    thief.cookie = Some(stolen);
    let page = thief.get("/console/").await;
    assert_eq!(
        page.status, 303,
        "the earlier cookie is dead: {}",
        page.body
    );
    assert_eq!(page.location(), "/console/sign-in");
    let (status, _) = server.admin_get("/v1/whoami", &stolen_token).await;
    assert_eq!(status, 401, "and so is its token");
    assert_eq!(
        browser.get("/console/").await.status,
        200,
        "the owner goes on"
    );
}

/// However much it is used, a session ends eight hours after the sign-in.
#[tokio::test]
async fn a_session_ends_eight_hours_after_the_sign_in() {
    let server = TestServer::in_process().await;
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;
    // Used every 14 minutes (each use within the idle lifetime), for 7 h 56 min.
    for step in 1..=34 {
        server
            .advance(std::time::Duration::from_secs(14 * 60))
            .await;
        let home = browser.get("/console/").await;
        assert_eq!(home.status, 200, "step {step}: {}", home.body);
    }
    server.advance(std::time::Duration::from_secs(4 * 60)).await;
    let home = browser.get("/console/").await;
    assert_eq!(home.status, 303, "eight hours on: over");
    assert_eq!(home.location(), "/console/sign-in");
    let csrf_form = browser.post("/console/sign-out", &[("csrf", "x")]).await;
    assert_eq!(csrf_form.status, 401);
    assert!(
        csrf_form.body.contains("more than 8 hours old"),
        "{}",
        csrf_form.body
    );
    // Signing in again starts a new session.
    let again = browser
        .sign_in(&[("method", "apikey"), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(browser.get("/console/").await.status, 200);
}

/// Login CSRF: a sign-in form posted from another site (here: without the sign-in cookie,
/// which `SameSite=Strict` keeps from cross-site posts, and without `Sec-Fetch-Site`, as an
/// older browser sends it) must not sign the victim's browser in as the attacker.
#[tokio::test]
async fn a_sign_in_needs_the_forms_own_csrf_token_and_cookie() {
    let server = TestServer::in_process().await;
    let key = [("method", "apikey"), ("apikey", ADMIN_KEY)];
    let mut victim = Browser::new(&server);
    let forged = victim.post_expecting("/console/sign-in", &key, 403).await;
    assert!(forged
        .body
        .contains("sign-in form has expired or did not come from this console"));
    assert!(victim.cookie.is_none(), "no session");

    // The attacker's own form token, without its cookie, in the victim's browser.
    let mut attacker = Browser::new(&server);
    let form = attacker.get("/console/sign-in").await;
    let set = form.headers[SET_COOKIE].to_str().unwrap();
    for attribute in [
        "tessera_console_sign_in=",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=600",
    ] {
        assert!(set.contains(attribute), "{set}");
    }
    let token = form.csrf();
    let mut posted = vec![("csrf", token.as_str())];
    posted.extend_from_slice(&key);
    let forged = victim.post("/console/sign-in", &posted).await;
    assert_eq!(forged.status, 403);
    assert!(victim.cookie.is_none());
    // The victim's own cookie with the attacker's token: still refused.
    let _ = victim.get("/console/sign-in").await;
    assert!(victim.sign_in_cookie.is_some());
    let forged = victim.post("/console/sign-in", &posted).await;
    assert_eq!(forged.status, 403);
    assert!(victim.cookie.is_none());

    // A form served eleven minutes ago has expired.
    let mut slow = Browser::new(&server);
    let form = slow.get("/console/sign-in").await;
    server
        .advance(std::time::Duration::from_secs(11 * 60))
        .await;
    let token = form.csrf();
    let mut posted = vec![("csrf", token.as_str())];
    posted.extend_from_slice(&key);
    slow.post_expecting("/console/sign-in", &posted, 403).await;
    assert!(slow.cookie.is_none());

    // The form as served, posted back: signed in, and the challenge is spent.
    let page = attacker.sign_in(&key).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(attacker.cookie.is_some());
    assert!(
        attacker.sign_in_cookie.is_none(),
        "the sign-in cookie is cleared"
    );
}

#[tokio::test]
async fn an_api_key_made_in_the_console_is_shown_once_and_works_at_the_token_endpoint() {
    let server = TestServer::in_process().await;
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;
    let csrf = browser.csrf().await;
    browser
        .post_expecting(
            "/console/r/service_accounts",
            &[("csrf", &csrf), ("name", "deployer"), ("description", "CI")],
            201,
        )
        .await;
    let admin = server.admin_client().await;
    let sa = admin
        .list::<tessera_client::resource::ServiceAccounts>(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .find(|sa| sa.name == "deployer")
        .unwrap();
    let page = browser
        .post_expecting(
            "/console/r/api_keys",
            &[
                ("csrf", &csrf),
                ("owner_iam_id", &sa.iam_id),
                ("name", "ci-key"),
            ],
            201,
        )
        .await;
    assert_security_headers(&page);
    assert!(page.body.contains("shown once"));
    assert!(page.body.contains("data-copy=\"secret\""), "a copy button");
    let at = page.body.find("id=\"secret\"").unwrap();
    let value_at = page.body[at..].find("value=\"").unwrap() + at + 7;
    let apikey = &page.body[value_at..value_at + page.body[value_at..].find('"').unwrap()];
    let token = server.token(apikey).await;
    assert!(!token.is_empty());

    let list = browser.get("/console/r/api_keys?q=ci-key").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("ci-key"));
    assert!(
        !list.body.contains(apikey),
        "the key is never rendered again"
    );
}

#[tokio::test]
async fn a_viewer_sees_no_write_controls_and_its_forged_writes_get_403() {
    let (server, admin, account) = server_with_account("team").await;
    let (_, viewer_key) = member(&server, &admin, &account, "viewer").await;
    let (_, admin_key) = member(&server, &admin, &account, "admin").await;
    let target = service_account_json(&server, &admin, &account, "target").await;
    let target_id = target["id"].as_str().unwrap();

    let mut owner = Browser::signed_in(&server, &admin_key).await;
    let list = owner
        .get(&format!("/console/r/service_accounts?account_id={account}"))
        .await;
    assert!(
        list.body.contains("Create service account"),
        "{}",
        list.body
    );
    assert!(list.body.contains(">Delete<"));

    let mut viewer = Browser::signed_in(&server, &viewer_key).await;
    let list = viewer
        .get_expecting(
            &format!("/console/r/service_accounts?account_id={account}"),
            200,
        )
        .await;
    assert!(list.body.contains("target"), "the viewer reads");
    assert!(
        !list.body.contains("Create service account"),
        "no create form"
    );
    assert!(!list.body.contains(">Delete<"), "no delete control");
    for (slug, noun) in [
        ("trusted_profiles", "trusted profile"),
        ("trusted_issuers", "trusted issuer"),
        ("authorization_policies", "authorization policy"),
    ] {
        let list = viewer
            .get(&format!("/console/r/{slug}?account_id={account}"))
            .await;
        assert_eq!(list.status, 200, "{slug}: {}", list.body);
        assert!(!list.body.contains(&format!("Create {noun}")), "{slug}");
        let list = owner
            .get(&format!("/console/r/{slug}?account_id={account}"))
            .await;
        assert!(list.body.contains(&format!("Create {noun}")), "{slug}");
    }
    let detail = viewer
        .get(&format!("/console/r/service_accounts/{target_id}"))
        .await;
    assert_eq!(detail.status, 200);
    assert!(
        !detail.body.contains(">Delete service account<"),
        "no delete on the detail page"
    );
    let keys = viewer.get("/console/signing-keys").await;
    assert_eq!(
        keys.status, 403,
        "signing keys are the global administrator's"
    );

    let csrf = viewer.csrf().await;
    viewer
        .post_expecting(
            "/console/r/service_accounts",
            &[
                ("csrf", &csrf),
                ("name", "forged"),
                ("account_id", &account),
            ],
            403,
        )
        .await;
    viewer
        .post_expecting(
            &format!("/console/r/service_accounts/{target_id}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
            403,
        )
        .await;
    let rotate = viewer
        .post(
            "/console/signing-keys/rotate",
            &[("csrf", &csrf), ("use", "jwt")],
        )
        .await;
    assert_eq!(rotate.status, 403);
}

#[tokio::test]
async fn another_accounts_objects_are_refused_as_the_admin_api_refuses_them() {
    let (server, admin, a) = server_with_account("a").await;
    let b = new_account(&server, &admin, "b").await;
    let (_, a_key) = member(&server, &admin, &a, "admin").await;
    let theirs = service_account_json(&server, &admin, &b, "b-only").await;
    let id = theirs["id"].as_str().unwrap();
    let a_token = server.token(&a_key).await;
    let (api_status, _) = server
        .admin_get(&format!("/v1/service_accounts/{id}"), &a_token)
        .await;
    assert_eq!(api_status, 403);

    let mut browser = Browser::signed_in(&server, &a_key).await;
    let confirm = browser
        .get(&format!("/console/r/service_accounts/{id}/delete"))
        .await;
    assert_eq!(confirm.status, api_status, "{}", confirm.body);
    let listed = browser
        .get_expecting(&format!("/console/r/service_accounts?account_id={b}"), 403)
        .await;
    assert!(!listed.body.contains("b-only"));
    let csrf = browser.csrf().await;
    let delete = browser
        .post(
            &format!("/console/r/service_accounts/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(delete.status, 403);
    let (still, _) = server
        .admin_get(&format!("/v1/service_accounts/{id}"), &admin)
        .await;
    assert_eq!(still, 200, "nothing was deleted");
}

#[tokio::test]
async fn a_delete_asks_first_names_what_goes_and_the_session_ends_with_its_key() {
    let (server, admin, account) = server_with_account("ops").await;
    let (owner_iam_id, key) = member(&server, &admin, &account, "admin").await;
    let doomed = service_account_json(&server, &admin, &account, "doomed").await;
    let id = doomed["id"].as_str().unwrap();

    let mut browser = Browser::signed_in(&server, &key).await;
    let confirm = browser
        .get_expecting(&format!("/console/r/service_accounts/{id}/delete"), 200)
        .await;
    assert!(confirm.body.contains("doomed") && confirm.body.contains(id));
    assert!(
        confirm
            .body
            .contains("API keys, authorized keys, access bindings"),
        "the cascade"
    );
    let csrf = confirm.csrf();
    let unconfirmed = browser
        .post(
            &format!("/console/r/service_accounts/{id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(unconfirmed.status, 400);
    browser
        .post_expecting(
            &format!("/console/r/service_accounts/{id}/delete"),
            &[("csrf", &csrf), ("confirm", "yes")],
            303,
        )
        .await;
    let (gone, _) = server
        .admin_get(&format!("/v1/service_accounts/{id}"), &admin)
        .await;
    assert_eq!(gone, 404);

    // Deleting the API key the session came from ends the session at once.
    let admin_client = server.admin_client().await;
    let keys = admin_client
        .list::<tessera_client::resource::ApiKeys>(&tessera_client::api::admin::ListQuery {
            owner_iam_id: Some(owner_iam_id),
            ..Default::default()
        })
        .await
        .unwrap();
    admin_client
        .delete::<tessera_client::resource::ApiKeys>(&keys[0].id)
        .await
        .unwrap();
    let after = browser.get("/console/").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/console/sign-in");
}

#[tokio::test]
async fn bindings_signing_keys_audit_and_the_token_inspector() {
    let (server, admin, account) = server_with_account("grants").await;
    let (subject, subject_key) = member(&server, &admin, &account, "").await;
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;

    let bindings = browser.get("/console/r/access_bindings").await;
    assert!(
        bindings.body.contains("Read everything in the resource"),
        "roles with meanings"
    );
    let csrf = bindings.csrf();
    let resource = format!("account/{account}");
    browser
        .post_expecting(
            "/console/r/access_bindings",
            &[
                ("csrf", &csrf),
                ("subject_iam_id", &subject),
                ("role", "viewer"),
                ("resource", &resource),
            ],
            201,
        )
        .await;
    let subject_token = server.token(&subject_key).await;
    let (status, _) = server
        .admin_get(
            &format!("/v1/service_accounts?account_id={account}"),
            &subject_token,
        )
        .await;
    assert_eq!(status, 200, "the grant took effect");

    let before = browser.get("/console/signing-keys").await;
    assert_eq!(before.status, 200);
    assert!(before.body.contains("Rotate now"));
    let rows_before = before.body.matches("<tr>").count();
    browser
        .post_expecting(
            "/console/signing-keys/rotate",
            &[("csrf", &csrf), ("use", "jwt")],
            303,
        )
        .await;
    let after = browser.get("/console/signing-keys").await;
    assert_eq!(
        after.body.matches("<tr>").count(),
        rows_before + 1,
        "a successor"
    );

    let audit = browser
        .get("/console/audit?action=access_binding.create")
        .await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("access_binding.create"));
    assert!(!audit.body.contains("service_account.create"), "filtered");
    let bad = browser.get("/console/audit?since=yesterday").await;
    assert_eq!(bad.status, 400, "the admin API's refusal of a bad filter");

    let inspected = browser
        .post(
            "/console/inspect",
            &[("csrf", &csrf), ("token", &subject_token)],
        )
        .await;
    assert_eq!(inspected.status, 200);
    assert!(
        inspected.body.contains("Signature valid, token active."),
        "{}",
        inspected.body
    );
    assert!(inspected.body.contains(&subject));
    assert!(inspected.body.contains("Header (unverified)"));
    let forged = format!("{}x", &subject_token[..subject_token.len() - 2]);
    let inspected = browser
        .post("/console/inspect", &[("csrf", &csrf), ("token", &forged)])
        .await;
    assert!(inspected.body.contains("Not active"), "{}", inspected.body);
}

/// A console create form and its admin API twin: (collection, form fields, API path, body).
type Create<'a> = (&'a str, Vec<(&'a str, String)>, &'a str, Value);

/// Every console action, for a principal the admin API refuses: the console refuses it with
/// the admin API's own status, and changes nothing.
#[tokio::test]
async fn every_console_action_is_refused_whenever_the_admin_api_refuses_it() {
    let (server, admin, account) = server_with_account("guarded").await;
    let other = new_account(&server, &admin, "other").await;
    let (_, weak_key) = member(&server, &admin, &other, "viewer").await;
    let weak_token = server.token(&weak_key).await;
    let sa = service_account_json(&server, &admin, &account, "sa").await;
    let sa_iam = sa["iam_id"].as_str().unwrap();
    let sa_id = sa["id"].as_str().unwrap();
    let key = server
        .create(
            &admin,
            "api_keys",
            json!({"owner_iam_id": sa_iam, "name": "k"}),
        )
        .await;
    let binding = server
        .create(
            &admin,
            "access_bindings",
            json!({"subject_iam_id": sa_iam, "role": "viewer", "resource": format!("account/{account}")}),
        )
        .await;
    let user = server
        .create(
            &admin,
            "users",
            json!({"name": "u", "email": "u@example.com", "account_id": account}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    let issuer_key = crate::cr_token::TestKey::new("k1", tessera_core::model::Algorithm::Es256);
    let target_crn = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:*");
    let mut browser = Browser::signed_in(&server, &weak_key).await;
    let csrf = browser.csrf().await;

    // (console form path, form, admin API method, path, body)
    let creates: Vec<Create> = vec![
        (
            "accounts",
            vec![("name", "x".into())],
            "/v1/accounts",
            json!({"name": "x"}),
        ),
        (
            "enterprises",
            vec![("name", "x".into())],
            "/v1/enterprises",
            json!({"name": "x"}),
        ),
        (
            "users",
            vec![
                ("name", "x".into()),
                ("email", "x@example.com".into()),
                ("account_id", account.clone()),
            ],
            "/v1/users",
            json!({"name": "x", "email": "x@example.com", "account_id": account}),
        ),
        (
            "service_accounts",
            vec![("name", "x".into()), ("account_id", account.clone())],
            "/v1/service_accounts",
            json!({"name": "x", "account_id": account}),
        ),
        (
            "api_keys",
            vec![("owner_iam_id", sa_iam.into()), ("name", "x".into())],
            "/v1/api_keys",
            json!({"owner_iam_id": sa_iam, "name": "x"}),
        ),
        (
            "authorized_keys",
            vec![("service_account_id", sa_id.into())],
            "/v1/authorized_keys",
            json!({"service_account_id": sa_id}),
        ),
        (
            "clients",
            vec![("id", "x-client".into()), ("account_id", account.clone())],
            "/v1/clients",
            json!({"id": "x-client", "account_id": account}),
        ),
        (
            "access_bindings",
            vec![
                ("subject_iam_id", sa_iam.into()),
                ("role", "admin".into()),
                ("resource", format!("account/{account}")),
            ],
            "/v1/access_bindings",
            json!({"subject_iam_id": sa_iam, "role": "admin", "resource": format!("account/{account}")}),
        ),
        (
            "trusted_profiles",
            vec![
                ("name", "x".into()),
                ("account_id", account.clone()),
                ("identities.0.type", "serviceid".into()),
                ("identities.0.identifier", sa_iam.into()),
            ],
            "/v1/trusted_profiles",
            json!({"name": "x", "account_id": account, "identities": [{"type": "serviceid", "identifier": sa_iam}], "links": [], "rules": []}),
        ),
        (
            "trusted_issuers",
            vec![
                ("name", "x".into()),
                ("issuer_url", "https://x.example.com".into()),
                ("jwks", issuer_key.jwks().to_string()),
                ("account_id", account.clone()),
            ],
            "/v1/trusted_issuers",
            json!({"name": "x", "issuer_url": "https://x.example.com", "jwks": issuer_key.jwks(), "account_id": account}),
        ),
        (
            "authorization_policies",
            vec![
                ("source_iam_id", sa_iam.into()),
                ("target_crn", target_crn.clone()),
                ("account_id", account.clone()),
            ],
            "/v1/authorization_policies",
            json!({"source_iam_id": sa_iam, "target_crn": target_crn, "account_id": account}),
        ),
    ];
    for (slug, fields, api_path, body) in creates {
        let (api_status, _) = server.admin_post(api_path, &weak_token, body).await;
        assert!(
            api_status == 403 || api_status == 404,
            "{slug}: the admin API refuses ({api_status})"
        );
        let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let page = browser.post(&format!("/console/r/{slug}"), &form).await;
        assert_eq!(page.status, api_status, "{slug}: {}", page.body);
    }
    let deletes = [
        (
            "service_accounts",
            sa_id.to_owned(),
            format!("/v1/service_accounts/{sa_id}"),
        ),
        (
            "api_keys",
            key["id"].as_str().unwrap().to_owned(),
            format!("/v1/api_keys/{}", key["id"].as_str().unwrap()),
        ),
        (
            "access_bindings",
            binding["id"].as_str().unwrap().to_owned(),
            format!("/v1/access_bindings/{}", binding["id"].as_str().unwrap()),
        ),
        (
            "accounts",
            account.clone(),
            format!("/v1/accounts/{account}"),
        ),
    ];
    for (slug, id, api_path) in deletes {
        let page = browser
            .post(
                &format!("/console/r/{slug}/{id}/delete"),
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        let (api_status, _) = server.admin_delete(&api_path, &weak_token).await;
        assert!(
            api_status == 403 || api_status == 404,
            "{slug}: {api_status}"
        );
        assert_eq!(page.status, api_status, "delete {slug}: {}", page.body);
        let (still, _) = server.admin_get(&api_path, &admin).await;
        assert_eq!(still, 200, "{slug} is still there");
    }
    let (api_status, _) = server
        .admin_post(
            "/v1/signing_keys/rotate",
            &weak_token,
            json!({"use": "jwt"}),
        )
        .await;
    let page = browser
        .post(
            "/console/signing-keys/rotate",
            &[("csrf", &csrf), ("use", "jwt")],
        )
        .await;
    assert_eq!(page.status, api_status);
    let (api_status, _) = server.admin_get("/v1/audit", &weak_token).await;
    let page = browser.get("/console/audit").await;
    assert_eq!(page.status, api_status);
    let page = browser.get("/console/audit/1").await;
    assert_eq!(page.status, api_status, "one event");

    // The MFA writes and the detail pages.
    let writes = [
        (
            format!("/console/r/accounts/{account}/mfa"),
            vec![("mfa", "TOTP")],
            Method::PATCH,
            format!("/v1/accounts/{account}"),
            Some(json!({"mfa": "TOTP"})),
        ),
        (
            format!("/console/r/users/{user_id}/totp"),
            vec![("step", "enroll")],
            Method::POST,
            format!("/v1/users/{user_id}/totp"),
            None,
        ),
        (
            format!("/console/r/users/{user_id}/totp"),
            vec![("step", "confirm"), ("code", "123456")],
            Method::POST,
            format!("/v1/users/{user_id}/totp/confirm"),
            Some(json!({"code": "123456"})),
        ),
        (
            format!("/console/r/users/{user_id}/totp"),
            vec![("step", "remove")],
            Method::DELETE,
            format!("/v1/users/{user_id}/totp"),
            None,
        ),
    ];
    for (console_path, fields, method, api_path, body) in writes {
        let (api_status, _) = server.admin(method, &api_path, &weak_token, body).await;
        assert!(
            api_status == 403 || api_status == 404,
            "{api_path}: {api_status}"
        );
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let page = browser.post(&console_path, &form).await;
        assert_eq!(page.status, api_status, "{console_path}: {}", page.body);
    }
    let (_, view) = server
        .admin_get(&format!("/v1/accounts/{account}"), &admin)
        .await;
    assert_eq!(view["mfa"], "NONE", "unchanged");
    let (_, view) = server
        .admin_get(&format!("/v1/users/{user_id}"), &admin)
        .await;
    assert_eq!(view["totp"], "none", "no factor enrolled");
    for (console_path, api_path) in [
        (
            format!("/console/r/service_accounts/{sa_id}"),
            format!("/v1/service_accounts/{sa_id}"),
        ),
        (
            format!("/console/r/users/{user_id}"),
            format!("/v1/users/{user_id}"),
        ),
        (
            format!("/console/r/accounts/{account}"),
            format!("/v1/accounts/{account}"),
        ),
    ] {
        let (api_status, _) = server.admin_get(&api_path, &weak_token).await;
        let page = browser.get(&console_path).await;
        assert_eq!(page.status, api_status, "{console_path}");
    }
}

/// `text` as maud escapes it in a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The admin API's 400 message for `body` at `path` (as the administrator).
async fn api_message(server: &TestServer, admin: &str, path: &str, body: Value) -> String {
    let (status, answer) = server.admin_post(path, admin, body).await;
    assert_eq!(status, 400, "{answer}");
    answer["error"]["message"].as_str().unwrap().to_owned()
}

/// Trusted profiles (identities, links and the claim-rule editor), trusted issuers and
/// authorization policies are created through the admin API: its 400 message appears next to
/// the form, with what was entered kept; "More rows" adds rows without sending anything.
#[tokio::test]
async fn profiles_issuers_and_policies_are_created_as_the_admin_api_validates_them() {
    let (server, admin, account) = server_with_account("trust").await;
    let sa = service_account_json(&server, &admin, &account, "runner").await;
    let sa_iam = sa["iam_id"].as_str().unwrap();
    let mut browser = Browser::signed_in(&server, ADMIN_KEY).await;

    let list = browser.get("/console/r/trusted_profiles").await;
    assert!(
        list.body.contains("Create trusted profile"),
        "{}",
        list.body
    );
    for field in [
        "name=\"identities.0.identifier\"",
        "name=\"links.0.crn\"",
        "name=\"rules.0.conditions.0.claim\"",
        "<option value=\"NOT_EQUALS_IGNORE_CASE\">",
        "<option value=\"IKS_SA\">",
    ] {
        assert!(list.body.contains(field), "{field}");
    }
    let csrf = list.csrf();
    let profile = |value: &'static str| {
        vec![
            ("name", "deployers".to_owned()),
            ("account_id", account.clone()),
            ("identities.0.type", "serviceid".to_owned()),
            ("identities.0.identifier", sa_iam.to_owned()),
            ("rules.0.name", "prod".to_owned()),
            ("rules.0.cr_type", "CE".to_owned()),
            ("rules.0.conditions.0.claim", "namespace".to_owned()),
            ("rules.0.conditions.0.operator", "EQUALS".to_owned()),
            ("rules.0.conditions.0.value", value.to_owned()),
        ]
    };
    let post = |fields: &Vec<(&'static str, String)>, extra: &[(&'static str, &'static str)]| {
        let mut form: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
        form.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        form.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        form
    };

    // A condition value that is not JSON: the admin API's own message, values kept.
    let expected = api_message(
        &server,
        &admin,
        "/v1/trusted_profiles",
        json!({"name": "deployers", "account_id": account,
            "identities": [{"type": "serviceid", "identifier": sa_iam}],
            "rules": [{"name": "prod", "type": "Profile-CR", "cr_type": "CE", "conditions": [
                {"claim": "namespace", "operator": "EQUALS", "value": "prod"}]}]}),
    )
    .await;
    assert!(expected.contains("rules[0].conditions[0]"), "{expected}");
    let refused = browser
        .post_pairs("/console/r/trusted_profiles", &post(&profile("prod"), &[]))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains(&escaped(&expected)),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("value=\"deployers\""),
        "the name kept"
    );
    assert!(
        refused.body.contains(&format!("value=\"{sa_iam}\"")),
        "the identity kept"
    );
    assert!(
        refused.body.contains("value=\"prod\""),
        "the condition kept"
    );
    assert!(
        refused.body.contains("<option value=\"CE\" selected>"),
        "the choice kept"
    );

    // More rows: the form again with more rows, nothing created.
    let more = browser
        .post_pairs(
            "/console/r/trusted_profiles",
            &post(&profile("prod"), &[("more", "rows")]),
        )
        .await;
    assert_eq!(more.status, 200, "{}", more.body);
    assert!(more.body.contains("name=\"rules.3.name\""), "spare rules");
    assert!(
        more.body.contains("name=\"identities.3.identifier\""),
        "spare identities"
    );
    assert!(more.body.contains("value=\"deployers\""));
    let (_, listed) = server.admin_get("/v1/trusted_profiles", &admin).await;
    assert_eq!(listed["trusted_profiles"], json!([]), "nothing was sent");

    // Valid now: created with exactly the rows entered.
    let created = browser
        .post_pairs(
            "/console/r/trusted_profiles",
            &post(&profile("\"prod\""), &[]),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let (_, listed) = server.admin_get("/v1/trusted_profiles", &admin).await;
    let made = &listed["trusted_profiles"][0];
    assert_eq!(made["name"], "deployers");
    assert_eq!(made["identities"][0]["identifier"], sa_iam);
    assert_eq!(made["rules"][0]["conditions"][0]["value"], "\"prod\"");
    assert_eq!(made["rules"][0]["name"], "prod");
    assert_eq!(made["links"], json!([]), "empty rows are left out");

    // A trusted issuer: a key set that is not JSON gets the admin API's message.
    let key = crate::cr_token::TestKey::new("k1", tessera_core::model::Algorithm::Es256);
    let expected = api_message(
        &server,
        &admin,
        "/v1/trusted_issuers",
        json!({"name": "cluster", "issuer_url": "https://k8s.example.com", "jwks": "{not json"}),
    )
    .await;
    let issuer = |jwks: String| {
        vec![
            ("name", "cluster".to_owned()),
            ("issuer_url", "https://k8s.example.com".to_owned()),
            ("jwks", jwks),
            ("audiences", "iam\n\nsts\n".to_owned()),
        ]
    };
    let refused = browser
        .post_pairs(
            "/console/r/trusted_issuers",
            &post(&issuer("{not json".into()), &[]),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains(&escaped(&expected)),
        "{expected}: {}",
        refused.body
    );
    assert!(
        refused.body.contains("{not json</textarea>"),
        "the key set kept"
    );
    let created = browser
        .post_pairs(
            "/console/r/trusted_issuers",
            &post(&issuer(key.jwks().to_string()), &[]),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let (_, listed) = server.admin_get("/v1/trusted_issuers", &admin).await;
    assert_eq!(
        listed["trusted_issuers"][0]["audiences"],
        json!(["iam", "sts"])
    );

    // An authorization policy: a target in another account is the admin API's 400.
    let other = new_account(&server, &admin, "elsewhere").await;
    let bad_target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{other}:*");
    let good_target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:*");
    let expected = api_message(
        &server,
        &admin,
        "/v1/authorization_policies",
        json!({"account_id": account, "source_iam_id": sa_iam, "target_crn": bad_target}),
    )
    .await;
    let policy = |target: &str| {
        vec![
            ("account_id", account.clone()),
            ("source_iam_id", sa_iam.to_owned()),
            ("target_crn", target.to_owned()),
        ]
    };
    let refused = browser
        .post_pairs(
            "/console/r/authorization_policies",
            &post(&policy(&bad_target), &[]),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains(&escaped(&expected)),
        "{}",
        refused.body
    );
    let created = browser
        .post_pairs(
            "/console/r/authorization_policies",
            &post(&policy(&good_target), &[]),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

/// One object's page: every field, links to its related objects (a service account's keys and
/// bindings), refused across accounts as the admin API refuses; one audit event's page.
#[tokio::test]
async fn detail_pages_show_every_field_and_link_what_belongs_to_the_object() {
    let (server, admin, account) = server_with_account("details").await;
    let other = new_account(&server, &admin, "theirs").await;
    let (_, owner_key) = member(&server, &admin, &account, "admin").await;
    let sa = server
        .create(
            &admin,
            "service_accounts",
            json!({"name": "worker", "description": "runs jobs", "account_id": account}),
        )
        .await;
    let (sa_id, sa_iam) = (sa["id"].as_str().unwrap(), sa["iam_id"].as_str().unwrap());
    let key = server
        .create(
            &admin,
            "api_keys",
            json!({"owner_iam_id": sa_iam, "name": "worker-key"}),
        )
        .await;
    server
        .create(
            &admin,
            "access_bindings",
            json!({"subject_iam_id": sa_iam, "role": "viewer", "resource": format!("account/{account}")}),
        )
        .await;
    let theirs = service_account_json(&server, &admin, &other, "not-yours").await;

    let mut browser = Browser::signed_in(&server, &owner_key).await;
    let list = browser
        .get(&format!("/console/r/service_accounts?account_id={account}"))
        .await;
    let href = format!("/console/r/service_accounts/{sa_id}");
    assert!(
        list.body.contains(&format!("href=\"{href}\"")),
        "a details link"
    );
    let page = browser.get_expecting(&href, 200).await;
    assert_security_headers(&page);
    for field in ["worker", "runs jobs", sa_iam, &account, "created_at"] {
        assert!(page.body.contains(field), "{field}");
    }
    let keys_href = format!("/console/r/api_keys?owner_iam_id={sa_iam}");
    let bindings_href = format!("/console/r/access_bindings?subject_iam_id={sa_iam}");
    assert!(page.body.contains(&escaped(&keys_href)), "{}", page.body);
    assert!(page.body.contains(&escaped(&bindings_href)));
    assert!(page.body.contains(&format!(
        "/console/r/authorized_keys?service_account_id={sa_id}"
    )));
    assert!(
        page.body.contains(">Delete service account<"),
        "the admin may delete"
    );
    let keys = browser.get_expecting(&keys_href, 200).await;
    assert!(keys.body.contains("worker-key"));
    assert!(keys.body.contains("owner_iam_id = "), "the filter is shown");
    let bindings = browser.get_expecting(&bindings_href, 200).await;
    assert!(bindings.body.contains(&format!("account/{account}")));
    let key_page = browser
        .get(&format!(
            "/console/r/api_keys/{}",
            key["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(key_page.status, 200);
    assert!(
        key_page.body.contains(&format!("href=\"{href}\"")),
        "the key links its owner"
    );
    assert!(!key_page.body.contains("apikey"), "no secret field");

    // Another account's object: the admin API's status, nothing of it shown.
    let theirs_id = theirs["id"].as_str().unwrap();
    let owner_token = server.token(&owner_key).await;
    let (api_status, _) = server
        .admin_get(&format!("/v1/service_accounts/{theirs_id}"), &owner_token)
        .await;
    let page = browser
        .get(&format!("/console/r/service_accounts/{theirs_id}"))
        .await;
    assert_eq!(page.status, api_status);
    assert!(!page.body.contains("not-yours"));
    let missing = browser
        .get("/console/r/service_accounts/ServiceId-nope")
        .await;
    assert_eq!(missing.status, 404);
    let nothing = browser.get("/console/r/no_such/x").await;
    assert_eq!(nothing.status, 404);

    // An audit event: every field; an account administrator reads its own account's.
    let audit = browser
        .get_expecting(
            &format!("/console/audit?account_id={account}&action=api_key.create"),
            200,
        )
        .await;
    let at = audit
        .body
        .find("href=\"/console/audit/")
        .expect("a details link");
    let rest = &audit.body[at + 6..];
    let event_href = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    let event = browser.get(&event_href).await;
    assert_eq!(event.status, 200, "{event_href}: {}", event.body);
    for field in [
        "api_key.create",
        "request_id",
        "target_kind",
        key["id"].as_str().unwrap(),
    ] {
        assert!(event.body.contains(field), "{field}: {}", event.body);
    }
    for bad in [
        "/console/audit/0",
        "/console/audit/x",
        "/console/audit/99999999",
    ] {
        let page = browser.get(&format!("{bad}?account_id={account}")).await;
        assert_eq!(page.status, 404, "{bad}");
    }
    let (api_status, _) = server
        .admin_get(&format!("/v1/audit?account_id={other}"), &owner_token)
        .await;
    let page = browser
        .get(&format!("/console/audit/1?account_id={other}"))
        .await;
    assert_eq!(page.status, api_status, "another account's events");
}

/// MFA: users' TOTP state in the list and on the user's page; an administrator enrols a first
/// factor (the secret shown once), the code confirms it; the account's requirement is set on
/// the account's page; a viewer sees none of these controls and its forged posts get 403.
#[tokio::test]
async fn mfa_status_enrolment_and_the_accounts_requirement() {
    let (server, admin, account) = server_with_account("mfa").await;
    let (_, owner_key) = member(&server, &admin, &account, "admin").await;
    let (_, viewer_key) = member(&server, &admin, &account, "viewer").await;
    let user = server
        .create(
            &admin,
            "users",
            json!({"name": "Ann", "email": "ann@example.com", "password": "ann-password-0123", "account_id": account}),
        )
        .await;
    let user_id = user["id"].as_str().unwrap();
    let mut owner = Browser::signed_in(&server, &owner_key).await;
    let list = owner
        .get(&format!("/console/r/users?account_id={account}"))
        .await;
    assert!(
        list.body.contains("data-label=\"TOTP\">none<"),
        "{}",
        list.body
    );
    let user_href = format!("/console/r/users/{user_id}");
    let page = owner.get_expecting(&user_href, 200).await;
    assert!(
        page.body.contains("State: <strong>none</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Enrol a TOTP factor"));
    let csrf = page.csrf();

    let enrolled = owner
        .post_expecting(
            &format!("{user_href}/totp"),
            &[("csrf", &csrf), ("step", "enroll")],
            201,
        )
        .await;
    assert!(enrolled.body.contains("shown once"));
    let at = enrolled.body.find("id=\"secret\"").unwrap();
    let value_at = enrolled.body[at..].find("value=\"").unwrap() + at + 7;
    let secret = &enrolled.body[value_at..value_at + enrolled.body[value_at..].find('"').unwrap()];
    let again = owner.get(&user_href).await;
    assert!(again.body.contains("State: <strong>pending</strong>"));
    assert!(
        !again.body.contains(secret),
        "the secret is not shown again"
    );
    let wrong = owner
        .post(
            &format!("{user_href}/totp"),
            &[("csrf", &csrf), ("step", "confirm"), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 400, "the admin API's refusal: {}", wrong.body);
    let code = crate::password::code(secret, crate::password::step_now());
    owner
        .post_expecting(
            &format!("{user_href}/totp"),
            &[("csrf", &csrf), ("step", "confirm"), ("code", &code)],
            303,
        )
        .await;
    let (_, view) = server
        .admin_get(&format!("/v1/users/{user_id}"), &admin)
        .await;
    assert_eq!(view["totp"], "confirmed");
    let page = owner.get(&user_href).await;
    assert!(page.body.contains("State: <strong>confirmed</strong>"));
    assert!(
        !page.body.contains("Enrol a TOTP factor"),
        "a confirmed factor is the user's own"
    );

    // The account's requirement.
    let account_href = format!("/console/r/accounts/{account}");
    let page = owner.get(&account_href).await;
    assert!(page.body.contains("Save the requirement"), "{}", page.body);
    let bad = owner
        .post(
            &format!("{account_href}/mfa"),
            &[("csrf", &csrf), ("mfa", "SMS")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body
            .contains(&escaped("mfa must be \"TOTP\" or \"NONE\"")),
        "{}",
        bad.body
    );
    owner
        .post_expecting(
            &format!("{account_href}/mfa"),
            &[("csrf", &csrf), ("mfa", "TOTP")],
            303,
        )
        .await;
    let (_, view) = server
        .admin_get(&format!("/v1/accounts/{account}"), &admin)
        .await;
    assert_eq!(view["mfa"], "TOTP");

    // A viewer: no controls, and forged posts get the admin API's 403.
    let mut viewer = Browser::signed_in(&server, &viewer_key).await;
    let page = viewer.get(&account_href).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Save the requirement"));
    let page = viewer.get(&user_href).await;
    assert_eq!(page.status, 200);
    assert!(!page
        .body
        .contains("<form method=\"post\" action=\"/console/r/users/"));
    let csrf = viewer.csrf().await;
    viewer
        .post_expecting(
            &format!("{account_href}/mfa"),
            &[("csrf", &csrf), ("mfa", "NONE")],
            403,
        )
        .await;
    viewer
        .post_expecting(
            &format!("{user_href}/totp"),
            &[("csrf", &csrf), ("step", "remove")],
            403,
        )
        .await;
    let (_, view) = server
        .admin_get(&format!("/v1/accounts/{account}"), &admin)
        .await;
    assert_eq!(view["mfa"], "TOTP", "unchanged");
}
