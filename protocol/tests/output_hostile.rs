//! Hostile outputs and hostile archives: the archive is bounded by the bytes
//! it will hold (sparse holes and hard links count in full, refused before a
//! byte is written), special files are skipped by rule, and unpacking never
//! makes setuid/setgid/sticky files, foreign owners, device nodes, hard
//! links or links that lead outside — also through a chain of links.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fog_protocol::output::{
    OutputError, archive_digest, output_limit, unpack_archive, write_archive,
};
use proptest::prelude::*;
use tempfile::TempDir;

/// The archive's length, written in full to a sink.
fn full_size(dir: &Path) -> u64 {
    archive_digest(dir).unwrap().size
}

#[test]
fn a_sparse_file_is_refused_by_its_apparent_size_without_reading_it() {
    let dir = TempDir::new().unwrap();
    let file = fs::File::create(dir.path().join("holes")).unwrap();
    // 1 TiB of holes: reading it would take hours, so a quick refusal shows
    // the size was judged from metadata and nothing was expanded.
    file.set_len(1 << 40).unwrap();
    let mut out = Vec::new();
    let started = Instant::now();
    let err = write_archive(dir.path(), &mut out, 16 << 20).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    match err {
        OutputError::TooLarge { size, limit } => {
            assert_eq!(limit, 16 << 20);
            assert_eq!(size, 512 + (1 << 40) + 1024, "header + data + end");
        }
        other => panic!("{other}"),
    }
    assert!(out.is_empty(), "{} bytes written past the limit", out.len());
    assert_eq!(
        err_text(dir.path(), 16 << 20),
        format!(
            "output too large: {} bytes, limit 16777216",
            512 + (1u64 << 40) + 1024
        )
    );
}

fn err_text(dir: &Path, limit: u64) -> String {
    write_archive(dir, std::io::sink(), limit)
        .unwrap_err()
        .to_string()
}

#[test]
fn the_limit_is_exact_to_the_byte() {
    let dir = TempDir::new().unwrap();
    let file = fs::File::create(dir.path().join("sparse")).unwrap();
    file.set_len(3 << 20).unwrap();
    fs::write(dir.path().join("small"), b"x").unwrap();
    let size = full_size(dir.path());
    let mut out = Vec::new();
    match write_archive(dir.path(), &mut out, size - 1) {
        Err(OutputError::TooLarge { size: s, limit }) => {
            assert_eq!((s, limit), (size, size - 1))
        }
        other => panic!("{other:?}"),
    }
    assert!(out.is_empty());
    let written = write_archive(dir.path(), &mut out, size).unwrap();
    assert_eq!(written.digest.size, size);
    assert_eq!(out.len() as u64, size);
}

#[test]
fn hard_links_count_once_per_name() {
    let dir = TempDir::new().unwrap();
    let data = vec![7u8; 1 << 20];
    fs::write(dir.path().join("f0"), &data).unwrap();
    for i in 1..40 {
        fs::hard_link(dir.path().join("f0"), dir.path().join(format!("f{i}"))).unwrap();
    }
    // 1 MiB on disk, 40 MiB in the archive: over a 16 MiB job's limit.
    match write_archive(dir.path(), std::io::sink(), output_limit(16 << 20)) {
        Err(OutputError::TooLarge { size, .. }) => assert!(size > 40 << 20, "{size}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_limit_of_a_job_covers_its_disk_and_headers() {
    assert_eq!(output_limit(0), 2 << 20);
    assert_eq!(output_limit(16 << 20), (16 << 20) + (1 << 20) + (2 << 20));
    assert_eq!(output_limit(u64::MAX), u64::MAX, "saturates");
    // A full 16 MiB disk of small files, one per inode, fits.
    let dir = TempDir::new().unwrap();
    for i in 0..200 {
        fs::write(dir.path().join(format!("file-{i:04}")), vec![1u8; 4096]).unwrap();
    }
    assert!(full_size(dir.path()) < output_limit(200 * 4096));
}

#[test]
fn fifos_and_sockets_are_skipped_by_rule_and_listed() {
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("result"), b"42\n").unwrap();
    let plain = archive_digest(dir.path()).unwrap();

    fs::create_dir(dir.path().join("sub")).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sub/sock")).unwrap();
    let mut out = Vec::new();
    let archived = write_archive(dir.path(), &mut out, u64::MAX).unwrap();
    let skipped: Vec<_> = archived
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.kind))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (PathBuf::from("pipe"), "FIFO"),
            (PathBuf::from("sub/sock"), "socket")
        ]
    );
    // Same bytes as without them, but for the directory they sat in.
    fs::remove_file(dir.path().join("pipe")).unwrap();
    fs::remove_file(dir.path().join("sub/sock")).unwrap();
    assert_eq!(archive_digest(dir.path()).unwrap(), archived.digest);
    fs::remove_dir(dir.path().join("sub")).unwrap();
    assert_eq!(archive_digest(dir.path()).unwrap(), plain);
}

