//! DVC 3 compatibility vectors (shared/DESIGN.md, plus trees hashed by DVC 3.67.1)
//! and property tests over random trees, through cairn's public API only.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use cairn::dvc::{
    gitignore_add, hash_file, hash_tree, HashScheme, Manifest, ManifestEntry, Md5, ObjectId,
    Output, PointerFile,
};
use proptest::prelude::*;

fn write(p: &Path, bytes: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (p, bytes) in files {
        write(&dir.path().join(p), bytes);
    }
    dir
}

#[test]
fn file_foo() {
    let d = tree(&[("foo", b"foo")]);
    let (md5, size) = hash_file(&d.path().join("foo")).unwrap();
    assert_eq!(md5.to_string(), "acbd18db4cc2f85cedef654fccc4a4d8");
    assert_eq!(size, 3);
}

#[test]
fn dir_manifest_exact_bytes() {
    let d = tree(&[("a.txt", b"a\n"), ("sub/b.txt", b"b\n")]);
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    let want = br#"[{"md5": "60b725f10c9c85c70d97880dfe8191b3", "relpath": "a.txt"}, {"md5": "3b5d5c3712955042212316173ccf37be", "relpath": "sub/b.txt"}]"#;
    assert_eq!(want.len(), 134);
    assert_eq!(t.manifest.to_bytes(), want);
    assert_eq!(t.id.to_string(), "849835d274483dc683eb416d6e4f887d.dir");
    assert_eq!((t.size, t.nfiles), (4, 2));
}

#[test]
fn dir_foo_bar() {
    let d = tree(&[("foo", b"foo"), ("bar", b"bar")]);
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    assert_eq!(t.id.to_string(), "5ea40360f5b4ec688df672a4db9c17d1.dir");
    assert_eq!((t.size, t.nfiles), (6, 2));
}

#[test]
fn empty_dir() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("only/empty/folders")).unwrap();
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    assert_eq!(t.id.to_string(), "d751713988987e9331980363e24189ce.dir");
    assert_eq!((t.size, t.nfiles), (0, 0));
    assert_eq!(t.manifest.to_bytes(), b"[]");
}

