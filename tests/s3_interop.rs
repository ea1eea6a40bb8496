//! Interoperability over real S3 servers: what cairn publishes, the real DVC
//! client pulls byte for byte (and `dvc status -c` is clean); what DVC
//! pushes, cairn fetches. Run against two independent implementations,
//! Garage and moto. Needs dvc, garage and moto_server: scripts/test.sh
//! installs them.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::s3peers::{self, S3Peer};
use common::trees::{assert_same_files, copy_tree, random_tree, Rng};
use common::*;

fn with_peer(mut command: Command, peer: &S3Peer) -> Output {
    peer.env(&mut command);
    command.output().expect("run")
}

fn cairn_s3(dir: &Path, args: &[&str], peer: &S3Peer) -> Output {
    with_peer(cairn_command(dir, args), peer)
}

fn dvc_s3(dir: &Path, args: &[&str], peer: &S3Peer) -> Output {
    with_peer(dvc_command(dir, args), peer)
}

/// A git + DVC repository whose default remote is `prefix` on `peer`.
fn repo(dir: &Path, peer: &S3Peer, prefix: &str) {
    std::fs::create_dir_all(dir.join(".dvc")).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["config", "user.name", "Test User"]);
    git(dir, &["config", "user.email", "test@example.invalid"]);
    std::fs::write(dir.join(".dvc/config"), peer.dvc_config(prefix)).unwrap();
    std::fs::write(dir.join(".dvc/.gitignore"), "/config.local\n/tmp\n/cache\n").unwrap();
}

fn interop(peer: &S3Peer) {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    let name = peer.name;

    // 1. cairn run publishes to S3; a fresh clone + dvc pull reproduces it.
    let origin = root.join("origin");
    repo(&origin, peer, "runs");
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        project.join("pipelines.toml"),
        origin.join("pipelines.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(origin.join("etl")).unwrap();
    std::fs::copy(
        project.join("etl/modify_data.py"),
        origin.join("etl/modify_data.py"),
    )
    .unwrap();
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "--quiet", "-m", "pipeline on S3"]);
    for round in 1..=2 {
        let out = cairn_s3(&origin, &["run", PIPELINE, "--merge", "direct"], peer);
        assert_success(&out, &format!("{name}: cairn run {round}"));
    }
    let clone = root.join("clone");
    git(
        root,
        &[
            "clone",
            "--quiet",
            origin.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    assert_success(
        &dvc_s3(&clone, &["pull"], peer),
        &format!("{name}: dvc pull"),
    );
    let pulled = std::fs::read_to_string(clone.join(DATASET)).unwrap();
    assert_eq!(
        pulled.lines().count(),
        3,
        "{name}: header + two records:\n{pulled}"
    );
    let out = dvc_s3(&clone, &["status", "-c"], peer);
    assert_success(&out, &format!("{name}: dvc status -c"));
    assert_eq!(
        stdout(&out).trim(),
        "Cache and remote 'storage' are in sync.",
        "{name}"
    );
    // cairn fetch agrees with dvc pull, byte for byte
    assert_success(
        &cairn_s3(&origin, &["fetch", DATASET], peer),
        &format!("{name}: cairn fetch"),
    );
    assert_eq!(
        std::fs::read_to_string(origin.join(DATASET)).unwrap(),
        pulled,
        "{name}"
    );

    for seed in 1..=3u64 {
        let case = root.join(format!("seed{seed}"));
        let original = case.join("original");
        random_tree(&mut Rng(0x2545_f491_4f6c_dd1d ^ seed), &original, 0);

        // 2. cairn publish a directory; DVC pulls it.
        let publisher = case.join("publisher");
        repo(&publisher, peer, "cairn-side");
        copy_tree(&original, &publisher.join("tree"));
        let out = cairn_s3(&publisher, &["publish", "tree", "--json"], peer);
        assert_success(&out, &format!("{name}: cairn publish"));
        let reader = case.join("dvc-reader");
        repo(&reader, peer, "cairn-side");
        std::fs::copy(publisher.join("tree.dvc"), reader.join("tree.dvc")).unwrap();
        assert_success(
            &dvc_s3(&reader, &["pull", "--quiet"], peer),
            &format!("{name}: dvc pull tree"),
        );
        assert_same_files(&original, &reader.join("tree"), seed);
        let status = dvc_s3(&reader, &["status", "-c"], peer);
        assert_eq!(
            stdout(&status).trim(),
            "Cache and remote 'storage' are in sync.",
            "{name} seed {seed}"
        );

        // 3. dvc add + dvc push; cairn fetches it.
        let pusher = case.join("dvc-pusher");
        repo(&pusher, peer, "dvc-side");
        copy_tree(&original, &pusher.join("tree"));
        assert_success(
            &run_dvc(&pusher, &["add", "--quiet", "tree"]),
            &format!("{name}: dvc add"),
        );
        assert_success(
            &dvc_s3(&pusher, &["push", "--quiet"], peer),
            &format!("{name}: dvc push"),
        );
        let fetcher = case.join("cairn-fetcher");
        repo(&fetcher, peer, "dvc-side");
        std::fs::copy(pusher.join("tree.dvc"), fetcher.join("tree.dvc")).unwrap();
        assert_success(
            &cairn_s3(&fetcher, &["fetch", "tree"], peer),
            &format!("{name}: cairn fetch tree"),
        );
        assert_same_files(&original, &fetcher.join("tree"), seed);

        // the same tree gets the same pointer from both tools
        assert_eq!(
            std::fs::read_to_string(publisher.join("tree.dvc")).unwrap(),
            std::fs::read_to_string(pusher.join("tree.dvc")).unwrap(),
            "{name} seed {seed}"
        );
    }

    // 4. A single large file, uploaded while it is hashed (staged, checked by
    // its ETag, copied into place on the server); DVC pulls it.
    let big = root.join("big");
    repo(&big, peer, "cairn-big");
    let data: Vec<u8> = (0..(3u64 << 20) + 123)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8)
        .collect();
    std::fs::write(big.join("big.bin"), &data).unwrap();
    let mut command = cairn_command(&big, &["publish", "big.bin", "--json"]);
    command.env("CAIRN_S3_OVERLAP_MIN", "1M");
    let out = with_peer(command, peer);
    assert_success(&out, &format!("{name}: cairn publish big.bin"));
    assert!(
        stdout(&out).contains("\"uploaded\":1"),
        "{name}: {}",
        stdout(&out)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("uploaded while hashing"),
        "{name}: the upload did not overlap the hashing:\n{log}"
    );
    let reader = root.join("big-reader");
    repo(&reader, peer, "cairn-big");
    std::fs::copy(big.join("big.bin.dvc"), reader.join("big.bin.dvc")).unwrap();
    assert_success(
        &dvc_s3(&reader, &["pull", "--quiet"], peer),
        &format!("{name}: dvc pull big.bin"),
    );
    assert!(
        std::fs::read(reader.join("big.bin")).unwrap() == data,
        "{name}: big.bin differs"
    );
    let status = dvc_s3(&reader, &["status", "-c"], peer);
    assert_eq!(
        stdout(&status).trim(),
        "Cache and remote 'storage' are in sync.",
        "{name}: big.bin"
    );
}

#[test]
fn garage_round_trips_with_dvc() {
    interop(&s3peers::garage());
}

#[test]
fn moto_round_trips_with_dvc() {
    interop(&s3peers::moto());
}
