//! Schemathesis (pinned in `tests/schemathesis/requirements.txt`, installed by `tests/setup`)
//! walks the served OpenAPI document against a test app — its own redis-server, the mock model,
//! no rate limits — authenticated as a test user: every operation, with generated valid and
//! invalid inputs, and the document's links (create a thread → read, patch, share, delete it;
//! create a conversation → …; create a response → …). Every response must pass
//! `not_a_server_error`, `status_code_conformance`, `content_type_conformance`,
//! `response_schema_conformance` and `response_headers_conformance` (and, as in every test, the
//! app's own check against the document). A fixed seed and a bounded number of examples per
//! operation keep it reproducible and within about a minute on two cores.

use std::{collections::BTreeMap, path::Path, time::Duration};

use serde_json::Value;

use crate::helpers::TestApp;

/// The checks schemathesis runs on every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance";

/// Test cases per operation and phase, and the seed they are drawn from.
const MAX_EXAMPLES: &str = "20";
const SEED: &str = "20261130";

/// Past this, the run is killed and the test fails.
const BUDGET: Duration = Duration::from_secs(300);

/// What one run did, from its NDJSON report.
#[derive(Debug, Default)]
struct Figures {
    /// Test cases generated.
    cases: usize,
    /// HTTP requests sent.
    requests: usize,
    /// Checks run, and those that failed (by check name and operation).
    checks: usize,
    failures: BTreeMap<String, usize>,
    /// Errors of the run itself (a schema it could not use, a crash).
    errors: Vec<String>,
}

fn figures(report: &str) -> Figures {
    let mut out = Figures::default();
    for line in report.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).unwrap();
        if let Some(error) = event
            .get("NonFatalError")
            .or_else(|| event.get("FatalError"))
        {
            out.errors
                .push(error.to_string().chars().take(2000).collect());
        }
        let Some(recorder) = event.pointer("/ScenarioFinished/recorder") else {
            continue;
        };
        let label = recorder["label"].as_str().unwrap_or_default();
        out.cases += recorder["cases"].as_object().map_or(0, |c| c.len());
        out.requests += recorder["interactions"].as_object().map_or(0, |i| i.len());
        for checks in recorder["checks"]
            .as_object()
            .into_iter()
            .flat_map(|c| c.values())
        {
            for check in checks.as_array().into_iter().flatten() {
                out.checks += 1;
                if check["status"] != "SUCCESS" && check["status"] != "success" {
                    let name = check["name"].as_str().unwrap_or("?");
                    *out.failures
                        .entry(format!("{name} on {label}"))
                        .or_default() += 1;
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_any_operation() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schemathesis = repo.join("tests/schemathesis/.venv/bin/schemathesis");
    assert!(
        schemathesis.is_file(),
        "tests/schemathesis/.venv is missing: run `tests/setup` once"
    );
    let app = TestApp::spawn().await;
    let token = app.token_for("schemathesis:tester");
    let work = std::env::temp_dir().join(format!("schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work).unwrap();
    let started = std::time::Instant::now();

    let run = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(app.url("/api/openapi.json"))
        .args(["--url", &app.address])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        // One worker: the runs are then the same for a seed.
        .args(["--workers", "1", "--request-timeout", "20"])
        .args(["--report", "ndjson", "--report-ndjson-path"])
        .arg(work.join("report.ndjson"))
        // Hypothesis keeps its database in the working directory.
        .current_dir(&work)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(BUDGET, run)
        .await
        .expect("schemathesis finishes within its budget")
        .expect("schemathesis runs");
    let elapsed = started.elapsed();

    let report = std::fs::read_to_string(work.join("report.ndjson")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&work);
    let figures = figures(&report);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .rsplit_once("SUMMARY")
        .map_or(stdout.as_ref(), |(_, s)| s);
    println!(
        "schemathesis: {} test cases, {} requests, {} checks, {} failures, {} errors in {:.1} s",
        figures.cases,
        figures.requests,
        figures.checks,
        figures.failures.values().sum::<usize>(),
        figures.errors.len(),
        elapsed.as_secs_f64()
    );
    assert!(
        output.status.success() && figures.failures.is_empty() && figures.errors.is_empty(),
        "schemathesis failed ({}): failures {:#?}, errors {:#?}\n{stdout}\n{}",
        output.status,
        figures.failures,
        figures.errors,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        figures.cases > 1000 && figures.requests >= figures.cases,
        "schemathesis ran too little: {figures:?}\n{summary}"
    );
}
