//! The deterministic output archive: same files → same hash, whatever the
//! order or time they were written in; any change to a byte, a name or a
//! mode → another hash; the archive is a tar that standard tools read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use fog_protocol::output::{OutputError, archive_digest, sha256, unpack_archive, write_archive};
use proptest::prelude::*;
use tempfile::TempDir;

/// A file to write: relative path, contents, permission bits.
type FileSpec = (String, Vec<u8>, u32);

fn write_tree(root: &Path, files: &[FileSpec], mtime: i64) {
    for (path, data, mode) in files {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, data).unwrap();
        fs::set_permissions(&full, fs::Permissions::from_mode(*mode)).unwrap();
        set_mtime(&full, mtime);
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.unsigned_abs());
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

fn sample_files() -> Vec<FileSpec> {
    vec![
        ("count".into(), b"42\n".to_vec(), 0o644),
        (
            "logs/run.txt".into(),
            b"started\nfinished\n".to_vec(),
            0o600,
        ),
        ("bin/tool".into(), b"#!/bin/sh\necho hi\n".to_vec(), 0o755),
        ("deep/a/b/c/d.dat".into(), vec![0u8; 5000], 0o644),
    ]
}

fn digest_of(files: &[FileSpec], mtime: i64) -> fog_protocol::B256 {
    let dir = TempDir::new().unwrap();
    write_tree(dir.path(), files, mtime);
    archive_digest(dir.path()).unwrap().sha256
}

#[test]
fn same_files_in_another_order_and_time_hash_the_same() {
    let files = sample_files();
    let mut reversed = files.clone();
    reversed.reverse();
    assert_eq!(
        digest_of(&files, 1_000),
        digest_of(&reversed, 2_000_000_000)
    );
}

#[test]
fn a_changed_byte_name_or_mode_changes_the_hash() {
    let base = digest_of(&sample_files(), 0);

    let mut byte = sample_files();
    byte[3].1[4999] = 1;
    assert_ne!(digest_of(&byte, 0), base, "byte");

    let mut name = sample_files();
    name[0].0 = "Count".into();
    assert_ne!(digest_of(&name, 0), base, "name");

    let mut mode = sample_files();
    mode[1].2 = 0o640;
    assert_ne!(digest_of(&mode, 0), base, "mode");

    let mut extra = sample_files();
    extra.push(("empty".into(), vec![], 0o644));
    assert_ne!(digest_of(&extra, 0), base, "added empty file");
}

#[test]
fn empty_directories_and_symlinks_count() {
    let dir = TempDir::new().unwrap();
    write_tree(dir.path(), &sample_files(), 0);
    let base = archive_digest(dir.path()).unwrap().sha256;

    fs::create_dir(dir.path().join("empty")).unwrap();
    let with_dir = archive_digest(dir.path()).unwrap().sha256;
    assert_ne!(with_dir, base);

    symlink("count", dir.path().join("link")).unwrap();
    let with_link = archive_digest(dir.path()).unwrap().sha256;
    assert_ne!(with_link, with_dir);

    // A link pointing outside is stored as a link, never followed.
    symlink("/etc/passwd", dir.path().join("escape")).unwrap();
    let mut bytes = Vec::new();
    write_archive(dir.path(), &mut bytes, u64::MAX).unwrap();
    let passwd = fs::read("/etc/passwd").unwrap();
    assert!(
        !bytes
            .windows(passwd.len().min(32))
            .any(|w| w == &passwd[..passwd.len().min(32)])
    );
}

#[test]
fn digest_is_sha256_of_the_archive_bytes() {
    let dir = TempDir::new().unwrap();
    write_tree(dir.path(), &sample_files(), 7);
    let mut bytes = Vec::new();
    let digest = write_archive(dir.path(), &mut bytes, u64::MAX)
        .unwrap()
        .digest;
    assert_eq!(digest.size, bytes.len() as u64);
    assert_eq!(digest.sha256, sha256(&bytes));
    assert_eq!(bytes.len() % 512, 0);
}

#[test]
fn archive_is_normalised_and_readable_by_system_tar() {
    let dir = TempDir::new().unwrap();
    write_tree(dir.path(), &sample_files(), 1_234_567);
    let long_name = format!("{}/{}", "n".repeat(120), "m".repeat(120));
    write_tree(
        dir.path(),
        &[(long_name.clone(), b"long".to_vec(), 0o644)],
        5,
    );
    let archive = TempDir::new().unwrap();
    let tar_path = archive.path().join("out.tar");
    write_archive(dir.path(), fs::File::create(&tar_path).unwrap(), u64::MAX).unwrap();

    let mut reader = tar::Archive::new(fs::File::open(&tar_path).unwrap());
    let mut paths = Vec::new();
    for entry in reader.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.uid().unwrap(), 0);
        assert_eq!(h.gid().unwrap(), 0);
        assert_eq!(h.username().unwrap(), Some(""));
        paths.push(entry.path().unwrap().to_string_lossy().into_owned());
    }
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
    assert!(paths.contains(&long_name), "{paths:?}");

    let extracted = TempDir::new().unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .unwrap();
    assert!(status.success());
    for (path, data, mode) in sample_files() {
        let full = extracted.path().join(&path);
        assert_eq!(fs::read(&full).unwrap(), data, "{path}");
        assert_eq!(
            fs::metadata(&full).unwrap().permissions().mode() & 0o777,
            mode,
            "{path}"
        );
    }
    assert_eq!(
        fs::read(extracted.path().join(&long_name)).unwrap(),
        b"long"
    );
    // Re-archiving the extracted tree gives the same hash.
    assert_eq!(
        archive_digest(extracted.path()).unwrap(),
        archive_digest(dir.path()).unwrap()
    );
}

