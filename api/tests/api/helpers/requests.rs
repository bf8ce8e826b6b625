//! Requests to a [`TestApp`]: anonymous, with a user's Bearer token, or with a raw token.

use super::{TestApp, TestUser};

impl TestApp {
    /// Any request, as `user` (Bearer) or anonymous, with an optional JSON body and extra
    /// headers: every other request helper goes through it.
    pub async fn send(
        &self,
        method: reqwest::Method,
        user: Option<&TestUser>,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(user) = user {
            req = req.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// GET without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, None, path, None, &[]).await
    }

    /// POST JSON without credentials.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, None, path, Some(body), &[])
            .await
    }

    /// PATCH JSON without credentials.
    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, None, path, Some(body), &[])
            .await
    }

    /// DELETE without credentials.
    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, None, path, None, &[])
            .await
    }

    /// Any request with a Bearer token, an optional JSON body and extra headers.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        user: &TestUser,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send(method, Some(user), path, body, headers).await
    }

    /// GET with a Bearer token.
    pub async fn get_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::GET, user, path, None, &[])
            .await
    }

    /// POST JSON with a Bearer token and extra headers.
    pub async fn post_as(
        &self,
        user: &TestUser,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, user, path, Some(body), headers)
            .await
    }

    /// PATCH JSON with a Bearer token and extra headers.
    pub async fn patch_as(
        &self,
        user: &TestUser,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::PATCH, user, path, Some(body), headers)
            .await
    }

    /// POST without a body, with a Bearer token and extra headers.
    pub async fn post_empty_as(
        &self,
        user: &TestUser,
        path: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, user, path, None, headers)
            .await
    }

    /// DELETE with a Bearer token.
    pub async fn delete_as(&self, user: &TestUser, path: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::DELETE, user, path, None, &[])
            .await
    }

    /// GET with `token` as the Bearer token (a forged, expired or foreign one, say).
    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }
}
