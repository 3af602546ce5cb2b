//! `evalcot reproduce paper` on the shipped matrix at a tiny scale: every configuration whose
//! models exist runs (and resumes on a rerun), every other one is reported with the missing
//! model named, and the report puts our numbers beside the paper's.

mod common;
use common::{evalcot, path, text};

#[test]
fn reproduce_paper_runs_the_matrix_and_writes_the_comparison() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("paper");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper");
    for e in std::fs::read_dir(&shipped).unwrap().flatten() {
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let matrix = dir.join("matrix.yaml");
    let text_of = std::fs::read_to_string(&matrix).unwrap();
    let small = text_of
        .lines()
        .find(|l| l.trim_start().starts_with("small:"))
        .unwrap();
    std::fs::write(
        &matrix,
        text_of.replace(
            small,
            "  small: {per_tag: 1, images_per_prompt: 1, n: 2, steps: 2}",
        ),
    )
    .unwrap();
    let (runs, out) = (tmp.path().join("runs"), tmp.path().join("paper.md"));
    let args = [
        "reproduce",
        "paper",
        "--matrix",
        path(&matrix),
        "--runs",
        path(&runs),
        "--out",
        path(&out),
        "--resamples",
        "100",
    ];
    let o = evalcot(&args);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let md = std::fs::read_to_string(&out).unwrap();
    for want in [
        "| Baseline | paper | 0.95 | 0.52 | 0.49 | 0.82 | 0.11 | 0.28 | 0.53 |",
        "paper/orm-zero-shot.yaml`",
        "paper/orm-fine-tuned.yaml`",
        "no evalcot equivalent",
        "## The paper's claims on our numbers",
        "Ordering by overall score",
    ] {
        assert!(md.contains(want), "{want:?} missing from:\n{md}");
    }
    for stem in [
        "baseline",
        "orm-zero-shot",
        "prm-zero-shot",
        "oracle",
        "parm-zero-shot",
        "parm-plus-zero-shot",
        "orm-fine-tuned",
        "prm-fine-tuned",
        "parm",
        "parm-plus",
        "dpo",
        "dpo-iter",
        "orm-ft-dpo-iter",
        "parm-dpo-iter-guided",
    ] {
        assert!(runs.join(stem).join("results.jsonl").is_file(), "{stem}");
    }
    // A rerun resumes every run and rewrites the same report; naming the default device (the
    // CPU) changes no configuration.
    let mut on_cpu = args.to_vec();
    on_cpu.extend(["--device", "cpu"]);
    let o = evalcot(&on_cpu);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("0 images generated now (6 resumed)"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), md);
    // A GPU device in a build without the `cuda` feature is a named error.
    if !cfg!(feature = "cuda") {
        let mut gpu = args.to_vec();
        gpu.extend(["--device", "cuda"]);
        let o = evalcot(&gpu);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains("built without the `cuda` feature"),
            "{}",
            text(&o.stderr)
        );
    }
    // An unknown scale is a named error.
    let mut bad = args.to_vec();
    bad.extend(["--scale", "huge"]);
    let o = evalcot(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--scale huge") && text(&o.stderr).contains("small"),
        "{}",
        text(&o.stderr)
    );
}

