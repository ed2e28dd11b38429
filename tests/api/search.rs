//! Search: a corpus in several languages finds exactly the expected messages and titles for
//! a table of queries, with highlights a JavaScript string can slice; deleted and expired
//! threads vanish; another user's text never shows; pages follow cursors without gaps; a
//! message is found right after its turn; deleting everything removes the index.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user, turns::thread_turn};

/// One thread of the corpus as a line of our own export format.
fn line(
    id: &str,
    title: &str,
    archived: bool,
    updated: &str,
    messages: &[(&str, &str, &str, &str)],
) -> String {
    let messages: Vec<Value> = messages
        .iter()
        .map(|(mid, role, content, at)| {
            json!({ "id": mid, "role": role, "content": content, "createdAt": at })
        })
        .collect();
    json!({
        "thread": {
            "id": id, "title": title, "archived": archived,
            "createdAt": "2026-01-01T09:00:00.000Z", "updatedAt": updated,
        },
        "messages": messages,
    })
    .to_string()
}

fn corpus() -> String {
    [
        line(
            "t-en",
            "Trip planning",
            false,
            "2026-01-01T10:05:00.000Z",
            &[
                (
                    "m1",
                    "user",
                    "Can you help me plan a trip to New York?",
                    "2026-01-01T10:00:00.000Z",
                ),
                (
                    "m2",
                    "assistant",
                    "Sure! New York is great in spring: visit Central Park.",
                    "2026-01-01T10:00:01.000Z",
                ),
                (
                    "m3",
                    "user",
                    "What about York in England?",
                    "2026-01-01T10:00:02.000Z",
                ),
                (
                    "m4",
                    "assistant",
                    "York is new to me, but it has a fine minster.",
                    "2026-01-01T10:00:03.000Z",
                ),
            ],
        ),
        line(
            "t-de",
            "Grüße aus München",
            false,
            "2026-01-02T10:05:00.000Z",
            &[
                (
                    "d1",
                    "user",
                    "Herr Müller fährt morgen nach Köln.",
                    "2026-01-02T10:00:00.000Z",
                ),
                (
                    "d2",
                    "assistant",
                    "Gute Reise! Die Straße nach KÖLN ist frei.",
                    "2026-01-02T10:00:01.000Z",
                ),
            ],
        ),
        line(
            "t-ja",
            "東京旅行",
            false,
            "2026-01-03T10:05:00.000Z",
            &[
                (
                    "j1",
                    "user",
                    "東京タワーに行きました。",
                    "2026-01-03T10:00:00.000Z",
                ),
                (
                    "j2",
                    "assistant",
                    "京都もおすすめです 🎉",
                    "2026-01-03T10:00:01.000Z",
                ),
            ],
        ),
        line(
            "t-party",
            "Party 🎉",
            false,
            "2026-01-04T10:05:00.000Z",
            &[(
                "e1",
                "user",
                "🎉🎉 Party time for Müller 🎉",
                "2026-01-04T10:00:00.000Z",
            )],
        ),
        line(
            "t-old",
            "Old notes",
            true,
            "2026-01-05T10:05:00.000Z",
            &[(
                "a1",
                "user",
                "An old note about New York pizza",
                "2026-01-05T10:00:00.000Z",
            )],
        ),
    ]
    .join("\n")
}

async fn import(app: &TestApp, token: &str, body: String) {
    let (status, body) = crate::import::import(app, token, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["failed"], json!([]), "{body}");
}

async fn search(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    let url = format!("/api/search?{}", query);
    app.get(&url, token).await
}

/// `q` percent-encoded for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids of the results (`title:<threadId>` for a title), in order.
async fn found(app: &TestApp, token: &str, q: &str, extra: &str) -> Vec<String> {
    let (status, body) = search(app, token, &format!("q={}{extra}", encode(q))).await;
    assert_eq!(status, StatusCode::OK, "{q}: {body}");
    assert_eq!(body["nextCursor"], Value::Null, "{q}: {body}");
    ids(&body)
}

fn ids(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["messageId"].as_str() {
            Some(id) => id.to_owned(),
            None => format!("title:{}", r["threadId"].as_str().unwrap()),
        })
        .collect()
}

