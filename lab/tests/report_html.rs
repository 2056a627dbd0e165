//! `index.html` as a browser sees it: the report of a results file is opened in headless
//! Chromium, its DOM read back (a row per point, every plot there) and a screenshot taken.
//!
//! Four files: the lab-v1 fixture (written before the checks: no verdicts), the same sweep with
//! checks, a point that passed and one that failed after being measured again, and the pages of
//! a closed sweep (closed-v1) and of a variability sweep (variability-v1). Chromium is
//! `$CHROMIUM`, else `chromium` or `chromium-browser` on the `PATH`; each run gets a profile
//! directory of its own (two runs sharing one would hand their page to the first) and a time
//! limit.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use queuelab_lab::record::{Check, RejectedAttempt, ResultsFile, Verdict};
use queuelab_lab::report::{self, INDEX_HTML};
use queuelab_lab::{closed, variability};

/// How long one Chromium run may take on a loaded machine (it takes about a second).
const CHROMIUM_LIMIT: Duration = Duration::from_secs(120);

/// A screenshot of an empty page of 1280 × 2000 is about 12 kB of PNG; the report's, with its
/// tables and four plots, about 200 kB. Four times the empty page tells the two apart.
const MIN_SCREENSHOT_BYTES: u64 = 50_000;

fn fixture_dir() -> PathBuf {
    data_dir("lab-v1")
}

fn data_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qlab-html-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("mkdir");
    d
}

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "no chromium or chromium-browser on the PATH (set CHROMIUM, or apt-get install chromium)"
    );
}

/// Runs headless Chromium on `page` with `args`, stdout into `stdout`, within the time limit.
fn run_chromium(page: &Path, args: &[String], stdout: &Path, profile: &Path) {
    let url = format!("file://{}", page.canonicalize().expect("page").display());
    let out = fs::File::create(stdout).expect("stdout file");
    let err = fs::File::create(stdout.with_extension("stderr")).expect("stderr file");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("chromium starts");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if start.elapsed() > CHROMIUM_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "chromium {args:?}: {status}; stderr: {}",
        fs::read_to_string(stdout.with_extension("stderr")).unwrap_or_default()
    );
}

/// The report of `dir/results.json` opened in Chromium: the DOM it built, and the screenshot.
fn open_in_chromium(dir: &Path) -> (String, PathBuf) {
    let out = report::report(dir).expect("qlab report");
    open_page(dir, &out.files)
}

/// The page a report wrote (`files`, the page last) opened in Chromium.
fn open_page(dir: &Path, files: &[PathBuf]) -> (String, PathBuf) {
    let page = dir.join(INDEX_HTML);
    assert_eq!(files.last(), Some(&page), "index.html written, last");
    let profile = dir.join("chromium-profile");
    let dom = dir.join("dom.html");
    run_chromium(&page, &["--dump-dom".into()], &dom, &profile);
    let shot = dir.join("screenshot.png");
    run_chromium(
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
        ],
        &dir.join("screenshot.stdout"),
        &profile,
    );
    (fs::read_to_string(&dom).expect("the dumped DOM"), shot)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "a PNG");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn check_screenshot(shot: &Path) {
    let bytes = fs::read(shot).expect("the screenshot exists");
    assert_eq!(png_size(&bytes), (1280, 2000));
    assert!(
        bytes.len() as u64 >= MIN_SCREENSHOT_BYTES,
        "screenshot of {} bytes: an empty page?",
        bytes.len()
    );
}

/// What the DOM must hold for a file of `points` points drawn in `plots` plots.
fn check_dom(dom: &str, file: &ResultsFile, plots: usize) {
    let ids: Vec<usize> = file.points.iter().map(|p| p.index).collect();
    check_page_dom(dom, &ids, plots);
}

/// What the DOM must hold for a page of points with these ids drawn in `plots` plots.
fn check_page_dom(dom: &str, ids: &[usize], plots: usize) {
    assert!(
        dom.contains("<title>"),
        "a document: {}",
        &dom[..dom.len().min(300)]
    );
    assert_eq!(
        dom.matches("<tr id=\"point-").count(),
        ids.len(),
        "one row per point"
    );
    for i in ids {
        let id = format!("<tr id=\"point-{i}\"");
        assert_eq!(dom.matches(&id).count(), 1, "{id}");
    }
    // Chromium parsed each inline plot as an SVG element (an unparsed one would be text).
    assert_eq!(dom.matches("<svg").count(), plots, "inline plots");
    assert_eq!(dom.matches("<figure id=\"plot-").count(), plots);
    assert!(dom.contains("</svg>") && dom.contains("<polyline"));
    // The table is a table: header and body as written, nothing moved out of it by the parser.
    assert!(dom.contains("<table class=\"points\">") && dom.contains("<tbody>"));
}

