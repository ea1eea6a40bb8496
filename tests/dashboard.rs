//! The dashboard's routes on a real repository with real runs: `cairn run`
//! makes two versions (committed with `--merge direct`) and one failed run,
//! then the router is asked for every page and what each shows is checked.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use cairn::github::Secret;
use cairn::http::dashboard;
use cairn::service::{LocalHost, ReadModel, ServedRepo};
use cairn::store::{RunPhase, Store};
use common::{assert_failure, assert_success, Scratch};

const SECRET: &str = "s3cr3t-token-value";

const PIPELINES: &str = r#"
[pipelines.sales]
dataset = "data/sales.csv"
schedule = "0 6 * * 1"
timezone = "Europe/Paris"
on_push = { paths = ["etl/**"] }
merge = "direct"

[pipelines.sales.tasks.extract]
command = ["sh", "etl/extract.sh"]

[pipelines.sales.tasks.clean]
command = ["sh", "-c", "echo cleaning rows; sleep 0.2"]
needs = ["extract"]

[pipelines.sales.tasks.enrich]
command = ["sh", "-c", "echo \"token is $DASHBOARD_TEST_SECRET\""]
needs = ["extract"]

[pipelines.sales.tasks.report]
command = ["sh", "etl/report.sh"]
needs = ["clean", "enrich"]
"#;

const EXTRACT: &str = r#"mkdir -p "$(dirname "$CAIRN_DATASET")"
[ -f "$CAIRN_DATASET" ] || echo "id,amount" > "$CAIRN_DATASET"
echo "$CAIRN_RUN_ID,42" >> "$CAIRN_DATASET"
echo "extracted into $CAIRN_DATASET"
"#;

const REPORT: &str = r#"if [ -f etl/FAIL ]; then
  echo "<script>alert('report')</script> failed" >&2
  exit 3
fi
echo "report ok"
"#;

/// A repository with three runs of `sales`: two that committed a version,
/// then one whose `report` task failed. Returns (scratch, run ids oldest first).
fn repository_with_runs() -> (Scratch, Vec<String>) {
    let s = Scratch::with_config(
        PIPELINES,
        &[("etl/extract.sh", EXTRACT), ("etl/report.sh", REPORT)],
    );
    let run = |s: &Scratch| {
        let mut command = common::cairn_command(
            &s.repo,
            &["run", "sales", "--pass-env", "DASHBOARD_TEST_SECRET"],
        );
        command.env("DASHBOARD_TEST_SECRET", SECRET);
        command.output().unwrap()
    };
    assert_success(&run(&s), "first run");
    assert_success(&run(&s), "second run");
    s.write("etl/FAIL", "");
    s.git(&["add", "-A"]);
    s.git(&["commit", "--quiet", "-m", "Break the report"]);
    assert_failure(&run(&s), "third run");
    let store = Store::open(&s.repo.join(".cairn/cairn.db")).unwrap();
    let ids = store
        .runs(Some("sales"), 10)
        .unwrap()
        .into_iter()
        .rev()
        .map(|r| r.id)
        .collect();
    (s, ids)
}

