//! Real S3 servers for interoperability tests: Garage (a production object
//! store) and moto's server (an independent implementation), each started
//! on loopback ports of its own and stopped when the handle drops (or when
//! the test process dies: the child gets SIGKILL with its parent).
//!
//! The binaries come from scripts/test.sh, which installs them into a cache
//! and exports CAIRN_TEST_GARAGE and CAIRN_TEST_MOTO. A test that needs one
//! fails, never skips, when it is missing.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3 server and the credentials of a key that owns `bucket`.
pub struct S3Peer {
    pub name: &'static str,
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for S3Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Peer {
    /// Credentials for a child process (never the test's own environment:
    /// tests run in parallel threads).
    pub fn env(&self, command: &mut Command) {
        command
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// A `.dvc/config` naming this server as the default remote, under `prefix`.
    pub fn dvc_config(&self, prefix: &str) -> String {
        format!(
            "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://{}/{prefix}\n    endpointurl = {}\n    region = {}\n",
            self.bucket, self.endpoint, self.region
        )
    }
}

fn binary(var: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(var) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("{name} is needed for this test: run scripts/test.sh, which installs it, or set {var}")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 60 s");
}

/// Start a server whose lifetime is bound to this process.
fn spawn(mut command: Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("server log");
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; it only asks the kernel to kill
    // the child when this process dies, so no server outlives a test run.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().expect("start server")
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-node Garage cluster (lmdb), a key and a bucket it owns.
pub fn garage() -> S3Peer {
    let garage = binary("CAIRN_TEST_GARAGE", "garage");
    let dir = tempfile::tempdir().unwrap();
    let (rpc, s3) = (free_port(), free_port());
    let secret: String = (0..32)
        .map(|i| format!("{:02x}", (i * 37 + 11) as u8))
        .collect();
    let config = dir.path().join("garage.toml");
    std::fs::write(
        &config,
        format!(
            "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\n\
             replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
             rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\n\
             [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n",
            d = dir.path().display()
        ),
    )
    .unwrap();
    let cli = || {
        let mut c = Command::new(&garage);
        c.arg("-c").arg(&config);
        c
    };
    let mut server = cli();
    server.arg("server");
    let mut child = spawn(server, &dir.path().join("garage.log"));
    wait_for_port(s3, &mut child, "garage");
    wait_for_port(rpc, &mut child, "garage rpc");

    let node = run(cli().args(["node", "id", "-q"]), "garage node id");
    let node = node.trim().split('@').next().unwrap().to_string();
    run(
        cli().args(["layout", "assign", "-z", "dc1", "-c", "1G", &node]),
        "garage layout assign",
    );
    run(
        cli().args(["layout", "apply", "--version", "1"]),
        "garage layout apply",
    );
    let key = run(
        cli().args(["key", "create", "cairn-test"]),
        "garage key create",
    );
    let field = |label: &str| {
        key.lines()
            .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {label} in garage's output:\n{key}"))
    };
    let (key_id, secret) = (field("Key ID:"), field("Secret key:"));
    run(
        cli().args(["bucket", "create", "datasets"]),
        "garage bucket create",
    );
    run(
        cli().args([
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            "datasets",
            "--key",
            "cairn-test",
        ]),
        "garage bucket allow",
    );
    S3Peer {
        name: "garage",
        endpoint: format!("http://127.0.0.1:{s3}"),
        region: "garage".into(),
        bucket: "datasets".into(),
        key_id,
        secret,
        child,
        _dir: dir,
    }
}

/// moto's S3 server with one bucket (it accepts any credentials).
pub fn moto() -> S3Peer {
    let moto = binary("CAIRN_TEST_MOTO", "moto_server");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Command::new(&moto);
    server.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let mut child = spawn(server, &dir.path().join("moto.log"));
    wait_for_port(port, &mut child, "moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    // moto's own virtualenv has boto3: create the bucket with it.
    let python = moto.with_file_name("python");
    run(
        Command::new(python)
            .args([
                "-c",
                "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
                 aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='datasets')",
                &endpoint,
            ]),
        "create the moto bucket",
    );
    S3Peer {
        name: "moto",
        endpoint,
        region: "us-east-1".into(),
        bucket: "datasets".into(),
        key_id: "testing".into(),
        secret: "testing".into(),
        child,
        _dir: dir,
    }
}