/// The highlighted parts of a result, sliced as JavaScript slices strings (UTF-16).
fn marked(result: &Value) -> Vec<String> {
    let units: Vec<u16> = result["snippet"].as_str().unwrap().encode_utf16().collect();
    result["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let (a, b) = (
                h[0].as_u64().unwrap() as usize,
                h[1].as_u64().unwrap() as usize,
            );
            String::from_utf16(&units[a..b]).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_table_of_queries_finds_exactly_the_expected_messages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    import(&app, &token, corpus()).await;

    let table: &[(&str, &str, &[&str])] = &[
        // All words must match; the last one is a prefix while it is being typed.
        ("new york ", "", &["m4", "m2", "m1"]),
        ("new yo", "", &["m4", "m2", "m1"]),
        ("york", "", &["m4", "m3", "m2", "m1"]),
        ("new york england", "", &[]),
        // Phrases.
        ("\"new york\"", "", &["m2", "m1"]),
        ("\"york new\"", "", &[]),
        ("\"new yo", "", &["m2", "m1"]),
        // Case and accents.
        ("MÜLLER ", "", &["e1", "d1"]),
        ("muller", "", &["e1", "d1"]),
        ("koln ", "", &["d2", "d1"]),
        ("strasse", "", &["d2"]),
        ("GRÜSSE", "", &["title:t-de"]),
        ("münchen", "", &["title:t-de"]),
        // CJK: characters are words, and joined ones are a phrase.
        ("東京", "", &["title:t-ja", "j1"]),
        ("京都", "", &["j2"]),
        ("タワー", "", &["j1"]),
        ("京東", "", &[]),
        // Emoji.
        ("🎉", "", &["title:t-party", "e1", "j2"]),
        ("party 🎉", "", &["title:t-party", "e1"]),
        // A prefix.
        ("tim", "", &["e1"]),
        ("minst", "", &["m4"]),
        // No match.
        ("zebra", "", &[]),
        ("zebra new", "", &[]),
        // Archived threads: left out, alone, or with the rest.
        ("pizza", "", &[]),
        ("pizza", "&archived=true", &["a1"]),
        ("new york ", "&archived=all", &["a1", "m4", "m2", "m1"]),
        ("york", "&archived=true", &["a1"]),
    ];
    for (q, extra, expected) in table {
        assert_eq!(
            found(&app, &token, q, extra).await,
            *expected,
            "query {q:?}{extra}"
        );
    }

    // Every result names its thread, role and time; highlights slice the snippet in UTF-16.
    let (_, body) = search(&app, &token, &format!("q={}", encode("müller"))).await;
    let first = &body["results"][0];
    assert_eq!(first["threadId"], "t-party");
    assert_eq!(first["threadTitle"], "Party 🎉");
    assert_eq!(first["role"], "user");
    assert_eq!(first["createdAt"], "2026-01-04T10:00:00.000Z");
    assert_eq!(first["snippet"], "🎉🎉 Party time for Müller 🎉");
    assert_eq!(first["highlights"], json!([[20, 26]]));
    assert_eq!(marked(first), ["Müller"]);
    let (_, body) = search(&app, &token, &format!("q={}", encode("\"new york\" cent"))).await;
    assert_eq!(ids(&body), ["m2"]);
    assert_eq!(marked(&body["results"][0]), ["New York", "Central"]);
    let (_, body) = search(&app, &token, &format!("q={}", encode("東京"))).await;
    assert_eq!(body["results"][0]["role"], Value::Null);
    assert_eq!(body["results"][0]["snippet"], "東京旅行");
    assert_eq!(marked(&body["results"][0]), ["東京"]);
    assert_eq!(marked(&body["results"][1]), ["東京"]);
}

