//! Hostile input, end to end: FIFOs, devices and folders where files are expected, decompression
//! bombs over and under the limits, truncated and polyglot images, and an absurd model config.
//! Every case must end in seconds with a counted skip or an error naming the file; each child
//! runs under a deadline, so a hang fails the test instead of stalling the suite.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fixture;

/// What a finished child printed, and its exit code.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `clip-audit args…`, killing it and failing the test if it is not done in 60 s.
fn clip_audit(args: &[&std::ffi::OsStr]) -> Finished {
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("out"), logs.path().join("err"));
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clip-audit"))
        .env("CLIP_AUDIT_CACHE", cache.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("clip-audit {args:?} hung (killed after 60 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        code: status.code(),
        stdout: std::fs::read_to_string(out).unwrap(),
        stderr: std::fs::read_to_string(err).unwrap(),
        elapsed: started.elapsed(),
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn demo_jpeg(i: usize) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("datasets/demo/val/{i}.jpg")))
        .unwrap()
}

/// A PNG whose header claims `w`×`h` pixels of `bit_depth`-bit `color_type` (0 gray, 2 RGB, 6
/// RGBA) followed by a token of image data: enough for any decoder to size its buffers.
fn png_header(w: u32, h: u32, bit_depth: u8, color_type: u8) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    // zlib stream of a few zero bytes (stored block)
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x01, 1, 4, 0, 0xFB, 0xFF, 0, 0, 0, 0, 0, 4, 0, 1],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 16-bit grayscale PNG of `w`×`h` (real pixels, encoded by the `image` crate).
fn png16(w: u32, h: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let samples: Vec<u8> = (0..w * h)
        .flat_map(|i| ((i * 37) as u16).to_ne_bytes())
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&samples, w, h, image::ExtendedColorType::L16)
        .unwrap();
    out
}

/// Writes one hostile entry at the path it is given.
type Writer<'a> = &'a dyn Fn(&Path);

/// A FairFace-style dataset folder: four good demo images plus `extra` (name, writer) entries,
/// all listed in labels.csv.
fn dataset(extra: &[(&str, Writer)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("val")).unwrap();
    let mut labels = String::from("file,age,gender,race\n");
    for i in 1..=4 {
        std::fs::write(dir.path().join(format!("val/{i}.jpg")), demo_jpeg(i)).unwrap();
        labels += &format!("val/{i}.jpg,20-29,{},White\n", ["Male", "Female"][i % 2]);
    }
    for (name, write) in extra {
        write(&dir.path().join("val").join(name));
        labels += &format!("val/{name},30-39,Male,Black\n");
    }
    std::fs::write(dir.path().join("labels.csv"), labels).unwrap();
    dir
}

/// `clip-audit run` on a dataset with the tiny model; returns the result and the report folder.
fn run(dataset: &Path, extra: &[&str]) -> (Finished, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/clip-paper-race.toml");
    let model = fixture("tiny-clip");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        os("run"),
        os("--probe"),
        probe.as_os_str(),
        os("--dataset"),
        dataset.as_os_str(),
        os("--model"),
        model.as_os_str(),
        os("--out"),
        out.path().as_os_str(),
    ];
    args.extend(extra.iter().map(|s| os(s)));
    (clip_audit(&args), out)
}

/// `(id, reason)` of every row of a report's skipped.csv.
fn skipped(out: &Path) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_path(out.join("skipped.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id, reason) = (col("id"), col("reason"));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[id].to_string(), r[reason].to_string())
        })
        .collect()
}

fn reason_of(out: &Path, name: &str) -> String {
    skipped(out)
        .into_iter()
        .find(|(id, _)| id.ends_with(name))
        .unwrap_or_else(|| panic!("{name} not in skipped.csv: {:?}", skipped(out)))
        .1
}