#[test]
#[ignore = "needs headless Chromium; scripts/test.sh installs it and runs it"]
fn the_report_of_the_v1_fixture_opens_in_chromium() {
    let dir = temp_dir("v1");
    fs::copy(fixture_dir().join("results.json"), dir.join("results.json")).expect("copy");
    let file = ResultsFile::read(&dir).expect("fixture");
    let (dom, shot) = open_in_chromium(&dir);
    // M/M/1/3: mean, error, CDF and blocking plots.
    check_dom(&dom, &file, 4);
    // No verdicts in this file: a dash in each point's verdict cell, no check tables.
    assert_eq!(dom.matches("class=\"point unchecked\"").count(), 2);
    assert!(!dom.contains("<table class=\"checks\">"));
    check_screenshot(&shot);
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "needs headless Chromium; scripts/test.sh installs it and runs it"]
fn a_report_with_checks_and_a_failed_point_opens_in_chromium() {
    let dir = temp_dir("checked");
    let mut file = ResultsFile::read(&fixture_dir()).expect("fixture");
    let check = |name: &str, value: f64, limit: f64, passed: bool| Check {
        name: name.into(),
        value,
        limit,
        unit: "us".into(),
        passed,
    };
    file.points[0].attempts = 1;
    file.points[0].verdict = Some(Verdict::Ok);
    file.points[0].checks = vec![check("send_lag_p99", 35.0, 200.0, true)];
    let failed = &mut file.points[1];
    failed.attempts = 2;
    failed.verdict = Some(Verdict::Failed);
    failed.checks = vec![check("send_lag_p99", 950.0, 200.0, false)];
    failed.rejected = vec![RejectedAttempt {
        attempt: 1,
        failed: vec![check("send_lag_p99", 700.0, 200.0, false)],
    }];
    file.write(&dir).expect("write results.json");
    let (dom, shot) = open_in_chromium(&dir);
    check_dom(&dom, &file, 4);
    assert!(dom.contains("<tr id=\"point-0\" class=\"point ok\">"));
    assert!(dom.contains("<tr id=\"point-1\" class=\"point failed\">"));
    assert!(dom.contains("FAILED after 2 attempts"));
    assert!(dom.contains("Attempt 1 was measured again: it failed send_lag_p99."));
    // The kept attempt of each point, and the rejected one.
    assert_eq!(dom.matches("<table class=\"checks\">").count(), 3);
    check_screenshot(&shot);
    fs::remove_dir_all(&dir).expect("cleanup");
}

/// A fresh directory holding a copy of fixture `name`'s results.json.
fn copy_of(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    fs::copy(
        data_dir(name).join("results.json"),
        dir.join("results.json"),
    )
    .expect("copy");
    dir
}

#[test]
#[ignore = "needs headless Chromium; scripts/test.sh installs it and runs it"]
fn the_page_of_a_closed_sweep_opens_in_chromium() {
    let dir = copy_of("closed-v1");
    let out = closed::report(&dir).expect("qlab report");
    let (dom, shot) = open_page(&dir, &out.files);
    // N = 1, 4, 16: a row each; X(N) and R(N).
    check_page_dom(&dom, &[0, 1, 2], 2);
    assert!(dom.contains("<h1>M/M/1: closed sweep of 2026-12-01 20:13:37 UTC</h1>"));
    assert_eq!(dom.matches("<td>theory (MVA)</td>").count(), 3);
    // Every point of this file failed its checks after two attempts.
    assert_eq!(dom.matches("class=\"point failed\"").count(), 3);
    assert!(dom.contains("N = 16: <span class=\"bad\">FAILED after 2 attempts</span>"));
    // The kept attempt of each point, and the one rejected before it.
    assert_eq!(dom.matches("<table class=\"checks\">").count(), 3 + 3);
    for id in ["plot-throughput_vs_users", "plot-response_vs_users"] {
        assert!(dom.contains(&format!("<figure id=\"{id}\">")), "{id}");
    }
    check_screenshot(&shot);
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "needs headless Chromium; scripts/test.sh installs it and runs it"]
fn the_page_of_a_variability_sweep_opens_in_chromium() {
    let dir = copy_of("variability-v1");
    let out = variability::report(&dir).expect("qlab report");
    let (dom, shot) = open_page(&dir, &out.files);
    // C² = 0, 1, 4: a row each; one plot.
    check_page_dom(&dom, &[0, 1, 2], 1);
    assert!(dom.contains(
        "<h1>M/G/1 with the h2 family: variability sweep of 2026-12-01 20:13:50 UTC</h1>"
    ));
    for (service, model) in [("const", "M/D/1"), ("exp", "M/M/1"), ("h2:4", "M/H2/1")] {
        assert!(
            dom.contains(&format!("<td>{service}</td><td>{model}</td>")),
            "{service}"
        );
    }
    assert_eq!(
        dom.matches("<td>simulation, 10 replications</td>").count(),
        3
    );
    assert_eq!(dom.matches("class=\"point failed\"").count(), 3);
    assert_eq!(dom.matches("<table class=\"checks\">").count(), 3);
    assert!(dom.contains("<figure id=\"plot-mean_vs_cv2\">"));
    check_screenshot(&shot);
    fs::remove_dir_all(&dir).expect("cleanup");
}
