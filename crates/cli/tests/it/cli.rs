use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::process::Output;

#[tokio::test]
async fn serve_on_a_fresh_directory_initialises_it_and_prints_the_admin_password() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let srv = Server::start(&data);
    let email = srv
        .banner
        .iter()
        .find_map(|l| {
            l.strip_prefix("admin e-mail:")
                .map(|s| s.trim().to_string())
        })
        .expect("admin e-mail printed");
    let password = srv
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("admin password:"))
        .and_then(|s| s.split_whitespace().next())
        .expect("admin password printed")
        .to_string();
    let t = token(&srv.base, &email, &password).await;
    assert!(t.starts_with("kt_"));
    let status = srv.terminate();
    assert!(status.success(), "clean exit on SIGTERM, got {status}");
    // A second start does not print a new password.
    let again = Server::start(&data);
    assert!(
        again.banner.iter().all(|l| !l.contains("password")),
        "{:?}",
        again.banner
    );
    token(&again.base, &email, &password).await;
}

#[tokio::test]
async fn init_and_user_commands_work_and_refuse_misuse() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let d = data.to_str().unwrap();

    let o = kontor()
        .args(["init", "--data", d, "--admin-email", "boss@firm.ru"])
        .env("KONTOR_ADMIN_PASSWORD", "boss-password-1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("boss-password-1"),
        "a given password is not echoed"
    );

    let o = run(&[
        "init",
        "--data",
        d,
        "--admin-email",
        "x@firm.ru",
        "--admin-password",
        "long-enough-1",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("already initialised"), "{}", stderr(&o));

    let o = run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "m@firm.ru",
        "--role",
        "wizard",
        "--password",
        "pass-word-1",
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert!(
        stderr(&o).contains("unknown role 'wizard'"),
        "{}",
        stderr(&o)
    );

    let o = run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "m@firm.ru",
        "--role",
        "manager",
        "--password",
        "short",
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("at least 8"), "{}", stderr(&o));

    let o = run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "m@firm.ru",
        "--role",
        "manager",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("password:"))
        .and_then(|s| s.split_whitespace().next())
        .expect("generated password printed")
        .to_string();

    let o = run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "M@firm.ru",
        "--role",
        "manager",
        "--password",
        "pass-word-1",
    ]);
    assert_eq!(o.status.code(), Some(5));
    assert!(stderr(&o).contains("already used"), "{}", stderr(&o));

    let o = run(&["user", "list", "--data", d]);
    assert!(o.status.success());
    let listing = stdout(&o);
    assert!(
        listing.contains("boss@firm.ru") && listing.contains("m@firm.ru"),
        "{listing}"
    );

    let o = run(&[
        "user",
        "passwd",
        "--data",
        d,
        "--email",
        "nobody@firm.ru",
        "--password",
        "pass-word-2",
    ]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "unknown user is not a usage error"
    );
    assert!(stderr(&o).contains("no user with e-mail nobody@firm.ru"));
    let o = run(&["user", "disable", "--data", d, "--email", "nobody@firm.ru"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));

    // While a server runs, the data directory is locked for other commands.
    let srv = Server::start(&data);
    let o = run(&["user", "list", "--data", d]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    token(&srv.base, "m@firm.ru", &generated).await;
    let (status, body) = login(&srv.base, "boss@firm.ru", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    srv.terminate();

    let o = run(&[
        "user",
        "passwd",
        "--data",
        d,
        "--email",
        "m@firm.ru",
        "--password",
        "pass-word-2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["user", "disable", "--data", d, "--email", "boss@firm.ru"]);
    assert_eq!(
        o.status.code(),
        Some(5),
        "the last admin cannot be disabled"
    );
    let o = run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "ops@firm.ru",
        "--role",
        "exchange",
        "--password",
        "pass-word-3",
    ]);
    assert!(o.status.success());
    let o = run(&["user", "disable", "--data", d, "--email", "m@firm.ru"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let srv = Server::start(&data);
    let (status, _) = login(&srv.base, "m@firm.ru", "pass-word-2").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "disabled user cannot log in");
    let (status, body) = login(&srv.base, "ops@firm.ru", "pass-word-3").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "exchange role cannot log in: {body}"
    );
}

#[test]
fn commands_on_a_missing_directory_and_bad_arguments_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = run(&["user", "list", "--data", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    let o = run(&["serve", "--listen", "not-an-address"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));

    let data = dir.path().join("cfg");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("kontor.toml"), "listen = 12\n").unwrap();
    let o = run(&["serve", "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("kontor.toml"), "{}", stderr(&o));
}

/// `kontor search` on a stopped server's data, as an admin and as a manager, and `kontor search
/// rebuild` with its count; while the server runs, both say the data is in use.
#[tokio::test]
async fn search_and_rebuild_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    init_data(&data, "admin@search.test", "search-password-1");
    let ok = |o: &Output| assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    ok(&run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "m@search.test",
        "--role",
        "manager",
        "--password",
        "manager-password-1",
    ]));
    let srv = Server::start(&data);
    let tok = token(&srv.base, "admin@search.test", "search-password-1").await;
    let c = reqwest::Client::new();
    for body in [
        json!({"first_name": "Иван", "last_name": "Петров", "phone": "+7 (900) 123-45-67"}),
        json!({"first_name": "Анна", "last_name": "Петрова"}),
    ] {
        let r = c
            .post(format!("{}/api/v1/contacts", srv.base))
            .bearer_auth(&tok)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    }
    let busy = run(&["search", "петров", "--data", d]);
    assert_eq!(busy.status.code(), Some(3), "{}", stderr(&busy));
    assert_eq!(srv.terminate().code(), Some(0));

    let o = run(&["search", "Петорв", "--data", d]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("contacts (") && out.contains("Иван Петров"),
        "{out}"
    );
    let o = run(&["search", "8 900 123 45 67", "--data", d, "--json"]);
    ok(&o);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["groups"][0]["items"][0]["title"], "Иван Петров", "{v}");
    assert_eq!(
        v["groups"][0]["items"][0]["highlight"]["field"], "phone",
        "{v}"
    );
    // A manager sees nothing the admin owns.
    let o = run(&["search", "петров", "--data", d, "--as", "m@search.test"]);
    ok(&o);
    assert!(stdout(&o).contains("nothing found"), "{}", stdout(&o));

    let o = run(&["search", "rebuild", "--data", d]);
    ok(&o);
    assert!(
        stdout(&o).contains("search index rebuilt: 2 records"),
        "{}",
        stdout(&o)
    );
    let o = run(&[
        "search",
        "петрова",
        "--data",
        d,
        "--entity",
        "contacts",
        "--limit",
        "1",
    ]);
    ok(&o);
    assert!(stdout(&o).contains("Анна Петрова"), "{}", stdout(&o));
    let o = run(&["search", "x", "--data", d, "--entity", "users"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("entity 'users' is not searched"),
        "{}",
        stderr(&o)
    );
    let o = run(&["search", "--data", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