#[test]
fn fifo_device_link_and_folder_images_are_skipped_not_waited_on() {
    let data = dataset(&[
        ("pipe.jpg", &|p| mkfifo(p)),
        ("zero.jpg", &|p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("folder.jpg", &|p| std::fs::create_dir(p).unwrap()),
    ]);
    // a link out of the dataset root is an error naming the row, unless the spec allows it
    let (refused, _) = run(&data.path().join("labels.csv"), &["--no-cache"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("row 6") && refused.stderr.contains("outside the dataset root"),
        "{}",
        refused.stderr
    );
    let spec = data.path().join("hostile.toml");
    std::fs::write(
        &spec,
        "name = \"hostile\"\n[source]\nformat = \"fairface\"\nlabels = \"labels.csv\"\n\
         root = \".\"\nallow_outside_root = true\n\
         [[attributes]]\nname = \"race\"\nvalues = [\"White\", \"Black\"]\n\
         [[attributes]]\nname = \"gender\"\nvalues = [\"Male\", \"Female\"]\n\
         [[attributes]]\nname = \"age\"\nvalues = [\"20-29\", \"30-39\"]\n",
    )
    .unwrap();
    let (done, out) = run(&spec, &["--no-cache"]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        [
            reason_of(out.path(), "pipe.jpg"),
            reason_of(out.path(), "zero.jpg"),
            reason_of(out.path(), "folder.jpg"),
        ],
        [
            "is a FIFO (named pipe), expected a regular file",
            "is a character device, expected a regular file",
            "is a directory, expected a regular file",
        ]
    );
}

#[test]
fn classify_skips_a_fifo_image_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe.png");
    mkfifo(&pipe);
    let good = fixture("images/square_448.jpg");
    let model = fixture("tiny-clip");
    let done = clip_audit(&[
        os("classify"),
        os("--model"),
        model.as_os_str(),
        os("--label"),
        os("cat"),
        os("--label"),
        os("dog"),
        good.as_os_str(),
        pipe.as_os_str(),
    ]);
    assert_eq!(done.code, Some(1), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("pipe.png: is a FIFO (named pipe), expected a regular file"),
        "{}",
        done.stderr
    );
    assert!(done.stdout.contains("square_448.jpg"));
}

#[test]
fn png_bombs_over_the_limits_are_skipped_and_one_within_is_classified() {
    let data = dataset(&[
        // 20000² 16-bit: 400 Mpx, over Pillow's limit (the audit's 2 GB case)
        ("bomb16.png", &|p| {
            std::fs::write(p, png_header(20_000, 20_000, 16, 0)).unwrap()
        }),
        // 300×300 16-bit RGB under a 100 kpx limit: pixels fit, its buffers (9 B/px) do not
        ("rgb16.png", &|p| {
            std::fs::write(p, png_header(300, 300, 16, 2)).unwrap()
        }),
        // 200×200 16-bit gray: 5 B/px, within 6 B/px of the limit
        ("gray16.png", &|p| {
            std::fs::write(p, png16(200, 200)).unwrap()
        }),
    ]);
    let (done, out) = run(
        &data.path().join("labels.csv"),
        &["--no-cache", "--max-image-pixels", "100000"],
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        reason_of(out.path(), "bomb16.png"),
        "image too large: 20000x20000 is 400000000 pixels, over the limit of 100000 \
         (--max-image-pixels)"
    );
    assert!(
        reason_of(out.path(), "rgb16.png")
            .contains("needs 0.8 MiB to decode, over the limit of 0.6 MiB"),
        "{:?}",
        skipped(out.path())
    );
    assert_eq!(skipped(out.path()).len(), 2, "gray16.png is classified");
}

#[test]
fn the_default_limit_refuses_the_20000_square_16_bit_png() {
    let data = dataset(&[("bomb16.png", &|p| {
        std::fs::write(p, png_header(20_000, 20_000, 16, 0)).unwrap()
    })]);
    let (done, out) = run(&data.path().join("labels.csv"), &["--no-cache"]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(reason_of(out.path(), "bomb16.png").contains("over the limit of 178956970"));
}

#[test]
fn image_files_over_the_byte_limit_are_skipped_unread() {
    // a limit of 10 000 pixels allows 60 000 bytes of decoding, and so files of 60 000 bytes
    let data = dataset(&[("padded.jpg", &|p| {
        let mut bytes = demo_jpeg(1);
        bytes.resize(100_000, 0);
        std::fs::write(p, bytes).unwrap()
    })]);
    let (done, out) = run(
        &data.path().join("labels.csv"),
        &["--no-cache", "--max-image-pixels", "10000"],
    );
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert_eq!(
        reason_of(out.path(), "padded.jpg"),
        "file is 100000 bytes, over the per-image limit of 60000 bytes"
    );
}

#[test]
fn truncated_and_polyglot_images_are_handled_by_content() {
    let data = dataset(&[
        ("cut.jpg", &|p| {
            let bytes = demo_jpeg(2);
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap()
        }),
        // a JPEG with a ZIP archive appended: decoded as the JPEG it starts with
        ("jpeg_zip.jpg", &|p| {
            let mut bytes = demo_jpeg(3);
            bytes.extend_from_slice(
                b"PK\x03\x04\x14\0\0\0\0\0payload.html<script>x</script>PK\x05\x06",
            );
            std::fs::write(p, bytes).unwrap()
        }),
        // PNG magic over a JPEG body
        ("png_magic.png", &|p| {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.extend_from_slice(&demo_jpeg(4));
            std::fs::write(p, bytes).unwrap()
        }),
    ]);
    let (done, out) = run(&data.path().join("labels.csv"), &["--no-cache"]);
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    let ids: Vec<String> = skipped(out.path()).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["val/cut.jpg", "val/png_magic.png"]);
}

/// A FIFO named where `run`, `check` or `classify` expect a text file is an error naming it, at once.
#[test]
fn fifo_probe_spec_labels_and_rules_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(&[]);
    let labels = data.path().join("labels.csv");
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/clip-paper-race.toml");
    let model = fixture("tiny-clip");
    let out = dir.path().join("out");
    let fifo = |name: &str| -> PathBuf {
        let p = dir.path().join(name);
        mkfifo(&p);
        p
    };
    let (probe_fifo, spec_fifo, csv_fifo, rules_fifo, list_fifo) = (
        fifo("probe.toml"),
        fifo("spec.toml"),
        fifo("labels.csv"),
        fifo("rules.toml"),
        fifo("labels.txt"),
    );
    let run_with = |probe: &Path, dataset: &Path| {
        clip_audit(&[
            os("run"),
            os("--probe"),
            probe.as_os_str(),
            os("--dataset"),
            dataset.as_os_str(),
            os("--model"),
            model.as_os_str(),
            os("--out"),
            out.as_os_str(),
        ])
    };
    let cases = [
        (run_with(&probe_fifo, &labels), &probe_fifo),
        (run_with(&probe, &spec_fifo), &spec_fifo),
        (run_with(&probe, &csv_fifo), &csv_fifo),
        (
            clip_audit(&[
                os("check"),
                out.as_os_str(),
                os("--rules"),
                rules_fifo.as_os_str(),
            ]),
            &rules_fifo,
        ),
        (
            clip_audit(&[
                os("classify"),
                os("--model"),
                model.as_os_str(),
                os("--labels-file"),
                list_fifo.as_os_str(),
                probe.as_os_str(),
            ]),
            &list_fifo,
        ),
    ];
    for (done, file) in cases {
        assert_eq!(done.code, Some(2), "{file:?}: {}", done.stderr);
        let expected = format!(
            "{}: is a FIFO (named pipe), expected a regular file",
            file.display()
        );
        assert!(done.stderr.contains(&expected), "{}", done.stderr);
    }
}