#[test]
fn non_directories_are_refused() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    assert!(matches!(
        archive_digest(&file),
        Err(OutputError::NotADirectory(_))
    ));
    assert!(matches!(
        archive_digest(&dir.path().join("missing")),
        Err(OutputError::Io { .. })
    ));
}

fn file_tree() -> impl Strategy<Value = Vec<FileSpec>> {
    proptest::collection::btree_map(
        "[a-c]{1,2}(/[a-c]{1,2}){0,2}",
        (
            proptest::collection::vec(any::<u8>(), 0..600),
            prop_oneof![Just(0o644u32), Just(0o600), Just(0o755)],
        ),
        1..8,
    )
    .prop_map(|m| {
        // A path cannot be both a file and a directory: keep the first of
        // any pair where one is a prefix of the other.
        let mut kept: Vec<FileSpec> = Vec::new();
        for (p, (d, mode)) in m {
            if kept.iter().all(|(k, _, _)| {
                !p.starts_with(&format!("{k}/")) && !k.starts_with(&format!("{p}/"))
            }) {
                kept.push((p, d, mode));
            }
        }
        kept
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hash_ignores_write_order_and_time(files in file_tree(), seed in any::<u64>(), t1 in 0i64..4_000_000_000, t2 in 0i64..4_000_000_000) {
        let mut shuffled = files.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        prop_assert_eq!(digest_of(&files, t1), digest_of(&shuffled, t2));
    }

    #[test]
    fn hash_sees_every_byte(files in file_tree(), which in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let base = digest_of(&files, 0);
        let mut changed = files.clone();
        let f = which.index(changed.len());
        if changed[f].1.is_empty() {
            changed[f].1.push(flip);
        } else {
            let p = pos.index(changed[f].1.len());
            changed[f].1[p] ^= flip;
        }
        prop_assert_ne!(digest_of(&changed, 0), base);
    }
}

#[test]
fn unpacking_an_archive_gives_back_the_same_tree() {
    let src = TempDir::new().unwrap();
    write_tree(src.path(), &sample_files(), 1_000);
    symlink("count", src.path().join("link")).unwrap();
    fs::create_dir(src.path().join("empty")).unwrap();
    let mut bytes = Vec::new();
    let digest = write_archive(src.path(), &mut bytes, u64::MAX)
        .unwrap()
        .digest;

    let dst = TempDir::new().unwrap();
    let into = dst.path().join("out");
    unpack_archive(bytes.as_slice(), &into).unwrap();
    assert_eq!(archive_digest(&into).unwrap(), digest);
    assert_eq!(
        fs::read_link(into.join("link")).unwrap(),
        Path::new("count")
    );
    let mode = fs::metadata(into.join("bin/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // Never over existing files.
    let err = unpack_archive(bytes.as_slice(), &into).unwrap_err();
    assert!(matches!(err, OutputError::NotEmpty(_)), "{err}");
}

/// A raw tar entry, bypassing the tar crate's own path checks on writing.
fn raw_entry(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    link: Option<&str>,
    data: &[u8],
) {
    let mut header = tar::Header::new_gnu();
    {
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
    }
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_size(data.len() as u64);
    if let Some(link) = link {
        header.set_link_name(link).unwrap();
    }
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

#[test]
fn hostile_archives_are_refused_and_write_nothing_outside() {
    let outside = TempDir::new().unwrap();
    let victim = outside.path().join("victim");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, "../victim", tar::EntryType::Regular, None, b"x");
            b.into_inner().unwrap()
        }),
        ("absolute", {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(
                &mut b,
                victim.to_str().unwrap(),
                tar::EntryType::Regular,
                None,
                b"x",
            );
            b.into_inner().unwrap()
        }),
        ("through a symlink", {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(
                &mut b,
                "esc",
                tar::EntryType::Symlink,
                Some(outside.path().to_str().unwrap()),
                b"",
            );
            raw_entry(&mut b, "esc/victim", tar::EntryType::Regular, None, b"x");
            b.into_inner().unwrap()
        }),
        ("hard link", {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, "h", tar::EntryType::Link, Some("/etc/passwd"), b"");
            b.into_inner().unwrap()
        }),
        ("device", {
            let mut b = tar::Builder::new(Vec::new());
            raw_entry(&mut b, "d", tar::EntryType::Char, None, b"");
            b.into_inner().unwrap()
        }),
    ];
    for (name, bytes) in cases {
        let dst = TempDir::new().unwrap();
        let result = unpack_archive(bytes.as_slice(), &dst.path().join("out"));
        assert!(result.is_err(), "{name}: accepted");
        assert!(!victim.exists(), "{name}: wrote outside");
    }
}
