//! Login rate limiting as an attacker tries it: many guesses in parallel, for one account or
//! spread over many, directly or behind a proxy, with forged forwarding headers.

use crate::support::*;
use kontor_core::Settings;
use kontor_server::client_addr::TrustedProxies;
use kontor_server::HttpConfig;
use reqwest::StatusCode;
use serde_json::json;

/// Sends `n` logins at once (each with its own e-mail from `email(i)` and optional
/// `X-Forwarded-For`) and returns their statuses.
async fn parallel_logins(
    srv: &TestServer,
    n: usize,
    email: impl Fn(usize) -> String,
    password: &str,
    forwarded_for: Option<&str>,
) -> Vec<StatusCode> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let client = srv.client.clone();
        let url = format!("{}/api/v1/auth/login", srv.base);
        let body = json!({"email": email(i), "password": password});
        let xff = forwarded_for.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut req = client.post(url).json(&body);
            if let Some(x) = xff {
                req = req.header("x-forwarded-for", x);
            }
            req.send().await.expect("login request").status()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

fn count(statuses: &[StatusCode], want: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == want).count()
}

async fn thirty_parallel_wrong_logins_get_at_most_five_checks(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let got = parallel_logins(&srv, 30, |_| ADMIN_EMAIL.into(), "wrong-password", None).await;
    let checked = got
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 5,
        "{checked} of 30 parallel guesses were checked: {got:?}"
    );
    assert!(count(&got, StatusCode::UNAUTHORIZED) >= 1, "{got:?}");
    assert!(
        got.iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{got:?}"
    );
    // The account is locked now, even for the right password, and says for how long.
    let resp = srv
        .client
        .post(format!("{}/api/v1/auth/login", srv.base))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("header")
        .parse()
        .expect("seconds");
    assert!((1..=301).contains(&retry), "Retry-After {retry}");
}

async fn parallel_guesses_over_many_accounts_hit_the_address_limit(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let got = parallel_logins(
        &srv,
        60,
        |i| format!("nobody{i}@guess.test"),
        "wrong-password",
        None,
    )
    .await;
    let checked = got
        .iter()
        .filter(|s| **s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(
        checked <= 20,
        "{checked} of 60 parallel guesses were checked: {got:?}"
    );
}

async fn correct_logins_in_parallel_all_succeed(engine: Engine) {
    // Correct logins give their slots back uncounted: a burst from one office waits its turn
    // instead of being refused.
    let srv = TestServer::start(engine).await;
    let got = parallel_logins(&srv, 24, |_| ADMIN_EMAIL.into(), ADMIN_PASSWORD, None).await;
    assert_eq!(count(&got, StatusCode::OK), 24, "{got:?}");
}

async fn behind_a_trusted_proxy_each_client_has_its_own_limit(engine: Engine) {
    let http = HttpConfig {
        trusted_proxies: TrustedProxies::parse(["127.0.0.1"]).expect("proxies"),
        ..HttpConfig::default()
    };
    let srv = TestServer::start_full(engine, Settings::default(), http).await;
    // One client behind the balancer guesses at 25 accounts and is stopped after 20.
    let mut refused = 0;
    for i in 0..25 {
        let got = parallel_logins(
            &srv,
            1,
            |_| format!("victim{i}@guess.test"),
            "wrong-password",
            Some("198.51.100.7, 203.0.113.1"),
        )
        .await;
        refused += count(&got, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        refused, 5,
        "the 21st to 25th guesses of one client are refused"
    );
    // Everyone else behind the same balancer still logs in.
    let got = parallel_logins(
        &srv,
        1,
        |_| ADMIN_EMAIL.into(),
        ADMIN_PASSWORD,
        Some("203.0.113.2"),
    )
    .await;
    assert_eq!(got, vec![StatusCode::OK]);
    // The guessing client stays refused, whatever it writes in front of the real address.
    let got = parallel_logins(
        &srv,
        1,
        |_| ADMIN_EMAIL.into(),
        ADMIN_PASSWORD,
        Some("10.9.9.9, 203.0.113.1"),
    )
    .await;
    assert_eq!(got, vec![StatusCode::TOO_MANY_REQUESTS]);
}

async fn forwarding_headers_from_an_untrusted_peer_are_ignored(engine: Engine) {
    let srv = TestServer::start(engine).await;
    // Forging a new address per guess does not escape the per-address limit.
    let mut refused = 0;
    for i in 0..25 {
        let forged = format!("203.0.113.{i}");
        let got = parallel_logins(
            &srv,
            1,
            |_| format!("victim{i}@guess.test"),
            "wrong-password",
            Some(&forged),
        )
        .await;
        refused += count(&got, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(
        refused, 5,
        "forged X-Forwarded-For must not reset the address limit"
    );
}

crate::engine_tests!(
    thirty_parallel_wrong_logins_get_at_most_five_checks,
    parallel_guesses_over_many_accounts_hit_the_address_limit,
    correct_logins_in_parallel_all_succeed,
    behind_a_trusted_proxy_each_client_has_its_own_limit,
    forwarding_headers_from_an_untrusted_peer_are_ignored,
);
