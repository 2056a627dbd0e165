//! The lab end to end in-process: `qlab sweep` against qserve on 127.0.0.1:0 (a few short points),
//! then `qlab report` on the directory it wrote.
//!
//! What is asserted is behaviour, not speed: files and columns, theory values against closed
//! forms, well-formed plots with their series, counts that follow from the arrival process, and
//! that the report is a pure function of `results.json`. Timing-dependent quantities (means,
//! distances) are only checked for being present and in range.
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use queuelab_common::model::{Model, Servers};
use queuelab_common::theory;
use queuelab_lab::analysis;
use queuelab_lab::record::ResultsFile;
use queuelab_lab::report;
use queuelab_lab::sweep::{self, SweepPlan};
use queuelab_lab::table::CSV_COLUMNS;
use queuelab_lab::{ReportArgs, SweepArgs};
use roxmltree::{Document, Node};

#[derive(Debug, Parser)]
struct SweepCli {
    #[command(flatten)]
    args: SweepArgs,
}

#[derive(Debug, Parser)]
struct ReportCli {
    #[command(flatten)]
    args: ReportArgs,
}

/// A qserve on 127.0.0.1:0 emulating M/M/1 (or M/M/1/K) at `mu`.
fn server(mu: f64, capacity: Option<u32>) -> queuelab_server::Handle {
    queuelab_server::start(queuelab_server::Config {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        model: Model::new(mu, Servers::Finite(1)).with_capacity(capacity),
        seed: 7,
        spin: Duration::from_micros(50),
        ..queuelab_server::Config::default()
    })
    .expect("qserve starts on 127.0.0.1:0")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("qload-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

/// A plan from command-line words, as `qlab sweep` would build it.
fn plan(words: &[&str]) -> SweepPlan {
    let cli = SweepCli::try_parse_from(std::iter::once("sweep").chain(words.iter().copied()))
        .expect("flags parse");
    cli.args.plan().expect("flags validate")
}

fn csv_table(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(dir.join("results.csv")).expect("results.csv");
    let header: Vec<String> = r
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = r
        .records()
        .map(|row| {
            row.expect("a valid row")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (header, rows)
}

fn col<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("column {name} missing from {header:?}"));
    &row[i]
}

fn num(header: &[String], row: &[String], name: &str) -> f64 {
    col(header, row, name)
        .parse()
        .unwrap_or_else(|e| panic!("column {name}: {e}"))
}

/// The text of a plot the sweep wrote.
fn svg_text(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A plot parsed by an XML parser: a panic if it is not well-formed.
fn parse<'t>(name: &str, text: &'t str) -> Document<'t> {
    Document::parse(text).unwrap_or_else(|e| panic!("{name} is not well-formed: {e}"))
}

/// The group of series `id`, checked to be marked as a series.
fn series<'a, 't>(doc: &'a Document<'t>, id: &str) -> Node<'a, 't> {
    let g = doc
        .descendants()
        .find(|n| n.attribute("id") == Some(&*format!("series-{id}")))
        .unwrap_or_else(|| panic!("series {id} missing"));
    let class = g.attribute("class").unwrap_or("");
    assert!(
        class.split_ascii_whitespace().any(|c| c == "series"),
        "{id} is not marked as a series"
    );
    g
}

/// The elements named `element` inside `n`.
fn elements<'a, 't>(n: Node<'a, 't>, element: &'a str) -> impl Iterator<Item = Node<'a, 't>> {
    n.descendants()
        .filter(move |e| e.is_element() && e.tag_name().name() == element)
}

/// How many of each drawing element the series group `series-{id}` holds.
fn series_elements(doc: &Document<'_>, id: &str, element: &str) -> usize {
    elements(series(doc, id), element).count()
}

fn polyline_points(doc: &Document<'_>, id: &str) -> usize {
    elements(series(doc, id), "polyline")
        .map(|e| {
            e.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .sum()
}

/// The texts of a plot's `<text>` elements.
fn texts<'a>(doc: &'a Document<'_>) -> Vec<&'a str> {
    elements(doc.root(), "text")
        .filter_map(|e| e.text())
        .collect()
}

#[test]
#[ignore = "end to end and timing-dependent: scripts/test.sh runs it (cargo test -- --ignored)"]
fn sweep_then_report_mm1() {
    let mu = 2000.0;
    let srv = server(mu, None);
    let url = format!("http://{}/", srv.local_addr());
    let out = temp_dir("lab-mm1");
    let out_s = out.to_string_lossy().into_owned();
    let p = plan(&[
        "--mu",
        "2000",
        "--rhos",
        "0.3,0.7",
        "--duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--seed",
        "11",
        "--out",
        &out_s,
        "--threads",
        "1",
        "--no-pin",
        // One attempt a point: this test checks the files and their consistency, which hold
        // whatever the verdicts (an unpinned, sleeping client on a loaded machine fails the
        // send-lag and lateness checks by design; lab/tests/checks.rs tests the re-runs).
        "--attempts",
        "1",
        &url,
    ]);
    assert_eq!(p.overhead_url.as_deref(), Some(&*format!("{}healthz", url)));
    let mut log = Vec::new();
    let res = sweep::sweep(&p, &mut log).expect("sweep runs");
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("[1/2]") && log.contains("[2/2]"), "{log}");

    // Files.
    for f in [
        "results.json",
        "results.csv",
        "table.txt",
        "mean_vs_rho.svg",
        "error_vs_rho.svg",
        "cdf.svg",
        "index.html",
    ] {
        assert!(out.join(f).is_file(), "{f} not written");
    }
    assert!(
        !out.join("blocking_vs_rho.svg").exists(),
        "no capacity, no blocking plot"
    );
    // qserve's answers carry Server-Timing: the page, the table and the plots say that the net
    // is the server's own time and give the path beside the twin's overhead.
    let page = fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(
        page.contains("<th>path</th>"),
        "no path column in index.html"
    );
    assert!(
        page.contains("Server-Timing"),
        "index.html does not say where net comes from"
    );
    let table_txt = fs::read_to_string(out.join("table.txt")).expect("table.txt");
    assert!(table_txt.contains("    path  overhead"), "{table_txt}");
    assert!(svg_text(&out, "mean_vs_rho.svg").contains("Server-Timing"));

    // results.json: config, both points with their raw qload results and overhead runs.
    let file = ResultsFile::read(&out).expect("results.json reads back");
    assert_eq!(file.config.rhos, vec![0.3, 0.7]);
    assert_eq!(file.config.servers, "1");
    assert_eq!(file.points.len(), 2);
    assert_eq!(file.analysis.len(), 2);
    for r in &file.points {
        assert_eq!(
            r.raw.latency_us.count, r.raw.requests.completed,
            "raw qload result kept"
        );
        assert_eq!(r.measured.completed, r.raw.requests.completed);
        let o = r.overhead.as_ref().expect("overhead measured");
        assert!(o.completed > 0);
        let o_raw = r.overhead_raw.as_ref().expect("raw overhead result kept");
        assert_eq!(o.completed, o_raw.requests.completed);
        // The batches recorded are those of the series: 1.5 s in 16 intervals of 93.75 ms and
        // the stub after the schedule ended, folded into the last unless it is half an interval.
        // Fewer when intervals got no answer (a machine busy enough to stall the run), at least
        // two since the point has an interval (checked below).
        let batches = queuelab_client::result::batch_count(&r.raw.intervals) as u64;
        assert_eq!(r.measured.batches, Some(batches));
        assert!((2..=17).contains(&batches), "{batches} batches");
    }

    // CSV: the documented columns, one row per point, theory from the closed forms.
    let (header, rows) = csv_table(&out);
    let want: Vec<&str> = CSV_COLUMNS.iter().map(|c| c.0).collect();
    assert_eq!(header, want);
    assert_eq!(rows.len(), 2);
    for (row, rho) in rows.iter().zip([0.3, 0.7]) {
        assert_eq!(row.len(), header.len());
        let lambda = rho * mu;
        assert_eq!(num(&header, row, "rho"), rho);
        assert!((num(&header, row, "lambda") - lambda).abs() < 1e-9);
        assert_eq!(col(&header, row, "model"), "M/M/1");
        // M/M/1: T ~ Exp(μ − λ): W = 1/(μ − λ), p50 = ln 2·W, p99 = ln 100·W.
        let w = 1e6 / (mu - lambda);
        let rel = |name: &str, v: f64| {
            let got = num(&header, row, name);
            assert!((got / v - 1.0).abs() < 1e-9, "{name}: {got} vs {v}");
        };
        rel("theory_mean_us", w);
        rel("theory_p50_us", w * 2f64.ln());
        rel("theory_p90_us", w * 10f64.ln());
        rel("theory_p99_us", w * 100f64.ln());
        assert_eq!(num(&header, row, "theory_blocking"), 0.0);
        // The same values as common's theory module gives.
        let t = theory::predict(&Model::new(mu, Servers::Finite(1)), lambda).expect("stable M/M/1");
        rel("theory_mean_us", t.mean_s * 1e6);
        // Counts: arrivals in 1.5 s at λ are Poisson(1.5λ) ≥ 450; below 0.5·1.5λ has
        // probability < 1e-30. Every request is answered by a live local server.
        let completed = num(&header, row, "completed");
        assert!(completed >= 0.5 * 1.5 * lambda, "{completed}");
        assert_eq!(num(&header, row, "errors"), 0.0);
        assert_eq!(num(&header, row, "blocked"), 0.0);
        assert_eq!(num(&header, row, "blocking_measured"), 0.0);
        // Measured values are present and consistent with each other.
        let mean = num(&header, row, "mean_us");
        let (lo, hi) = (
            num(&header, row, "ci95_low_us"),
            num(&header, row, "ci95_high_us"),
        );
        assert!(mean > 0.0 && lo <= mean && mean <= hi, "{lo} {mean} {hi}");
        let o = num(&header, row, "overhead_mean_us");
        assert!(o > 0.0);
        // qserve sends Server-Timing: the net is each request's latency less its own path, from
        // the same run; the zero-service twin's net stays beside it as the cross-check. Both are
        // the mean less a positive path (the net of the decomposition from the mean's exact sums,
        // so to rounding of the printed digits).
        assert_eq!(col(&header, row, "net_source"), "server_timing");
        let path = num(&header, row, "path_mean_us");
        assert!(path > 0.0 && path < mean, "path {path} of {mean}");
        let net = num(&header, row, "net_mean_us");
        assert!(
            (net - (mean - path)).abs() < 1e-3 * mean,
            "{net} vs {mean} - {path}"
        );
        assert!((num(&header, row, "net_twin_mean_us") - (mean - o)).abs() < 1e-6);
        assert!((num(&header, row, "err_raw") - (mean - w) / w).abs() < 1e-9);
        for k in ["ks_raw", "ks_net"] {
            let d = num(&header, row, k);
            assert!((0.0..=1.0).contains(&d), "{k} = {d}");
        }
        // The noise level is 1.358/√n_eff with 1 ≤ n_eff ≤ completed.
        let noise = num(&header, row, "ks_noise");
        assert!(
            noise >= 1.358 / completed.sqrt() - 1e-12 && noise <= 1.358,
            "ks_noise = {noise} with {completed} responses"
        );
        assert!(matches!(
            col(&header, row, "ci_covers_theory_net"),
            "true" | "false"
        ));
    }

    // The table: header line with the model, a row per point, the summary.
    let table = &res.rendered.table;
    assert!(table.starts_with("M/M/1: μ = 2000/s per server"), "{table}");
    assert!(
        table.contains("\n 0.30 ") && table.contains("\n 0.70 "),
        "{table}"
    );
    // The summary counts the points that passed their checks and names the others.
    let failed = rows
        .iter()
        .filter(|r| col(&header, r, "verdict") == "failed")
        .count();
    if failed < rows.len() {
        assert!(
            table.contains("Summary: net 95% CI covers theory at"),
            "{table}"
        );
    }
    if failed > 0 {
        assert!(
            table.contains(&format!("{failed} of 2 points FAILED their checks")),
            "{table}"
        );
    }
    assert_eq!(
        fs::read_to_string(out.join("table.txt")).expect("table.txt"),
        *table
    );

    // Plots: well-formed, with the series they should have.
    let mean_text = svg_text(&out, "mean_vs_rho.svg");
    let mean = parse("mean_vs_rho.svg", &mean_text);
    assert!(
        polyline_points(&mean, "theory") >= 100,
        "a smooth theory curve"
    );
    assert_eq!(series_elements(&mean, "measured-raw", "rect"), 2);
    assert_eq!(series_elements(&mean, "measured-net", "circle"), 2);
    assert!(
        series_elements(&mean, "measured-net", "line") >= 2 * 3,
        "CI bars"
    );
    let texts = texts(&mean);
    assert!(
        texts.iter().any(|t| t.contains("M/M/1")),
        "title names the model"
    );
    assert!(
        texts.iter().any(|t| t.starts_with("mean response time (")),
        "y axis with unit: {texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("offered load per server ρ"))
    );
    assert!(texts.iter().any(|t| t.contains("theory M/M/1")), "legend");
    let err_text = svg_text(&out, "error_vs_rho.svg");
    let err = parse("error_vs_rho.svg", &err_text);
    assert_eq!(series_elements(&err, "error-raw", "rect"), 2);
    assert_eq!(series_elements(&err, "error-net", "circle"), 2);
    let cdf_text = svg_text(&out, "cdf.svg");
    let cdf = parse("cdf.svg", &cdf_text);
    for k in 0..2 {
        assert!(polyline_points(&cdf, &format!("cdf-theory-{k}")) >= 100);
        assert!(polyline_points(&cdf, &format!("cdf-measured-{k}")) >= 10);
    }
    assert!(
        !cdf.descendants()
            .any(|n| n.attribute("id") == Some("series-cdf-theory-2")),
        "two points, two CDFs"
    );

    // The report is a pure function of results.json: delete its outputs, redo them, same bytes.
    let derived = [
        "results.csv",
        "table.txt",
        "mean_vs_rho.svg",
        "error_vs_rho.svg",
        "cdf.svg",
        "index.html",
    ];
    let before: Vec<Vec<u8>> = derived
        .iter()
        .map(|f| fs::read(out.join(f)).expect("read"))
        .collect();
    for f in derived {
        fs::remove_file(out.join(f)).expect("remove");
    }
    let cli = ReportCli::try_parse_from(["report", &out_s]).expect("report flags");
    let again = report::report(&cli.args.dir).expect("report");
    assert_eq!(again.files.len(), derived.len());
    for (f, b) in derived.iter().zip(&before) {
        assert_eq!(&fs::read(out.join(f)).expect("rewritten"), b, "{f} differs");
    }

    // ... and it reads results.json, not a cache: change a measured mean and see it in the CSV.
    let mut edited = ResultsFile::read(&out).expect("results.json");
    edited.points[0].measured.latency_us.mean = 123456.0;
    edited.write(&out).expect("write results.json");
    report::report(&out).expect("report after edit");
    let (header, rows) = csv_table(&out);
    assert_eq!(num(&header, &rows[0], "mean_us"), 123456.0);

    srv.shutdown();
    srv.join().expect("qserve ends cleanly");
    fs::remove_dir_all(&out).expect("cleanup");
}

#[test]
#[ignore = "end to end and timing-dependent: scripts/test.sh runs it (cargo test -- --ignored)"]
fn sweep_with_capacity_draws_blocking() {
    let (mu, k, rho) = (2000.0, 3u32, 1.5f64);
    let srv = server(mu, Some(k));
    let url = format!("http://{}/", srv.local_addr());
    let out = temp_dir("lab-mm1k");
    let out_s = out.to_string_lossy().into_owned();
    let p = plan(&[
        "--mu",
        "2000",
        "--capacity",
        "3",
        "--rhos",
        "1.5",
        "--duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--out",
        &out_s,
        "--threads",
        "1",
        "--no-pin",
        "--attempts",
        "1",
        &url,
    ]);
    sweep::sweep(&p, &mut std::io::sink()).expect("sweep runs");
    let (header, rows) = csv_table(&out);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(col(&header, row, "model"), "M/M/1/3");
    // M/M/1/K: P_block = (1 − ρ)ρ^K / (1 − ρ^(K+1)).
    let pb = (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1));
    let got = num(&header, row, "theory_blocking");
    assert!((got / pb - 1.0).abs() < 1e-9, "{got} vs {pb}");
    // 4,500 arrivals in 1.5 s need 2.25 s of service on average (sd 0.03 s) while at most K wait:
    // blocking is certain unless sends lag by most of a second.
    let blocked = num(&header, row, "blocked");
    let completed = num(&header, row, "completed");
    assert!(blocked > 0.0, "no 503 at ρ = 1.5 with K = 3");
    assert!((num(&header, row, "blocking_measured") - blocked / completed).abs() < 1e-12);
    let file = ResultsFile::read(&out).expect("results.json");
    assert_eq!(
        file.points[0].raw.requests.status.s503 as f64, blocked,
        "blocked = qload's 503 count"
    );
    let doc_text = svg_text(&out, "blocking_vs_rho.svg");
    let doc = parse("blocking_vs_rho.svg", &doc_text);
    assert!(polyline_points(&doc, "blocking-theory") >= 100);
    assert_eq!(series_elements(&doc, "blocking-measured", "polygon"), 1);
    assert!(texts(&doc).iter().any(|t| t.contains("M/M/1/3")));
    // The x axis goes past 1 for a capacity model.
    let a = analysis::summarize(&file.analysis);
    assert_eq!(a.points, 1);
    srv.shutdown();
    srv.join().expect("qserve ends cleanly");
    fs::remove_dir_all(&out).expect("cleanup");
}

#[test]
fn report_of_a_directory_without_results_fails_clearly() {
    let dir = temp_dir("lab-empty");
    fs::create_dir_all(&dir).expect("mkdir");
    let e = report::report(&dir).expect_err("no results.json");
    assert!(format!("{e:#}").contains("results.json"), "{e:#}");
    fs::write(dir.join("results.json"), "{\"format\": \"something-else\"}").expect("write");
    assert!(report::report(&dir).is_err());
    fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn sweep_flags_are_validated() {
    let bad = |words: &[&str], why: &str| {
        let cli = SweepCli::try_parse_from(std::iter::once("sweep").chain(words.iter().copied()));
        let msg = match cli {
            Err(e) => e.to_string(),
            Ok(c) => match c.args.plan() {
                Err(e) => format!("{e:#}"),
                Ok(_) => panic!("accepted {words:?}"),
            },
        };
        assert!(msg.contains(why), "{words:?}: {msg}");
    };
    let url = "http://127.0.0.1:9/";
    bad(&["--rhos", "0.5,1.2", url], "unstable");
    bad(&["--rhos", "0.5,-1", url], "positive");
    bad(&["--service", "zero", url], "zero");
    bad(
        &["--capacity", "1", "--servers", "2", url],
        "below --servers",
    );
    bad(&["--quick", "--duration", "10s", url], "--duration");
    bad(&["ftp://127.0.0.1/"], "unsupported scheme");
    bad(
        &["--overhead-url", "x", "--no-overhead", url],
        "--no-overhead",
    );
    bad(&["--model", "M/M/2/1", url], "below --servers");
    bad(
        &["--model", "M/M/1", "--servers", "2", url],
        "cannot be used",
    );
    bad(&["--model", "M/0", url], "zero");
    bad(&["--mu", "0", url], "rate");
    // The model flags and their defaults (qserve's): μ = 1000, M/M/1.
    let m = plan(&[url]).model;
    assert_eq!((m.mu, m.name()), (1000.0, "M/M/1".to_owned()));
    let m = plan(&["--model", "M/D/inf", "--mu", "2k", "--rhos", "3", url]).model;
    assert_eq!((m.mu, m.name()), (2000.0, "M/D/inf".to_owned()));
    let m = plan(&["--servers", "2", "--capacity", "6", url]).model;
    assert_eq!(m.name(), "M/M/2/6");
    // Only qserve reads the model flags from QSERVE_* variables.
    let help = <SweepCli as clap::CommandFactory>::command()
        .render_long_help()
        .to_string();
    assert!(help.contains("--model"), "{help}");
    assert!(!help.contains("QSERVE_"), "{help}");
    // Accepted: ρ ≥ 1 with a capacity, and with infinitely many servers.
    plan(&["--capacity", "10", "--rhos", "0.5,1.5", url]);
    plan(&["--servers", "inf", "--rhos", "3", url]);
    // --quick: the whole sweep of the default ten points in under a minute.
    let q = plan(&["--quick", url]);
    assert_eq!(q.rhos, sweep::DEFAULT_RHOS.to_vec());
    assert!(q.sending_time() + Duration::from_secs(12) <= Duration::from_secs(60));
    // Defaults: a fresh dated folder under results/.
    let d = plan(&[url]);
    let name = d.out.to_string_lossy().into_owned();
    assert!(
        name.starts_with("results/") && name.len() == "results/20250101-000000".len(),
        "{name}"
    );
}
