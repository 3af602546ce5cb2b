//! Bad input, table-driven: every case exits with code 2 and one `error:` line naming the file and
//! the line or field, and writes nothing; input that can be converted (grey, 16-bit, palette,
//! alpha, any size) is accepted; entries outside the layout are warned about.

mod common;
use common::{evalcot, path, text, world_suite_prompts};
use std::path::{Path, PathBuf};

const DOG: &str = r#"{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}"#;

/// Runs `evalcot ARGS`, expects exit code 2 and a single error line containing every `want`,
/// and that `out` was not created.
fn expect_error(args: &[&str], want: &[&str], out: &Path) {
    let o = evalcot(args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "{args:?}: one error line expected: {err}");
    for w in want {
        assert!(lines[0].contains(w), "{args:?}: expected {w:?} in {err:?}");
    }
    assert!(!out.exists(), "{args:?}: {} was written", out.display());
}

fn weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/weights")
}

/// A model folder in `dir`: the shipped metadata file `json` (model folder, file name) and
/// `bpk` as the weights file `bpk_name`.
fn model_dir(dir: &Path, json: (&str, &str), bpk_name: &str, bpk: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(weights().join(json.0).join(json.1), dir.join(json.1)).unwrap();
    std::fs::write(dir.join(bpk_name), bpk).unwrap();
    dir.to_path_buf()
}