#[tokio::test]
async fn deleted_and_expired_threads_vanish_and_other_users_never_show() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    import(&app, &token, corpus()).await;
    assert_eq!(found(&app, &token, "müller", "").await, ["e1", "d1"]);

    // Another user with the same words sees only their own.
    let other = app.token_for(&random_user());
    import(
        &app,
        &other,
        line(
            "t-de",
            "Müller",
            false,
            "2026-02-01T00:00:00.000Z",
            &[("x1", "user", "Müller is secret", "2026-02-01T00:00:00.000Z")],
        ),
    )
    .await;
    assert_eq!(
        found(&app, &other, "müller", "").await,
        ["x1", "title:t-de"]
    );
    assert_eq!(
        found(&app, &token, "secret", "").await,
        Vec::<String>::new()
    );
    assert_eq!(found(&app, &token, "müller", "").await, ["e1", "d1"]);

    // Deleted: gone at once, and not back when a thread of the same id is made anew.
    let (status, _) = app
        .request(Method::DELETE, "/api/threads/t-de", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(found(&app, &token, "müller", "").await, ["e1"]);
    assert_eq!(found(&app, &token, "köln", "").await, Vec::<String>::new());
    let (status, _) = app
        .request(
            Method::POST,
            "/api/threads",
            Some(&token),
            Some(json!({ "id": "t-de", "title": "Neu" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(found(&app, &token, "köln", "").await, Vec::<String>::new());
    assert_eq!(found(&app, &token, "neu", "").await, ["title:t-de"]);

    // Expired: the thread's keys ran out (as its TTL would have it).
    let mut conn = app.redis_conn().await;
    for suffix in ["meta", "messages"] {
        let _: i64 = redis::cmd("DEL")
            .arg(format!("user:{{{user}}}:thread:t-ja:{suffix}"))
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    assert_eq!(found(&app, &token, "京", "").await, Vec::<String>::new());
    assert_eq!(found(&app, &token, "🎉", "").await, ["title:t-party", "e1"]);

    // Deleting everything removes the index with the threads.
    let (status, _) = app
        .request(Method::DELETE, "/api/threads", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left: Vec<String> = app
        .keys_of(&user)
        .await
        .into_iter()
        .filter(|k| k.contains(":search"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(found(&app, &token, "party", "").await, Vec::<String>::new());
    assert_eq!(found(&app, &other, "secret", "").await, ["x1"]);
}

#[tokio::test]
async fn a_message_is_found_right_after_its_turn_and_a_renamed_title_by_its_new_name() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "Quokka facts").await;
    assert_eq!(
        found(&app, &token, "quokka", "").await,
        [format!("title:{thread}")]
    );
    let reply = app
        .chat(
            &token,
            thread_turn(&thread, "u1", "Where do quokkas live, Rottnest?"),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(found(&app, &token, "rottnest", "").await, ["u1"]);
    // The reply is searchable too (the mock's words).
    let reply_word = reply.text().split_whitespace().next().unwrap().to_owned();
    let hits = found(&app, &token, &format!("{reply_word} "), "").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_ne!(hits[0], "u1");

    let (status, _) = app.rename(&token, &thread, "Marsupials").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        found(&app, &token, "marsupials", "").await,
        [format!("title:{thread}")]
    );
    assert_eq!(
        found(&app, &token, "quokka ", "").await,
        Vec::<String>::new()
    );
    assert_eq!(found(&app, &token, "quokkas", "").await, ["u1"]);
}

#[tokio::test]
async fn pages_follow_their_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let messages: Vec<(String, &str, String, String)> = (0..45)
        .map(|i| {
            let word = if i % 3 == 0 { "alpha beta" } else { "alpha" };
            (
                format!("p{i:02}"),
                if i % 2 == 0 { "user" } else { "assistant" },
                format!("{word} number {i}"),
                format!("2026-03-01T10:{:02}:{:02}.000Z", i / 60, i % 60),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str, &str, &str)> = messages
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), *b, c.as_str(), d.as_str()))
        .collect();
    import(
        &app,
        &token,
        line("t-p", "Pages", false, "2026-03-01T11:00:00.000Z", &borrowed),
    )
    .await;

    for (q, expected) in [("alpha", 45), ("alpha beta ", 15)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("q={}&limit=10", encode(q));
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = search(&app, &token, &query).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let page = ids(&body);
            assert!(page.len() <= 10);
            seen.extend(page);
            match body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let mut want: Vec<String> = (0..45)
            .filter(|i| expected == 45 || i % 3 == 0)
            .map(|i| format!("p{i:02}"))
            .collect();
        want.reverse();
        assert_eq!(seen, want, "{q}");
    }
}

#[tokio::test]
async fn bad_search_parameters_are_refused_with_the_parameter_named() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    for (query, name) in [
        ("", "q"),
        ("q=%3F%21", "q"),
        ("q=%22%22", "q"),
        (&format!("q={}", "a%20".repeat(20)) as &str, "q"),
        ("q=x&limit=0", "limit"),
        ("q=x&limit=abc", "limit"),
        ("q=x&cursor=bm9wZQ", "cursor"),
        ("q=x&archived=maybe", "archived"),
    ] {
        let (status, body) = search(&app, &token, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(error_code(&body), "invalid_param", "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(name), "{query}: {body}");
    }
    let (status, _) = app
        .request(Method::GET, "/api/search?q=x", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
