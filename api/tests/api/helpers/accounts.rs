//! Accounts and sessions through the api ([`Accounts`]): registering and logging in, the tokens
//! a sign-in sets as cookies, and a signed-in [`Browser`].

use super::{PASSWORD, Replica, TestApp, TestUser, client};
use serde_json::{Value, json};
use uuid::Uuid;

/// The full `Set-Cookie` value (with its attributes) of cookie `name` set by `res`.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Just the value of cookie `name` set by `res`; panics if it is not set.
pub fn cookie_value(res: &reqwest::Response, name: &str) -> String {
    let full = set_cookie(res, name).unwrap_or_else(|| panic!("{name} cookie set"));
    let pair = full.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// A session as a sign-in (registration, login or refresh) hands it out: its tokens.
#[derive(Clone, Debug)]
pub struct Session {
    pub access: String,
    pub refresh: String,
}

impl Session {
    /// The tokens `res` sets as cookies.
    pub fn set_by(res: &reqwest::Response) -> Session {
        Session {
            access: cookie_value(res, "access_token"),
            refresh: cookie_value(res, "refresh_token"),
        }
    }
}

/// A browser: a client that keeps the cookies this app sets, and sends them back.
pub struct Browser {
    pub client: reqwest::Client,
    address: String,
}

impl Browser {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET with the browser's cookies.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// GET of the signed-in account's own profile.
    pub async fn me(&self) -> reqwest::Response {
        self.get("/api/v1/users/me").await
    }

    /// POST without a body, with the browser's cookies and extra headers.
    pub async fn post_with_headers(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// POST without a body, with the browser's cookies.
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.post_with_headers(path, &[]).await
    }

    /// POST without a body as a page served from `origin` would send it.
    pub async fn post_from(&self, origin: &str, path: &str) -> reqwest::Response {
        self.post_with_headers(path, &[("origin", origin)]).await
    }

    /// POST JSON with the browser's cookies.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers `email` with [`PASSWORD`]; the cookies set sign the browser in.
    pub async fn register(&self, email: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/register",
            &json!({"email": email, "password": PASSWORD, "name": "Ann"}),
        )
        .await
    }

    /// Logs in; the cookies set sign the browser in.
    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Refreshes the session with the browser's refresh cookie.
    pub async fn refresh(&self) -> reqwest::Response {
        self.post("/api/v1/auth/refresh").await
    }

    /// Logs the browser's session out.
    pub async fn logout(&self) -> reqwest::Response {
        self.post("/api/v1/auth/logout").await
    }

    /// Changes the signed-in account's password from `current` to `new`.
    pub async fn change_password(&self, current: &str, new: &str) -> reqwest::Response {
        self.client
            .put(self.url("/api/v1/auth/password"))
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
            .await
            .expect("request")
    }
}

/// A browser signed in to a new CLIENT account: the account's id and the session's tokens.
pub struct SignedUp {
    pub browser: Browser,
    pub id: String,
    pub session: Session,
}

/// Accounts through the api, each request from a new [`Browser`]: signing up, registering and
/// logging in, a session's tokens presented by hand, an ADMIN's changes to an account; and the
/// users and sessions as stored.
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub(super) app: &'a TestApp,
}

impl Accounts<'_> {
    /// A browser with no cookies yet.
    pub fn browser(self) -> Browser {
        Browser {
            client: client(),
            address: self.app.address.clone(),
        }
    }

    /// Registers `email` with [`PASSWORD`] in a new browser, which is then signed in.
    pub async fn sign_up(self, email: &str) -> SignedUp {
        let browser = self.browser();
        let res = browser.register(email).await;
        assert_eq!(res.status(), 201, "registering {email}");
        let session = Session::set_by(&res);
        let user: Value = res.json().await.expect("user");
        SignedUp {
            browser,
            id: user["id"].as_str().expect("id").to_owned(),
            session,
        }
    }

    /// Registers `email` with [`PASSWORD`] from a new browser and returns the answer.
    pub async fn register(self, email: &str) -> reqwest::Response {
        self.browser().register(email).await
    }

    /// POSTs `body` to the registration route from a new browser.
    pub async fn register_with(self, body: Value) -> reqwest::Response {
        self.browser()
            .post_json("/api/v1/auth/register", &body)
            .await
    }

    /// Logs in from a new browser and returns the answer.
    pub async fn login(self, email: &str, password: &str) -> reqwest::Response {
        self.browser().login(email, password).await
    }

    /// Logs in (which must succeed) and returns the new session.
    pub async fn log_in(self, email: &str, password: &str) -> Session {
        let res = self.login(email, password).await;
        assert_eq!(res.status(), 200, "logging in as {email}");
        Session::set_by(&res)
    }

    /// Presents `refresh_token` explicitly, as a stolen copy would be.
    pub async fn refresh_with(self, refresh_token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.app.url("/api/v1/auth/refresh"))
            .header("cookie", format!("refresh_token={refresh_token}"))
            .send()
            .await
            .expect("request")
    }

    /// GET of the own profile with `access_token` as the Bearer token.
    pub async fn me_with(self, access_token: &str) -> reqwest::Response {
        self.app
            .get_with_token("/api/v1/users/me", access_token)
            .await
    }

    /// An ADMIN's change (role, disabled) to account `id`.
    pub async fn change(self, admin: &TestUser, id: &str, change: Value) -> reqwest::Response {
        self.app
            .patch_as(admin, &format!("/api/v1/users/{id}"), &change, &[])
            .await
    }

    /// An ADMIN's change to account `id`, which must succeed; returns the changed account.
    pub async fn changed(self, admin: &TestUser, id: &str, change: Value) -> Value {
        let res = self.change(admin, id, change.clone()).await;
        assert_eq!(res.status(), 200, "changing {id} with {change}");
        res.json().await.expect("account")
    }

    /// A session of `user` with one refresh token used `used` ago (or unused), the session
    /// revoked `revoked` ago (or live).
    pub async fn session_with_token(
        self,
        user: Uuid,
        used: Option<&str>,
        revoked: Option<&str>,
    ) -> Uuid {
        let session = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (id, user_id, expires_at, revoked_at)
             VALUES ($1, $2, now() + interval '1 day', now() - $3::interval)",
        )
        .bind(session)
        .bind(user)
        .bind(revoked)
        .execute(&self.app.state.db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, used_at)
             VALUES (sha256($1::text::bytea), $2, now() - $3::interval)",
        )
        .bind(session.to_string())
        .bind(session)
        .bind(used)
        .execute(&self.app.state.db)
        .await
        .unwrap();
        session
    }

    /// How many users there are.
    pub async fn count(self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.app.state.db)
            .await
            .unwrap()
    }
}

impl Replica {
    /// GET of the own profile with `access_token` as the Bearer token.
    pub async fn me_with(&self, access_token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url("/api/v1/users/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request")
    }
}