/// `reproduce paper --bank B`: the rows a bank can serve are replayed from it — the same bytes
/// as the live run — and the header says so; rows it cannot serve (PRM) run live with the
/// scale's `live` overrides; a bank of other settings serves nothing.
#[test]
fn reproduce_replays_the_rows_a_bank_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("paper");
    std::fs::create_dir_all(&dir).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/paper");
    for f in [
        "baseline.yaml",
        "orm-zero-shot.yaml",
        "oracle.yaml",
        "parm-zero-shot.yaml",
        "prm-zero-shot.yaml",
    ] {
        std::fs::copy(shipped.join(f), dir.join(f)).unwrap();
    }
    let matrix = dir.join("matrix.yaml");
    std::fs::write(
        &matrix,
        r#"scales:
  small: {per_tag: 1, images_per_prompt: 1, n: 3, steps: 3, live: {n: 2}}
  more: {per_tag: 1, images_per_prompt: 1, n: 4, steps: 3}
tables:
  - title: "T"
    rows:
      - {id: b, label: Baseline, config: baseline.yaml}
      - {id: o, label: ORM, config: orm-zero-shot.yaml}
      - {id: x, label: Oracle, config: oracle.yaml}
      - {id: p, label: PARM, config: parm-zero-shot.yaml}
      - {id: r, label: PRM, config: prm-zero-shot.yaml}
claims:
  - {text: "ORM beats sampling", better: o, than: b}
"#,
    )
    .unwrap();
    // A bank of 6 prompts × 1 image × N = 3 with `steps` steps.
    let make_bank = |name: &str, steps: &str| {
        let out = tmp.path().join(name);
        let o = evalcot(&[
            "bank",
            "geneval",
            "--per-tag",
            "1",
            "--images-per-prompt",
            "1",
            "--n",
            "3",
            "--steps",
            steps,
            "--out",
            path(&out),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        out
    };
    let bank = make_bank("bank", "3");
    let reproduce = |runs: &std::path::Path, out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "reproduce",
            "paper",
            "--matrix",
            path(&matrix),
            "--runs",
            path(runs),
            "--out",
            path(out),
            "--resamples",
            "50",
        ];
        args.extend_from_slice(extra);
        let o = evalcot(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        (std::fs::read_to_string(out).unwrap(), text(&o.stderr))
    };
    let (live, banked) = (tmp.path().join("live"), tmp.path().join("banked"));
    let (md_live, _) = reproduce(&live, &tmp.path().join("live.md"), &[]);
    let (md, err) = reproduce(
        &banked,
        &tmp.path().join("banked.md"),
        &["--bank", path(&bank)],
    );
    assert_eq!(err.matches("replayed from").count(), 4, "{err}");
    for stem in [
        "baseline",
        "orm-zero-shot",
        "oracle",
        "parm-zero-shot",
        "prm-zero-shot",
    ] {
        for f in ["results.jsonl", "generation.jsonl"] {
            let read = |root: &std::path::Path| {
                std::fs::read_to_string(root.join(stem).join(f))
                    .unwrap()
                    .replace(path(root), "ROOT")
            };
            assert_eq!(read(&live), read(&banked), "{stem}/{f}");
        }
    }
    assert!(md.contains("## Runs"), "{md}");
    assert!(md.contains(&format!("bank `{}`", bank.display())), "{md}");
    let prm = md
        .lines()
        .find(|l| l.starts_with("| `") && l.contains("prm-zero-shot.yaml"))
        .unwrap();
    assert!(
        prm.contains("| 6 × 1 | 2 |") && prm.ends_with("| live |"),
        "{prm}"
    );
    assert!(!md_live.contains("bank `"), "{md_live}");
    // `--only` runs the configurations of the rows named, marks the others not run, and says so
    // in the command the report cites; an unknown id names the matrix and its rows.
    let part = tmp.path().join("part");
    let (md, err) = reproduce(
        &part,
        &tmp.path().join("part.md"),
        &["--bank", path(&bank), "--only", "o,x"],
    );
    assert_eq!(err.matches("replayed from").count(), 2, "{err}");
    let stems: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stems.len(), 2, "{stems:?}");
    assert!(
        md.contains("not selected (`--only`)") && md.contains("--only o,x"),
        "{md}"
    );
    for stem in ["orm-zero-shot", "oracle"] {
        assert_eq!(
            std::fs::read_to_string(part.join(stem).join("results.jsonl")).unwrap(),
            std::fs::read_to_string(banked.join(stem).join("results.jsonl"))
                .unwrap()
                .replace(path(&banked), path(&part)),
            "{stem}"
        );
    }
    let o = evalcot(&[
        "reproduce",
        "paper",
        "--matrix",
        path(&matrix),
        "--runs",
        path(&part),
        "--out",
        path(&tmp.path().join("bad.md")),
        "--only",
        "o,nope",
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--only nope") && text(&o.stderr).contains("b, o, x, p, r"),
        "{}",
        text(&o.stderr)
    );
    // A bank of other steps serves nothing (it would replay other images under this config).
    let steps4 = make_bank("bank-steps4", "4");
    let (_, err) = reproduce(
        &live,
        &tmp.path().join("steps4.md"),
        &["--bank", path(&steps4)],
    );
    assert!(!err.contains("replayed from"), "{err}");
    // A bank with fewer candidates than a scale's N serves nothing: every row runs live.
    let (md, err) = reproduce(
        &tmp.path().join("other"),
        &tmp.path().join("other.md"),
        &["--bank", path(&bank), "--scale", "more"],
    );
    assert!(
        !err.contains("replayed from") && !md.contains("bank `"),
        "{err}"
    );
}
