//! publish/fetch against a local remote in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;
use crate::dvc::{Md5, ObjectId, Output, PointerFile};
use crate::remote::{LocalRemote, Remote, RemoteError};

fn write(p: &Path, bytes: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

fn opts() -> TransferOptions {
    TransferOptions {
        jobs: 4,
        progress: Progress::hidden(),
    }
}

/// Names of everything in `dir` (recursively), for "nothing left behind" checks.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

struct Setup {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    remote: LocalRemote,
}

/// Publish the setup's file and folder datasets.
async fn publish_both(s: &Setup) -> (PublishReport, PublishReport) {
    let file = publish(&s.ws, "data/foo.csv", &s.remote, &opts())
        .await
        .unwrap();
    let dir = publish(&s.ws, "data/dir", &s.remote, &opts())
        .await
        .unwrap();
    (file, dir)
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let remote = LocalRemote::new(tmp.path().join("remote"));
    write(&ws.join("data/foo.csv"), b"a,b\n1,2\n");
    write(&ws.join("data/dir/a.txt"), b"a\n");
    write(&ws.join("data/dir/sub/b.txt"), b"b\n");
    write(&ws.join("data/dir/sub/copy.txt"), b"a\n");
    write(&ws.join("data/dir/empty.txt"), b"");
    fs::create_dir_all(ws.join("data/dir/nothing")).unwrap();
    Setup {
        _tmp: tmp,
        ws,
        remote,
    }
}

#[tokio::test]
async fn publish_file_then_republish_skips_everything() {
    let s = setup();
    let r = publish(&s.ws, "data/foo.csv", &s.remote, &opts())
        .await
        .unwrap();
    assert_eq!(r.output.id, ObjectId::file(Md5::of_bytes(b"a,b\n1,2\n")));
    assert_eq!(r.output.path, "foo.csv");
    assert_eq!(r.output.size, Some(8));
    assert_eq!((r.uploaded, r.skipped, r.bytes_uploaded), (1, 0, 8));
    assert!(s.remote.object_path(&r.output.id).is_file());
    let again = publish(&s.ws, "data/foo.csv", &s.remote, &opts())
        .await
        .unwrap();
    assert_eq!(
        (again.uploaded, again.skipped, again.bytes_uploaded),
        (0, 1, 0)
    );
    assert_eq!(again.output, r.output);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"md5": r.output.id.to_string(), "size": 8, "nfiles": null,
            "uploaded": 1, "skipped": 0, "bytes_uploaded": 8})
    );
}

#[tokio::test]
async fn publish_dir_uploads_unique_objects_and_manifest() {
    let s = setup();
    let r = publish(&s.ws, "data/dir/", &s.remote, &opts())
        .await
        .unwrap();
    assert!(r.output.id.dir);
    assert_eq!(r.output.path, "dir");
    assert_eq!(r.output.nfiles, Some(4));
    assert_eq!(r.output.size, Some(6));
    // a.txt and sub/copy.txt share one object; plus empty.txt, b.txt and the .dir.
    assert_eq!((r.uploaded, r.skipped), (4, 0));
    let manifest = fs::read(s.remote.object_path(&r.output.id)).unwrap();
    assert_eq!(Md5::of_bytes(&manifest), r.output.id.md5);
    let again = publish(&s.ws, "data/dir", &s.remote, &opts())
        .await
        .unwrap();
    assert_eq!(
        (again.uploaded, again.skipped, again.bytes_uploaded),
        (0, 4, 0)
    );
}

#[tokio::test]
async fn publish_errors() {
    let s = setup();
    let err = publish(&s.ws, "data/none", &s.remote, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("data/none"), "{err}");
    for bad in ["", "../x", "/abs", "a/../../b"] {
        let err = publish(&s.ws, bad, &s.remote, &opts()).await.unwrap_err();
        assert!(
            matches!(err, PublishError::InvalidDataset { .. }),
            "{bad}: {err}"
        );
    }
}