/// A tar built entry by entry with the given headers.
struct RawTar(tar::Builder<Vec<u8>>);

impl RawTar {
    fn new() -> Self {
        Self(tar::Builder::new(Vec::new()))
    }

    fn entry(
        mut self,
        path: &[u8],
        kind: tar::EntryType,
        mode: u32,
        link: Option<&str>,
        data: &[u8],
    ) -> Self {
        let mut header = tar::Header::new_gnu();
        {
            let name = &mut header.as_old_mut().name;
            name[..path.len()].copy_from_slice(path);
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(4242);
        header.set_gid(4242);
        header.set_size(data.len() as u64);
        if let Some(link) = link {
            header.set_link_name(link).unwrap();
        }
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn file(self, path: &str, mode: u32) -> Self {
        self.entry(
            path.as_bytes(),
            tar::EntryType::Regular,
            mode,
            None,
            b"data",
        )
    }

    fn dir(self, path: &str, mode: u32) -> Self {
        self.entry(path.as_bytes(), tar::EntryType::Directory, mode, None, b"")
    }

    fn link(self, path: &str, target: &str) -> Self {
        self.entry(
            path.as_bytes(),
            tar::EntryType::Symlink,
            0o777,
            Some(target),
            b"",
        )
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn unpacking_masks_modes_and_never_gives_files_away() {
    let archive = RawTar::new()
        .dir("bin", 0o1777)
        .file("bin/suid-root", 0o4755)
        .file("bin/sgid", 0o2755)
        .file("everyone-writes", 0o666)
        .file("no-access", 0o000)
        .dir("locked", 0o000)
        .file("locked/inside", 0o644)
        .bytes();
    let dst = TempDir::new().unwrap();
    let into = dst.path().join("out");
    unpack_archive(archive.as_slice(), &into).unwrap();
    assert_eq!(mode_of(&into.join("bin")), 0o755, "sticky and o+w dropped");
    assert_eq!(
        mode_of(&into.join("bin/suid-root")),
        0o755,
        "setuid dropped"
    );
    assert_eq!(mode_of(&into.join("bin/sgid")), 0o755, "setgid dropped");
    assert_eq!(mode_of(&into.join("everyone-writes")), 0o644);
    assert_eq!(
        mode_of(&into.join("no-access")),
        0o600,
        "the owner keeps rw"
    );
    assert_eq!(mode_of(&into.join("locked")), 0o700);
    assert_eq!(fs::read(into.join("locked/inside")).unwrap(), b"data");
    let me = rustix_uid();
    for name in ["bin", "bin/suid-root", "everyone-writes", "locked/inside"] {
        let meta = fs::metadata(into.join(name)).unwrap();
        assert_eq!(meta.uid(), me, "{name}: owner from the archive (4242) kept");
    }
}

fn rustix_uid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn links_inside_are_kept_and_links_outside_refused_also_through_other_links() {
    let ok = RawTar::new()
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .file("a/b/f", 0o644)
        .link("up", "a/b/../b/f")
        .link("a/b/sibling", "f")
        .link("a/b/to-top", "../..")
        .link("via", "a/b/to-top/a/b/f")
        .bytes();
    let dst = TempDir::new().unwrap();
    unpack_archive(ok.as_slice(), &dst.path().join("out")).unwrap();
    assert_eq!(fs::read(dst.path().join("out/via")).unwrap(), b"data");

    let outside = TempDir::new().unwrap();
    let victim = outside.path().join("victim");
    let victim_text = victim.to_str().unwrap().to_owned();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("absolute", RawTar::new().link("x", &victim_text).bytes()),
        ("dot-dot", RawTar::new().link("x", "../victim").bytes()),
        (
            "dot-dot from a subdirectory",
            RawTar::new()
                .dir("d", 0o755)
                .link("d/x", "../../victim")
                .bytes(),
        ),
        (
            // Each link alone stays inside; followed through the first, the
            // second climbs out.
            "chained",
            RawTar::new()
                .dir("a", 0o755)
                .dir("a/b", 0o755)
                .link("a/b/top", "../..")
                .link("x", "a/b/top/..")
                .bytes(),
        ),
        (
            "through a link with an absolute target",
            RawTar::new()
                .link("abs", "/tmp")
                .link("x", "abs/victim")
                .bytes(),
        ),
        (
            "loop",
            RawTar::new().link("p", "q").link("q", "p/x").bytes(),
        ),
        (
            "a file through a link made earlier in the archive",
            RawTar::new()
                .link("esc", outside.path().to_str().unwrap())
                .file("esc/victim", 0o644)
                .bytes(),
        ),
        (
            "hard link",
            RawTar::new()
                .entry(b"h", tar::EntryType::Link, 0o644, Some("/etc/passwd"), b"")
                .bytes(),
        ),
        (
            "device node",
            RawTar::new()
                .entry(b"d", tar::EntryType::Char, 0o644, None, b"")
                .bytes(),
        ),
        (
            "fifo",
            RawTar::new()
                .entry(b"p", tar::EntryType::Fifo, 0o644, None, b"")
                .bytes(),
        ),
        (
            "dot-dot path",
            RawTar::new().file("../victim", 0o644).bytes(),
        ),
        (
            "absolute path",
            RawTar::new().file(&victim_text, 0o644).bytes(),
        ),
    ];
    for (name, bytes) in cases {
        let dst = TempDir::new().unwrap();
        let into = dst.path().join("out");
        let result = unpack_archive(bytes.as_slice(), &into);
        assert!(result.is_err(), "{name}: accepted");
        assert!(!victim.exists(), "{name}: wrote outside");
        assert_eq!(
            fs::read_dir(outside.path()).unwrap().count(),
            0,
            "{name}: touched the outside"
        );
        // Nothing left that points outside.
        if into.exists() {
            for entry in walk(&into) {
                if let Ok(target) = fs::read_link(&entry) {
                    assert!(!target.is_absolute(), "{name}: {entry:?} -> {target:?}");
                }
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

#[test]
fn deep_paths_long_names_and_non_utf8_names_round_trip() {
    let src = TempDir::new().unwrap();
    // 300 levels deep: past tar's 100-byte name field and the old recursion.
    let mut deep = src.path().to_owned();
    for _ in 0..300 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("leaf"), b"deep").unwrap();
    let long = "L".repeat(255);
    fs::write(src.path().join(&long), b"long").unwrap();
    symlink("L".repeat(255), src.path().join("long-link")).unwrap();
    let raw = OsStr::from_bytes(b"caf\xe9-\xff\xfe");
    fs::write(src.path().join(raw), b"latin1").unwrap();

    let mut bytes = Vec::new();
    let archived = write_archive(src.path(), &mut bytes, u64::MAX).unwrap();
    assert_eq!(archived.digest.size, bytes.len() as u64);
    let dst = TempDir::new().unwrap();
    let into = dst.path().join("out");
    unpack_archive(bytes.as_slice(), &into).unwrap();
    assert_eq!(
        fs::read(
            into.join(deep.strip_prefix(src.path()).unwrap())
                .join("leaf")
        )
        .unwrap(),
        b"deep"
    );
    assert_eq!(fs::read(into.join(&long)).unwrap(), b"long");
    assert_eq!(fs::read(into.join("long-link")).unwrap(), b"long");
    assert_eq!(fs::read(into.join(raw)).unwrap(), b"latin1");
    assert_eq!(archive_digest(&into).unwrap(), archived.digest);
}

/// A tree of files, directories and links with names of any length.
#[derive(Clone, Debug)]
enum Node {
    File(usize),
    Dir,
    Link(String),
}

fn tree() -> impl Strategy<Value = Vec<(String, Node)>> {
    let name = "[a-z]{1,3}|[a-z]{90,130}";
    let node = prop_oneof![
        (0usize..3000).prop_map(Node::File),
        Just(Node::Dir),
        "[a-z./]{1,200}".prop_map(Node::Link),
    ];
    prop::collection::vec((prop::collection::vec(name, 1..4), node), 1..12)
        .prop_map(|v| v.into_iter().map(|(p, n)| (p.join("/"), n)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The size computed before writing is the size written, whatever the
    /// names, links and lengths; one byte less is refused.
    #[test]
    fn the_computed_size_is_the_written_size(nodes in tree()) {
        let dir = TempDir::new().unwrap();
        for (path, node) in &nodes {
            let full = dir.path().join(path);
            if full.exists() || fs::symlink_metadata(&full).is_ok() {
                continue;
            }
            if fs::create_dir_all(full.parent().unwrap()).is_err() {
                continue;
            }
            let _ = match node {
                Node::File(n) => fs::write(&full, vec![b'x'; *n]),
                Node::Dir => fs::create_dir(&full),
                Node::Link(target) => symlink(target, &full),
            };
        }
        let mut bytes = Vec::new();
        let archived = write_archive(dir.path(), &mut bytes, u64::MAX).unwrap();
        prop_assert_eq!(archived.digest.size, bytes.len() as u64);
        let exact = archived.digest.size;
        let refused = write_archive(dir.path(), std::io::sink(), exact - 1);
        let refused_right = matches!(
            refused,
            Err(OutputError::TooLarge { size, limit }) if size == exact && limit == exact - 1
        );
        prop_assert!(refused_right);
    }
}