#[test]
fn non_ascii_is_escaped_like_python() {
    let d = tree(&[("é.txt", b"x")]);
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    let bytes = String::from_utf8(t.manifest.to_bytes()).unwrap();
    assert!(bytes.contains(r#""relpath": "\u00e9.txt""#), "{bytes}");
    assert!(bytes.is_ascii());
}

#[test]
fn whole_relpath_sort_order() {
    let d = tree(&[("a/b", b"1"), ("a-b", b"2"), ("a0", b"3")]);
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    let order: Vec<&str> = t
        .manifest
        .entries()
        .iter()
        .map(|e| e.relpath.as_str())
        .collect();
    assert_eq!(order, ["a-b", "a/b", "a0"]);
}

/// 14 files whose names exercise every JSON escape; hashed by DVC 3.67.1
/// (each file's content is its own name).
#[test]
fn escapes_and_order_match_dvc() {
    let names = [
        "a-b",
        "a.b",
        "a0",
        "é.txt",
        "q\"uote",
        "back\\slash",
        "nl\nx",
        "tab\tx",
        "del\u{7f}x",
        "😀",
        "\u{1}ctl",
        "Z",
        "a/b",
        "a-b.d/x",
    ];
    let d = tempfile::tempdir().unwrap();
    for n in names {
        write(&d.path().join(n), n.as_bytes());
    }
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    assert_eq!(t.id.to_string(), "985bf7eee6bb3908275297349c3fe795.dir");
    assert_eq!((t.size, t.nfiles), (63, 14));
    let bytes = String::from_utf8(t.manifest.to_bytes()).unwrap();
    for piece in [
        r#""relpath": "\u0001ctl"}, {"#,
        r#""relpath": "back\\slash""#,
        r#""relpath": "del\u007fx""#,
        r#""relpath": "nl\nx""#,
        r#""relpath": "q\"uote""#,
        r#""relpath": "tab\tx""#,
        r#""relpath": "\ud83d\ude00"}]"#,
    ] {
        assert!(bytes.contains(piece), "{piece} not in {bytes}");
    }
}

/// What `dvc add` includes: `.gitignore` files and file symlinks; not `.git`,
/// `.hg`, empty folders or folder symlinks (hashed by DVC 3.67.1).
#[cfg(unix)]
#[test]
fn walk_rules_match_dvc() {
    let root = tempfile::tempdir().unwrap();
    let d = root.path().join("d");
    write(&d.join("a.txt"), b"a\n");
    write(&d.join("sub/b.txt"), b"b\n");
    write(&d.join(".gitignore"), b"ig\n");
    write(&d.join("sub/.gitignore"), b"x");
    write(&d.join(".git/HEADX"), b"g");
    fs::create_dir_all(d.join("empty")).unwrap();
    // The link's target is inside the dataset, in a folder DVC skips: the
    // manifest is DVC's either way (the link's path, the target's bytes),
    // and cairn refuses a link out of the dataset (tests/isolation.rs).
    write(&d.join(".git/foo.txt"), b"foo");
    std::os::unix::fs::symlink(".git/foo.txt", d.join("link.txt")).unwrap();
    let t = hash_tree(&d, &|_| {}).unwrap();
    assert_eq!(t.id.to_string(), "a11a761c5995a418d5dfd116b8e521b0.dir");
    assert_eq!((t.size, t.nfiles), (11, 5));

    let e = root.path().join("e");
    for p in ["x/.git/f", ".hg/f", "x/y/f", ".gitx/f"] {
        write(&e.join(p), format!("e/{p}\n").as_bytes());
    }
    write(&e.join("x/y/.git"), b"gitfile\n");
    write(&root.path().join("realdir/r.txt"), b"r\n");
    std::os::unix::fs::symlink("../realdir", e.join("dirlink")).unwrap();
    let t = hash_tree(&e, &|_| {}).unwrap();
    assert_eq!(t.id.to_string(), "11725665be160dfd79203e1f8d99de0e.dir");
    assert_eq!((t.size, t.nfiles), (18, 2));
}

#[test]
fn dvc_file_text_for_a_file() {
    let id: ObjectId = "d1a0b622cd467ce72b35413f361b44b6".parse().unwrap();
    let out = Output {
        id,
        size: Some(13420),
        nfiles: None,
        isexec: false,
        hash: HashScheme::Md5,
        path: "employee_attrition.csv".into(),
        extra: Vec::new(),
    };
    let text = PointerFile::single(out.clone())
        .to_yaml("employee_attrition.csv.dvc")
        .unwrap();
    assert_eq!(
        text,
        "outs:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 13420\n  hash: md5\n  path: employee_attrition.csv\n"
    );
    let back = PointerFile::parse(&text, "employee_attrition.csv.dvc").unwrap();
    assert_eq!(back.outs, [out]);
}

#[test]
fn dvc_file_text_for_a_dir() {
    let d = tree(&[("a.txt", b"a\n"), ("sub/b.txt", b"b\n")]);
    let t = hash_tree(d.path(), &|_| {}).unwrap();
    let out = Output::dir(t.id, t.size, t.nfiles, "dir");
    assert_eq!(
        PointerFile::single(out).to_yaml("dir.dvc").unwrap(),
        "outs:\n- md5: 849835d274483dc683eb416d6e4f887d.dir\n  size: 4\n  nfiles: 2\n  hash: md5\n  path: dir\n"
    );
}

/// `dvc add` of a fresh executable file (DVC 3.67.1).
#[cfg(unix)]
#[test]
fn dvc_file_text_for_an_executable() {
    use std::os::unix::fs::PermissionsExt;
    let d = tree(&[("ex2.sh", b"zz")]);
    let p = d.path().join("ex2.sh");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let (md5, size) = hash_file(&p).unwrap();
    let isexec = cairn::dvc::hash::is_exec(&fs::metadata(&p).unwrap());
    let out = Output::file(ObjectId::file(md5), size, isexec, "ex2.sh");
    assert_eq!(
        PointerFile::single(out).to_yaml("ex2.sh.dvc").unwrap(),
        "outs:\n- md5: 25ed1bcb423b0b7200f485fc5ff71c8e\n  size: 2\n  isexec: true\n  hash: md5\n  path: ex2.sh\n"
    );
}

#[test]
fn gitignore_line() {
    assert_eq!(
        gitignore_add("", "employee_attrition.csv").as_deref(),
        Some("/employee_attrition.csv\n")
    );
}

// ---------------------------------------------------------------------------
// Property tests over random trees.

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>),
    Dir(BTreeMap<String, Node>),
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _.éü日😀-]{1,8}".prop_filter("reserved name", |n| {
        !matches!(
            n.as_str(),
            "." | ".." | ".git" | ".hg" | ".dvc" | ".dvcignore"
        )
    })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop::collection::vec(any::<u8>(), 0..64).prop_map(Node::File);
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop::collection::btree_map(name(), inner, 0..6).prop_map(Node::Dir)
    })
}