#[tokio::test]
async fn fetch_reproduces_file_and_dir() {
    let s = setup();
    let (file, dir) = publish_both(&s).await;
    let empty_ws = s._tmp.path().join("fresh");
    let got = fetch(
        &file.output,
        &empty_ws.join("data/foo.csv"),
        &s.remote,
        &opts(),
    )
    .await
    .unwrap();
    assert_eq!((got.files, got.bytes), (1, 8));
    assert_eq!(
        fs::read(empty_ws.join("data/foo.csv")).unwrap(),
        b"a,b\n1,2\n"
    );
    let got = fetch(&dir.output, &empty_ws.join("data/dir"), &s.remote, &opts())
        .await
        .unwrap();
    assert_eq!((got.files, got.bytes, got.downloaded), (4, 6, 4));
    for f in ["a.txt", "sub/b.txt", "sub/copy.txt", "empty.txt"] {
        assert_eq!(
            fs::read(empty_ws.join("data/dir").join(f)).unwrap(),
            fs::read(s.ws.join("data/dir").join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        listing(&empty_ws.join("data")).len(),
        7,
        "{:?}",
        listing(&empty_ws)
    );
    // Fetching over an existing version replaces it whole.
    write(&empty_ws.join("data/dir/stale.txt"), b"old");
    fetch(&dir.output, &empty_ws.join("data/dir"), &s.remote, &opts())
        .await
        .unwrap();
    assert!(!empty_ws.join("data/dir/stale.txt").exists());
    assert_eq!(listing(&empty_ws.join("data")).len(), 7);
}

#[tokio::test]
async fn fetch_of_an_empty_dir() {
    let s = setup();
    fs::create_dir_all(s.ws.join("e")).unwrap();
    let r = publish(&s.ws, "e", &s.remote, &opts()).await.unwrap();
    assert_eq!(
        r.output.id.to_string(),
        "d751713988987e9331980363e24189ce.dir"
    );
    let dest = s._tmp.path().join("out/e");
    fetch(&r.output, &dest, &s.remote, &opts()).await.unwrap();
    assert!(dest.is_dir());
}

#[cfg(unix)]
fn make_writable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
}

#[cfg(not(unix))]
fn make_writable(p: &Path) {
    let mut perm = fs::metadata(p).unwrap().permissions();
    perm.set_readonly(false);
    fs::set_permissions(p, perm).unwrap();
}

#[tokio::test]
async fn corrupt_object_fails_fetch_and_leaves_nothing() {
    let s = setup();
    let dir = publish(&s.ws, "data/dir", &s.remote, &opts())
        .await
        .unwrap();
    let bad = ObjectId::file(Md5::of_bytes(b"b\n"));
    let obj = s.remote.object_path(&bad);
    make_writable(&obj);
    fs::write(&obj, b"B\n").unwrap();
    let out = s._tmp.path().join("out");
    let err = fetch(&dir.output, &out.join("dir"), &s.remote, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Corrupt { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&bad.to_string()) && msg.contains("sub/b.txt"),
        "{msg}"
    );
    assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));

    // A single-file dataset whose object is corrupt: no file under the final name.
    let file = publish(&s.ws, "data/foo.csv", &s.remote, &opts())
        .await
        .unwrap();
    let obj = s.remote.object_path(&file.output.id);
    make_writable(&obj);
    fs::write(&obj, b"tampered").unwrap();
    let err = fetch(&file.output, &out.join("foo.csv"), &s.remote, &opts())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&file.output.id.to_string()),
        "{err}"
    );
    assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));
}

#[tokio::test]
async fn missing_and_corrupt_manifest() {
    let s = setup();
    let dir = publish(&s.ws, "data/dir", &s.remote, &opts())
        .await
        .unwrap();
    let out = s._tmp.path().join("out");
    let mut other = dir.output.clone();
    other.id = ObjectId::dir(Md5::of_bytes(b"nope"));
    let err = fetch(&other, &out.join("dir"), &s.remote, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Missing { .. }), "{err}");
    assert!(err.to_string().contains(&other.id.to_string()), "{err}");
    let obj = s.remote.object_path(&dir.output.id);
    make_writable(&obj);
    fs::write(&obj, b"[]").unwrap();
    let err = fetch(&dir.output, &out.join("dir"), &s.remote, &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Corrupt { file: None, .. }),
        "{err}"
    );
    assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));
}

/// A remote that fails `put_file` for one object and records every write.
struct FailingRemote {
    inner: LocalRemote,
    fail: ObjectId,
    writes: Mutex<Vec<ObjectId>>,
}

