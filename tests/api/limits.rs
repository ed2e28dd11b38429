//! Per-user rate limits and the daily token budget.

use std::num::{NonZeroU32, NonZeroU64};

use reqwest::StatusCode;

use crate::helpers::{TestApp, random_user, turns::user_turn};

#[tokio::test]
async fn the_chat_turn_over_the_limit_gets_429_and_reaches_nothing() {
    let app = TestApp::spawn_with(|config| {
        config.limits.chat_per_minute = NonZeroU32::new(3);
    })
    .await;
    let user = random_user();
    let token = app.token_for(&user);
    let mut remaining = Vec::new();
    for i in 0..3 {
        let reply = app.chat(&token, user_turn(&format!("turn {i}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "turn {i}");
        assert_eq!(reply.header("x-ratelimit-limit"), "3");
        remaining.push(reply.header("x-ratelimit-remaining").to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let keys_before = app.keys_of(&user).await;

    let refused = app.chat(&token, user_turn("one too many")).await;

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json["error"]["code"], "rate_limited");
    let retry_after: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.header("x-ratelimit-limit"), "3");
    assert_eq!(refused.header("x-ratelimit-remaining"), "0");
    assert!(refused.header("x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    assert_eq!(app.mock.calls(), 3, "the refused turn reached the model");
    assert_eq!(
        app.keys_of(&user).await,
        keys_before,
        "the refused turn stored something"
    );
    let (_, list) = app.get("/api/threads", &token).await;
    assert_eq!(
        list["threads"].as_array().unwrap().len(),
        3,
        "the refused turn stored a thread"
    );

    // Another user is unaffected, and ordinary requests have their own budget.
    let other = app.token_for(&random_user());
    assert_eq!(
        app.chat(&other, user_turn("hello")).await.status,
        StatusCode::OK
    );
    let (status, _) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ordinary_requests_have_a_per_minute_limit_per_user() {
    let app = TestApp::spawn_with(|config| {
        config.limits.requests_per_minute = NonZeroU32::new(5);
    })
    .await;
    let token = app.token_for(&random_user());
    for i in 0..5 {
        let (status, _) = app.get("/api/threads", &token).await;
        assert_eq!(status, StatusCode::OK, "request {i}");
    }
    let (status, body) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    let other = app.token_for(&random_user());
    assert_eq!(app.get("/api/threads", &other).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_daily_token_budget_stops_chats_once_spent() {
    let app = TestApp::spawn_with(|config| {
        // One default reply (16 completion tokens plus the prompt) spends it.
        config.limits.daily_token_budget = NonZeroU64::new(10);
    })
    .await;
    let token = app.token_for(&random_user());
    assert_eq!(
        app.chat(&token, user_turn("first")).await.status,
        StatusCode::OK
    );

    let refused = app.chat(&token, user_turn("second")).await;

    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.json["error"]["code"], "rate_limited");
    let retry_after: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry_after));
    assert_eq!(app.mock.calls(), 1);
    // Reading history is not chatting.
    assert_eq!(app.get("/api/threads", &token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn both_chat_limits_count_every_turn_and_the_tightest_refuses() {
    // The minute's limit is the tighter at first; the day's, once the minute's is the larger.
    for (per_minute, per_day, refused_by) in [(4, 6, 4), (10, 2, 2)] {
        let app = TestApp::spawn_with(|config| {
            config.limits.chat_per_minute = NonZeroU32::new(per_minute);
            config.limits.chat_per_day = NonZeroU32::new(per_day);
        })
        .await;
        let user = random_user();
        let token = app.token_for(&user);
        let allowed = per_minute.min(per_day);
        for i in 0..allowed {
            let reply = app.chat(&token, user_turn(&format!("turn {i}"))).await;
            assert_eq!(reply.status, StatusCode::OK, "turn {i}: {}", reply.json);
            // Each limit's remaining turns; the headers report the one with fewer.
            let (left_minute, left_day) = (per_minute - i - 1, per_day - i - 1);
            let tightest = if left_minute <= left_day {
                (per_minute, left_minute)
            } else {
                (per_day, left_day)
            };
            assert_eq!(reply.header("x-ratelimit-limit"), tightest.0.to_string());
            assert_eq!(
                reply.header("x-ratelimit-remaining"),
                tightest.1.to_string()
            );
        }

        let refused = app.chat(&token, user_turn("one too many")).await;

        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.header("x-ratelimit-limit"), refused_by.to_string());
        let retry_after: u64 = refused.header("retry-after").parse().unwrap();
        if refused_by == per_minute {
            assert!((1..=60).contains(&retry_after), "{retry_after}");
        } else {
            // A day of two turns frees one every 12 hours.
            assert!(retry_after > 11 * 3600, "{retry_after}");
        }
        assert_eq!(app.mock.calls(), usize::try_from(allowed).unwrap());

        // Both limits' arrival times live in one key, the minute's first, then when the key
        // expires: twice the longest period (a day) after it was set.
        let key = app
            .keys_of(&user)
            .await
            .into_iter()
            .filter(|k| k.contains(":ratelimit:"))
            .collect::<Vec<_>>();
        assert_eq!(key.len(), 1, "{key:?}");
        assert!(
            key[0].ends_with(":ratelimit:chat-minute+chat-day"),
            "{key:?}"
        );
        let mut conn = app.redis_conn().await;
        let (value, ttl): (String, u64) = redis::pipe()
            .get(&key[0])
            .pttl(&key[0])
            .query_async(&mut conn)
            .await
            .unwrap();
        let cells: Vec<u64> = value.split(' ').map(|t| t.parse().unwrap()).collect();
        assert_eq!(cells.len(), 3, "{value}");
        let now = u64::try_from(buddahbot::domain::now().as_millisecond()).unwrap();
        let ahead = |tat: u64, period_ms: u64, allowed: u32| {
            let expected = period_ms / u64::from(allowed) * u64::from(per_minute.min(per_day));
            tat > now && tat - now <= expected && tat - now + 10_000 >= expected
        };
        assert!(ahead(cells[0], 60_000, per_minute), "{value} at {now}");
        assert!(ahead(cells[1], 86_400_000, per_day), "{value} at {now}");
        let two_days = 2 * 86_400_000;
        assert!(
            cells[2] > now && cells[2] - now <= two_days,
            "{value} at {now}"
        );
        assert!(
            ttl <= two_days && ttl + 10_000 >= cells[2] - now,
            "{ttl} for {value}"
        );
    }
}

#[tokio::test]
async fn the_limits_key_keeps_its_expiry_until_less_than_a_period_is_left() {
    let app = TestApp::spawn_with(|config| {
        config.limits.chat_per_minute = NonZeroU32::new(100);
        config.limits.chat_per_day = NonZeroU32::new(1000);
    })
    .await;
    let user = random_user();
    let token = app.token_for(&user);
    let mut conn = app.redis_conn().await;
    let turn = |text: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            assert_eq!(
                app.chat(token, user_turn(text)).await.status,
                StatusCode::OK
            )
        }
    };
    turn("first").await;
    let key = app
        .keys_of(&user)
        .await
        .into_iter()
        .find(|k| k.contains(":ratelimit:"))
        .unwrap();
    let state = |conn: &mut redis::aio::MultiplexedConnection| {
        let key = key.clone();
        let mut conn = conn.clone();
        async move {
            let (value, ttl): (String, i64) = redis::pipe()
                .get(&key)
                .pttl(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let cells: Vec<String> = value.split(' ').map(str::to_owned).collect();
            (cells, ttl)
        }
    };
    let day: i64 = 86_400_000;

    // More than a period left: the next request keeps the expiry.
    let _: () = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(day * 3 / 2)
        .query_async(&mut conn)
        .await
        .unwrap();
    turn("second").await;
    let (cells, ttl) = state(&mut conn).await;
    assert!(
        ttl <= day * 3 / 2 && ttl > day * 3 / 2 - 10_000,
        "the expiry was set again: {ttl}"
    );

    // Less than a period left (by the key's own account): it is set to two periods again.
    let soon = buddahbot::domain::now().as_millisecond() + 1_000;
    let value = format!("{} {} {soon}", cells[0], cells[1]);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(value)
        .arg("PX")
        .arg(1_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    turn("third").await;
    let (cells, ttl) = state(&mut conn).await;
    assert!(ttl > 2 * day - 10_000 && ttl <= 2 * day, "{ttl}");
    let expires: i64 = cells[2].parse().unwrap();
    assert!(expires > soon + day, "{cells:?}");
}

#[tokio::test]
async fn a_huge_limit_never_trips_over_float_precision() {
    let app = TestApp::spawn_with(|config| {
        config.limits.chat_per_minute = NonZeroU32::new(u32::MAX);
        config.limits.requests_per_minute = NonZeroU32::new(u32::MAX);
    })
    .await;
    let token = app.token_for(&random_user());
    for i in 0..3 {
        let reply = app.chat(&token, user_turn(&format!("turn {i}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
        assert_eq!(app.get("/api/threads", &token).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn routes_without_credentials_are_limited_per_client_address() {
    // Arrange: 3 public requests a minute per address.
    let app = TestApp::spawn_with(|config| {
        config.limits.public_per_minute = NonZeroU32::new(3);
    })
    .await;
    let get = |path: &'static str, ip: &'static str| {
        let url = app.url(path);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
        }
    };

    // Act: three health checks from one address, then a fourth and a shared link's read.
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let resp = get("/api/health", "203.0.113.7").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "3");
        remaining.push(
            resp.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let refused = get("/api/health", "203.0.113.7").await;
    let shared = get("/api/shared/some-token", "203.0.113.7").await;
    let other = get("/api/health", "198.51.100.2").await;

    // Assert: the same 429 as every limit, for every public route of that address only.
    assert_eq!(remaining, ["2", "1", "0"]);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(shared.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "another address has its own budget"
    );
}

#[tokio::test]
async fn health_still_reports_an_outage_with_the_public_limit_on() {
    let mut app = TestApp::spawn_with(|config| {
        config.limits.public_per_minute = NonZeroU32::new(100);
    })
    .await;
    app.redis.stop().await;

    let (status, body) = app.health(false).await;

    // The limit cannot be counted without Redis: the request goes on, and health says why.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["redis"]["ok"], false);
}