#[test]
fn bad_metadata_config_and_flags_are_one_named_error_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let meta = d.path().join("m.jsonl");
    let m = path(&meta);
    let cow = DOG.replace("dog", "cow");
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("{DOG}\n{{\"tag\": \"single_object\", \"incl\n"),
            vec!["m.jsonl:2: malformed JSON"],
        ),
        // Truncated: the last line cut short, no newline.
        (format!("{DOG}\n{}", &cow[..40]), vec!["m.jsonl:2: malformed JSON"]),
        (
            DOG.replace("\"dog\"", "\"wolf\""),
            vec!["m.jsonl:1: field `include[0].class`: unknown class \"wolf\""],
        ),
        (
            DOG.replace("\"count\": 1", "\"count\": 1, \"color\": \"teal\""),
            vec!["m.jsonl:1: field `include[0].color`: unknown colour \"teal\""],
        ),
        (
            r#"{"tag": "position", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["beside", 0]}], "prompt": "a photo of a dog beside a cat"}"#.into(),
            vec!["m.jsonl:1: field `include[1].position[0]`: unknown relation \"beside\""],
        ),
        (
            DOG.replace("\"count\": 1", "\"count\": 0"),
            vec!["m.jsonl:1: field `include[0].count`: count 0 is out of range"],
        ),
        (
            DOG.replace("\"count\": 1", "\"count\": 100000000000"),
            vec!["m.jsonl:1: field `include[0].count`: count 100000000000 is out of range"],
        ),
        (
            DOG.replace("\"count\": 1", "\"count\": 1.5"),
            vec!["m.jsonl:1: field `include[0].count`"],
        ),
        (
            DOG.replace("single_object", "singles"),
            vec!["m.jsonl:1: field `tag`: unknown tag"],
        ),
        ("[1, 2]\n".into(), vec!["m.jsonl:1: expected a JSON object"]),
        (String::new(), vec!["m.jsonl: no prompts"]),
        ("\n\n".into(), vec!["m.jsonl: no prompts"]),
        (format!("{DOG}\n\n{DOG}\n"), vec!["m.jsonl:2: blank line"]),
    ];
    for (content, want) in &cases {
        std::fs::write(&meta, content).unwrap();
        expect_error(&["suite", "--metadata", m], want, &out);
        expect_error(&["run", m, "--steps", "2", "--out", path(&out)], want, &out);
    }
    expect_error(
        &["suite", "--metadata", "/nonexistent/m.jsonl"],
        &["/nonexistent/m.jsonl: No such file or directory (os error 2)"],
        &out,
    );
    // The I/O error is said once, not once per wrapping layer.
    let o = evalcot(&["suite", "--metadata", "/nonexistent/m.jsonl"]);
    assert_eq!(text(&o.stderr).matches("No such file").count(), 1);

    // YAML run configs: unknown keys, wrong types, bad values, bad syntax.
    let yaml = d.path().join("c.yaml");
    for (content, want) in [
        (
            "steps: 2\nbogus: 1\n",
            vec!["c.yaml:2: ", "unknown field `bogus`"],
        ),
        ("n: ten\n", vec!["c.yaml:1: ", "n: invalid type"]),
        ("n: -3\n", vec!["c.yaml:1: ", "n: invalid type"]),
        ("seed: 1.5\n", vec!["c.yaml:1: ", "seed: invalid type"]),
        ("decision: maybe\n", vec!["c.yaml:1: ", "decision"]),
        ("device: tpu\n", vec!["c.yaml:1: ", "device"]),
        ("n: 0\n", vec!["c.yaml: n: must be at least 1"]),
        ("steps: 0\n", vec!["c.yaml: steps: must be at least 1"]),
        (
            "cfg_scale: .nan\n",
            vec!["c.yaml: cfg_scale: must be a finite number"],
        ),
        (
            "strategy: magic\n",
            vec!["c.yaml: strategy: unknown strategy"],
        ),
        ("tags: colour\n", vec!["c.yaml: tags: "]),
        ("[1, 2\n", vec!["c.yaml:"]),
    ] {
        std::fs::write(&yaml, content).unwrap();
        expect_error(
            &["run", "--config", path(&yaml), "--out", path(&out)],
            &want,
            &out,
        );
    }
    expect_error(
        &[
            "run",
            "--config",
            "/nonexistent/c.yaml",
            "--out",
            path(&out),
        ],
        &["/nonexistent/c.yaml"],
        &out,
    );

    // Flags.
    let o = path(&out);
    for (args, want) in [
        (vec!["--n", "0"], "n: must be at least 1"),
        (
            vec!["--images-per-prompt", "0"],
            "images_per_prompt: must be at least 1",
        ),
        (vec!["--steps", "0"], "steps: must be at least 1"),
        // Flags and the YAML config merge as YAML values: a NaN reaches validation.
        (vec!["--cfg", "nan"], "cfg_scale: must be a finite number"),
        (
            vec!["--temperature", "inf"],
            "temperature: must be a finite number",
        ),
        (
            vec!["--batch-prompts", "0"],
            "batch_prompts: must be at least 1",
        ),
        (vec!["--indices", "600-700"], "matches no prompt"),
        (vec!["--indices", "9-3"], "start is after end"),
        (
            vec!["--strategy", "orm", "--judge", "nonexistent"],
            "nonexistent",
        ),
    ] {
        let mut a = vec!["run", "geneval", "--out", o];
        a.extend(args);
        expect_error(&a, &[want], &out);
    }
    // Training runs in f32: a half-precision device is refused before anything is written.
    let detector = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/detector.yaml");
    expect_error(
        &[
            "train",
            "detector",
            "--config",
            path(&detector),
            "--out",
            o,
            "--device",
            "cuda-bf16",
        ],
        &["--device cuda-bf16: training runs in f32"],
        &out,
    );
    // clap's own errors also exit with 2.
    let r = evalcot(&["run", "geneval", "--n", "-1", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn truncated_or_foreign_weights_and_unwritable_outputs_are_named_errors() {
    let d = tempfile::tempdir().unwrap();
    let gt = d.path().join("gt");
    world_suite_prompts(&gt, 0, "0-7");
    let out = d.path().join("out.jsonl");
    let w = weights();
    let det = std::fs::read(w.join("detector/detector.bpk")).unwrap();
    let judge = std::fs::read(w.join("judge-zero-shot/judge.bpk")).unwrap();
    let score = |dir: &Path| {
        vec![
            "score".to_string(),
            path(&gt).into(),
            "--detector".into(),
            path(dir).into(),
            "--out".into(),
            path(&out).into(),
        ]
    };
    let detector = ("detector", "detector.json");
    for (name, bytes, want) in [
        (
            "truncated",
            &det[..det.len() / 3],
            vec!["detector.bpk: not a weights file", "truncated"],
        ),
        ("empty", &det[..0], vec!["detector.bpk: not a weights file"]),
        (
            "foreign",
            &judge[..],
            vec!["detector.bpk: not a weights file for this architecture"],
        ),
    ] {
        let dir = model_dir(&d.path().join(name), detector, "detector.bpk", bytes);
        let args = score(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        expect_error(&args, &want, &out);
    }
    // Another architecture's metadata, or none at all.
    let dir = model_dir(
        &d.path().join("foreign-json"),
        ("judge-zero-shot", "judge.json"),
        "detector.bpk",
        &det,
    );
    std::fs::rename(dir.join("judge.json"), dir.join("detector.json")).unwrap();
    let args = score(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    expect_error(&args, &["detector.json"], &out);
    // A long list of mismatched tensors is cut short.
    let dir = d.path().join("foreign");
    let o = evalcot(&score(&dir).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(text(&o.stderr).len() < 1200, "{}", text(&o.stderr));

    // A run's judge and generator folders.
    let run_out = d.path().join("run");
    let dir = model_dir(
        &d.path().join("judge"),
        ("judge-zero-shot", "judge.json"),
        "judge.bpk",
        &judge[..judge.len() / 2],
    );
    expect_error(
        &[
            "run",
            "geneval",
            "--strategy",
            "orm",
            "--judge",
            path(&dir),
            "--indices",
            "0",
            "--out",
            path(&run_out),
        ],
        &["judge.bpk: not a weights file", "truncated"],
        &run_out,
    );
    let dir = model_dir(
        &d.path().join("generator"),
        ("generator", "generator.json"),
        "generator.bpk",
        &det,
    );
    expect_error(
        &[
            "run",
            "geneval",
            "--generator",
            path(&dir),
            "--indices",
            "0",
            "--out",
            path(&run_out),
        ],
        &["generator.bpk: not a weights file"],
        &run_out,
    );

    // Outputs that cannot be written: under a regular file, or the file itself.
    let blocker = d.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    for o in [blocker.join("run"), blocker.clone()] {
        let r = evalcot(&[
            "run",
            "geneval",
            "--indices",
            "0",
            "--steps",
            "2",
            "--out",
            path(&o),
        ]);
        assert_eq!(r.status.code(), Some(2));
        let err = text(&r.stderr);
        assert!(err.contains(path(&o)), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&blocker).unwrap(), "x");
}

/// A PNG file from raw chunks (stored deflate, so that no encoder is needed): lets the tests
/// write palette images and images whose header lies about their size.
fn png(
    width: u32,
    height: u32,
    bit_depth: u8,
    color_type: u8,
    extra: &[(&[u8; 4], Vec<u8>)],
    raw: &[u8],
) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, b) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        zlib.extend((b.len() as u16).to_le_bytes());
        zlib.extend((!(b.len() as u16)).to_le_bytes());
        zlib.extend_from_slice(b);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend(((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([bit_depth, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        chunk(&mut out, kind, data);
    }
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The image as an 8-bit palette PNG (colours quantised to 6 levels per channel).
fn palette_png(img: &image::RgbImage) -> Vec<u8> {
    let q = |v: u8| (v as u32 * 5 + 127) / 255;
    let mut plte = Vec::new();
    for r in 0..6u32 {
        for g in 0..6u32 {
            for b in 0..6u32 {
                plte.extend([r, g, b].map(|v| (v * 51) as u8));
            }
        }
    }
    let mut raw = Vec::new();
    for y in 0..img.height() {
        raw.push(0); // filter: none
        for x in 0..img.width() {
            let p = img.get_pixel(x, y).0;
            raw.push((q(p[0]) * 36 + q(p[1]) * 6 + q(p[2])) as u8);
        }
    }
    png(img.width(), img.height(), 8, 3, &[(b"PLTE", plte)], &raw)
}

fn encode(img: image::DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

#[test]
fn pngs_are_converted_when_possible_and_named_when_not() {
    let d = tempfile::tempdir().unwrap();
    let gt = d.path().join("gt");
    world_suite_prompts(&gt, 0, "0-7");
    let original = gt.join("00001/samples/0000.png");
    let rgb = image::open(&original).unwrap().to_rgb8();
    let bytes = std::fs::read(&original).unwrap();
    // A folder of three prompts whose second sample is replaced by `sample`.
    let folder = |name: &str, sample: Option<&[u8]>| {
        let dir = d.path().join(name);
        for p in ["00000", "00001", "00002"] {
            std::fs::create_dir_all(dir.join(p).join("samples")).unwrap();
            std::fs::copy(
                gt.join(p).join("metadata.jsonl"),
                dir.join(p).join("metadata.jsonl"),
            )
            .unwrap();
            std::fs::copy(
                gt.join(p).join("samples/0000.png"),
                dir.join(p).join("samples/0000.png"),
            )
            .unwrap();
        }
        let target = dir.join("00001/samples/0000.png");
        match sample {
            Some(b) => std::fs::write(&target, b).unwrap(),
            None => std::fs::remove_file(&target).unwrap(),
        }
        (dir, target)
    };
    let dyn_rgb = image::DynamicImage::ImageRgb8(rgb.clone());
    let accepted: Vec<(&str, Vec<u8>)> = vec![
        (
            "grey",
            encode(image::DynamicImage::ImageLuma8(dyn_rgb.to_luma8())),
        ),
        (
            "grey-alpha",
            encode(image::DynamicImage::ImageLumaA8(dyn_rgb.to_luma_alpha8())),
        ),
        (
            "grey16",
            encode(image::DynamicImage::ImageLuma16(dyn_rgb.to_luma16())),
        ),
        (
            "rgb16",
            encode(image::DynamicImage::ImageRgb16(dyn_rgb.to_rgb16())),
        ),
        (
            "rgba",
            encode(image::DynamicImage::ImageRgba8(dyn_rgb.to_rgba8())),
        ),
        (
            "rgba16",
            encode(image::DynamicImage::ImageRgba16(dyn_rgb.to_rgba16())),
        ),
        ("palette", palette_png(&rgb)),
        // An index past the end of the palette decodes (as black), as in PIL.
        (
            "palette-index-out-of-range",
            png(2, 1, 8, 3, &[(b"PLTE", vec![9; 3])], &[0, 0, 9]),
        ),
        (
            "larger",
            encode(dyn_rgb.resize_exact(200, 90, image::imageops::FilterType::Triangle)),
        ),
        (
            "one-pixel",
            encode(dyn_rgb.resize_exact(1, 1, image::imageops::FilterType::Triangle)),
        ),
    ];
    for (name, sample) in &accepted {
        let (dir, _) = folder(name, Some(sample));
        let o = evalcot(&["score", path(&dir), "--detector", "embedded"]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        let results = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
        assert_eq!(results.lines().count(), 3, "{name}");
    }
    // A lossless conversion is scored exactly as the original.
    let scored = |name: &str| {
        let r = std::fs::read_to_string(d.path().join(name).join("results.jsonl")).unwrap();
        let line: serde_json::Value = serde_json::from_str(r.lines().nth(1).unwrap()).unwrap();
        (line["correct"].clone(), line["details"].clone())
    };
    let (plain, _) = folder("plain", Some(&bytes));
    assert!(evalcot(&["score", path(&plain), "--detector", "embedded"])
        .status
        .success());
    for name in ["rgb16", "rgba", "rgba16"] {
        assert_eq!(scored(name), scored("plain"), "{name}");
    }

    // Rejected: one error naming the file, nothing written.
    let mut huge = png(30000, 30000, 8, 2, &[], &[0]);
    huge.truncate(huge.len() - 12); // no IEND either
    let rejected: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            "not a readable PNG",
        ),
        (
            "corrupt",
            b"this is not a PNG".to_vec(),
            "not a readable PNG",
        ),
        ("empty", Vec::new(), "not a readable PNG"),
        (
            "jpeg-named-png",
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00".to_vec(),
            "not a readable PNG",
        ),
        ("huge", huge, "not a readable PNG"),
    ];
    for (name, sample, want) in rejected {
        let (dir, target) = folder(name, Some(&sample));
        let o = evalcot(&["score", path(&dir), "--detector", "embedded"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{}: {want}", target.display())),
            "{name}: {err}"
        );
        assert!(!dir.join("results.jsonl").exists(), "{name}");
        assert!(!dir.join("summary.json").exists(), "{name}");
    }
    // A directory where a PNG should be.
    let (dir, target) = folder("directory", None);
    std::fs::create_dir_all(&target).unwrap();
    let o = evalcot(&["score", path(&dir), "--detector", "embedded"]);
    assert!(o.status.success());
    assert!(text(&o.stderr).contains("0000.png: skipped, not a sample"));

    // A missing PNG leaves its prompt without samples: warned, the rest is scored.
    let (dir, _) = folder("missing", None);
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    std::fs::create_dir_all(dir.join("12a")).unwrap();
    std::fs::create_dir_all(dir.join("abc")).unwrap();
    std::fs::write(dir.join("00000/samples/.0001.png.42.tmp"), "half").unwrap();
    let o = evalcot(&["score", path(&dir), "--detector", "embedded"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let warnings: Vec<String> = text(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(|l| l.replace(&format!("{}/", dir.display()), ""))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: 12a: skipped, not a prompt folder (expected a folder named with digits only)",
            "warning: abc: skipped, not a prompt folder (expected a folder named with digits only)",
            "warning: notes.txt: skipped, not a prompt folder (expected a folder named with digits only)",
            "warning: 00001/samples: no samples",
        ]
    );
    let results = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    assert_eq!(results.lines().count(), 2);
    // No sample at all is an error.
    let (dir, _) = folder("none", None);
    for p in ["00000", "00002"] {
        std::fs::remove_file(dir.join(p).join("samples/0000.png")).unwrap();
    }
    let o = evalcot(&["score", path(&dir), "--detector", "embedded"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no samples found"));
    assert!(!dir.join("results.jsonl").exists());
}