#[async_trait::async_trait]
impl Remote for FailingRemote {
    fn url(&self) -> String {
        self.inner.url()
    }
    async fn missing(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>, RemoteError> {
        self.inner.missing(ids).await
    }
    async fn put_file(&self, id: &ObjectId, src: &Path, size: u64) -> Result<(), RemoteError> {
        if *id == self.fail {
            return Err(RemoteError::Other {
                remote: self.url(),
                id: Some(*id),
                message: "injected failure".into(),
            });
        }
        self.writes.lock().unwrap().push(*id);
        self.inner.put_file(id, src, size).await
    }
    async fn put_bytes(&self, id: &ObjectId, bytes: Vec<u8>) -> Result<(), RemoteError> {
        self.writes.lock().unwrap().push(*id);
        self.inner.put_bytes(id, bytes).await
    }
    async fn get_to_file(&self, id: &ObjectId, dest: &Path) -> Result<(), RemoteError> {
        self.inner.get_to_file(id, dest).await
    }
    async fn size(&self, id: &ObjectId) -> Result<u64, RemoteError> {
        self.inner.size(id).await
    }
}

#[tokio::test]
async fn dir_manifest_is_never_uploaded_after_a_failed_file() {
    let s = setup();
    let failing = FailingRemote {
        inner: s.remote.clone(),
        fail: ObjectId::file(Md5::of_bytes(b"b\n")),
        writes: Mutex::new(Vec::new()),
    };
    let err = publish(&s.ws, "data/dir", &failing, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Upload { .. }), "{err}");
    assert!(err.to_string().contains("sub/b.txt"), "{err}");
    assert!(err.to_string().contains(&failing.fail.to_string()), "{err}");
    let writes = failing.writes.lock().unwrap().clone();
    assert!(
        writes.iter().all(|id| !id.dir),
        "a .dir was uploaded: {writes:?}"
    );
    let tree = crate::dvc::hash_tree(&s.ws.join("data/dir"), &|_| {}).unwrap();
    assert_eq!(s.remote.missing(&[tree.id]).await.unwrap(), [tree.id]);
    // With the fault gone, publishing completes and the .dir comes last.
    let ok = FailingRemote {
        inner: s.remote.clone(),
        fail: ObjectId::file(Md5::of_bytes(b"never")),
        writes: Mutex::new(Vec::new()),
    };
    publish(&s.ws, "data/dir", &ok, &opts()).await.unwrap();
    let writes = ok.writes.lock().unwrap().clone();
    assert_eq!(writes.last(), Some(&tree.id));
}

#[test]
fn write_pointer_writes_dvc_add_output_and_gitignore() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    write(&root.join("datasets/.gitignore"), b"/other");
    let id: ObjectId = "d1a0b622cd467ce72b35413f361b44b6".parse().unwrap();
    let out = Output::file(id, 13420, false, "employee_attrition.csv");
    write_pointer(root, "datasets/employee_attrition.csv", &out).unwrap();
    assert_eq!(
        fs::read_to_string(root.join("datasets/employee_attrition.csv.dvc")).unwrap(),
        "outs:\n- md5: d1a0b622cd467ce72b35413f361b44b6\n  size: 13420\n  hash: md5\n  path: employee_attrition.csv\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("datasets/.gitignore")).unwrap(),
        "/other\n/employee_attrition.csv\n"
    );
    // Second write: same .gitignore, user keys of the old pointer kept.
    let dvc = root.join("datasets/employee_attrition.csv.dvc");
    let text = fs::read_to_string(&dvc).unwrap();
    fs::write(&dvc, format!("desc: HR data\n{text}")).unwrap();
    let out2 = Output::file(
        ObjectId::file(Md5::of_bytes(b"x")),
        1,
        false,
        "employee_attrition.csv",
    );
    write_pointer(root, "datasets/employee_attrition.csv", &out2).unwrap();
    let p = PointerFile::parse(&fs::read_to_string(&dvc).unwrap(), "x").unwrap();
    assert_eq!(p.extra.len(), 1);
    assert_eq!(p.outs[0].id, out2.id);
    assert_eq!(
        fs::read_to_string(root.join("datasets/.gitignore")).unwrap(),
        "/other\n/employee_attrition.csv\n"
    );
    assert_eq!(
        listing(&root.join("datasets")).len(),
        2,
        "temp files left behind"
    );
}

#[tokio::test]
async fn fetch_replaces_a_folder_with_a_file_and_back() {
    let s = setup();
    let (file, dir) = publish_both(&s).await;
    let dest = s._tmp.path().join("out/x");
    fetch(&dir.output, &dest, &s.remote, &opts()).await.unwrap();
    fetch(&file.output, &dest, &s.remote, &opts())
        .await
        .unwrap();
    assert_eq!(fs::read(&dest).unwrap(), b"a,b\n1,2\n");
    fetch(&dir.output, &dest, &s.remote, &opts()).await.unwrap();
    assert!(dest.join("sub/b.txt").is_file());
    assert_eq!(
        listing(&s._tmp.path().join("out")).len(),
        6,
        "{:?}",
        listing(&s._tmp.path().join("out"))
    );
}
