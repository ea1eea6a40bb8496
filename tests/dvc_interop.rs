//! Interoperability with the real DVC client (3.67): what cairn writes, DVC
//! reads back byte for byte, and cairn hashes trees exactly as `dvc add`.
//! These tests need the `dvc` program; scripts/test.sh installs it.

use crate::common;

use std::path::Path;

use common::trees::{assert_same_files, copy_tree, random_tree, Rng};
use common::*;

#[test]
fn dvc_pull_reproduces_what_cairn_run_published() {
    let s = Scratch::example();
    assert_success(&s.cairn(&["run", PIPELINE, "--merge", "direct"]), "run 1");
    assert_success(&s.cairn(&["run", PIPELINE, "--merge", "direct"]), "run 2");
    let pointer = std::fs::read_to_string(s.repo.join(format!("{DATASET}.dvc"))).unwrap();
    let expected = s.remote_object(&pointer_md5(&pointer));

    let clone = s.root.join("clone");
    git(
        &s.root,
        &[
            "clone",
            "--quiet",
            s.repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    let out = run_dvc(&clone, &["pull"]);
    assert_success(&out, "dvc pull");
    assert_eq!(std::fs::read(clone.join(DATASET)).unwrap(), expected);

    for (args, clean) in [
        (&["status"][..], "Data and pipelines are up to date."),
        (
            &["status", "-c"][..],
            "Cache and remote 'storage' are in sync.",
        ),
    ] {
        let out = run_dvc(&clone, args);
        assert_success(&out, "dvc status");
        assert_eq!(stdout(&out).trim(), clean, "dvc {}", args.join(" "));
    }
    // and git sees nothing to commit: the .gitignore entry is right
    assert_eq!(git(&clone, &["status", "--porcelain"]), "");
}

fn dvc_repo(dir: &Path, remote: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    assert_success(&run_dvc(dir, &["init", "--no-scm", "--quiet"]), "dvc init");
    assert_success(
        &run_dvc(
            dir,
            &["remote", "add", "-d", "storage", remote.to_str().unwrap()],
        ),
        "dvc remote add",
    );
}

#[test]
fn random_trees_hash_like_dvc_add_and_round_trip_both_ways() {
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path();
    for seed in 1..=6u64 {
        let case = root.join(format!("seed{seed}"));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let original = case.join("original");
        random_tree(&mut rng, &original, 0);

        // DVC: dvc add + dvc push to remote D.
        let by_dvc = case.join("by-dvc");
        let remote_d = case.join("remote-d");
        dvc_repo(&by_dvc, &remote_d);
        copy_tree(&original, &by_dvc.join("tree"));
        assert_success(&run_dvc(&by_dvc, &["add", "--quiet", "tree"]), "dvc add");
        assert_success(&run_dvc(&by_dvc, &["push", "--quiet"]), "dvc push");

        // cairn: publish the same tree to remote C.
        let by_cairn = case.join("by-cairn");
        let remote_c = case.join("remote-c");
        dvc_repo(&by_cairn, &remote_c);
        copy_tree(&original, &by_cairn.join("tree"));
        let out = cairn(&by_cairn, &["publish", "tree", "--json"]);
        assert_success(&out, "cairn publish");

        let dvc_pointer = std::fs::read_to_string(by_dvc.join("tree.dvc")).unwrap();
        let cairn_pointer = std::fs::read_to_string(by_cairn.join("tree.dvc")).unwrap();
        assert_eq!(cairn_pointer, dvc_pointer, "seed {seed}: .dvc files differ");
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["md5"], pointer_md5(&dvc_pointer), "seed {seed}");

        // DVC reads what cairn pushed: a fresh repo with cairn's pointer pulls from C.
        let reader = case.join("dvc-reads-cairn");
        dvc_repo(&reader, &remote_c);
        std::fs::copy(by_cairn.join("tree.dvc"), reader.join("tree.dvc")).unwrap();
        assert_success(
            &run_dvc(&reader, &["pull", "--quiet"]),
            "dvc pull from cairn's remote",
        );
        assert_same_files(&original, &reader.join("tree"), seed);
        let status = run_dvc(&reader, &["status", "-c"]);
        assert_eq!(
            stdout(&status).trim(),
            "Cache and remote 'storage' are in sync.",
            "seed {seed}"
        );

        // cairn reads what DVC pushed: fetch from D with DVC's pointer.
        let fetcher = case.join("cairn-reads-dvc");
        dvc_repo(&fetcher, &remote_d);
        std::fs::copy(by_dvc.join("tree.dvc"), fetcher.join("tree.dvc")).unwrap();
        assert_success(
            &cairn(&fetcher, &["fetch", "tree"]),
            "cairn fetch from DVC's remote",
        );
        assert_same_files(&original, &fetcher.join("tree"), seed);
    }
}

#[test]
fn single_file_pointer_matches_dvc_add_including_isexec() {
    let scratch = tempfile::tempdir().unwrap();
    for (name, exec) in [("plain.bin", false), ("run.sh", true), ("é 1.csv", false)] {
        let mut pointers = Vec::new();
        for who in ["dvc", "cairn"] {
            let repo = scratch.path().join(format!("{who}-{exec}-{}", name.len()));
            dvc_repo(&repo, &scratch.path().join("remote"));
            let file = repo.join(name);
            std::fs::write(&file, b"#!/bin/sh\necho hi\n").unwrap();
            if exec {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let out = if who == "dvc" {
                run_dvc(&repo, &["add", "--quiet", name])
            } else {
                cairn(&repo, &["publish", name])
            };
            assert_success(&out, who);
            pointers.push(std::fs::read_to_string(repo.join(format!("{name}.dvc"))).unwrap());
        }
        assert_eq!(
            pointers[1], pointers[0],
            "{name}: cairn's pointer differs from dvc add's"
        );
    }
}

/// Links inside a directory dataset are taken as `dvc add` takes them: a
/// file link hashed as its target's bytes under its own name, a folder link
/// left out. (A file link out of the dataset is refused: see
/// tests/isolation.rs.)
#[test]
fn links_inside_a_dataset_hash_like_dvc_add() {
    let scratch = tempfile::tempdir().unwrap();
    let make = |repo: &Path| {
        let tree = repo.join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a.csv"), "id\n1\n").unwrap();
        std::fs::write(tree.join("sub/b.csv"), "id\n2\n").unwrap();
        std::os::unix::fs::symlink("a.csv", tree.join("again.csv")).unwrap();
        std::os::unix::fs::symlink("../a.csv", tree.join("sub/up.csv")).unwrap();
        std::os::unix::fs::symlink("sub", tree.join("sublink")).unwrap();
    };
    let by_dvc = scratch.path().join("by-dvc");
    dvc_repo(&by_dvc, &scratch.path().join("remote-d"));
    make(&by_dvc);
    assert_success(&run_dvc(&by_dvc, &["add", "--quiet", "tree"]), "dvc add");
    let by_cairn = scratch.path().join("by-cairn");
    dvc_repo(&by_cairn, &scratch.path().join("remote-c"));
    make(&by_cairn);
    assert_success(&cairn(&by_cairn, &["publish", "tree"]), "cairn publish");
    assert_eq!(
        std::fs::read_to_string(by_cairn.join("tree.dvc")).unwrap(),
        std::fs::read_to_string(by_dvc.join("tree.dvc")).unwrap()
    );
}