fn root() -> impl Strategy<Value = BTreeMap<String, Node>> {
    prop::collection::btree_map(name(), node(), 0..8)
}

/// (relpath, content) of every file, plus every folder, in creation order.
fn flatten(
    prefix: &str,
    m: &BTreeMap<String, Node>,
    files: &mut Vec<(String, Vec<u8>)>,
    dirs: &mut Vec<String>,
) {
    for (k, v) in m {
        let p = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}/{k}")
        };
        match v {
            Node::File(b) => files.push((p, b.clone())),
            Node::Dir(sub) => {
                dirs.push(p.clone());
                flatten(&p, sub, files, dirs);
            }
        }
    }
}

fn materialise(dir: &Path, files: &[(String, Vec<u8>)], dirs: &[String]) {
    for d in dirs {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    for (p, b) in files {
        write(&dir.join(p), b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_trees(tree in root()) {
        let (mut files, mut dirs) = (Vec::new(), Vec::new());
        flatten("", &tree, &mut files, &mut dirs);
        let one = tempfile::tempdir().unwrap();
        materialise(one.path(), &files, &dirs);
        let two = tempfile::tempdir().unwrap();
        let (mut rfiles, mut rdirs) = (files.clone(), dirs.clone());
        rfiles.reverse();
        rdirs.reverse();
        materialise(two.path(), &rfiles, &rdirs);

        let a = hash_tree(one.path(), &|_| {}).unwrap();
        let b = hash_tree(two.path(), &|_| {}).unwrap();
        // Independent of creation order.
        prop_assert_eq!(&a, &b);
        // The .dir id is the md5 of the manifest bytes.
        prop_assert_eq!(a.id, ObjectId::dir(Md5::of_bytes(&a.manifest.to_bytes())));
        // Sizes and counts add up; empty folders are not listed.
        prop_assert_eq!(a.nfiles, files.len() as u64);
        prop_assert_eq!(a.size, files.iter().map(|(_, b)| b.len() as u64).sum::<u64>());
        prop_assert_eq!(a.manifest.total_size(), Some(a.size));
        for (e, (p, bytes)) in a.manifest.entries().iter().zip({
            let mut sorted = files.clone();
            sorted.sort();
            sorted
        }) {
            prop_assert_eq!(&e.relpath, &p);
            prop_assert_eq!(e.md5, Md5::of_bytes(&bytes));
        }
        // parse(to_bytes()) round-trips (sizes are not part of DVC 3 manifests).
        let parsed = Manifest::parse(&a.manifest.to_bytes()).unwrap();
        let strip = |m: &Manifest| -> Vec<(String, Md5)> {
            m.entries().iter().map(|e| (e.relpath.clone(), e.md5)).collect()
        };
        prop_assert_eq!(strip(&parsed), strip(&a.manifest));
        prop_assert_eq!(parsed.to_bytes(), a.manifest.to_bytes());
        prop_assert!(a.manifest.to_bytes().is_ascii());
    }

    #[test]
    fn manifest_json_round_trips_any_name(names in prop::collection::btree_set("[^/\u{0}]{1,12}", 1..12)) {
        let entries: Vec<ManifestEntry> = names
            .iter()
            .filter(|n| *n != "." && *n != "..")
            .map(|n| ManifestEntry { relpath: n.clone(), md5: Md5::of_bytes(n.as_bytes()), size: None })
            .collect();
        let m = Manifest::new(entries).unwrap();
        let bytes = m.to_bytes();
        prop_assert!(bytes.is_ascii());
        prop_assert_eq!(Manifest::parse(&bytes).unwrap(), m);
    }
}