/// The repository as the service would serve it, and its name there.
fn catalog(repo: &Path) -> (Arc<dyn ReadModel>, String) {
    let host = LocalHost::new(repo.to_path_buf()).unwrap();
    let name = cairn::service::Host::name(&host).to_string();
    // `cairn serve` makes the state folder before opening the store.
    std::fs::create_dir_all(repo.join(".cairn")).unwrap();
    let store = Store::open(&repo.join(".cairn/cairn.db")).unwrap();
    let served = vec![ServedRepo::new(Arc::new(host), Arc::new(store))];
    (Arc::new(served), name)
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(router: &axum::Router, uri: &str) -> Page {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_shows_what_the_runs_did() {
    let (s, ids) = repository_with_runs();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let (catalog, repo) = catalog(&s.repo);
    let router = dashboard::routes(
        catalog,
        dashboard::Options {
            redact: vec![Secret::new(SECRET)],
        },
    );
    let store = Store::open(&s.repo.join(".cairn/cairn.db")).unwrap();
    let last_good = store.run(&ids[1]).unwrap().unwrap();
    assert_eq!(last_good.phase, RunPhase::Succeeded);
    let md5 = last_good.new_md5.clone().unwrap();

    // The overview: schedule, next firing, triggers, last run, version.
    let page = get(&router, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let b = &page.body;
    assert!(b.starts_with("<!DOCTYPE html>"));
    assert!(b.contains("data-pipeline=\"sales\""), "{b}");
    assert!(b.contains("<code>0 6 * * 1</code>"));
    assert!(b.contains("Europe/Paris"));
    assert!(
        b.contains("CET") || b.contains("CEST"),
        "next firing in the schedule's zone: {b}"
    );
    assert!(b.contains("<code>etl/**</code>"));
    assert!(b.contains("data-phase=\"failed\">failed</span>"));
    assert!(
        b.contains(&format!(">{}</a>", ids[2])),
        "the last run is the failed one"
    );
    assert!(
        b.contains(&format!("title=\"{md5}\"")),
        "the version on main: {b}"
    );

    // The fragment the script polls is <main>'s contents, with its interval.
    let fragment = get(&router, "/?fragment=1").await;
    assert!(!fragment.body.contains("<!DOCTYPE"));
    assert!(fragment.body.starts_with("<h1>Pipelines</h1>"));
    assert_eq!(fragment.headers["x-cairn-poll"], "10");

    // The failed run: DAG in state colours, exit code, reason, log tails.
    let page = get(&router, &format!("/runs/{}?repo={}", ids[2], enc(&repo))).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    for (task, state) in [
        ("extract", "succeeded"),
        ("clean", "succeeded"),
        ("enrich", "succeeded"),
        ("report", "failed"),
    ] {
        assert!(
            b.contains(&format!(
                "class=\"node\" data-task=\"{task}\" data-state=\"{state}\""
            )),
            "{task} {state}: {b}"
        );
    }
    assert_eq!(b.matches("class=\"edge\"").count(), 4);
    assert!(b.contains("<td class=\"exit\">3</td>"), "{b}");
    assert!(b.contains("&lt;script&gt;alert(&#39;report&#39;)&lt;/script&gt; failed"));
    assert!(!b.contains("<script>alert"));
    assert!(b.contains("token is ***"), "the secret is hidden: {b}");
    assert!(!b.contains(SECRET));
    assert!(b.contains("class=\"timeline\""));
    assert_eq!(page.headers["x-cairn-poll"], "0", "a finished run is final");

    // A successful run links its dataset diff, and the diff page shows it.
    let page = get(&router, &format!("/runs/{}", ids[0])).await;
    assert!(
        page.body.contains(&format!("/runs/{}/diff?repo=", ids[0])),
        "{}",
        page.body
    );
    let diff = get(&router, &format!("/runs/{}/diff", ids[0])).await;
    assert_eq!(diff.status, StatusCode::OK);
    assert!(diff.body.contains("data/sales.csv"), "{}", diff.body);
    assert!(!diff.body.contains("&lt;!-- cairn:pipeline"));
    let none = get(&router, &format!("/runs/{}/diff", ids[2])).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    // The pipeline: a bar per run, a point per published size, and the two
    // versions on main with their commits and runs.
    let page = get(&router, &format!("/pipelines/sales?repo={}", enc(&repo))).await;
    assert_eq!(page.status, StatusCode::OK);
    let b = &page.body;
    assert_eq!(b.matches("class=\"bar\"").count(), 3, "{b}");
    assert_eq!(b.matches("class=\"point\"").count(), 2);
    assert_eq!(b.matches("<tr class=\"version\"").count(), 2);
    for id in &ids[..2] {
        let commit = store.run(id).unwrap().unwrap().commit.unwrap();
        let row = b
            .split(&format!("<tr class=\"version\" data-commit=\"{commit}\">"))
            .nth(1)
            .and_then(|rest| rest.split("</tr>").next())
            .unwrap_or_else(|| panic!("no version row for {commit}: {b}"));
        assert!(
            row.contains(&format!(">{id}</a>")),
            "{id} is linked from its version: {row}"
        );
        assert!(
            row.contains(&md5_cell(&store, id)),
            "{id}'s md5 is on its version row: {row}"
        );
    }

    // What does not exist is a 404 page, not an error.
    assert_eq!(
        get(&router, "/runs/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, "/pipelines/nope").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&router, &format!("/runs/{}?repo=other%2Frepo", ids[0]))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let js = get(&router, "/assets/dashboard.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(js.body.contains("X-Cairn-Poll"));
    let css = get(&router, "/assets/dashboard.css").await;
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn a_repository_without_runs_shows_its_pipelines_and_no_versions() {
    let s = Scratch::with_config(
        PIPELINES,
        &[("etl/extract.sh", EXTRACT), ("etl/report.sh", REPORT)],
    );
    let router = dashboard::routes(catalog(&s.repo).0, dashboard::Options::default());
    let page = get(&router, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no run yet"));
    assert!(page.body.contains("no version yet"));
    let page = get(&router, "/pipelines/sales").await;
    assert!(page.body.contains("No run yet."));
    assert!(page.body.contains("holds no version of this dataset yet"));
}

#[tokio::test]
async fn a_broken_pipelines_toml_is_reported_and_the_last_good_one_shown() {
    let s = Scratch::with_config(
        PIPELINES,
        &[("etl/extract.sh", EXTRACT), ("etl/report.sh", REPORT)],
    );
    let good = s.git(&["rev-parse", "HEAD"]).trim().to_string();
    // The service records the last good config; do what it does.
    std::fs::create_dir_all(s.repo.join(".cairn")).unwrap();
    let store = Store::open(&s.repo.join(".cairn/cairn.db")).unwrap();
    store
        .set_reconciled("main", &cairn::store::Reconciled::all_of(&good))
        .unwrap();
    s.write("pipelines.toml", "[pipelines.sales\n");
    s.git(&["commit", "--quiet", "-am", "Break pipelines.toml"]);
    let router = dashboard::routes(catalog(&s.repo).0, dashboard::Options::default());
    let page = get(&router, "/").await;
    assert!(page.body.contains("class=\"warning\""), "{}", page.body);
    assert!(page.body.contains("the last good one is in force"));
    assert!(page.body.contains("data-pipeline=\"sales\""));
}

/// The read model `cairn serve` fills (its stores, the config its worker
/// loaded, the checkout) shows what the repository alone shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_the_pages_from_what_it_knows() {
    let (s, ids) = repository_with_runs();
    let (service, stop) = common::local_service(
        &s.repo,
        Arc::new(cairn::service::SystemClock),
        std::time::Duration::ZERO,
    );
    let start = std::time::Instant::now();
    while let Err(why) = service.ready() {
        assert!(start.elapsed().as_secs() < 30, "never ready: {why}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let router = dashboard::routes(
        Arc::clone(&service) as Arc<dyn ReadModel>,
        dashboard::Options::default(),
    );
    let store = Store::open(&s.repo.join(".cairn/cairn.db")).unwrap();
    let md5 = store.run(&ids[1]).unwrap().unwrap().new_md5.unwrap();

    let page = get(&router, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("data-pipeline=\"sales\""),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("title=\"{md5}\"")));
    assert!(!page.body.contains("class=\"warning\""));
    let page = get(&router, "/pipelines/sales").await;
    assert_eq!(page.body.matches("<tr class=\"version\"").count(), 2);
    let page = get(&router, &format!("/runs/{}", ids[2])).await;
    assert_eq!(page.body.matches("class=\"edge\"").count(), 4);

    stop.cancel();
    service.stopped().await;
}

/// The first 8 characters of the md5 a run published.
fn md5_cell(store: &Store, id: &str) -> String {
    let md5 = store.run(id).unwrap().unwrap().new_md5.unwrap();
    format!(">{}</code>", &md5[..8])
}