/// A copy of the tiny model whose config.json has `field` of `tower` set to `value`.
fn model_with(tower: &str, field: &str, value: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
    ] {
        std::fs::copy(fixture(&format!("tiny-clip/{name}")), dir.path().join(name)).unwrap();
    }
    let text = std::fs::read_to_string(fixture("tiny-clip/config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config[tower][field] = value.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn an_absurd_config_is_refused_at_once_naming_field_value_and_checkpoint() {
    let image = fixture("images/square_448.jpg");
    for (tower, field, value, found) in [
        (
            "vision_config",
            "num_hidden_layers",
            100_000_000,
            "has 2 layers",
        ),
        (
            "text_config",
            "hidden_size",
            1_000_000_000,
            "of shape [49408, 32]",
        ),
    ] {
        let model = model_with(tower, field, value);
        let done = clip_audit(&[
            os("classify"),
            os("--model"),
            model.path().as_os_str(),
            os("--label"),
            os("a"),
            os("--label"),
            os("b"),
            image.as_os_str(),
        ]);
        assert_eq!(done.code, Some(2), "{}", done.stderr);
        let expected = format!(
            "{}: field `{tower}.{field}` is {value}, but {}",
            model.path().join("config.json").display(),
            model.path().join("model.safetensors").display()
        );
        assert!(done.stderr.contains(&expected), "{}", done.stderr);
        assert!(done.stderr.contains(found), "{}", done.stderr);
        assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
    }
}
